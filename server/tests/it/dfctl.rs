//! `dfctl preheat` against the real manager: a scheduler registered with it, a seed peer and two
//! peers, a real HTTP origin, and a personal access token with scope `job`, as an operator
//! would run it. A file preheat waited for warms every host and prints each one; a URL the
//! origin refuses fails with the reason (exit 1); the manager's refusals are one line with the
//! field (exit 1); a wrong or missing token is told apart (exit 1 and 2). An image preheat
//! (its type seen from the URL) with a registry password read from standard input warms the
//! blobs of the one platform asked for.
//!
//! Needs `dfctl` built beside this crate's binaries (`cargo build -p peer --bin dfctl`, or
//! `make build`).

use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::Duration,
};

use serde_json::Value;
use testkit::{
    db::Backend,
    manager::TestManager,
    origin::Origin,
    peer::{PIECE, TestPeer},
    registry::{Image, Layer, Registry},
    scheduler::TestScheduler,
};
use tokio_util::sync::CancellationToken;

const HOSTS: [&str; 3] = ["seed-a", "peer-a", "peer-b"];

fn dfctl_bin() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_damselfly")).parent().unwrap().join("dfctl")
}

/// Runs dfctl with `token` in `DFCTL_TOKEN` (none: no token anywhere) against `manager`.
async fn dfctl(manager: &str, token: Option<&str>, args: &[&str]) -> Output {
    dfctl_reading(manager, token, args, "").await
}

/// [`dfctl`] with `input` on its standard input.
async fn dfctl_reading(manager: &str, token: Option<&str>, args: &[&str], input: &str) -> Output {
    use tokio::io::AsyncWriteExt as _;
    let home = tempfile::tempdir().unwrap();
    let mut c = tokio::process::Command::new(dfctl_bin());
    c.args(args)
        .env("DFCTL_MANAGER", manager)
        .env("XDG_CONFIG_HOME", home.path())
        .env("HOME", home.path())
        .env_remove("DFCTL_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(t) = token {
        c.env("DFCTL_TOKEN", t);
    }
    let mut child = c.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    drop(stdin);
    tokio::time::timeout(Duration::from_secs(120), child.wait_with_output()).await.expect("dfctl ended").unwrap()
}

/// A scheduler registered with `m` and [`HOSTS`] announced to it, and a personal access token
/// with scope `job`.
async fn cluster(m: &TestManager, dir: &Path, stop: &CancellationToken) -> (TestScheduler, Vec<TestPeer>, String) {
    let (scheduler, peers) = crate::preheat::cluster(&m.grpc, &HOSTS, dir, stop).await;
    (scheduler, peers, crate::preheat::job_token(m, "dfctl").await)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The table's rows (after the header) as columns split on runs of two or more spaces.
fn rows(table: &str) -> Vec<Vec<String>> {
    let split = regex::Regex::new(r" {2,}").unwrap();
    table.lines().skip(1).map(|l| split.split(l.trim_end()).map(str::to_owned).collect()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dfctl_preheats_through_the_manager_with_a_personal_access_token() -> anyhow::Result<()> {
    anyhow::ensure!(dfctl_bin().is_file(), "dfctl is not built: run `cargo build -p peer --bin dfctl`");
    let m = TestManager::start_with(Backend::Sqlite, |c| c.jobs.poll_interval_ms = 50).await;
    let origin = Origin::start().await;
    let dir = tempfile::tempdir()?;
    let stop = CancellationToken::new();
    let (_scheduler, _peers, token) = cluster(&m, dir.path(), &stop).await;
    let manager = m.base.as_str();

    // Two files on every host, waited for: exit 0 and a row per host and URL.
    let size = 3 * PIECE + 7;
    let urls = [format!("{origin}/bytes/{size}/21"), format!("{origin}/bytes/{size}/22")];
    let piece = PIECE.to_string();
    let args = ["preheat", &urls[0], &urls[1], "--scope", "all_peers", "--piece-length", &piece, "--wait"];
    let all = dfctl(manager, Some(&token), &args).await;
    assert_eq!(all.status.code(), Some(0), "{}{}", text(&all.stdout), text(&all.stderr));
    let table = text(&all.stdout);
    assert!(table.starts_with("CLUSTER  HOSTNAME"), "{table}");
    let listed = rows(&table);
    assert_eq!(listed.len(), HOSTS.len() * urls.len(), "{table}");
    for host in HOSTS {
        for url in &urls {
            let row = listed.iter().find(|r| r[1] == host && &r[3] == url);
            let row = row.unwrap_or_else(|| panic!("{host} {url} in\n{table}"));
            assert_eq!((row[2].as_str(), row[4].as_str()), ("127.0.0.1", "SUCCESS"), "{table}");
            assert!(row[0].parse::<i64>().is_ok(), "{table}");
        }
    }
    assert!(text(&all.stderr).contains("SUCCESS: 6 of 6 host tasks succeeded"), "{}", text(&all.stderr));
    assert_eq!(origin.sent(), 2 * size, "each file left the origin once");

    // JSON: the job as the manager shows it to a token.
    let one = format!("{origin}/bytes/100/23");
    let json = dfctl(manager, Some(&token), &["preheat", &one, "--wait", "--output", "json"]).await;
    assert_eq!(json.status.code(), Some(0), "{}", text(&json.stderr));
    let job: Value = serde_json::from_slice(&json.stdout)?;
    assert_eq!((job["state"].as_str(), job["args"]["type"].as_str()), (Some("SUCCESS"), Some("file")), "{job}");
    assert_eq!(job["args"]["scope"], "single_seed_peer");
    let warmed = &job["result"]["job_states"][0]["results"][0]["success_tasks"];
    assert_eq!(warmed[0]["hostname"], "seed-a", "{job}");

    // Without --wait: created, its id and state, exit 0.
    let queued = dfctl(manager, Some(&token), &["preheat", &format!("{origin}/bytes/100/24")]).await;
    assert_eq!(queued.status.code(), Some(0), "{}", text(&queued.stderr));
    let line = text(&queued.stdout);
    let id: i64 = line.strip_prefix("job ").and_then(|r| r.split(' ').next()).and_then(|n| n.parse().ok()).unwrap();
    assert!(line.trim_end().ends_with("PENDING"), "{line}");
    assert_eq!(m.get(&format!("/api/v1/jobs/{id}"), &m.root).await.expect(200).body["type"], "preheat");

    // An origin that answers 404: exit 1, the host's row and the reason.
    let missing = format!("{origin}/status/404");
    let failed = dfctl(manager, Some(&token), &["preheat", &missing, "--wait"]).await;
    assert_eq!(failed.status.code(), Some(1), "{}{}", text(&failed.stdout), text(&failed.stderr));
    let table = text(&failed.stdout);
    let row = &rows(&table)[0];
    assert_eq!((row[1].as_str(), row[3].as_str(), row[4].as_str()), ("seed-a", missing.as_str(), "FAILURE"), "{table}");
    assert!(row[5].contains("404"), "{table}");
    assert!(
        text(&failed.stderr).contains("FAILURE") && text(&failed.stderr).contains("404"),
        "{}",
        text(&failed.stderr)
    );

    // The manager's refusals: one line naming the field, exit 1; nothing queued.
    let before = m.get("/api/v1/jobs?type=preheat", &m.root).await.expect(200).body;
    let no_cluster = dfctl(manager, Some(&token), &["preheat", &one, "--cluster", "424242"]).await;
    assert_eq!(no_cluster.status.code(), Some(1), "{}", text(&no_cluster.stderr));
    assert_eq!(
        text(&no_cluster.stderr),
        "dfctl: the tenant has no cluster 424242 (field scheduler_cluster_ids)\n",
        "{}",
        text(&no_cluster.stderr)
    );
    let not_an_image = dfctl(manager, Some(&token), &["preheat", &one, "--type", "image"]).await;
    assert_eq!(not_an_image.status.code(), Some(1));
    assert!(text(&not_an_image.stderr).ends_with("(field args.url)\n"), "{}", text(&not_an_image.stderr));
    assert_eq!(m.get("/api/v1/jobs?type=preheat", &m.root).await.expect(200).body, before);

    // Tokens: a wrong one is the manager's 401 (exit 1); none at all is a usage error (exit 2);
    // a sign-in token is not a personal access token.
    let wrong = dfctl(manager, Some("dfly_pat_wrong"), &["preheat", &one]).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert_eq!(text(&wrong.stderr), "dfctl: unknown personal access token\n");
    let none = dfctl(manager, None, &["preheat", &one]).await;
    assert_eq!(none.status.code(), Some(2));
    assert!(text(&none.stderr).contains("no personal access token"), "{}", text(&none.stderr));
    let session = dfctl(manager, Some(&m.root), &["preheat", &one]).await;
    assert_eq!(session.status.code(), Some(1));
    assert!(text(&session.stderr).contains("unknown personal access token"), "{}", text(&session.stderr));
    stop.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn dfctl_preheats_one_platform_of_an_image_with_a_password_from_stdin() -> anyhow::Result<()> {
    anyhow::ensure!(dfctl_bin().is_file(), "dfctl is not built: run `cargo build -p peer --bin dfctl`");
    let registry = Registry::with_token_auth("ci", "s3cret").await;
    let image = Image::index(vec![
        ("linux/amd64", vec![Layer::tar(1000, 30), Layer::tar(2000, 31)]),
        ("linux/arm64/v8", vec![Layer::tar(1500, 40)]),
    ]);
    let pushed = registry.push("multi/app", "2", &image).await;
    let m = TestManager::start_with(Backend::Sqlite, |c| c.jobs.poll_interval_ms = 50).await;
    let dir = tempfile::tempdir()?;
    let stop = CancellationToken::new();
    let (_scheduler, _peers, token) = cluster(&m, dir.path(), &stop).await;
    let manager = m.base.as_str();
    let url = pushed.manifest_url.as_str();

    let args = ["preheat", url, "--username", "ci", "--password-stdin", "--platform", "linux/arm64/v8", "--wait"];
    let warmed = dfctl_reading(manager, Some(&token), &args, "s3cret\n").await;
    let said = format!("{}{}", text(&warmed.stdout), text(&warmed.stderr));
    assert_eq!(warmed.status.code(), Some(0), "{said}");
    assert!(!said.contains("s3cret"), "the password is never printed: {said}");
    let mut got: Vec<(String, String)> =
        rows(&text(&warmed.stdout)).into_iter().map(|r| (r[1].clone(), r[3].clone())).collect();
    got.sort();
    let mut expected: Vec<(String, String)> = pushed
        .for_platform("linux/arm64/v8")
        .blobs
        .iter()
        .map(|b| ("seed-a".to_owned(), format!("{}/v2/multi/app/blobs/{}", registry.base, b.digest)))
        .collect();
    expected.sort();
    assert_eq!(got, expected, "the arm64 manifest's blobs, on the one seed peer: {said}");

    // A wrong password: the job fails with the registry's refusal, exit 1.
    let refused = dfctl_reading(manager, Some(&token), &args, "wrong\n").await;
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stderr));
    assert!(text(&refused.stderr).contains("refused"), "{}", text(&refused.stderr));
    // No password on standard input: a usage error before anything is asked.
    let empty = dfctl_reading(manager, Some(&token), &args, "").await;
    assert_eq!(empty.status.code(), Some(2), "{}", text(&empty.stderr));
    assert!(text(&empty.stderr).contains("empty password"), "{}", text(&empty.stderr));
    stop.cancel();
    Ok(())
}
