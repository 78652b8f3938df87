//! `Range` through the proxy on a task not yet cached: the answer starts once the pieces
//! covering the range are verified, while the rest of the task keeps arriving; multi-range and
//! unsatisfiable ranges as RFC 9110 allows.

use std::time::{Duration, Instant};

use testkit::{
    origin::{Origin, content},
    peer::{PIECE, PeerBuilder},
};

/// 64 pieces of [`PIECE`], the last one short.
const LEN: usize = 64 * PIECE as usize - 1000;

fn client(proxy: &str) -> reqwest::Client {
    reqwest::Client::builder().proxy(reqwest::Proxy::http(proxy).unwrap()).build().unwrap()
}

async fn get(client: &reqwest::Client, url: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = client.get(url).header("x-dragonfly-use-p2p", "true").header("x-dragonfly-piece-length", PIECE);
    if let Some(r) = range {
        req = req.header("range", r);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_of_a_cold_task_arrives_well_before_the_whole_task() {
    // Each range answer takes 100 ms: 64 pieces four at a time take about 1.6 s.
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerBuilder::new(dir.path().join("d"), "range-host").start().await;
    let client = client(&peer.proxy);
    let url = format!("{origin}/hostile/slow/{LEN}/11");
    let expected = content(LEN, 11);

    let started = Instant::now();
    let part = get(&client, &url, Some("bytes=1000-70999")).await;
    assert_eq!(part.status(), 206);
    assert_eq!(part.headers()["content-range"], format!("bytes 1000-70999/{LEN}").as_str());
    assert_eq!(part.headers()["x-dragonfly-task-download-finished"], "false", "answered before the task was whole");
    let body = part.bytes().await.unwrap();
    let first = started.elapsed();
    assert!(body[..] == expected[1000..71_000], "the range's bytes");

    let whole = get(&client, &url, None).await;
    assert_eq!(whole.status(), 200);
    assert!(whole.bytes().await.unwrap()[..] == expected[..], "the whole content");
    let all = started.elapsed();
    assert!(first * 3 < all, "the range took {first:?}, the whole task {all:?}");
    assert_eq!(origin.sent(), LEN as u64, "the background fetch went on, and read the origin once");
}

#[tokio::test]
async fn several_ranges_get_their_covering_span_and_an_unsatisfiable_one_a_416() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerBuilder::new(dir.path().join("d"), "range-host").start().await;
    let client = client(&peer.proxy);
    let expected = content(LEN, 12);

    // Unsatisfiable on a cold task: the length is learnt, then 416.
    let url = format!("{origin}/ranged/{LEN}/12");
    let beyond = get(&client, &url, Some(&format!("bytes={LEN}-"))).await;
    assert_eq!(beyond.status(), 416);
    assert_eq!(beyond.headers()["content-range"], format!("bytes */{LEN}").as_str());

    let multi = get(&client, &url, Some("bytes=200000-200009, 10-19")).await;
    assert_eq!(multi.status(), 206);
    assert_eq!(multi.headers()["content-range"], format!("bytes 10-200009/{LEN}").as_str());
    assert!(multi.bytes().await.unwrap()[..] == expected[10..200_010]);

    let suffix = get(&client, &url, Some("bytes=-5")).await;
    assert_eq!(suffix.status(), 206);
    assert!(suffix.bytes().await.unwrap()[..] == expected[LEN - 5..]);

    // Another unit is ignored: the whole content.
    let other = get(&client, &url, Some("items=0-1")).await;
    assert_eq!(other.status(), 200);
    assert_eq!(other.bytes().await.unwrap().len(), LEN);

    // A task the origin refuses: its status, not a 206 and not a hang.
    let missing =
        tokio::time::timeout(Duration::from_secs(20), get(&client, &format!("{origin}/status/404"), Some("bytes=0-9")))
            .await
            .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["x-dragonfly-error-type"], "backend");
}

#[tokio::test]
async fn a_range_cut_short_by_the_origin_aborts_instead_of_answering_short_data() {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerBuilder::new(dir.path().join("d"), "range-host").start().await;
    let client = client(&peer.proxy);
    // Announces LEN bytes and sends half: the first pieces are fine, the rest never come.
    let url = format!("{origin}/truncated/{LEN}");
    let resp = get(&client, &url, Some(&format!("bytes=0-{}", LEN - 1))).await;
    assert_eq!(resp.status(), 206, "the first piece was there to answer with");
    assert!(resp.bytes().await.is_err(), "a 206 whose body ended short would look complete");
    // Asked again, the failure is the answer itself: the pieces the range starts with are
    // missing and the origin fails again.
    let again = get(&client, &url, Some(&format!("bytes={}-", LEN - 10))).await;
    assert_eq!(again.status(), 502);
}

/// A runtime asks `HEAD` before it pulls: the blob's size and digest come back as the registry
/// sent them, with no body and nothing fetched into the cache.
#[tokio::test]
async fn head_on_a_blob_answers_its_length_and_digest() {
    use axum::{Router, http::Method, routing};
    let blob = content(300_000, 13);
    let digest = format!("sha256:{}", hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&blob)));
    let gets = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (served, counted, d) = (blob.clone(), gets.clone(), digest.clone());
    let app = Router::new().route(
        "/v2/{repo}/blobs/{digest}",
        routing::get(move |method: Method| {
            let (served, counted, d) = (served.clone(), counted.clone(), d.clone());
            async move {
                if method == Method::GET {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                ([("docker-content-digest", d)], served)
            }
        }),
    );
    let registry = testkit::origin::serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let peer = PeerBuilder::new(dir.path().join("d"), "range-host").start().await;
    let url = format!("{registry}/v2/lib/blobs/{digest}");

    let head = client(&peer.proxy).head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "300000");
    assert_eq!(head.headers()["docker-content-digest"], digest.as_str());
    assert!(head.bytes().await.unwrap().is_empty());
    assert_eq!(gets.load(std::sync::atomic::Ordering::SeqCst), 0, "a HEAD fetches no content");

    // And a range of that blob, cold, is served from pieces and checked against the digest.
    let part = get(&client(&peer.proxy), &url, Some("bytes=5-14")).await;
    assert_eq!(part.status(), 206);
    assert!(part.bytes().await.unwrap()[..] == blob[5..15]);

    // A blob whose bytes are not its digest: the range was served from verified pieces, but
    // once the whole is in and fails the digest, the task leaves the cache.
    let lying = format!("{registry}/v2/lib/blobs/sha256:{}", "ab".repeat(32));
    let part = get(&client(&peer.proxy), &lying, Some("bytes=0-9")).await;
    assert_eq!(part.status(), 206);
    assert!(part.bytes().await.unwrap()[..] == blob[..10]);
    let meta = peer.data.join("storage").join("meta");
    testkit::eventually("the lying blob to leave the cache", Duration::from_secs(10), || {
        let holds = std::fs::read_dir(&meta)
            .map(|d| {
                d.filter_map(Result::ok)
                    .any(|e| std::fs::read_to_string(e.path()).unwrap_or_default().contains(&"ab".repeat(32)))
            })
            .unwrap_or(false);
        async move { !holds }
    })
    .await;
}
