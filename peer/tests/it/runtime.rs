//! Container runtimes pulling through the registry mirror, with the real clients: `skopeo` (the
//! containers/image library CRI-O and podman use) and containerd's `ctr` (a containerd of the
//! test's own per node), against a real registry with token auth (`docker-registry`, the image
//! pushed by `skopeo`). The token flow passes through the mirror untouched, and when two nodes
//! pull the same image one after the other the registry sends each blob once — the second node's
//! layers come from the first through the P2P network.
//!
//! Runtimes fall back to the registry silently when the mirror fails, so a pull that succeeds
//! proves nothing by itself: containerd's `server` (its fallback) is a closed port, and the
//! registry's own log counts the blob bytes it sent.

use std::{path::Path, process::Command, time::Duration};

use scheduler::config::SchedulerConfig;
use testkit::{
    containerd::{Containerd, HostsDir, MirrorHost},
    peer::{PIECE, PeerBuilder, TestPeer},
    registry::{Image, Layer, Registry},
    scheduler::TestScheduler,
};
use tokio_util::sync::CancellationToken;

/// `skopeo copy` of `reference` through `peer`'s mirror (as `[[registry.mirror]]` would send it:
/// paths only, the upstream from the dfdaemon's `registry_mirror`) into an OCI layout at `out`.
fn pull(peer: &TestPeer, reference: &str, creds: &str, out: &Path) -> std::process::Output {
    let mirror = peer.proxy.trim_start_matches("http://");
    Command::new("skopeo")
        .args(["copy", "--preserve-digests", "--src-tls-verify=false", "--src-creds", creds, "--retry-times", "0"])
        .arg(format!("docker://{mirror}/{reference}"))
        .arg(format!("oci:{}:pulled", out.display()))
        .output()
        .expect("skopeo runs (apt-get install -y skopeo, or make apt-deps)")
}

/// A seed peer and two nodes (`node-a`, `node-b`) of `scheduler`, each mirroring `upstream` as
/// its `registry_mirror`.
pub(crate) async fn mirroring_nodes(
    upstream: &str,
    scheduler: &TestScheduler,
    dir: &Path,
    stop: &CancellationToken,
) -> [TestPeer; 3] {
    let node = |name: &'static str, seed: bool| {
        let upstream = upstream.to_owned();
        PeerBuilder::new(dir.join(name), name)
            .seed(seed)
            .scheduler(&scheduler.addr)
            .stopped_by(stop)
            .config(move |c| c.proxy.registry_mirror = upstream)
            .start()
    };
    let nodes = [node("seed", true).await, node("node-a", false).await, node("node-b", false).await];
    scheduler.wait_for_hosts(3).await;
    nodes
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_pull_an_image_through_their_mirrors_and_the_registry_sends_each_blob_once() {
    let registry = Registry::with_token_auth("puller", "pull-pw").await;
    let image = Image::of(vec![
        Layer::raw(3 * PIECE as usize + 11, 1, "application/vnd.oci.image.layer.v1.tar"),
        Layer::raw(2 * PIECE as usize, 2, "application/vnd.oci.image.layer.v1.tar"),
        Layer::tar(2000, 3),
    ]);
    let pushed = registry.push("library/app", "1.0", &image).await;
    let blobs = &pushed.for_platform("linux/amd64").blobs;
    // The config blob is small and not a layer, but it is a blob all the same.
    let image_bytes: u64 = blobs.iter().map(|b| b.size).sum();

    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let [_seed, a, b] = mirroring_nodes(&registry.base, &scheduler, dir.path(), &stop).await;
    let before = registry.served().blob_bytes;

    // A wrong password is the registry's to refuse, through the mirror as without it.
    let refused = pull(&a, "library/app:1.0", "puller:wrong", &dir.path().join("refused"));
    assert!(!refused.status.success(), "a wrong password pulled the image");

    for (node, out) in [(&a, "out-a"), (&b, "out-b")] {
        let pulled = pull(node, "library/app:1.0", "puller:pull-pw", &dir.path().join(out));
        assert!(
            pulled.status.success(),
            "skopeo through {}: {}\nregistry log: {}",
            node.proxy,
            String::from_utf8_lossy(&pulled.stderr),
            registry.log_tail()
        );
        for b in blobs {
            let hex = b.digest.trim_start_matches("sha256:");
            let len = std::fs::metadata(dir.path().join(out).join("blobs/sha256").join(hex)).unwrap().len();
            assert_eq!(len, b.size, "{} in {out}", b.digest);
        }
    }
    testkit::eventually("the registry's log of the blobs served", Duration::from_secs(5), || async {
        registry.served().blob_bytes - before >= image_bytes
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let served = registry.served().blob_bytes - before;
    assert_eq!(served, image_bytes, "two pulls, each blob sent once by the registry");
    stop.cancel();
}

/// `http://127.0.0.1:<port>` where nothing listens: a runtime's fallback that cannot succeed.
fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

/// An image containerd can unpack: uncompressed tar layers (the config's diff ids are the
/// layers' digests), one over several pieces.
fn unpackable() -> Image {
    Image::of(vec![Layer::tar(3 * PIECE as usize + 11, 1), Layer::tar(2000, 2)])
}

/// `ctr images pull` succeeded, or the test fails showing why.
fn assert_pulled(out: &std::process::Output, what: &str, runtime: &Containerd, registry: &Registry) {
    assert!(
        out.status.success(),
        "{what}: {}\ncontainerd: {}\nregistry: {}",
        String::from_utf8_lossy(&out.stderr),
        runtime.log().lines().rev().take(10).collect::<Vec<_>>().join("\n"),
        registry.log_tail()
    );
}

/// The blob bytes the registry has sent since `before`, once its log has caught up with `at_least`.
async fn blob_bytes_since(registry: &Registry, before: u64, at_least: u64) -> u64 {
    testkit::eventually("the registry's log of the blobs served", Duration::from_secs(5), || async {
        registry.served().blob_bytes - before >= at_least
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    registry.served().blob_bytes - before
}

#[tokio::test(flavor = "multi_thread")]
async fn containerd_pulls_through_the_mirror_its_header_names_and_the_registry_sends_each_blob_once() {
    let registry = Registry::with_token_auth("puller", "pull-pw").await;
    let pushed = registry.push("library/app", "1.0", &unpackable()).await;
    let image_bytes: u64 = pushed.for_platform("linux/amd64").blobs.iter().map(|b| b.size).sum();

    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    // No registry_mirror: the header containerd adds is what names the upstream.
    let node = |name: &'static str, seed: bool| {
        PeerBuilder::new(dir.path().join(name), name).seed(seed).scheduler(&scheduler.addr).stopped_by(&stop).start()
    };
    let _seed = node("seed", true).await;
    let a = node("node-a", false).await;
    let b = node("node-b", false).await;
    scheduler.wait_for_hosts(3).await;
    let reference = format!("{}/library/app:1.0", registry.host);
    let before = registry.served().blob_bytes;

    for (i, node) in [&a, &b].into_iter().enumerate() {
        let hosts = HostsDir::new();
        let mirror = MirrorHost {
            url: node.proxy.clone(),
            headers: vec![("X-Dragonfly-Registry".into(), registry.base.clone())],
        };
        hosts.write(&registry.host, &closed_port(), &mirror);
        let runtime = Containerd::start().await;
        if i == 0 {
            let refused = runtime.pull(hosts.path(), Some("puller:wrong"), &reference).await;
            assert!(!refused.status.success(), "a wrong password pulled the image");
        }
        let pulled = runtime.pull(hosts.path(), Some("puller:pull-pw"), &reference).await;
        assert_pulled(&pulled, &format!("ctr through {}", node.proxy), &runtime, &registry);
        let listed = runtime.ctr().args(["-n", "test", "images", "ls", "-q"]).output().await.unwrap();
        assert_eq!(String::from_utf8_lossy(&listed.stdout).trim(), reference);
    }
    let served = blob_bytes_since(&registry, before, image_bytes).await;
    assert_eq!(served, image_bytes, "two nodes pulled, each blob sent once by the registry");
    stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn containerd_with_a_default_mirror_and_no_header_reaches_the_registry_its_ns_names() {
    let registry = Registry::with_token_auth("puller", "pull-pw").await;
    let pushed = registry.push("team/tool", "2.0", &unpackable()).await;
    let image_bytes: u64 = pushed.for_platform("linux/amd64").blobs.iter().map(|b| b.size).sum();
    let dir = tempfile::tempdir().unwrap();
    // No default upstream: the request's `?ns=` is what picks the registry, and the configured
    // entry of that host says it speaks plain HTTP.
    let upstream = registry.base.clone();
    let node = PeerBuilder::new(dir.path().join("node"), "node")
        .config(move |c| {
            c.proxy.registries = vec![peer::config::RegistryEntry { prefix: "team-registry".into(), upstream }];
        })
        .start()
        .await;
    let hosts = HostsDir::new();
    hosts.write("_default", &closed_port(), &MirrorHost { url: node.proxy.clone(), headers: vec![] });
    let runtime = Containerd::start().await;
    let before = registry.served().blob_bytes;
    let reference = format!("{}/team/tool:2.0", registry.host);
    let pulled = runtime.pull(hosts.path(), Some("puller:pull-pw"), &reference).await;
    assert_pulled(&pulled, "ctr through the _default mirror", &runtime, &registry);
    assert_eq!(blob_bytes_since(&registry, before, image_bytes).await, image_bytes);
    node.shutdown.cancel();
}

/// `skopeo copy` of `reference` (`<name>/<repository>:<tag>`) as CRI-O and podman pull it with a
/// registries.conf: the registry `name` lives at a closed port, its one mirror is
/// `<dfdaemon><mirror_path>` (insecure: plain HTTP). containers/image never sends a registry's
/// credentials to its mirrors: `creds` are the mirror location's, in the auth file.
fn pull_with_registries_conf(
    peer: &TestPeer,
    name: &str,
    mirror_path: &str,
    reference: &str,
    creds: &str,
    out: &Path,
) -> std::process::Output {
    let conf = out.with_extension("registries.conf");
    let mirror = peer.proxy.trim_start_matches("http://");
    let closed = closed_port();
    std::fs::write(
        &conf,
        format!(
            "[[registry]]\nprefix = {name:?}\nlocation = {location:?}\n\n[[registry.mirror]]\nlocation = \"{mirror}{mirror_path}\"\ninsecure = true\n",
            location = closed.trim_start_matches("http://"),
        ),
    )
    .unwrap();
    let auth = out.with_extension("auth.json");
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, creds);
    let auths = serde_json::json!({ "auths": { format!("{mirror}{mirror_path}"): { "auth": encoded } } });
    std::fs::write(&auth, auths.to_string()).unwrap();
    Command::new("skopeo")
        .arg("--registries-conf")
        .arg(&conf)
        .args(["copy", "--preserve-digests", "--retry-times", "0", "--src-authfile"])
        .arg(&auth)
        .arg(format!("docker://{reference}"))
        .arg(format!("oci:{}:pulled", out.display()))
        .output()
        .expect("skopeo runs (apt-get install -y skopeo, or make apt-deps)")
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_pulls_from_two_token_registries_through_one_dfdaemon_told_apart_by_the_mirror_path() {
    let default = Registry::with_token_auth("alice", "alice-pw").await;
    let other = Registry::with_token_auth("bob", "bob-pw").await;
    let image_a = default.push("library/app", "1.0", &Image::of(vec![Layer::tar(2 * PIECE as usize, 4)])).await;
    let image_b =
        other.push("team/tool", "2.0", &Image::of(vec![Layer::tar(3 * PIECE as usize, 5), Layer::tar(900, 6)])).await;
    let bytes = |p: &testkit::registry::Pushed| p.for_platform("linux/amd64").blobs.iter().map(|b| b.size).sum::<u64>();

    let dir = tempfile::tempdir().unwrap();
    let (default_base, other_base) = (default.base.clone(), other.base.clone());
    let node = PeerBuilder::new(dir.path().join("node"), "node")
        .config(move |c| {
            c.proxy.registry_mirror = default_base;
            c.proxy.registries =
                vec![peer::config::RegistryEntry { prefix: "mirrors/reg-b".into(), upstream: other_base }];
        })
        .start()
        .await;
    let (before_a, before_b) = (default.served().blob_bytes, other.served().blob_bytes);

    // Each registry's own credentials, each image from its own registry: the mirror path is
    // what tells them apart, and each token comes from the realm of the registry it is for.
    let refused = pull_with_registries_conf(
        &node,
        "reg-b.test",
        "/mirrors/reg-b",
        "reg-b.test/team/tool:2.0",
        "alice:alice-pw",
        &dir.path().join("refused"),
    );
    assert!(!refused.status.success(), "the default registry's user pulled from the other registry");
    for (name, path, reference, creds, out, pushed) in [
        ("reg-a.test", "", "reg-a.test/library/app:1.0", "alice:alice-pw", "out-a", &image_a),
        ("reg-b.test", "/mirrors/reg-b", "reg-b.test/team/tool:2.0", "bob:bob-pw", "out-b", &image_b),
    ] {
        let pulled = pull_with_registries_conf(&node, name, path, reference, creds, &dir.path().join(out));
        assert!(
            pulled.status.success(),
            "skopeo {reference} through {}{path}: {}\nregistry a: {}\nregistry b: {}",
            node.proxy,
            String::from_utf8_lossy(&pulled.stderr),
            default.log_tail(),
            other.log_tail()
        );
        for b in &pushed.for_platform("linux/amd64").blobs {
            let hex = b.digest.trim_start_matches("sha256:");
            let len = std::fs::metadata(dir.path().join(out).join("blobs/sha256").join(hex)).unwrap().len();
            assert_eq!(len, b.size, "{} in {out}", b.digest);
        }
    }
    assert_eq!(blob_bytes_since(&default, before_a, bytes(&image_a)).await, bytes(&image_a));
    assert_eq!(blob_bytes_since(&other, before_b, bytes(&image_b)).await, bytes(&image_b));
    assert!(other.token_requests() > 0 && default.token_requests() > 0, "each registry's realm issued the tokens");
    node.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_blob_digest_task_ids_the_same_image_from_a_second_registry_is_fetched_from_neither_again() {
    let first = Registry::with_token_auth("alice", "alice-pw").await;
    let second = Registry::with_token_auth("bob", "bob-pw").await;
    let image = Image::of(vec![Layer::tar(3 * PIECE as usize + 11, 8), Layer::tar(1500, 9)]);
    let pushed = first.push("library/app", "1.0", &image).await;
    let again = second.push("mirrored/app", "1.0", &image).await;
    let blobs = pushed.for_platform("linux/amd64").blobs.clone();
    assert_eq!(blobs, again.for_platform("linux/amd64").blobs, "the same blobs in both registries");
    let image_bytes: u64 = blobs.iter().map(|b| b.size).sum();

    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (first_base, second_base) = (first.base.clone(), second.base.clone());
    let _seed = PeerBuilder::new(dir.path().join("seed"), "seed")
        .seed(true)
        .scheduler(&scheduler.addr)
        .stopped_by(&stop)
        .start()
        .await;
    let node = PeerBuilder::new(dir.path().join("node"), "node")
        .scheduler(&scheduler.addr)
        .stopped_by(&stop)
        .config(move |c| {
            c.proxy.registry_mirror = first_base;
            c.proxy.registries = vec![peer::config::RegistryEntry { prefix: "second".into(), upstream: second_base }];
            c.proxy.blob_digest_task_id = true;
        })
        .start()
        .await;
    scheduler.wait_for_hosts(2).await;
    let (before_first, before_second) = (first.served().blob_bytes, second.served().blob_bytes);
    let heads_before = second.served().blob_heads;

    let pulled = pull_with_registries_conf(
        &node,
        "first.test",
        "",
        "first.test/library/app:1.0",
        "alice:alice-pw",
        &dir.path().join("out-1"),
    );
    assert!(pulled.status.success(), "from the first registry: {}", String::from_utf8_lossy(&pulled.stderr));
    assert_eq!(blob_bytes_since(&first, before_first, image_bytes).await, image_bytes);

    // The second registry's own user, through its own path: each blob is checked with that
    // registry (a HEAD), and served from the task the first pull filled.
    let anonymous =
        reqwest::get(format!("{}/v2/second/mirrored/app/blobs/{}", node.proxy, blobs[1].digest)).await.unwrap();
    assert_eq!(anonymous.status(), 401, "the second registry refuses anonymous callers, cached or not");
    let pulled = pull_with_registries_conf(
        &node,
        "second.test",
        "/second",
        "second.test/mirrored/app:1.0",
        "bob:bob-pw",
        &dir.path().join("out-2"),
    );
    assert!(
        pulled.status.success(),
        "from the second registry: {}\n{}",
        String::from_utf8_lossy(&pulled.stderr),
        second.log_tail()
    );
    for b in &blobs {
        let hex = b.digest.trim_start_matches("sha256:");
        let copy = std::fs::read(dir.path().join("out-2/blobs/sha256").join(hex)).unwrap();
        assert_eq!(copy.len() as u64, b.size, "{}", b.digest);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(second.served().blob_bytes - before_second, 0, "the second registry sent no blob bytes");
    assert!(
        second.served().blob_heads - heads_before >= blobs.len(),
        "each blob was authorised by the second registry"
    );
    assert_eq!(first.served().blob_bytes - before_first, image_bytes, "and the first sent each blob once");
    stop.cancel();
}

/// `dfdaemon init-runtime` with `args`; its standard output.
fn init_runtime(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_dfdaemon")).arg("init-runtime").args(args).output().unwrap();
    assert!(out.status.success(), "init-runtime {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn init_runtime_writes_what_ctr_and_skopeo_pull_through_and_writing_again_changes_nothing() {
    let registry = Registry::with_token_auth("puller", "pull-pw").await;
    let pushed = registry.push("library/app", "1.0", &unpackable()).await;
    let image_bytes: u64 = pushed.for_platform("linux/amd64").blobs.iter().map(|b| b.size).sum();
    let dir = tempfile::tempdir().unwrap();
    let upstream = registry.base.clone();
    let node = PeerBuilder::new(dir.path().join("node"), "node")
        .config(move |c| c.proxy.registry_mirror = upstream)
        .start()
        .await;
    let config = dir.path().join("dfdaemon.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nproxy_addr = {:?}\n[proxy]\nregistry_mirror = {:?}\n",
            node.proxy.trim_start_matches("http://"),
            registry.base
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let hosts = dir.path().join("certs.d");
    let hosts_arg = hosts.to_str().unwrap();
    let first = init_runtime(&["containerd", "--config", config, "--dir", hosts_arg]);
    assert_eq!(first.trim(), format!("wrote {}", hosts.join(&registry.host).join("hosts.toml").display()));
    let again = init_runtime(&["containerd", "--config", config, "--dir", hosts_arg]);
    assert!(again.starts_with("unchanged "), "{again}");

    // The registry is containerd's fallback here: the dfdaemon's own traffic shows the way taken.
    let runtime = Containerd::start().await;
    let pulled = runtime.pull(&hosts, Some("puller:pull-pw"), &format!("{}/library/app:1.0", registry.host)).await;
    assert_pulled(&pulled, "ctr with init-runtime's hosts.toml", &runtime, &registry);
    let metrics = testkit::peer::metric_text(&node.http).await;
    let from_registry =
        testkit::peer::counter(&metrics, r#"damselfly_dfdaemon_download_traffic_bytes_total{type="back_to_source"}"#);
    assert_eq!(from_registry as u64, image_bytes, "the blobs came through the dfdaemon\n{metrics}");

    // CRI-O and podman: the drop-in is a registries.conf skopeo reads as it is.
    let drop_ins = dir.path().join("registries.conf.d");
    let written = init_runtime(&["crio", "--config", config, "--dir", drop_ins.to_str().unwrap()]);
    assert!(written.starts_with("wrote "), "{written}");
    let auth = dir.path().join("auth.json");
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, "puller:pull-pw");
    let mirror = node.proxy.trim_start_matches("http://");
    std::fs::write(&auth, serde_json::json!({ "auths": { mirror: { "auth": encoded } } }).to_string()).unwrap();
    let out = dir.path().join("skopeo-out");
    let copied = Command::new("skopeo")
        .arg("--registries-conf")
        .arg(drop_ins.join(peer::init_runtime::DROP_IN))
        .args(["copy", "--retry-times", "0", "--src-authfile"])
        .arg(&auth)
        .arg(format!("docker://{}/library/app:1.0", registry.host))
        .arg(format!("oci:{}:pulled", out.display()))
        .output()
        .unwrap();
    assert!(copied.status.success(), "skopeo with the drop-in: {}", String::from_utf8_lossy(&copied.stderr));

    // Nothing to mirror, or a runtime it does not know: a message and a failing exit.
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    for args in [vec!["podman", "--config", empty.to_str().unwrap()], vec!["docker"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_dfdaemon")).arg("init-runtime").args(&args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(said.contains("nothing to mirror") || said.contains("invalid value 'docker'"), "{args:?}: {said}");
    }
    node.shutdown.cancel();
}
