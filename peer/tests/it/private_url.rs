//! Any URL through P2P, not only a registry's blobs: an origin that demands credentials decides
//! who gets its content from the cache. `X-Dragonfly-Use-P2P: true` makes a task of any URL, and
//! its task id leaves out who asked (and, with `X-Dragonfly-Filtered-Query-Params`, a signature
//! in the query), so once one requester brought the content into the cluster, anyone else asking
//! for the same URL would get it — unless the origin is asked about each requester first.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{
    Router,
    extract::{Query, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use scheduler::config::SchedulerConfig;
use testkit::{
    origin::content,
    peer::{PIECE, TestPeer},
    scheduler::TestScheduler,
};
use tokio_util::sync::CancellationToken;

const LEN: usize = 3 * PIECE as usize + 17;
const CHALLENGE: &str = "Bearer realm=\"files\"";

/// GETs the origin answered with content (the one-byte probes aside).
#[derive(Clone, Default)]
struct Served(Arc<AtomicUsize>);

/// The origin: `/private/file` for `Authorization: Bearer good` only (a 401 with a challenge
/// otherwise), `/signed/file?sig=good` for GETs only (every HEAD is a 403, as for a URL signed
/// for GET, and a wrong signature a 403).
fn origin() -> (Router, Served) {
    let served = Served::default();
    let body = |headers: &HeaderMap, served: &Served| -> Response {
        let bytes = content(LEN, 9);
        if headers.get(header::RANGE).map(|v| v.as_bytes()) == Some(b"bytes=0-0") {
            return (
                StatusCode::PARTIAL_CONTENT,
                [(header::CONTENT_RANGE, format!("bytes 0-0/{LEN}"))],
                vec![bytes[0]],
            )
                .into_response();
        }
        served.0.fetch_add(1, Ordering::SeqCst);
        bytes.into_response()
    };
    let app = Router::new()
        .route(
            "/private/file",
            get(move |State(served): State<Served>, method: Method, headers: HeaderMap| async move {
                if headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()) != Some(b"Bearer good") {
                    return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, CHALLENGE)]).into_response();
                }
                if method == Method::HEAD {
                    return [(header::CONTENT_LENGTH, LEN.to_string())].into_response();
                }
                body(&headers, &served)
            }),
        )
        .route(
            "/signed/file",
            get(
                move |State(served): State<Served>,
                      method: Method,
                      Query(q): Query<std::collections::HashMap<String, String>>,
                      headers: HeaderMap| async move {
                    if method == Method::HEAD || q.get("sig").map(String::as_str) != Some("good") {
                        return StatusCode::FORBIDDEN.into_response();
                    }
                    body(&headers, &served)
                },
            ),
        )
        .with_state(served.clone());
    (app, served)
}

/// A GET of `url` through `node`'s proxy, through P2P, with these extra headers.
async fn p2p_get(node: &TestPeer, url: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let client = reqwest::Client::builder().proxy(reqwest::Proxy::http(&node.proxy).unwrap()).build().unwrap();
    let mut request = client.get(url).header("x-dragonfly-use-p2p", "true");
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The origin's refusal, and none of the content.
async fn assert_refused(answer: reqwest::Response, status: u16, challenge: Option<&str>, what: &str) {
    assert_eq!(answer.status().as_u16(), status, "{what}");
    let sent = answer.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(sent.as_deref(), challenge, "{what}: the origin's challenge, as it sent it");
    let body = answer.bytes().await.unwrap();
    let file = content(LEN, 9);
    assert!(body.len() < 1024 && !file.starts_with(&body[..body.len().min(64)]), "{what}: content was sent");
}

struct Setup {
    base: String,
    served: Served,
    a: TestPeer,
    b: TestPeer,
    stop: CancellationToken,
    _scheduler: TestScheduler,
    _dir: tempfile::TempDir,
}

async fn setup() -> Setup {
    let (app, served) = origin();
    let base = testkit::origin::serve(app).await;
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let [_seed, a, b] = crate::runtime::mirroring_nodes("", &scheduler, dir.path(), &stop).await;
    Setup { base, served, a, b, stop, _scheduler: scheduler, _dir: dir }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_url_of_an_origin_that_demands_credentials_goes_only_to_requesters_it_accepts() {
    let s = setup().await;
    let url = format!("{}/private/file", s.base);
    let pulled = p2p_get(&s.a, &url, &[("authorization", "Bearer good")]).await;
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.bytes().await.unwrap(), content(LEN, 9));

    // Cached on node A, and in the cluster for node B: the same task id, whoever asks.
    for node in [&s.a, &s.b] {
        assert_refused(p2p_get(node, &url, &[]).await, 401, Some(CHALLENGE), "anonymous").await;
        let wrong = p2p_get(node, &url, &[("authorization", "Bearer bad")]).await;
        assert_refused(wrong, 401, Some(CHALLENGE), "a wrong token").await;
    }
    let before = s.served.0.load(Ordering::SeqCst);
    let served = p2p_get(&s.b, &url, &[("authorization", "Bearer good")]).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap(), content(LEN, 9));
    assert_eq!(s.served.0.load(Ordering::SeqCst), before, "node B's copy came from the cluster");
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_url_signed_for_get_goes_only_to_requesters_whose_signature_the_origin_accepts() {
    let s = setup().await;
    let filtered = [("x-dragonfly-filtered-query-params", "sig")];
    let good = format!("{}/signed/file?sig=good", s.base);
    let pulled = p2p_get(&s.a, &good, &filtered).await;
    assert_eq!(pulled.status(), 200, "a HEAD refused to a GET-signed URL does not refuse the GET");
    let task = pulled.headers()["x-dragonfly-task-id"].clone();
    assert_eq!(pulled.bytes().await.unwrap(), content(LEN, 9));

    // A forged signature names the same task (the signature is filtered out of its id).
    let forged = format!("{}/signed/file?sig=forged", s.base);
    for node in [&s.a, &s.b] {
        assert_refused(p2p_get(node, &forged, &filtered).await, 403, None, "a forged signature").await;
    }
    let before = s.served.0.load(Ordering::SeqCst);
    let served = p2p_get(&s.b, &good, &filtered).await;
    assert_eq!(served.status(), 200);
    assert_eq!(served.headers()["x-dragonfly-task-id"], task);
    assert_eq!(served.bytes().await.unwrap(), content(LEN, 9));
    assert_eq!(s.served.0.load(Ordering::SeqCst), before, "node B's copy came from the cluster");
    s.stop.cancel();
}
