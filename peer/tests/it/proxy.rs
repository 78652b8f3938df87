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

    // A range of the cached task, for a requester the origin accepts (anyone else gets its 401).
    let part = client.get(&blob_url).bearer_auth("secret").header("range", "bytes=100-199").send().await.unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], "bytes 100-199/300000");
    assert_eq!(part.bytes().await.unwrap(), blob(300_000)[100..200]);
    let bad = client.get(&blob_url).bearer_auth("secret").header("range", "bytes=400000-").send().await.unwrap();
    assert_eq!(bad.status(), 416);
    let anonymous = client.get(&blob_url).header("range", "bytes=100-199").send().await.unwrap();
    assert_eq!(anonymous.status(), 401, "a cached task goes only to requesters the origin accepts");

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

/// A proxy client as a pod would be one: every `http://` URL through `proxy`, given up on after
/// 20 s (a link-local address that was not refused could hang instead of failing).
fn through(proxy: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(proxy).unwrap())
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Asserts a 403 from the proxy itself whose message names `rule`.
async fn assert_refused(resp: reqwest::Response, rule: &str, what: &str) {
    assert_eq!(resp.status(), 403, "{what}");
    assert_eq!(resp.headers()["x-dragonfly-error-type"], "proxy", "{what}");
    let body = resp.text().await.unwrap();
    assert!(body.contains(rule), "{what}: the answer names the rule ({rule}): {body}");
}

#[tokio::test]
async fn a_proxy_request_to_a_loopback_or_link_local_target_is_refused_by_default_and_nothing_is_fetched() {
    let origin = testkit::origin::Origin::start().await;
    let port = origin.base.rsplit(':').next().unwrap().to_owned();
    // The operator's registry mirror, on another loopback address: trusted as configured, it
    // answers itself, and its redirects are checked like any other target.
    let to_loopback = format!("{}/bytes/1000", origin.base);
    let to_localhost = format!("http://localhost:{port}/bytes/1000");
    let mirror_app = Router::new()
        .route("/v2/", get(|| async { "mirror" }))
        .route("/to-loopback", get(move || std::future::ready(axum::response::Redirect::temporary(&to_loopback))))
        .route("/to-localhost", get(move || std::future::ready(axum::response::Redirect::temporary(&to_localhost))));
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let mirror = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, mirror_app).await });

    let dir = tempfile::tempdir().unwrap();
    let configured = mirror.clone();
    let peer = PeerBuilder::new(dir.path().join("d"), "strict")
        .default_target_policy()
        .config(move |c| c.proxy.registry_mirror = configured)
        .start()
        .await;
    let client = through(&peer.proxy);

    let refused = [
        (format!("{}/bytes/1000", origin.base), "loopback"),
        (format!("http://localhost:{port}/bytes/1000"), "loopback"),
        (format!("http://[::1]:{port}/bytes/1000"), "loopback"),
        (format!("http://[::ffff:127.0.0.1]:{port}/bytes/1000"), "loopback"),
        ("http://169.254.169.254/latest/meta-data/".to_owned(), "link-local"),
        ("http://10.1.2.3/v2/".to_owned(), "private"),
        ("http://100.64.0.1/v2/".to_owned(), "shared"),
        ("http://0.0.0.0:1/".to_owned(), "unspecified"),
    ];
    for (url, rule) in &refused {
        assert_refused(client.get(url).send().await.unwrap(), rule, url).await;
        // The P2P path (cache, scheduler, origin) is refused before it starts.
        let p2p = client.get(url).header("x-dragonfly-use-p2p", "true").send().await.unwrap();
        assert_refused(p2p, rule, &format!("{url} through P2P")).await;
    }
    // A mirror request whose upstream the client names is not the operator's mirror.
    let named = reqwest::Client::new()
        .get(format!("{}/bytes/1000", peer.proxy))
        .header("x-dragonfly-registry", &origin.base)
        .send()
        .await
        .unwrap();
    assert_refused(named, "loopback", "X-Dragonfly-Registry naming a loopback upstream").await;

    // The configured mirror works; what it redirects to is checked again, each hop.
    let plain = reqwest::Client::new();
    let resp = plain.get(format!("{}/v2/", peer.proxy)).send().await.unwrap();
    assert_eq!(resp.status(), 200, "the operator's mirror on a private address is reached");
    assert_eq!(resp.text().await.unwrap(), "mirror");
    for hop in ["to-loopback", "to-localhost"] {
        let resp = plain.get(format!("{}/{hop}", peer.proxy)).send().await.unwrap();
        assert_refused(resp, "loopback", &format!("a redirect {hop}")).await;
        let p2p =
            plain.get(format!("{}/{hop}", peer.proxy)).header("x-dragonfly-use-p2p", "true").send().await.unwrap();
        assert_refused(p2p, "loopback", &format!("a redirect {hop} through P2P")).await;
    }
    assert_eq!(origin.gets(), 0, "nothing was fetched for a refused target");

    // The local user's own download (the unix socket) is not restricted: they could fetch it anyway.
    let out = dir.path().join("out");
    peer.dfget(&format!("{}/bytes/1000", origin.base), &out, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), testkit::origin::content(1000, 0));
}

#[tokio::test]
async fn allowed_hosts_and_private_networks_open_exactly_what_they_name() {
    let origin = testkit::origin::Origin::start().await;
    let port = origin.base.rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerBuilder::new(dir.path().join("d"), "opened")
        .default_target_policy()
        .config(|c| {
            c.proxy.allowed_hosts = vec!["localhost".into(), "*.example.test".into()];
            c.proxy.allowed_private_networks = vec!["127.0.0.0/8".parse().unwrap()];
        })
        .start()
        .await;
    let client = through(&peer.proxy);
    let allowed = format!("http://localhost:{port}/bytes/1000");
    for p2p in ["false", "true"] {
        let resp = client.get(&allowed).header("x-dragonfly-use-p2p", p2p).send().await.unwrap();
        assert_eq!(resp.status(), 200, "an allowed host on an allowed network (P2P: {p2p})");
        assert_eq!(resp.bytes().await.unwrap(), testkit::origin::content(1000, 0));
    }
    // Named by address, the same origin is not an allowed host.
    let resp = client.get(format!("{}/bytes/1000", origin.base)).send().await.unwrap();
    assert_refused(resp, "allowed_hosts", "an address outside allowed_hosts").await;
    // An allowed name does not open the networks that are not listed.
    let resp = client.get(format!("http://[::1]:{port}/bytes/1000")).send().await.unwrap();
    assert_refused(resp, "allowed_hosts", "::1 is not an allowed host either").await;
    assert_eq!(origin.gets(), 2, "only the allowed requests reached the origin");
}

#[tokio::test]
async fn a_seed_peer_fetches_a_proxied_url_only_under_its_own_target_policy() {
    let origin = testkit::origin::Origin::start().await;
    // The seed keeps the default policy; the peer's proxy allows loopback (testkit's default).
    let cluster =
        testkit::cluster::Cluster::builder(1).seed_config(|c| c.proxy.allowed_private_networks.clear()).start().await;
    let client = through(&cluster.peers[0].proxy);
    let url = format!("{}/bytes/300000", origin.base);
    let resp = client.get(&url).header("x-dragonfly-use-p2p", "true").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), testkit::origin::content(300_000, 0));

    let back_to_source = r#"damselfly_dfdaemon_download_traffic_bytes_total{type="back_to_source"}"#;
    let seed = testkit::peer::counter(&testkit::peer::metric_text(&cluster.seed.http).await, back_to_source);
    assert_eq!(seed, 0.0, "the seed peer refused its order for a loopback origin");
    let peer = testkit::peer::counter(&testkit::peer::metric_text(&cluster.peers[0].http).await, back_to_source);
    assert_eq!(peer, 300_000.0, "the peer whose proxy allows it fetched the origin itself");
}
