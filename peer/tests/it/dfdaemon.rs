//! The dfdaemon in-process with a real HTTP origin: downloads through the local API, boundary
//! sizes, digests, and the errors a user must see clearly.

use std::time::Duration;

use axum::Router;
use testkit::{
    origin::{Origin, content},
    peer::{PeerBuilder, TestPeer, request},
};

/// A dfdaemon without scheduler and the temp dir that holds its data (in `data/`) and outputs.
struct Daemon {
    peer: TestPeer,
    dir: tempfile::TempDir,
}

async fn daemon() -> Daemon {
    daemon_in(tempfile::tempdir().unwrap()).await
}

async fn daemon_in(dir: tempfile::TempDir) -> Daemon {
    Daemon { peer: PeerBuilder::new(dir.path().join("data"), "test-host").start().await, dir }
}

#[tokio::test]
async fn boundary_sizes_arrive_intact_with_their_digest() {
    let origin = Origin::start().await;
    let d = daemon().await;
    for len in [0usize, 1, 128, 129, 65_535, 65_536, 65_537, 3 * 1024 * 1024 + 7] {
        let out = d.dir.path().join(format!("out-{len}"));
        let expected = content(len, 0);
        let digest = format!("blake3:{}", blake3::hash(&expected).to_hex());
        let mut req = request(format!("{origin}/bytes/{len}"), &out);
        req.digest = Some(digest.clone());
        let finished = d.peer.download(req).await.unwrap_or_else(|e| panic!("{len}: {e}"));
        assert_eq!(finished.content_length, len as u64);
        assert_eq!(finished.digest, digest);
        assert_eq!(std::fs::read(&out).unwrap(), expected, "size {len}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(d.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".dfpart"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    d.peer.shutdown.cancel();
}

#[tokio::test]
async fn sha256_mismatch_fails_and_leaves_no_file() {
    let origin = Origin::start().await;
    let d = daemon().await;
    let out = d.dir.path().join("bad");
    let mut req = request(format!("{origin}/bytes/1000"), &out);
    req.digest = Some(format!("sha256:{}", "0".repeat(64)));
    let err = d.peer.download(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::DataLoss, "{err}");
    assert!(err.message().contains("expected sha256:"), "{err}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(d.dir.path()).unwrap().count(), 1, "only data/ must remain");
}

#[tokio::test]
async fn origin_errors_and_existing_files_are_clear() {
    let origin = Origin::start().await;
    let d = daemon().await;
    let out = d.dir.path().join("x");

    let err = d.peer.download(request(format!("{origin}/status/404"), &out)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{err}");
    let err =
        tokio::time::timeout(Duration::from_secs(20), d.peer.download(request(format!("{origin}/status/503"), &out)))
            .await
            .unwrap()
            .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(err.message().contains("after 3 attempts"), "{err}");
    assert!(!out.exists());

    std::fs::write(&out, b"precious").unwrap();
    let err = d.peer.download(request(format!("{origin}/bytes/10"), &out)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let mut req = request(format!("{origin}/bytes/10"), &out);
    req.overwrite = true;
    d.peer.download(req).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content(10, 0));

    let err = d.peer.download(request("ftp://x/y", &out)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = d.peer.download(request(format!("{origin}/bytes/1"), std::path::Path::new("rel"))).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let mut req = request(format!("{origin}/bytes/1"), &d.dir.path().join("y"));
    req.disable_back_to_source = true;
    let err = d.peer.download(req).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
}

#[tokio::test]
async fn the_cache_survives_a_restart_and_serves_without_the_origin() {
    let origin = Origin::start().await;
    let url = format!("{origin}/bytes/300000");
    let d = daemon().await;
    d.peer.download(request(url.clone(), &d.dir.path().join("one"))).await.unwrap();
    assert_eq!(origin.gets(), 1);
    d.peer.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let Daemon { dir, .. } = d;
    let d = daemon_in(dir).await;
    let out = d.dir.path().join("two");
    let finished = d.peer.download(request(url, &out)).await.unwrap();
    assert_eq!(origin.gets(), 1, "the origin must not be asked again");
    assert_eq!(finished.content_length, 300_000);
    assert_eq!(std::fs::read(&out).unwrap(), content(300_000, 0));
    // The output shares the cache's inode (same file system). Editing it in place unseals the
    // cache's file: the cache forgets the task instead of exporting (or serving) the edit.
    {
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&out).unwrap().nlink(), 3, "both outputs are linked to the cache");
    }
    std::fs::write(&out, b"scribbled").unwrap();
    let again = d.dir.path().join("three");
    d.peer.download(request(format!("{origin}/bytes/300000"), &again)).await.unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), content(300_000, 0));
    assert_eq!(origin.gets(), 2, "the edited cache was fetched again");
    assert_eq!(std::fs::read(&out).unwrap(), b"scribbled", "the user's edit is the user's");
}

#[tokio::test]
async fn origins_serving_ranges_are_fetched_piece_by_piece_concurrently() {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };
    let files = tempfile::tempdir().unwrap();
    let len = 9 * 65_536 + 7;
    std::fs::write(files.path().join("big.bin"), content(len, 0)).unwrap();
    let ranged = Arc::new(AtomicUsize::new(0));
    let plain = Arc::new(AtomicUsize::new(0));
    let (r, p) = (ranged.clone(), plain.clone());
    let app = Router::new().fallback_service(tower_http::services::ServeDir::new(files.path())).layer(
        axum::middleware::from_fn(move |req: axum::extract::Request, next: axum::middleware::Next| {
            let counter = if req.headers().contains_key("range") { r.clone() } else { p.clone() };
            if req.method() == axum::http::Method::GET {
                counter.fetch_add(1, Ordering::SeqCst);
            }
            next.run(req)
        }),
    );
    let base = testkit::origin::serve(app).await;

    let d = daemon().await;
    let out = d.dir.path().join("ranged");
    let mut req = request(format!("{base}/big.bin"), &out);
    req.piece_length = Some(65_536);
    let finished = d.peer.download(req).await.unwrap();
    assert_eq!(finished.content_length, len as u64);
    assert_eq!(std::fs::read(&out).unwrap(), content(len, 0));
    assert_eq!(ranged.load(Ordering::SeqCst), 10, "one range request per piece");
    assert_eq!(plain.load(Ordering::SeqCst), 0, "no whole-body GET");
}

#[tokio::test]
async fn stopping_the_daemon_ends_running_downloads_at_once_with_a_clear_status() {
    let origin = Origin::start().await;
    let d = daemon().await;
    let out = d.dir.path().join("interrupted");
    let download = d.peer.download(request(format!("{origin}/slow"), &out));
    let stop = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        d.peer.shutdown.cancel();
    };
    let started = std::time::Instant::now();
    let (result, ()) = tokio::join!(download, stop);
    let err = result.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(3), "the download must end promptly, took {:?}", started.elapsed());
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(err.message().contains("shutting down"), "{err}");
    assert!(!out.exists());
}

#[tokio::test]
async fn outputs_are_linked_on_the_cache_file_system_and_copied_elsewhere() {
    use std::os::unix::fs::MetadataExt;
    let origin = Origin::start().await;
    let d = daemon().await;
    let linked = d.dir.path().join("linked");
    d.peer.download(request(format!("{origin}/bytes/200000"), &linked)).await.unwrap();
    assert_eq!(std::fs::read(&linked).unwrap(), content(200_000, 0));
    assert_eq!(std::fs::metadata(&linked).unwrap().nlink(), 2, "same file system: the output is the cache's inode");

    let forced = d.dir.path().join("forced");
    let mut req = request(format!("{origin}/bytes/200000"), &forced);
    req.force_hard_link = true;
    d.peer.download(req).await.unwrap();
    assert_eq!(std::fs::metadata(&forced).unwrap().nlink(), 3);

    // Another file system (tmpfs, when the test directory is not on one): a copy, written while
    // the pieces arrive; --force-hard-link there is a clear error.
    let shm = std::path::Path::new("/dev/shm");
    let dev = |p: &std::path::Path| std::fs::metadata(p).unwrap().dev();
    if shm.is_dir() && dev(shm) != dev(d.dir.path()) {
        let elsewhere = tempfile::tempdir_in(shm).unwrap();
        let copied = elsewhere.path().join("copied");
        d.peer.download(request(format!("{origin}/bytes/300000"), &copied)).await.unwrap();
        assert_eq!(std::fs::read(&copied).unwrap(), content(300_000, 0));
        assert_eq!(std::fs::metadata(&copied).unwrap().nlink(), 1, "another file system: a copy");
        let mut req = request(format!("{origin}/bytes/300000"), &elsewhere.path().join("forced"));
        req.force_hard_link = true;
        let err = d.peer.download(req).await.unwrap_err();
        assert!(err.message().contains("same file system"), "{err}");
    }
}
