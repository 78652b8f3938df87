//! A site without a manager, as the README's "Without a manager" sets it up: two schedulers and
//! three dfdaemons (a seed peer, two peers) loaded from configuration files an operator writes,
//! each with a certificate issued offline from one CA directory the way `damselfly cert` issues
//! it; downloads spread over the schedulers by rendezvous hashing, the cluster's limits and block
//! list from the schedulers' own files, and `dfctl preheat --scheduler` with an operator's
//! certificate (a peer's is refused).

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::Output,
    sync::Arc,
    time::Duration,
};

use common::{
    ids::{HostId, TaskId},
    tls::{CertificateAuthority, Component, Identity, ca::AltNames},
};
use peer::{
    config::{DfdaemonConfig, Overrides},
    rpc::scheduler_set::SchedulerSet,
};
use scheduler::{
    Listeners, Scheduler,
    config::SchedulerConfig,
    resource::{Hosts, Tasks},
    scheduling::LiveLimits,
};
use testkit::{
    origin::{Origin, content},
    peer::{PIECE, PeerBuilder, TestPeer},
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The scheduler cluster of the whole site (not the default 1, so nothing leans on it).
const CLUSTER: i64 = 2;

/// What `damselfly cert` does: a certificate from the CA in `ca_dir` (made there on first use)
/// naming `component` `hostname` (at `ip`; an operator has none) of [`CLUSTER`], written to
/// `out`. Answers the `[tls]` lines that use it.
fn issue(ca_dir: &Path, out: &Path, component: Component, hostname: &str, ip: Option<&str>) -> String {
    let ca = CertificateAuthority::load_or_generate(ca_dir).unwrap();
    let (host_id, names) = match ip {
        Some(ip) => (
            HostId::for_host(hostname, ip, component == Component::SeedPeer),
            AltNames { dns: vec![hostname.to_owned()], ips: vec![ip.parse::<IpAddr>().unwrap()] },
        ),
        None => (HostId(hostname.to_owned()), AltNames::default()),
    };
    let identity = Identity { component, cluster_id: CLUSTER, host_id };
    ca.issue(&identity, &names, Duration::from_secs(86_400)).unwrap().store(out).unwrap();
    format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n",
        out.join("cert.pem"),
        out.join("key.pem"),
        out.join("ca.pem")
    )
}

/// A scheduler started from its file.
struct RunningScheduler {
    addr: String,
    tasks: Arc<Tasks>,
    hosts: Arc<Hosts>,
    limits: LiveLimits,
    _shutdown: tokio_util::sync::DropGuard,
}

/// The site: its directory (CA, configuration files, data), two schedulers, a seed peer and two
/// peers, every one announced to both schedulers.
struct Site {
    dir: tempfile::TempDir,
    schedulers: Vec<RunningScheduler>,
    /// Kept running for the test's length.
    _seed: TestPeer,
    peers: Vec<TestPeer>,
}

impl Site {
    fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    fn addrs(&self) -> Vec<String> {
        self.schedulers.iter().map(|s| s.addr.clone()).collect()
    }

    async fn start() -> Self {
        testkit::init_logs();
        let dir = tempfile::tempdir().unwrap();
        let ca_dir = dir.path().join("ca");
        // The schedulers' ports are bound first: the dfdaemons' files name them.
        let mut bound = Vec::new();
        for _ in 0..2 {
            let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
            bound.push(Listeners { grpc, http });
        }
        let addrs: Vec<String> = bound.iter().map(|l| l.grpc.local_addr().unwrap().to_string()).collect();
        let mut schedulers = Vec::new();
        for (i, listeners) in bound.into_iter().enumerate() {
            let name = format!("sched-{i}");
            let tls = issue(&ca_dir, &dir.path().join(&name), Component::Scheduler, &name, Some("127.0.0.1"));
            let text = format!(
                "[host]\nhostname = \"{name}\"\nip = \"127.0.0.1\"\n\n\
                 [manager]\naddr = \"\"\ncluster_id = {CLUSTER}\n\n\
                 [scheduling]\ncandidate_parent_limit = 3\npeer_load_limit = 8\nseed_peer_load_limit = 40\n\n\
                 [block_list]\nurls = [\"/bytes/77/\"]\n\n{tls}"
            );
            let path = dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, text).unwrap();
            let config = SchedulerConfig::load(Some(&path), scheduler::config::Overrides::default(), "box").unwrap();
            let scheduler = Scheduler::new(config);
            let (tasks, hosts, limits) = (scheduler.tasks(), scheduler.hosts(), scheduler.limits());
            let shutdown = CancellationToken::new();
            tokio::spawn(scheduler.serve(listeners, shutdown.clone()));
            schedulers.push(RunningScheduler {
                addr: addrs[i].clone(),
                tasks,
                hosts,
                limits,
                _shutdown: shutdown.drop_guard(),
            });
        }
        let daemon = |name: &str, seed: bool| {
            let component = if seed { Component::SeedPeer } else { Component::Peer };
            let tls = issue(&ca_dir, &dir.path().join(format!("{name}-tls")), component, name, Some("127.0.0.1"));
            let data = dir.path().join(name);
            let text = format!(
                "data_dir = {data:?}\nseed = {seed}\n\n[host]\nhostname = \"{name}\"\nip = \"127.0.0.1\"\n\n\
                 [scheduler]\naddrs = {addrs:?}\nannounce_interval_secs = 1\n\n\
                 [manager]\ncluster_id = {CLUSTER}\n\n\
                 [proxy]\nallowed_private_networks = [\"127.0.0.0/8\"]\n\n{tls}"
            );
            let path = dir.path().join(format!("{name}.toml"));
            std::fs::write(&path, text).unwrap();
            let config = DfdaemonConfig::load(Some(&path), Overrides::default(), "box").unwrap();
            PeerBuilder::new(data, name).config(move |c| *c = config)
        };
        let seed = daemon("seed", true).start().await;
        let mut peers = Vec::new();
        for name in ["peer0", "peer1"] {
            peers.push(daemon(name, false).start().await);
        }
        for s in &schedulers {
            let hosts = s.hosts.clone();
            let what = format!("every dfdaemon announced to {}", s.addr);
            testkit::eventually(&what, Duration::from_secs(10), || {
                let hosts = hosts.clone();
                async move { hosts.len() == 3 }
            })
            .await;
        }
        // Give the dfdaemons a moment to open their order streams (what a preheat picks from).
        tokio::time::sleep(Duration::from_millis(300)).await;
        Self { dir, schedulers, _seed: seed, peers }
    }
}

fn id_of(url: &str) -> TaskId {
    common::task_id::task_id(&common::task_id::TaskSpec { url, piece_length: Some(PIECE), ..Default::default() })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_schedulers_and_dfdaemons_from_static_files_share_a_file_with_the_origin_read_once() {
    let origin = Origin::start().await;
    let site = Site::start().await;

    // The cluster's settings come from the schedulers' own files.
    for s in &site.schedulers {
        let limits = s.limits.get();
        assert_eq!(
            (limits.candidate_parent_limit, limits.peer_load_limit, limits.seed_load_limit),
            (3, Some(8), Some(40))
        );
    }

    // Files whose tasks the rendezvous set puts on each scheduler, as every dfdaemon computes it.
    let set = SchedulerSet::new(site.addrs().iter().map(|a| a.parse().unwrap()).collect(), None);
    let len = 5 * PIECE as usize + 3;
    let mut urls: Vec<(String, String)> = Vec::new();
    for seed in 0u8..=255 {
        let url = format!("{}/bytes/{len}/{seed}", origin.base);
        let owner = set.for_task(&id_of(&url).0).unwrap().to_string();
        if !urls.iter().any(|(_, o)| *o == owner) {
            urls.push((url, owner));
        }
        if urls.len() == 2 {
            break;
        }
    }
    assert_eq!(urls.len(), 2, "each scheduler owns some task");

    for (i, (url, owner)) in urls.iter().enumerate() {
        let expected = content(len, u8::try_from(url.rsplit('/').next().unwrap().parse::<u32>().unwrap()).unwrap());
        let before = origin.sent();
        let downloads = site.peers.iter().enumerate().map(|(k, peer)| {
            let out = site.dir.path().join(format!("out-{i}-{k}"));
            let url = url.clone();
            async move { (peer.dfget(&url, &out, |_| {}).await, out) }
        });
        for (result, out) in futures::future::join_all(downloads).await {
            result.unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(std::fs::read(&out).unwrap(), expected, "{url}");
        }
        assert_eq!(origin.sent() - before, len as u64, "{url}: the origin serves the content once");

        // The task lives on the scheduler the hash names, and only there; the seed peer
        // fetched it and both peers took pieces from other peers.
        let id = id_of(url);
        for s in &site.schedulers {
            assert_eq!(s.tasks.get(&id).is_some(), s.addr == *owner, "{url} on {}", s.addr);
        }
        let owner = site.schedulers.iter().find(|s| s.addr == *owner).unwrap();
        let task = owner.tasks.get(&id).unwrap().lock().snapshot();
        let seed = HostId("seed-127.0.0.1-seed".into());
        assert!(task.peers.iter().any(|p| p.host_id == seed && p.origin_pieces > 0), "{:?}", task.peers);
        for name in ["peer0-127.0.0.1", "peer1-127.0.0.1"] {
            let p = task.peers.iter().find(|p| p.host_id.0 == name).unwrap_or_else(|| panic!("{name} registered"));
            assert_eq!(p.origin_pieces, 0, "{name} read nothing from the origin");
            assert!(!p.parent_pieces.is_empty(), "{name} took pieces from parents");
        }
    }

    // The block list of the schedulers' files refuses a matching download, and writes nothing.
    let blocked = site.dir.path().join("blocked");
    let refused = site.peers[0].dfget(&format!("{}/bytes/77/1", origin.base), &blocked, |_| {}).await.unwrap_err();
    assert!(refused.message().contains("block list"), "{refused}");
    assert!(!blocked.exists());
}

/// dfctl with no configuration of its own.
async fn dfctl(home: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_dfctl"))
        .env_remove("DFCTL_TOKEN")
        .env_remove("DFCTL_MANAGER")
        .env("XDG_CONFIG_HOME", home)
        .env("HOME", home)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dfctl_preheats_on_a_scheduler_with_an_operator_certificate_and_a_peers_is_refused() {
    let origin = Origin::start().await;
    let site = Site::start().await;
    let home = site.dir.path().join("home");
    let operator = site.dir.path().join("operator");
    issue(&site.ca_dir(), &operator, Component::Operator, "alice", None);
    let f = |name: &str| operator.join(name).display().to_string();
    let (cert, key, ca) = (f("cert.pem"), f("key.pem"), f("ca.pem"));
    let a = format!("{}/bytes/{}/41", origin.base, 3 * PIECE);
    let b = format!("{}/bytes/{}/42", origin.base, 2 * PIECE + 5);
    let piece = PIECE.to_string();

    // Two files on every host, through the first scheduler; a scheduler that is down first in
    // the list is passed over.
    let down = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().to_string();
    let before = origin.sent();
    let out = dfctl(
        &home,
        &[
            "preheat",
            &a,
            &b,
            "--scope",
            "all_peers",
            "--piece-length",
            &piece,
            "--scheduler",
            &down,
            "--scheduler",
            &site.schedulers[0].addr,
            "--cert",
            &cert,
            "--key",
            &key,
            "--ca",
            &ca,
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 1 + 3 * 2, "a row per host and file:\n{table}");
    for host in ["seed", "peer0", "peer1"] {
        for url in [&a, &b] {
            assert!(
                lines.iter().any(|l| l.contains(host) && l.contains(url.as_str()) && l.contains("SUCCESS")),
                "{host} {url}:\n{table}"
            );
        }
    }
    assert!(lines.iter().all(|l| l.starts_with("CLUSTER") || l.starts_with(&CLUSTER.to_string())), "{table}");
    assert!(text(&out.stderr).contains("6 of 6 host tasks succeeded"), "{}", text(&out.stderr));
    assert_eq!(origin.sent() - before, 5 * PIECE + 5, "each file left the origin once");
    // Warm: each host holds both files, so a download reads nothing more from the origin.
    let before = origin.sent();
    site.peers[1].dfget(&a, &site.dir.path().join("a"), |_| {}).await.unwrap();
    assert_eq!(origin.sent(), before);
    assert_eq!(std::fs::read(site.dir.path().join("a")).unwrap(), content(3 * PIECE as usize, 41));

    // The certificate from dfctl.toml's [scheduler] section; a failed file is exit 1 with the
    // host's reason, in JSON as asked.
    std::fs::create_dir_all(home.join("damselfly")).unwrap();
    std::fs::write(
        home.join("damselfly/dfctl.toml"),
        format!("[scheduler]\ncert = {cert:?}\nkey = {key:?}\nca = {ca:?}\n"),
    )
    .unwrap();
    let missing = format!("{}/status/404", origin.base);
    let out = dfctl(
        &home,
        &["preheat", &missing, "--scheduler", &site.schedulers[1].addr, "--output", "json", "--timeout", "30"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["state"], "FAILURE", "{answer}");
    let failed = &answer["result"]["job_states"][0]["results"][0]["failure_tasks"][0];
    assert_eq!(failed["url"], missing.as_str(), "{answer}");
    assert_eq!(failed["hostname"], "seed", "the default scope is one seed peer: {answer}");
    assert!(failed["description"].as_str().unwrap().contains("404"), "{answer}");
    assert!(text(&out.stderr).contains("preheat FAILURE"), "{}", text(&out.stderr));

    // A peer's certificate of the same CA and cluster may not preheat.
    let peer_tls = site.dir.path().join("peer-as-operator");
    issue(&site.ca_dir(), &peer_tls, Component::Peer, "peer0", Some("127.0.0.1"));
    let g = |name: &str| peer_tls.join(name).display().to_string();
    let out = dfctl(
        &home,
        &[
            "preheat",
            &a,
            "--scheduler",
            &site.schedulers[0].addr,
            "--cert",
            &g("cert.pem"),
            "--key",
            &g("key.pem"),
            "--ca",
            &g("ca.pem"),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("component peer may not call this"), "{}", text(&out.stderr));

    // Bad input is exit 2 with the reason, and nothing is asked of a scheduler.
    let other_home = site.dir.path().join("empty-home");
    for (args, says) in [
        (vec!["preheat", "http://o/v2/app/manifests/1", "--scheduler", "10.0.0.1:8002"], "files only"),
        (vec!["preheat", "http://o/f", "--scheduler", "10.0.0.1"], "host:port"),
        (vec!["preheat", "http://o/f", "--scheduler", "10.0.0.1:8002", "--cluster", "2"], "cannot be used"),
        (vec!["preheat", "http://o/f", "--cert", "c.pem"], "--scheduler"),
        (vec!["preheat", "http://o/f", "--scheduler", "10.0.0.1:8002", "--cert", "c.pem"], "go together"),
    ] {
        let out = dfctl(&other_home, &args).await;
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{args:?}: {}", text(&out.stderr));
    }
    let out = dfctl(&other_home, &["preheat", "http://o/f", "--scheduler", "10.0.0.1:8002"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("damselfly cert --component operator"), "{}", text(&out.stderr));
}
