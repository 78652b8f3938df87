//! Resolving a preheat's image against a real registry (`docker-registry`, images pushed by
//! `skopeo`): anonymously, through the token flow, with a caller's own `Authorization`, an
//! index narrowed to a platform, a ModelPack artifact, and the errors an operator will read.
//! Every resolved blob URL is fetched back and checked against its digest.

use std::{collections::BTreeMap, time::Duration};

use anyhow::{Context, Result, ensure};
use server::image::{ImageError, ImageRequest, Resolved, resolve};
use sha2::{Digest as _, Sha256};
use testkit::registry::{BlobInfo, Image, Layer, MODEL_WEIGHT, Pushed, Registry};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .unwrap()
}

fn request(url: &str) -> ImageRequest {
    ImageRequest { url: url.into(), ..ImageRequest::default() }
}

/// The resolved blobs are exactly `expected` (config first), each at its registry blob URL.
fn assert_blobs(registry: &Registry, repository: &str, resolved: &Resolved, expected: &[BlobInfo]) {
    let got: Vec<BlobInfo> = resolved
        .blobs
        .iter()
        .map(|b| BlobInfo { digest: b.digest.clone(), size: b.size, media_type: b.media_type.clone() })
        .collect();
    assert_eq!(got, expected);
    for b in &resolved.blobs {
        assert_eq!(b.url, format!("{}/v2/{repository}/blobs/{}", registry.base, b.digest));
    }
}

/// GETs every blob with the resolved headers and checks its bytes against its digest.
async fn fetch_all(resolved: &Resolved) -> Result<u64> {
    let mut total = 0;
    for b in &resolved.blobs {
        let mut req = client().get(&b.url);
        for (k, v) in &resolved.headers {
            req = req.header(k, v);
        }
        let res = req.send().await?;
        ensure!(res.status() == 200, "GET {} answered {}", b.url, res.status());
        let body = res.bytes().await?;
        let hex: String = Sha256::digest(&body).iter().map(|x| format!("{x:02x}")).collect();
        ensure!(b.digest == format!("sha256:{hex}"), "{} does not hash to its digest", b.url);
        ensure!(body.len() as u64 == b.size, "{} is {} bytes, the manifest says {}", b.url, body.len(), b.size);
        total += b.size;
    }
    Ok(total)
}

#[tokio::test]
async fn registry_resolves_an_anonymous_image() -> Result<()> {
    let registry = Registry::start().await;
    let image = Image::of(vec![Layer::tar(0, 1), Layer::tar(5000, 2), Layer::tar(70_000, 3)]);
    let pushed = registry.push("library/app", "1.0", &image).await;

    let resolved = resolve(&client(), &request(&pushed.manifest_url)).await?;
    assert_blobs(&registry, "library/app", &resolved, &pushed.manifests[0].blobs);
    assert!(resolved.headers.is_empty(), "no Authorization to hand on: {:?}", resolved.headers);

    // By digest too, and the registry served each blob byte exactly once when the peers'
    // stand-in fetched them.
    let by_digest = registry.manifest_url("library/app", &pushed.digest);
    let again = resolve(&client(), &request(&by_digest)).await?;
    assert_eq!(again.blobs, resolved.blobs);
    assert_eq!(registry.served().blob_gets, 0, "resolving reads manifests only");
    let total = fetch_all(&resolved).await?;
    testkit::eventually("the registry's log of the blob GETs", Duration::from_secs(5), || async {
        registry.served().blob_bytes >= total
    })
    .await;
    let served = registry.served();
    assert_eq!((served.blob_gets, served.blob_bytes), (resolved.blobs.len(), total));
    Ok(())
}

#[tokio::test]
async fn registry_token_auth_with_username_and_password() -> Result<()> {
    let registry = Registry::with_token_auth("alice", "s3cret").await;
    let pushed = registry.push("team/app", "v1", &Image::of(vec![Layer::tar(3000, 4)])).await;
    let before = registry.token_requests();

    let req = ImageRequest {
        username: Some("alice".into()),
        password: Some("s3cret".into()),
        ..request(&pushed.manifest_url)
    };
    let resolved = resolve(&client(), &req).await?;
    assert_blobs(&registry, "team/app", &resolved, &pushed.manifests[0].blobs);
    assert_eq!(registry.token_requests(), before + 1, "one token for the whole resolution");
    let auth = resolved.headers.get("Authorization").context("the token is handed on to the peers")?;
    assert!(auth.starts_with("Bearer "), "{auth}");

    // The peers can fetch every blob with it; without it the registry refuses.
    fetch_all(&resolved).await?;
    let bare = client().get(&resolved.blobs[0].url).send().await?;
    assert_eq!(bare.status(), 401);
    Ok(())
}

#[tokio::test]
async fn registry_token_auth_with_a_given_authorization_header() -> Result<()> {
    let registry = Registry::with_token_auth("bob", "hunter2").await;
    let pushed =
        registry.push("private/tool", "latest", &Image::of(vec![Layer::tar(100, 5), Layer::tar(200, 6)])).await;
    let with_creds = ImageRequest {
        username: Some("bob".into()),
        password: Some("hunter2".into()),
        ..request(&pushed.manifest_url)
    };
    let token = resolve(&client(), &with_creds).await?.headers["Authorization"].clone();

    // Harbor hands over a token it obtained itself: used as is, no token request.
    let before = registry.token_requests();
    let mut headers = BTreeMap::from([("Authorization".to_owned(), token.clone())]);
    headers.insert("X-Custom".into(), "kept".into());
    let given = ImageRequest { headers: headers.clone(), ..request(&pushed.manifest_url) };
    let resolved = resolve(&client(), &given).await?;
    assert_blobs(&registry, "private/tool", &resolved, &pushed.manifests[0].blobs);
    assert_eq!(registry.token_requests(), before);
    assert_eq!(resolved.headers, headers, "the given headers go to the peers unchanged");
    fetch_all(&resolved).await?;

    // A given header that the registry refuses is final: no challenge flow behind the caller's back.
    let bogus = ImageRequest {
        headers: BTreeMap::from([("authorization".to_owned(), "Bearer not-a-token".to_owned())]),
        username: Some("bob".into()),
        password: Some("hunter2".into()),
        ..request(&pushed.manifest_url)
    };
    let err = resolve(&client(), &bogus).await.unwrap_err();
    assert!(matches!(err, ImageError::Unauthorized(_)), "{err:?}");
    assert!(err.to_string().contains("the given Authorization header was refused"), "{err}");
    assert_eq!(registry.token_requests(), before);
    Ok(())
}

#[tokio::test]
async fn registry_index_picks_the_platform() -> Result<()> {
    let registry = Registry::with_token_auth("carol", "pw").await;
    let image = Image::index(vec![
        ("linux/amd64", vec![Layer::tar(1000, 10), Layer::tar(2000, 11)]),
        ("linux/arm64/v8", vec![Layer::tar(1500, 20)]),
    ]);
    let pushed: Pushed = registry.push("multi/app", "2", &image).await;
    let creds = |platform: Option<&str>| ImageRequest {
        platform: platform.map(Into::into),
        username: Some("carol".into()),
        password: Some("pw".into()),
        ..request(&pushed.manifest_url)
    };

    let arm = resolve(&client(), &creds(Some("linux/arm64"))).await?;
    assert_blobs(&registry, "multi/app", &arm, &pushed.for_platform("linux/arm64/v8").blobs);
    let arm_v8 = resolve(&client(), &creds(Some("linux/arm64/v8"))).await?;
    assert_eq!(arm_v8.blobs, arm.blobs);
    let amd = resolve(&client(), &creds(None)).await?;
    assert_blobs(&registry, "multi/app", &amd, &pushed.for_platform("linux/amd64").blobs);
    fetch_all(&arm).await?;

    let err = resolve(&client(), &creds(Some("linux/s390x"))).await.unwrap_err();
    assert!(matches!(err, ImageError::NoPlatform { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "no manifest for platform linux/s390x in the index {} (has: linux/amd64, linux/arm64/v8)",
            pushed.manifest_url
        )
    );
    let err = resolve(&client(), &creds(Some("linux/arm64/v7"))).await.unwrap_err();
    assert!(err.to_string().contains("no manifest for platform linux/arm64/v7"), "{err}");
    Ok(())
}

#[tokio::test]
async fn registry_resolves_a_modelpack_artifact() -> Result<()> {
    let registry = Registry::start().await;
    let model = Image::model(vec![
        Layer::raw(4096, 30, MODEL_WEIGHT),
        Layer::raw(10, 31, "application/vnd.cncf.model.doc.v1.raw"),
        Layer::raw(1, 32, "application/vnd.cncf.model.weight.config.v1.raw"),
    ]);
    let pushed = registry.push("models/tiny", "v1", &model).await;
    let resolved = resolve(&client(), &request(&pushed.manifest_url)).await?;
    assert_blobs(&registry, "models/tiny", &resolved, &pushed.manifests[0].blobs);
    assert_eq!(resolved.blobs[1].media_type, MODEL_WEIGHT);
    fetch_all(&resolved).await?;
    Ok(())
}

#[tokio::test]
async fn registry_errors_are_clear() -> Result<()> {
    let registry = Registry::with_token_auth("dave", "right").await;
    let pushed = registry.push("errs/app", "1", &Image::of(vec![Layer::tar(10, 40)])).await;
    let with = |user: Option<&str>, password: &str, url: &str| ImageRequest {
        username: user.map(Into::into),
        password: Some(password.into()),
        ..request(url)
    };

    let err = resolve(&client(), &with(Some("dave"), "wrong", &pushed.manifest_url)).await.unwrap_err();
    assert!(matches!(err, ImageError::Unauthorized(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("answered 401 Unauthorized") && msg.contains("refused the username \"dave\""), "{msg}");
    assert!(!msg.contains("wrong"), "no password in messages: {msg}");

    let err = resolve(&client(), &with(None, "", &pushed.manifest_url)).await.unwrap_err();
    assert!(err.to_string().contains("anonymous token does not grant pull"), "{err}");

    let unknown = registry.manifest_url("errs/app", "nope");
    let err = resolve(&client(), &with(Some("dave"), "right", &unknown)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("registry answered 404 Not Found for manifest {unknown} (MANIFEST_UNKNOWN: manifest unknown)")
    );

    let err =
        resolve(&client(), &with(Some("dave"), "right", "http://127.0.0.1:1/v2/x/manifests/1")).await.unwrap_err();
    assert!(matches!(err, ImageError::Unreachable { .. }), "{err:?}");
    let err = resolve(&client(), &request("http://127.0.0.1/v2/x/manifests/1?x=y")).await.unwrap_err();
    assert!(matches!(err, ImageError::Invalid(_)), "{err:?}");
    let bad_platform = ImageRequest { platform: Some("linux".into()), ..request(&pushed.manifest_url) };
    assert!(matches!(resolve(&client(), &bad_platform).await, Err(ImageError::Invalid(_))));
    Ok(())
}

/// What a hostile or unusual registry can answer, from a stub: a `Basic` challenge, a body
/// past the size cap (streamed, no length announced), a digest that would escape the blob
/// path, an index inside an index, and content that does not match the digest asked for.
#[tokio::test]
async fn registry_stub_basic_auth_and_hostile_manifests() -> Result<()> {
    use axum::{
        Router,
        body::{Body, Bytes},
        http::{HeaderMap, StatusCode, header},
        response::{IntoResponse, Response},
        routing::get,
    };

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    let sha = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    let manifest = |layer: &str| {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"x","digest":"{}","size":2}},"layers":[{{"mediaType":"y","digest":"{layer}","size":3}}]}}"#,
            sha('c')
        )
    };
    let good = manifest(&sha('d'));
    let hostile = manifest("sha256:../../../../v2/other/blobs/x");
    let inner = format!(r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[]}}"#);
    let inner_digest =
        format!("sha256:{}", Sha256::digest(&inner).iter().map(|x| format!("{x:02x}")).collect::<String>());
    let nested = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_INDEX}","digest":"{inner_digest}","size":1,"platform":{{"os":"linux","architecture":"amd64"}}}}]}}"#
    );
    let typed = |ct: &'static str, body: String| ([(header::CONTENT_TYPE, ct)], body).into_response();
    let app = Router::new()
        .route(
            "/v2/basic/manifests/1",
            get({
                let good = good.clone();
                move |headers: HeaderMap| async move {
                    // "eve:pw" in base64.
                    if headers.get(header::AUTHORIZATION).is_some_and(|v| v == "Basic ZXZlOnB3") {
                        typed(OCI_MANIFEST, good)
                    } else {
                        (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, r#"Basic realm="stub, with a comma""#)])
                            .into_response()
                    }
                }
            }),
        )
        .route(
            "/v2/big/manifests/1",
            get(|| async {
                let chunks =
                    futures::stream::iter((0..80).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 64 << 10]))));
                Response::builder().header(header::CONTENT_TYPE, OCI_MANIFEST).body(Body::from_stream(chunks)).unwrap()
            }),
        )
        .route("/v2/hostile/manifests/1", get(move || async move { typed(OCI_MANIFEST, hostile) }))
        .route("/v2/nested/manifests/1", get(move || async move { typed(OCI_INDEX, nested) }))
        .route(&format!("/v2/nested/manifests/{inner_digest}"), get(move || async move { typed(OCI_INDEX, inner) }))
        .route(&format!("/v2/mismatch/manifests/{}", sha('f')), get(move || async move { typed(OCI_MANIFEST, good) }));
    let base = testkit::origin::serve(app).await;

    let url = format!("{base}/v2/basic/manifests/1");
    let ok = resolve(
        &client(),
        &ImageRequest { username: Some("eve".into()), password: Some("pw".into()), ..request(&url) },
    )
    .await?;
    assert_eq!(ok.headers["Authorization"], "Basic ZXZlOnB3", "Basic credentials are handed on to the peers");
    assert_eq!(ok.blobs.iter().map(|b| b.digest.clone()).collect::<Vec<_>>(), [sha('c'), sha('d')]);
    let err = resolve(&client(), &request(&url)).await.unwrap_err();
    assert!(err.to_string().contains("wants a username and password (Basic)"), "{err}");
    let wrong = ImageRequest { username: Some("eve".into()), password: Some("no".into()), ..request(&url) };
    let err = resolve(&client(), &wrong).await.unwrap_err();
    assert!(err.to_string().contains("the username and password were refused"), "{err}");

    let err = resolve(&client(), &request(&format!("{base}/v2/big/manifests/1"))).await.unwrap_err();
    assert!(err.to_string().contains("larger than 4194304 bytes"), "{err}");
    let err = resolve(&client(), &request(&format!("{base}/v2/hostile/manifests/1"))).await.unwrap_err();
    assert!(err.to_string().contains("is not sha256:<64 hex>"), "{err}");
    let err = resolve(&client(), &request(&format!("{base}/v2/nested/manifests/1"))).await.unwrap_err();
    assert!(err.to_string().contains("an index inside an index"), "{err}");
    let err = resolve(&client(), &request(&format!("{base}/v2/mismatch/manifests/{}", sha('f')))).await.unwrap_err();
    assert!(err.to_string().contains("does not match the digest"), "{err}");
    Ok(())
}
