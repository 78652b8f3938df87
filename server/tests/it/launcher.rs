//! `damselfly up` as a user runs it: the real binaries as processes, cluster.json, health of
//! every component, a dfget download through a peer, and Ctrl-C leaving nothing running.
//!
//! Needs the workspace's binaries built (`make build` or `cargo build --workspace --bins`).

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    time::{Duration, Instant},
};

use common::health::{HealthReport, HealthStatus};
use nix::{sys::signal, unistd::Pid};
use serde_json::Value;

const ROOT_PASSWORD: &str = "launcher-test";

fn bin_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_damselfly")).parent().unwrap().to_owned()
}

fn alive(pid: i32) -> bool {
    signal::kill(Pid::from_raw(pid), None).is_ok()
}

/// `damselfly up --peers <peers> <extra…>` on `dir`, once its cluster.json is written: the
/// launcher and the cluster it describes.
async fn up(dir: &Path, peers: u32, extra: &[&str]) -> anyhow::Result<(Child, Value)> {
    for b in ["manager", "scheduler", "dfdaemon", "dfget", "dfctl"] {
        anyhow::ensure!(bin_dir().join(b).is_file(), "{b} is not built: run `cargo build --workspace --bins`");
    }
    let mut launcher = Command::new(env!("CARGO_BIN_EXE_damselfly"))
        .args(["up", "--peers", &peers.to_string(), "--data-dir"])
        .arg(dir)
        .args(extra)
        .env("DAMSELFLY_ROOT_PASSWORD", ROOT_PASSWORD)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let cluster_json = dir.join("cluster.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cluster_json.exists() {
        anyhow::ensure!(launcher.try_wait()?.is_none(), "launcher exited during start-up");
        anyhow::ensure!(Instant::now() < deadline, "cluster.json did not appear in 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cluster = serde_json::from_slice(&std::fs::read(&cluster_json)?)?;
    Ok((launcher, cluster))
}

/// Ctrl-C to the launcher; its exit status within 30 s.
async fn interrupt(launcher: &mut Child) -> anyhow::Result<ExitStatus> {
    signal::kill(Pid::from_raw(launcher.id() as i32), signal::Signal::SIGINT)?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(exit) = launcher.try_wait()? {
            return Ok(exit);
        }
        anyhow::ensure!(Instant::now() < deadline, "launcher still running 30 s after SIGINT");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn up_starts_a_healthy_cluster_and_ctrl_c_stops_all_of_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut launcher, cluster) = up(dir.path(), 1, &[]).await?;
    let cluster_json = dir.path().join("cluster.json");
    let peers = cluster["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 2);
    assert_eq!(peers.iter().filter(|p| p["seed"] == true).count(), 1);

    let client = reqwest::Client::new();
    let mut health_urls = vec![
        cluster["manager"]["http"].as_str().unwrap().to_owned(),
        cluster["scheduler"]["http"].as_str().unwrap().to_owned(),
    ];
    health_urls.extend(peers.iter().map(|p| p["http"].as_str().unwrap().to_owned()));
    for base in &health_urls {
        let report: HealthReport = client.get(format!("{base}/healthy")).send().await?.json().await?;
        assert_eq!(report.status, HealthStatus::Ok, "{base}");
    }

    // Every component enrolled with a join token and keeps its certificate, key private.
    let tls = |component: &str| dir.path().join(component).join("tls");
    for kept in [tls("scheduler"), tls("peers/seed-peer"), tls("peers/peer-1")] {
        let mode = std::fs::metadata(kept.join("key.pem"))?.permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", kept.display());
    }
    let peer_1 = common::tls::Credentials::load(&tls("peers/peer-1"))?.expect("peer-1's certificate");
    assert_eq!(peer_1.identity.uri(), "damselfly://peer/1/peer-1-127.0.0.1");

    // The scheduler registered with the manager and keeps alive: peers are told about it, over
    // mutual TLS (plain text gets nothing).
    let manager_grpc = cluster["manager"]["grpc"].as_str().unwrap();
    let scheduler_port: u32 = cluster["scheduler"]["grpc"].as_str().unwrap().rsplit(':').next().unwrap().parse()?;
    let listing = proto::manager::v1::ListSchedulersRequest {
        hostname: "peer-1".into(),
        ip: "127.0.0.1".into(),
        ..Default::default()
    };
    if let Ok(mut plain) =
        proto::manager::v1::manager_client::ManagerClient::connect(format!("http://{manager_grpc}")).await
    {
        assert!(plain.list_schedulers(listing.clone()).await.is_err(), "plain text was answered");
    }
    let tls_config = peer_1.client_config(common::tls::Expect::MANAGER)?;
    let channel = common::tls::channel(manager_grpc, tls_config, Duration::from_secs(3))?;
    let mut registry = proto::manager::v1::manager_client::ManagerClient::new(channel);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = registry.list_schedulers(listing.clone()).await?.into_inner();
        if listed.schedulers.iter().any(|s| s.port == scheduler_port) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the scheduler was not listed by the manager in 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The banner's dfget example works: fetch the manager's stylesheet through peer-1.
    let peer = peers.iter().find(|p| p["seed"] == false).unwrap();
    let socket_mode = std::fs::metadata(peer["endpoint"].as_str().unwrap())?.permissions().mode() & 0o777;
    assert_eq!(socket_mode, 0o660, "the download socket is the owner's and its group's only");
    let out = dir.path().join("console.css");
    let url = format!("{}/pkg/console.css", cluster["manager"]["http"].as_str().unwrap());
    let status = Command::new(bin_dir().join("dfget"))
        .arg(&url)
        .arg("-O")
        .arg(&out)
        .args(["-e", peer["endpoint"].as_str().unwrap(), "--no-progress"])
        .status()?;
    let served = client.get(&url).send().await?;
    if served.status().is_success() {
        assert!(status.success());
        assert_eq!(std::fs::read(&out)?, served.bytes().await?);
    } else {
        assert!(!status.success(), "dfget must fail when the origin answers {}", served.status());
        assert!(!out.exists());
    }

    let pids: Vec<i32> = peers.iter().map(|p| p["pid"].as_i64().unwrap() as i32).collect();
    let exit = interrupt(&mut launcher).await?;
    assert!(exit.success(), "launcher exit: {exit:?}");
    for pid in pids {
        assert!(!alive(pid), "peer process {pid} survived the launcher");
    }
    assert!(!cluster_json.exists(), "cluster.json must go with the cluster");
    let stdout = std::io::read_to_string(launcher.stdout.take().unwrap())?;
    assert!(stdout.contains("Password     (from DAMSELFLY_ROOT_PASSWORD)"), "{stdout}");
    assert!(stdout.contains("dfget"), "{stdout}");
    Ok(())
}

/// `damselfly cert` issues what enrolment would: a certificate naming the component, cluster and
/// `<hostname>-<ip>` host id (with `-seed` for a seed peer), chained to the CA directory's CA,
/// its key 0600; nonsense is refused with a message and a non-zero exit, writing nothing.
#[test]
fn cert_issues_a_certificate_named_as_enrolment_would_name_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let ca_dir = dir.path().join("ca");
    let cert = |args: &[&str], out: &Path| {
        Command::new(env!("CARGO_BIN_EXE_damselfly"))
            .args(["cert", "--ca-dir"])
            .arg(&ca_dir)
            .args(args)
            .arg("--out")
            .arg(out)
            .output()
    };
    let seed = dir.path().join("seed");
    let out = cert(&["--component", "seed-peer", "--cluster", "3", "--hostname", "node-1", "--ip", "10.0.0.7"], &seed)?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "damselfly://seed-peer/3/node-1-10.0.0.7-seed");
    let creds = common::tls::Credentials::load(&seed)?.expect("credentials written");
    assert_eq!(creds.identity.uri(), "damselfly://seed-peer/3/node-1-10.0.0.7-seed");
    let ca = common::tls::CertificateAuthority::load(&ca_dir.join("ca.crt"), &ca_dir.join("ca.key"))?;
    common::tls::verify::chains_to(&creds.chain[0], &[], &[ca.cert().clone()])?;
    assert_eq!(std::fs::metadata(seed.join("key.pem"))?.permissions().mode() & 0o777, 0o600);

    // A second certificate comes from the same CA.
    let peer = dir.path().join("peer");
    let out = cert(&["--component", "peer", "--cluster", "3", "--hostname", "node-2", "--ip", "10.0.0.8"], &peer)?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let creds = common::tls::Credentials::load(&peer)?.expect("credentials written");
    common::tls::verify::chains_to(&creds.chain[0], &[], &[ca.cert().clone()])?;

    // An operator's certificate names a person or tool of one cluster, and no address.
    let operator = dir.path().join("operator");
    let out = cert(&["--component", "operator", "--cluster", "3", "--hostname", "alice"], &operator)?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "damselfly://operator/3/alice");
    let creds = common::tls::Credentials::load(&operator)?.expect("credentials written");
    common::tls::verify::chains_to(&creds.chain[0], &[], &[ca.cert().clone()])?;

    for (args, says) in [
        (&["--component", "operator", "--cluster", "3", "--hostname", "a", "--ip", "10.0.0.1"][..], "drop --ip"),
        (&["--component", "peer", "--cluster", "3", "--hostname", "m"][..], "--ip is required"),
        (&["--component", "manager", "--cluster", "3", "--hostname", "m", "--ip", "10.0.0.1"][..], "manager"),
        (&["--component", "root", "--cluster", "3", "--hostname", "m", "--ip", "10.0.0.1"][..], "unknown component"),
        (&["--component", "peer", "--cluster", "0", "--hostname", "m", "--ip", "10.0.0.1"][..], "--cluster"),
        (&["--component", "peer", "--cluster", "3", "--hostname", "../../x", "--ip", "10.0.0.1"][..], "--hostname"),
    ] {
        let refused = dir.path().join("refused");
        let out = cert(args, &refused)?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(says), "{args:?}: {stderr}");
        assert!(!refused.exists(), "{args:?} wrote nothing");
    }
    Ok(())
}

/// What an operator does on a fresh `damselfly up`: sign in, make a personal access token, then
/// `dfctl preheat … --wait` an image from a registry with token auth onto every host. Each host
/// then lists every blob with `dfctl task ls` and pulls it with `dfget` from its cache, and
/// containerd pulls the image through a host's mirror: the registry served the image's blobs
/// once, during the preheat, and nothing during the pulls.
#[tokio::test(flavor = "multi_thread")]
async fn up_then_dfctl_preheats_an_image_from_a_token_registry_onto_every_host() -> anyhow::Result<()> {
    use testkit::{
        containerd::{Containerd, HostsDir, MirrorHost},
        registry::{Image, Layer, Registry},
    };

    let registry = Registry::with_token_auth("ops", "s3cret").await;
    // Uncompressed tar layers, so containerd can unpack them at the end.
    let image = Image::of(vec![Layer::tar(9 << 20, 1), Layer::tar(200_000, 2)]);
    let pushed = registry.push("team/app", "2.0", &image).await;
    let blobs = pushed.for_platform("linux/amd64").blobs.clone();
    let image_bytes: u64 = blobs.iter().map(|b| b.size).sum();
    let served_before = registry.served().blob_bytes;

    let dir = tempfile::tempdir()?;
    let (mut launcher, cluster) = up(dir.path(), 2, &[]).await?;
    let manager = cluster["manager"]["http"].as_str().unwrap().to_owned();
    let client = reqwest::Client::new();
    let signed_in: Value = client
        .post(format!("{manager}/api/v1/users/signin"))
        .json(&serde_json::json!({"name": "root", "password": ROOT_PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let pat: Value = client
        .post(format!("{manager}/api/v1/personal-access-tokens"))
        .bearer_auth(signed_in["token"].as_str().unwrap())
        .json(&serde_json::json!({"name": "ops", "scopes": ["job"], "expired_at": tomorrow}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;

    // Hosts join the scheduler's order streams a moment after the cluster is up: a preheat
    // picks the hosts connected when it starts, so ask again until it picked all three.
    let preheat = || -> anyhow::Result<Value> {
        let mut dfctl = Command::new(bin_dir().join("dfctl"))
            .args(["preheat", &pushed.manifest_url, "--scope", "all_peers", "--username", "ops"])
            .args(["--password-stdin", "--wait", "--output", "json", "--manager", &manager])
            .env("DFCTL_TOKEN", pat["token"].as_str().unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        std::io::Write::write_all(&mut dfctl.stdin.take().unwrap(), b"s3cret\n")?;
        let out = dfctl.wait_with_output()?;
        anyhow::ensure!(out.status.success(), "dfctl preheat: {}", String::from_utf8_lossy(&out.stderr));
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = tokio::task::block_in_place(preheat)?;
        let warmed = job["result"]["job_states"][0]["results"][0]["success_tasks"].as_array().map_or(0, Vec::len);
        if warmed == 3 * blobs.len() {
            break job;
        }
        anyhow::ensure!(Instant::now() < deadline, "no preheat reached all three hosts in 60 s: {job}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(job["state"], "SUCCESS", "{job}");
    assert_eq!(job["args"]["password"], "******", "dfctl shows the job as the manager masks it");

    // Every host caches every blob, as `dfctl task ls` on its own socket shows.
    for peer in cluster["peers"].as_array().unwrap() {
        let out = Command::new(bin_dir().join("dfctl"))
            .args(["task", "ls", "--output", "json", "--socket", peer["endpoint"].as_str().unwrap()])
            .output()?;
        anyhow::ensure!(out.status.success(), "dfctl task ls: {}", String::from_utf8_lossy(&out.stderr));
        let tasks: Value = serde_json::from_slice(&out.stdout)?;
        for b in &blobs {
            let url = format!("{}/v2/team/app/blobs/{}", registry.base, b.digest);
            let task = tasks.as_array().unwrap().iter().find(|t| t["url"] == url.as_str());
            let task = task.unwrap_or_else(|| panic!("{} lacks {url}: {tasks}", peer["name"]));
            assert_eq!(task["content_length"], b.size, "{task}");
        }
    }
    // Each blob crossed the registry's link about once, whatever the retries above did.
    testkit::eventually("the registry's log of the blobs served", Duration::from_secs(5), || async {
        registry.served().blob_bytes - served_before >= image_bytes
    })
    .await;
    let served = registry.served().blob_bytes - served_before;
    assert!(
        served as f64 <= 1.02 * image_bytes as f64,
        "the registry served {served} bytes of a {image_bytes}-byte image"
    );

    // Then every host pulls every blob with dfget, with a registry token of its own: all from
    // its cache, none of it from the registry.
    let login = server::image::ImageRequest {
        url: pushed.manifest_url.clone(),
        username: Some("ops".into()),
        password: Some("s3cret".into()),
        ..Default::default()
    };
    let token = server::image::resolve(&client, &login).await?.headers["Authorization"].clone();
    for peer in cluster["peers"].as_array().unwrap() {
        for b in &blobs {
            let out = dir.path().join(format!("{}-{}", peer["name"].as_str().unwrap(), &b.digest[7..19]));
            let status = Command::new(bin_dir().join("dfget"))
                .arg(format!("{}/v2/team/app/blobs/{}", registry.base, b.digest))
                .arg("-O")
                .arg(&out)
                .args(["-e", peer["endpoint"].as_str().unwrap(), "--no-progress", "-H"])
                .arg(format!("Authorization: {token}"))
                .status()?;
            assert!(status.success(), "dfget on {}", peer["name"]);
            assert_eq!(std::fs::metadata(&out)?.len(), b.size);
        }
    }

    // And a runtime: containerd pulls the image through peer-1's mirror (its `hosts.toml` as the
    // README says, the fallback a closed port), every layer from the cache.
    let node = cluster["peers"].as_array().unwrap().iter().find(|p| p["seed"] == false).unwrap();
    let hosts = HostsDir::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mirror = MirrorHost {
        url: node["proxy"].as_str().unwrap().to_owned(),
        headers: vec![("X-Dragonfly-Registry".into(), registry.base.clone())],
    };
    hosts.write(&registry.host, &format!("http://{closed}"), &mirror);
    let runtime = Containerd::start().await;
    let pulled = runtime.pull(hosts.path(), Some("ops:s3cret"), &format!("{}/team/app:2.0", registry.host)).await;
    assert!(
        pulled.status.success(),
        "ctr through {}: {}\ncontainerd: {}",
        mirror.url,
        String::from_utf8_lossy(&pulled.stderr),
        runtime.log()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(registry.served().blob_bytes - served_before, served, "the pulls took no blob bytes from the registry");

    let exit = interrupt(&mut launcher).await?;
    assert!(exit.success(), "launcher exit: {exit:?}");
    Ok(())
}

/// CRI-O's and podman's way through a `damselfly up` cluster: the launcher's `--registry-mirror`
/// makes every peer's proxy a mirror of a token-auth registry, and `skopeo` (containers/image,
/// the library both use) copies the image through peer-1's mirror and then peer-2's, as a
/// `[[registry.mirror]]` of each would send it (paths only, the registry's own token flow
/// relayed). A wrong password is refused, and the registry sends each blob once: peer-2's
/// layers come from peer-1 (or the seed) through the P2P network.
#[tokio::test(flavor = "multi_thread")]
async fn up_with_a_registry_mirror_lets_skopeo_pull_through_two_hosts_and_the_registry_sends_each_blob_once()
-> anyhow::Result<()> {
    use testkit::registry::{Image, Layer, Registry};

    let registry = Registry::with_token_auth("crio", "crio-pw").await;
    let image = Image::of(vec![Layer::tar(9 << 20, 3), Layer::tar(300_000, 4)]);
    let pushed = registry.push("team/svc", "1.0", &image).await;
    let blobs = pushed.for_platform("linux/amd64").blobs.clone();
    let image_bytes: u64 = blobs.iter().map(|b| b.size).sum();

    let dir = tempfile::tempdir()?;
    let (mut launcher, cluster) = up(dir.path(), 2, &["--registry-mirror", &registry.base]).await?;
    assert_eq!(cluster["registry_mirror"], registry.base.as_str(), "cluster.json names the mirrored registry");
    let nodes: Vec<&Value> = cluster["peers"].as_array().unwrap().iter().filter(|p| p["seed"] == false).collect();
    assert_eq!(nodes.len(), 2);
    let before = registry.served().blob_bytes;

    let skopeo = |node: &Value, creds: &str, out: &Path| {
        let mirror = node["proxy"].as_str().unwrap().trim_start_matches("http://").to_owned();
        Command::new("skopeo")
            .args(["copy", "--preserve-digests", "--src-tls-verify=false", "--retry-times", "0", "--src-creds", creds])
            .arg(format!("docker://{mirror}/team/svc:1.0"))
            .arg(format!("oci:{}:pulled", out.display()))
            .output()
    };
    let refused = tokio::task::block_in_place(|| skopeo(nodes[0], "crio:wrong", &dir.path().join("refused")))?;
    assert!(!refused.status.success(), "a wrong password pulled the image through the mirror");

    for (i, node) in nodes.iter().enumerate() {
        let out = dir.path().join(format!("pulled-{i}"));
        let pulled = tokio::task::block_in_place(|| skopeo(node, "crio:crio-pw", &out))?;
        assert!(
            pulled.status.success(),
            "skopeo through {}: {}\nregistry: {}",
            node["name"],
            String::from_utf8_lossy(&pulled.stderr),
            registry.log_tail()
        );
        for b in &blobs {
            let copied = out.join("blobs/sha256").join(b.digest.trim_start_matches("sha256:"));
            assert_eq!(std::fs::metadata(&copied)?.len(), b.size, "{} on {}", b.digest, node["name"]);
        }
    }
    testkit::eventually("the registry's log of the blobs served", Duration::from_secs(5), || async {
        registry.served().blob_bytes - before >= image_bytes
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        registry.served().blob_bytes - before,
        image_bytes,
        "two hosts pulled; each blob left the registry once"
    );

    let exit = interrupt(&mut launcher).await?;
    assert!(exit.success(), "launcher exit: {exit:?}");
    let stdout = std::io::read_to_string(launcher.stdout.take().unwrap())?;
    assert!(stdout.contains("skopeo copy --src-tls-verify=false docker://"), "{stdout}");
    Ok(())
}
