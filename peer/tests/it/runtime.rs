//! A container runtime's pull through the registry mirror, with the real client CRI-O and
//! podman use (`skopeo`, the containers/image library) against a real registry with token auth
//! (`docker-registry`, the image pushed by `skopeo`): the token flow passes through the mirror
//! untouched, and when two nodes pull the same image one after the other the registry sends each
//! blob once — the second node's layers come from the first through the P2P network.

use std::{path::Path, process::Command, time::Duration};

use scheduler::config::SchedulerConfig;
use testkit::{
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
