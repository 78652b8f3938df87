//! The dfdaemon's proxy and mirror as HTTP clients and container runtimes use them: blobs come
//! through P2P and the cache (once from the origin), everything else is forwarded.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Router,
    extract::{Path as UrlPath, State},
    http::{HeaderMap, StatusCode},
    routing::get,
};
use testkit::peer::PeerBuilder;
use tokio_util::sync::CancellationToken;

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn blob(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 253) as u8).collect()
}

/// A registry-like origin that counts requests per path kind.
async fn origin() -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let blobs = Arc::new(AtomicUsize::new(0));
    let manifests = Arc::new(AtomicUsize::new(0));
    let app = Router::new()
        .route(
            "/v2/{repo}/blobs/{digest}",
            get(
                |method: axum::http::Method,
                 State((b, _)): State<(Arc<AtomicUsize>, Arc<AtomicUsize>)>,
                 headers: HeaderMap,
                 UrlPath((_, d)): UrlPath<(String, String)>| async move {
                    // HEADs (the dfdaemon asks before fetching by ranges) carry no content.
                    if method == axum::http::Method::GET {
                        b.fetch_add(1, Ordering::SeqCst);
                    }
                    if headers.get("authorization").map(|v| v.as_bytes()) != Some(b"Bearer secret") {
                        return Err(StatusCode::UNAUTHORIZED);
                    }
                    if d == "sha256:missing" { Err(StatusCode::NOT_FOUND) } else { Ok(blob(300_000)) }
                },
            ),
        )
        .route(
            "/v2/{repo}/manifests/{tag}",
            get(|State((_, m)): State<(Arc<AtomicUsize>, Arc<AtomicUsize>)>| async move {
                m.fetch_add(1, Ordering::SeqCst);
                ([("docker-content-digest", "sha256:abc")], "{\"schemaVersion\":2}")
            }),
        )
        .with_state((blobs.clone(), manifests.clone()));
    (testkit::origin::serve(app).await, blobs, manifests)
}

/// A dfdaemon without scheduler: its proxy's URL, its temp dir, its shutdown token.
async fn daemon() -> (String, tempfile::TempDir, CancellationToken) {
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerBuilder::new(dir.path().join("d"), "proxy-host").start().await;
    (peer.proxy, dir, peer.shutdown)
}

#[tokio::test]
async fn forward_proxy_serves_blobs_from_the_cache_and_forwards_the_rest() {
    let (origin, blobs, manifests) = origin().await;
    let (proxy, _dir, _stop) = daemon().await;
    let client = reqwest::Client::builder().proxy(reqwest::Proxy::http(&proxy).unwrap()).build().unwrap();
    let blob_url = format!("{origin}/v2/lib/blobs/sha256:0123");

    for _ in 0..2 {
        let resp = client.get(&blob_url).bearer_auth("secret").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().contains_key("x-dragonfly-task-id"));
        assert_eq!(resp.bytes().await.unwrap(), blob(300_000));
    }
    assert_eq!(blobs.load(Ordering::SeqCst), 1, "the second pull comes from the cache");

    let part = client.get(&blob_url).header("range", "bytes=100-199").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 100-199/300000");
    assert_eq!(part.bytes().await.unwrap(), blob(300_000)[100..200]);
    let bad = client.get(&blob_url).header("range", "bytes=400000-").send().await.unwrap();
    assert_eq!(bad.status(), 416);

    for _ in 0..2 {
        let m = client.get(format!("{origin}/v2/lib/manifests/latest")).send().await.unwrap();
        assert_eq!(m.status(), 200);
        assert_eq!(m.headers()["docker-content-digest"], "sha256:abc");
    }
    assert_eq!(manifests.load(Ordering::SeqCst), 2, "manifests are forwarded, never cached");

    let denied = client.get(format!("{origin}/v2/lib/blobs/sha256:other")).send().await.unwrap();
    assert_eq!(denied.status(), 401, "the origin's status reaches the client");
    assert_eq!(denied.headers()["x-dragonfly-error-type"], "backend");
    let missing =
        client.get(format!("{origin}/v2/lib/blobs/sha256:missing")).bearer_auth("secret").send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // A blob whose bytes do not match the digest in its URL is refused and not cached.
    let lying = format!("{origin}/v2/lib/blobs/sha256:{}", "ab".repeat(32));
    for _ in 0..2 {
        let resp = client.get(&lying).bearer_auth("secret").send().await.unwrap();
        assert_eq!(resp.status(), 502);
        assert!(resp.text().await.unwrap().contains("integrity"));
    }
    let honest = format!("{origin}/v2/lib/blobs/sha256:{}", sha256_hex(&blob(300_000)));
    let resp = client.get(&honest).bearer_auth("secret").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let before = blobs.load(Ordering::SeqCst);
    assert_eq!(client.get(&honest).bearer_auth("secret").send().await.unwrap().status(), 200);
    assert_eq!(blobs.load(Ordering::SeqCst), before, "a verified blob is served from the cache");

    let unreachable = client.get("http://127.0.0.1:1/v2/").send().await.unwrap();
    assert_eq!(unreachable.status(), 502);
    assert_eq!(unreachable.headers()["x-dragonfly-error-type"], "backend");
}

#[tokio::test]
async fn mirror_mode_finds_the_upstream_from_the_header() {
    let (origin, blobs, _) = origin().await;
    let (proxy, _dir, _stop) = daemon().await;
    let client = reqwest::Client::new();
    let resp = client
        .get(format!("{proxy}/v2/lib/blobs/sha256:4567"))
        .header("x-dragonfly-registry", &origin)
        .bearer_auth("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), blob(300_000));
    assert_eq!(blobs.load(Ordering::SeqCst), 1);

    let lost = client.get(format!("{proxy}/v2/")).send().await.unwrap();
    assert_eq!(lost.status(), 400);
    assert_eq!(lost.headers()["x-dragonfly-error-type"], "proxy");
    assert!(lost.text().await.unwrap().contains("no upstream"));
}

#[tokio::test]
async fn a_piece_length_no_download_may_ask_for_is_a_400_and_every_daemon_stays_up() {
    let origin = testkit::origin::Origin::start().await;
    let cluster = testkit::cluster::Cluster::start(1).await;
    let client =
        reqwest::Client::builder().proxy(reqwest::Proxy::http(&cluster.peers[0].proxy).unwrap()).build().unwrap();
    let url = format!("{origin}/bytes/100000");

    // The first of these made the seed peer abort ("memory allocation of 100000000000 bytes failed").
    for length in ["100000000000", "1", "0", "lots"] {
        let resp = client
            .get(&url)
            .header("x-dragonfly-use-p2p", "true")
            .header("x-dragonfly-piece-length", length)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "piece length {length}");
        assert_eq!(resp.headers()["x-dragonfly-error-type"], "proxy");
        assert!(resp.text().await.unwrap().to_lowercase().contains("piece"), "the answer names the piece length");
    }
    assert_eq!(origin.gets(), 0, "nothing was fetched for a refused request");

    let resp = client.get(&url).header("x-dragonfly-use-p2p", "true").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), testkit::origin::content(100_000, 0));
}
