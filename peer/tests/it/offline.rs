//! A registry that is down, and blobs the node holds: a `HEAD` of a cached blob is answered from
//! the cache (`Content-Length`, `Docker-Content-Digest`) — for a public registry's blob to anyone,
//! and for a registry that demanded credentials only to a requester it accepted within
//! `auth_cache_secs`; everyone else gets a 502 (fail closed): the registry cannot be asked.

use std::time::Duration;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use testkit::{
    peer::{PIECE, PeerBuilder, TestPeer},
    registry::{Image, Layer, OCI_LAYER_TAR, Registry},
};

/// `method` of `path` through `node`'s mirror, with an `Authorization` header when given.
async fn ask(node: &TestPeer, method: reqwest::Method, path: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().request(method, format!("{}{path}", node.proxy));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.unwrap()
}

/// Stops `registry` and waits until its port refuses connections.
async fn take_down(registry: Registry) {
    let host = registry.host.clone();
    drop(registry);
    testkit::eventually("the registry to go down", Duration::from_secs(10), || {
        let host = host.clone();
        async move { tokio::net::TcpStream::connect(host).await.is_err() }
    })
    .await;
}

/// A node mirroring `registry` with no scheduler: its cache is its own.
async fn node(registry: &Registry, dir: &std::path::Path) -> TestPeer {
    let upstream = registry.base.clone();
    PeerBuilder::new(dir.join("node"), "node").config(move |c| c.proxy.registry_mirror = upstream).start().await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_registrys_cached_blob_is_described_and_served_while_the_registry_is_down() {
    let registry = Registry::start().await;
    let layer = Layer::raw(2 * PIECE as usize + 3, 21, OCI_LAYER_TAR);
    let blob = layer.bytes.clone();
    let pushed = registry.push("public/app", "1.0", &Image::of(vec![layer])).await;
    let blobs = &pushed.for_platform("linux/amd64").blobs;
    let (cached, uncached) = (blobs[1].clone(), blobs[0].clone());
    let dir = tempfile::tempdir().unwrap();
    let node = node(&registry, dir.path()).await;
    let path = |digest: &str| format!("/v2/public/app/blobs/{digest}");

    let pulled = ask(&node, reqwest::Method::GET, &path(&cached.digest), None).await;
    assert_eq!(pulled.status(), 200);
    assert_eq!(pulled.bytes().await.unwrap(), blob);
    take_down(registry).await;

    for authorization in [None, Some("Bearer anyone")] {
        let head = ask(&node, reqwest::Method::HEAD, &path(&cached.digest), authorization).await;
        assert_eq!(head.status(), 200, "{authorization:?}: {:?}", head.headers());
        assert_eq!(head.headers()["content-length"], cached.size.to_string().as_str());
        assert_eq!(head.headers()["docker-content-digest"], cached.digest.as_str());
    }
    let served = ask(&node, reqwest::Method::GET, &path(&cached.digest), None).await;
    assert_eq!(served.status(), 200, "the GET is served from the cache too");
    assert_eq!(served.bytes().await.unwrap(), blob);
    // A blob this node does not hold is the registry's to describe: it cannot.
    let missing = ask(&node, reqwest::Method::HEAD, &path(&uncached.digest), None).await;
    assert_eq!(missing.status(), 502);
    node.shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_private_registrys_cached_blob_is_described_only_to_a_requester_it_just_accepted_while_it_is_down() {
    let registry = Registry::with_token_auth("puller", "pull-pw").await;
    let layer = Layer::raw(PIECE as usize + 9, 22, OCI_LAYER_TAR);
    let pushed = registry.push("private/app", "1.0", &Image::of(vec![layer])).await;
    let cached = pushed.for_platform("linux/amd64").blobs[1].clone();
    let path = format!("/v2/private/app/blobs/{}", cached.digest);
    let dir = tempfile::tempdir().unwrap();
    let node = node(&registry, dir.path()).await;
    let bearer = format!("Bearer {}", crate::private::token(&registry, "private/app", "puller:pull-pw").await);

    let pulled = ask(&node, reqwest::Method::GET, &path, Some(&bearer)).await;
    assert_eq!(pulled.status(), 200);
    drop(pulled.bytes().await.unwrap());
    take_down(registry).await;

    // The registry accepted this token for this blob less than auth_cache_secs (60) ago.
    let head = ask(&node, reqwest::Method::HEAD, &path, Some(&bearer)).await;
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["docker-content-digest"], cached.digest.as_str());
    // Anyone else: nothing, not even the size, until the registry answers.
    let wrong = format!("Basic {}", STANDARD.encode("puller:wrong"));
    for (method, authorization) in [
        (reqwest::Method::HEAD, None),
        (reqwest::Method::HEAD, Some(wrong.as_str())),
        (reqwest::Method::GET, None),
        (reqwest::Method::GET, Some(wrong.as_str())),
    ] {
        let refused = ask(&node, method.clone(), &path, authorization).await;
        assert_eq!(refused.status(), 502, "{method} {authorization:?}");
        assert!(refused.headers().get("content-length").is_none_or(|l| l != cached.size.to_string().as_str()));
        assert!(refused.headers().get("docker-content-digest").is_none(), "{method} {authorization:?}");
    }
    node.shutdown.cancel();
}
