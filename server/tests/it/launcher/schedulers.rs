//! `damselfly up --schedulers 2` as a user runs it: two scheduler processes registered with the
//! manager, every dfdaemon told of both, files whose tasks land on each, then one scheduler
//! killed (SIGKILL) while a slow download runs through it: that download and a new one of a task
//! the dead scheduler owned both finish with the right bytes, the origin read once per file, and
//! the cluster keeps running.

use std::{
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use common::ids::TaskId;
use nix::{sys::signal, unistd::Pid};
use peer::rpc::scheduler_set::SchedulerSet;
use sha2::{Digest as _, Sha256};
use testkit::origin::{Origin, content};

use super::{alive, bin_dir, interrupt, up_with};

/// What `dfget <url>` derives (no piece length, no tag).
fn id_of(url: &str) -> TaskId {
    common::task_id::task_id(&common::task_id::TaskSpec { url, ..Default::default() }).unwrap()
}

fn dfget(url: &str, out: &Path, endpoint: &str) -> Command {
    let mut cmd = Command::new(bin_dir().join("dfget"));
    cmd.arg(url).arg("-O").arg(out).args(["-e", endpoint, "--no-progress"]).stdout(Stdio::null());
    cmd
}

/// The value of `damselfly_scheduler_<name>` on the scheduler whose HTTP base is `base`.
async fn gauge(base: &str, name: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics")).await.map(|r| r.text());
    let Ok(text) = text else { return -1.0 };
    testkit::peer::counter(&text.await.unwrap_or_default(), &format!("damselfly_scheduler_{name} "))
}

/// Runs `cmd` to its end off the runtime (the test's origin is served on it meanwhile).
async fn run(mut cmd: Command) -> anyhow::Result<std::process::ExitStatus> {
    Ok(tokio::task::spawn_blocking(move || cmd.status()).await??)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_with_two_schedulers_spreads_tasks_and_a_killed_one_fails_no_download() -> anyhow::Result<()> {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir()?;
    // peer-2 downloads slowly (1 MiB/s from parents): its configuration is the operator's,
    // written before the first start as the launcher would, plus a rate limit.
    let peer_2 = dir.path().join("peers/peer-2");
    std::fs::create_dir_all(&peer_2)?;
    std::fs::write(
        peer_2.join("dfdaemon.toml"),
        "[proxy]\nallowed_private_networks = [\"127.0.0.0/8\"]\n\n[download]\nrate_limit = 1048576\n",
    )?;
    let (mut launcher, cluster) = up_with(dir.path(), &["--peers", "2", "--schedulers", "2"]).await?;
    let schedulers = cluster["schedulers"].as_array().unwrap().clone();
    assert_eq!(schedulers.len(), 2);
    assert_eq!(cluster["scheduler"]["grpc"], schedulers[0]["grpc"], "the first is the one-scheduler entry");
    let grpc: Vec<String> = schedulers.iter().map(|s| s["grpc"].as_str().unwrap().to_owned()).collect();
    let http: Vec<String> = schedulers.iter().map(|s| s["http"].as_str().unwrap().to_owned()).collect();
    assert_ne!(grpc[0], grpc[1]);

    // Every dfdaemon learns both schedulers from the manager and announces itself to each.
    let deadline = Instant::now() + Duration::from_secs(60);
    for base in &http {
        while gauge(base, "hosts").await != 3.0 {
            anyhow::ensure!(Instant::now() < deadline, "the dfdaemons did not all announce to {base}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // Files of 3 MiB whose tasks land on each scheduler, as every dfdaemon ranks them, and a
    // 6 MiB one on the first (the one to be killed), twice: one to run slowly while it dies, one
    // to start after.
    let set = SchedulerSet::new(grpc.iter().map(|a| a.parse().unwrap()).collect(), None);
    let owner = |url: &str| set.for_task(&id_of(url).0).map(|a| a.to_string());
    let pick = |len: usize, on: &str, skip: usize| {
        (0u8..=255)
            .map(|seed| format!("{}/bytes/{len}/{seed}", origin.base))
            .filter(|url| owner(url).as_deref() == Some(on))
            .nth(skip)
            .expect("a file for each scheduler")
    };
    let (small, big) = (3 << 20, 6 << 20);
    let files = [pick(small, &grpc[0], 0), pick(small, &grpc[1], 0)];
    let peers = cluster["peers"].as_array().unwrap();
    let endpoint =
        |name: &str| peers.iter().find(|p| p["name"] == name).and_then(|p| p["endpoint"].as_str()).unwrap().to_owned();
    let check = |out: &Path, url: &str| -> anyhow::Result<()> {
        let seed: u8 = url.rsplit('/').next().unwrap().parse()?;
        let len: usize = url.rsplit('/').nth(1).unwrap().parse()?;
        let got = std::fs::read(out)?;
        anyhow::ensure!(Sha256::digest(&got) == Sha256::digest(content(len, seed)), "{url}: wrong content");
        Ok(())
    };
    for (i, url) in files.iter().enumerate() {
        let out = dir.path().join(format!("file-{i}"));
        assert!(run(dfget(url, &out, &endpoint("peer-1"))).await?.success(), "{url}");
        check(&out, url)?;
    }
    for base in &http {
        assert!(gauge(base, "tasks").await >= 1.0, "{base} scheduled a task");
    }

    // A slow download on peer-2 through the first scheduler, which is killed under it.
    let (running, after) = (pick(big, &grpc[0], 0), pick(big, &grpc[0], 1));
    let running_out = dir.path().join("running");
    let mut slow = dfget(&running, &running_out, &endpoint("peer-2")).spawn()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    anyhow::ensure!(slow.try_wait()?.is_none(), "the slow download ended before its scheduler was killed");
    let pid = schedulers[0]["pid"].as_i64().unwrap() as i32;
    signal::kill(Pid::from_raw(pid), signal::Signal::SIGKILL)?;
    let killed = Instant::now();
    while alive(pid) && killed.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A new download of a task the dead scheduler owned, and the running one, both finish.
    let after_out = dir.path().join("after");
    assert!(run(dfget(&after, &after_out, &endpoint("peer-1"))).await?.success(), "{after}");
    check(&after_out, &after)?;
    let status = tokio::task::spawn_blocking(move || slow.wait()).await??;
    assert!(status.success(), "the running download failed: {status:?}");
    check(&running_out, &running)?;
    assert_eq!(origin.sent(), (2 * small + 2 * big) as u64, "each file left the origin once (its seed peer's fetch)");

    assert!(launcher.try_wait()?.is_none(), "the launcher keeps the cluster up with one scheduler left");
    let exit = interrupt(&mut launcher).await?;
    assert!(exit.success(), "launcher exit: {exit:?}");
    Ok(())
}
