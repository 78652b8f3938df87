//! Private registries through the mirror: the registry decides who gets a blob, on every path.
//! A refusal comes back as the registry sent it (status and `WWW-Authenticate`), also when the
//! blob would come through P2P, and a blob already cached on the node or in the cluster goes
//! only to a requester the registry accepts, checked with a `HEAD` of the blob at the registry
//! (no blob bytes from it).

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use scheduler::config::SchedulerConfig;
use testkit::{
    peer::{PIECE, PeerBuilder, TestPeer},
    registry::{Image, Layer, Registry},
    scheduler::TestScheduler,
};
use tokio_util::sync::CancellationToken;

/// The registry's challenge to an anonymous GET of `path`, as it sends it.
async fn challenge(registry: &Registry, path: &str) -> String {
    let answer = reqwest::get(format!("{}{path}", registry.base)).await.unwrap();
    assert_eq!(answer.status(), 401);
    answer.headers()["www-authenticate"].to_str().unwrap().to_owned()
}

/// A pull token for `repository` from the registry's realm, as a runtime gets one.
pub(crate) async fn token(registry: &Registry, repository: &str, creds: &str) -> String {
    let challenge = challenge(registry, "/v2/").await;
    let param = |name: &str| {
        challenge.split(&format!("{name}=\"")).nth(1).and_then(|rest| rest.split('"').next()).unwrap().to_owned()
    };
    let answer = reqwest::Client::new()
        .get(param("realm"))
        .query(&[("service", param("service")), ("scope", format!("repository:{repository}:pull"))])
        .header("authorization", format!("Basic {}", STANDARD.encode(creds)))
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "token for {creds}: {}", answer.status());
    let body: serde_json::Value = answer.json().await.unwrap();
    body["token"].as_str().unwrap().to_owned()
}

/// A GET of `path` through `peer`'s mirror, with an `Authorization` header when given.
async fn get(peer: &TestPeer, path: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}{path}", peer.proxy));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

struct Setup {
    registry: Registry,
    blob_path: String,
    blob: Vec<u8>,
    a: TestPeer,
    b: TestPeer,
    stop: CancellationToken,
    _scheduler: TestScheduler,
    _dir: tempfile::TempDir,
}

/// A token-auth registry holding one image, a scheduler, a seed peer and two nodes mirroring it.
async fn setup() -> Setup {
    let registry = Registry::with_token_auth("puller", "pull-pw").await;
    let layer = Layer::raw(3 * PIECE as usize + 5, 7, testkit::registry::OCI_LAYER_TAR);
    let blob = layer.bytes.clone();
    let pushed = registry.push("private/app", "1.0", &Image::of(vec![layer])).await;
    let digest = pushed.for_platform("linux/amd64").blobs[1].digest.clone();
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let [_seed, a, b] = crate::runtime::mirroring_nodes(&registry.base, &scheduler, dir.path(), &stop).await;
    let blob_path = format!("/v2/private/app/blobs/{digest}");
    Setup { registry, blob_path, blob, a, b, stop, _scheduler: scheduler, _dir: dir }
}

/// The answer is the registry's refusal, as it sent it, and no blob bytes.
async fn assert_refused(answer: reqwest::Response, status: u16, challenge: Option<&str>, blob: &[u8], what: &str) {
    assert_eq!(answer.status().as_u16(), status, "{what}");
    let sent = answer.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(sent.as_deref(), challenge, "{what}: the registry's challenge, as it sent it");
    let body = answer.bytes().await.unwrap();
    assert!(body.len() < 1024 && !blob.starts_with(&body[..body.len().min(64)]), "{what}: blob bytes were sent");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_blob_the_registry_refuses_on_the_p2p_path_answers_its_status_and_challenge() {
    let s = setup().await;
    let expected = challenge(&s.registry, &s.blob_path).await;
    // Cold everywhere: the blob would come through P2P from the registry.
    assert_refused(get(&s.a, &s.blob_path, None).await, 401, Some(&expected), &s.blob, "anonymous").await;
    let wrong = format!("Basic {}", STANDARD.encode("puller:wrong"));
    assert_refused(get(&s.a, &s.blob_path, Some(&wrong)).await, 401, Some(&expected), &s.blob, "wrong password").await;
    // A blob the repository does not hold is the registry's 404, for an authorised requester.
    let bearer = format!("Bearer {}", token(&s.registry, "private/app", "puller:pull-pw").await);
    let missing = format!("/v2/private/app/blobs/sha256:{}", "0".repeat(64));
    assert_refused(get(&s.a, &missing, Some(&bearer)).await, 404, None, &s.blob, "missing").await;
    assert_eq!(s.registry.served().blob_gets, 0, "nothing was fetched");
    s.stop.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cached_private_blob_goes_only_to_requesters_the_registry_accepts() {
    let s = setup().await;
    let bearer = format!("Bearer {}", token(&s.registry, "private/app", "puller:pull-pw").await);
    let pulled = get(&s.a, &s.blob_path, Some(&bearer)).await;
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.bytes().await.unwrap(), s.blob);
    testkit::eventually("the registry's log of the blob", Duration::from_secs(5), || async {
        s.registry.served().blob_gets == 1
    })
    .await;

    let expected = challenge(&s.registry, &s.blob_path).await;
    let wrong = format!("Basic {}", STANDARD.encode("puller:wrong"));
    // Cached on node A, and in the cluster for node B.
    for node in [&s.a, &s.b] {
        assert_refused(get(node, &s.blob_path, None).await, 401, Some(&expected), &s.blob, "anonymous").await;
        assert_refused(get(node, &s.blob_path, Some(&wrong)).await, 401, Some(&expected), &s.blob, "wrong password")
            .await;
    }
    let heads = s.registry.served().blob_heads;
    for node in [&s.b, &s.a, &s.b] {
        let served = get(node, &s.blob_path, Some(&bearer)).await;
        assert_eq!(served.status(), 200, "{}", node.proxy);
        assert_eq!(served.bytes().await.unwrap(), s.blob);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let served = s.registry.served();
    assert_eq!(served.blob_gets, 1, "the authorised requesters got the blob from the cluster");
    // Node B checked once (its verdict is reused within the TTL), node A had checked already.
    assert_eq!(served.blob_heads - heads, 1, "one HEAD per node, credential and blob within the TTL");
    s.stop.cancel();
}

/// A registry that sends blobs from storage by redirect, to a URL signed for GET only (as S3
/// presigned URLs are): a HEAD there is refused, yet the requester may have the blob.
#[tokio::test(flavor = "multi_thread")]
async fn a_registry_that_redirects_blobs_to_storage_signed_for_get_still_authorises_by_its_redirect() {
    use axum::{
        Router,
        http::{HeaderMap, Method, StatusCode, header},
        response::IntoResponse,
        routing::get,
    };
    use sha2::Digest as _;
    let blob: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(&blob)));
    let stored = blob.clone();
    let app = Router::new()
        .route(
            "/v2/r/blobs/{digest}",
            get(|headers: HeaderMap| async move {
                if headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()) != Some(b"Bearer ok") {
                    return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer realm=\"x\"")])
                        .into_response();
                }
                (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, "/storage/blob?signature=for-get")])
                    .into_response()
            }),
        )
        .route(
            "/storage/blob",
            get(move |method: Method| async move {
                if method == Method::HEAD {
                    StatusCode::FORBIDDEN.into_response()
                } else {
                    stored.clone().into_response()
                }
            }),
        );
    let origin = testkit::origin::serve(app).await;
    let dir = tempfile::tempdir().unwrap();
    let node = PeerBuilder::new(dir.path().join("node"), "node").start().await;
    let path = format!("/v2/r/blobs/{digest}");
    let ask = |auth: Option<&'static str>| {
        let mut request =
            reqwest::Client::new().get(format!("{}{path}", node.proxy)).header("x-dragonfly-registry", &origin);
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    let served = ask(Some("Bearer ok")).await.unwrap();
    assert_eq!(served.status(), 200);
    assert_eq!(served.bytes().await.unwrap(), blob);
    assert_refused(ask(None).await.unwrap(), 401, Some("Bearer realm=\"x\""), &blob, "anonymous").await;
    node.shutdown.cancel();
}
