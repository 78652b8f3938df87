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
    let node = |name: &'static str, seed: bool| {
        let upstream = registry.base.clone();
        PeerBuilder::new(dir.path().join(name), name)
            .seed(seed)
            .scheduler(&scheduler.addr)
            .stopped_by(&stop)
            .config(move |c| c.proxy.registry_mirror = upstream)
            .start()
    };
    let _seed = node("seed", true).await;
    let a = node("node-a", false).await;
    let b = node("node-b", false).await;
    scheduler.wait_for_hosts(3).await;
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
    // The configured upstream says the registry speaks plain HTTP; the request's `?ns=` is what
    // picks it.
    let upstream = registry.base.clone();
    let node = PeerBuilder::new(dir.path().join("node"), "node")
        .config(move |c| c.proxy.registry_mirror = upstream)
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
