//! Origins that break HTTP (Dragonfly's 2026 conformance list, `testkit::origin::hostile`): none
//! may leave a piece in the cache whose bytes are not the content's, and the proxy never answers
//! a success whose body is shorter than it says.

use std::path::Path;

use testkit::{
    origin::{Origin, content},
    peer::{PeerBuilder, TestPeer, counter, metric_text},
};

/// More than one piece of [`testkit::peer::PIECE`], ending mid-piece.
const LEN: usize = 9 * 65_536 + 7;

async fn daemon(dir: &Path) -> TestPeer {
    PeerBuilder::new(dir.join("data"), "conformance-host").start().await
}

/// Every piece the cache under `data` counts as finished holds exactly the bytes of `expected`
/// at its place (tasks of other URLs are skipped); answers how many were checked.
fn assert_cache_holds_only_right_pieces(data: &Path, url: &str, expected: &[u8]) -> usize {
    let root = data.join("storage");
    let mut checked = 0;
    let Ok(metas) = std::fs::read_dir(root.join("meta")) else { return 0 };
    for meta in metas.filter_map(Result::ok) {
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(meta.path()).unwrap()).unwrap();
        if meta["url"] != url {
            continue;
        }
        let id = meta["task_id"].as_str().unwrap();
        let file = std::fs::read(root.join("content").join(&id[..3]).join(id)).unwrap_or_default();
        let total = meta["content_length"].as_u64();
        let piece = meta["piece_length"].as_u64().unwrap_or(0) as usize;
        for n in meta["finished"].as_array().unwrap() {
            let n = n.as_u64().unwrap() as usize;
            assert_eq!(total, Some(expected.len() as u64), "a finished piece of a task of the wrong length");
            let range = n * piece..((n + 1) * piece).min(expected.len());
            assert!(file.get(range.clone()) == Some(&expected[range.clone()]), "piece {n} of {url} is corrupt");
            checked += 1;
        }
    }
    checked
}

#[tokio::test]
async fn an_origin_ignoring_range_is_read_whole_once_and_the_file_is_right() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path()).await;
    let url = format!("{origin}/hostile/ignores-range/{LEN}/3");
    let out = dir.path().join("out");
    let finished = peer.dfget(&url, &out, |_| {}).await.unwrap();
    assert_eq!(finished.content_length, LEN as u64);
    assert!(std::fs::read(&out).unwrap() == content(LEN, 3), "the output is the content");
    assert_eq!(assert_cache_holds_only_right_pieces(&peer.data, &url, &content(LEN, 3)), 10);
    // The workers' first requests may each have got a 200 before one was read; only one body
    // is read, and the pieces are cut from it.
    let read = counter(
        &metric_text(&peer.http).await,
        r#"damselfly_dfdaemon_download_traffic_bytes_total{type="back_to_source"}"#,
    );
    assert_eq!(read, LEN as f64, "the whole body is read once");
    assert!(origin.gets() <= 4, "one GET per worker at most, got {}", origin.gets());
}

#[tokio::test]
async fn a_body_shorter_than_announced_fails_clearly_and_caches_nothing_wrong() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path()).await;
    // By ranges, and as one stream (an origin without ranges).
    for (url, expected) in [
        (format!("{origin}/hostile/short/{LEN}/4"), content(LEN, 4)),
        (format!("{origin}/truncated/{LEN}"), content(LEN, 0)),
    ] {
        let out = dir.path().join("short");
        let err = peer.dfget(&url, &out, |_| {}).await.unwrap_err();
        assert!(matches!(err.code(), tonic::Code::Unavailable | tonic::Code::DataLoss), "{url}: {err}");
        assert!(!out.exists(), "{url}: no output");
        assert_cache_holds_only_right_pieces(&peer.data, &url, &expected);
    }
}

#[tokio::test]
async fn a_206_to_a_request_without_range_is_refused_and_nothing_is_cached() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path()).await;
    let url = format!("{origin}/hostile/partial-unasked/{LEN}/5");
    let out = dir.path().join("partial");
    let err = peer.dfget(&url, &out, |_| {}).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err}");
    assert!(err.message().contains("206"), "the error says what the origin did: {err}");
    assert!(!out.exists());
    assert_eq!(assert_cache_holds_only_right_pieces(&peer.data, &url, &content(LEN, 5)), 0);

    // Through the proxy: an error, never a success with half the content.
    let client = reqwest::Client::builder().proxy(reqwest::Proxy::http(&peer.proxy).unwrap()).build().unwrap();
    let resp = client.get(&url).header("x-dragonfly-use-p2p", "true").send().await.unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(resp.headers()["x-dragonfly-error-type"], "backend");
}

#[tokio::test]
async fn a_206_for_another_range_is_never_a_piece_and_the_whole_body_is_used_instead() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path()).await;
    let url = format!("{origin}/hostile/wrong-range/{LEN}/6");
    let out = dir.path().join("wrong");
    peer.dfget(&url, &out, |_| {}).await.unwrap();
    assert!(std::fs::read(&out).unwrap() == content(LEN, 6), "the output is the content");
    assert_eq!(assert_cache_holds_only_right_pieces(&peer.data, &url, &content(LEN, 6)), 10);
}

/// Reads a proxied answer to its end: `Ok(body)` only when it is complete as announced.
async fn read_through(client: &reqwest::Client, url: &str, p2p: bool) -> Result<(u16, Vec<u8>), String> {
    let mut req = client.get(url);
    if p2p {
        req = req.header("x-dragonfly-use-p2p", "true");
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(|e| e.to_string())?;
    Ok((status, body.to_vec()))
}

#[tokio::test]
async fn the_proxy_never_answers_a_success_with_a_truncated_body() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path()).await;
    let client = reqwest::Client::builder().proxy(reqwest::Proxy::http(&peer.proxy).unwrap()).build().unwrap();
    for p2p in [false, true] {
        for url in [format!("{origin}/truncated/{LEN}"), format!("{origin}/hostile/short/{LEN}/7")] {
            // An error means the connection was aborted: the client knows the body is incomplete.
            if let Ok((status, body)) = read_through(&client, &url, p2p).await {
                assert!(!(200..300).contains(&status), "{url} (p2p {p2p}): {status} with {} bytes", body.len());
            }
        }
    }
}

/// In a cluster the scheduler hands origin pieces out by range to several peers: an origin that
/// ignores `Range` still gives every peer the right file (each piece cut from a whole body), and
/// one that answers the wrong range fails the download without leaving a wrong piece anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_cluster_origin_pieces_from_a_misbehaving_origin_are_right_or_refused() {
    let origin = Origin::start().await;
    let c = testkit::cluster::Cluster::start(2).await;
    let url = format!("{origin}/hostile/ignores-range/{LEN}/8");
    let downloads = c.peers.iter().enumerate().map(|(k, peer)| {
        let (out, url) = (c.dir.path().join(format!("ignores-{k}")), url.clone());
        async move { (peer.dfget(&url, &out, |_| {}).await, out) }
    });
    for (result, out) in futures::future::join_all(downloads).await {
        result.unwrap();
        assert!(std::fs::read(&out).unwrap() == content(LEN, 8), "the output is the content");
    }
    for peer in c.peers.iter().chain([&c.seed]) {
        assert_cache_holds_only_right_pieces(&peer.data, &url, &content(LEN, 8));
    }

    let url = format!("{origin}/hostile/wrong-range/{LEN}/9");
    let out = c.dir.path().join("wrong");
    let err = c.peers[0].dfget(&url, &out, |_| {}).await.unwrap_err();
    assert!(err.message().contains("Content-Range"), "the error says what the origin did: {err}");
    for peer in c.peers.iter().chain([&c.seed]) {
        assert_cache_holds_only_right_pieces(&peer.data, &url, &content(LEN, 9));
    }
}
