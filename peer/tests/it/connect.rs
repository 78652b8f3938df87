//! `HTTPS_PROXY` clients through the dfdaemon's proxy, with the real clients: `curl` against an
//! origin served over TLS, and `skopeo` against a `docker-registry` served over TLS.
//!
//! Hosts matching `[proxy.connect] intercept` are answered by the proxy with a certificate of its
//! CA (generated in `<data_dir>/proxy-ca`), their blobs from the cache; other hosts are tunnelled
//! and the client sees the origin's own certificate. Targets go through the same policy as plain
//! proxy requests. The origins listen on loopback under names from `/etc/hosts`
//! (`testkit::tls::loopback_name`): Go clients skip the proxy for `localhost` and loopback
//! addresses, and certificates are checked against the name dialled.

use std::{os::unix::fs::PermissionsExt, path::Path, process::Output, time::Duration};

use testkit::{
    origin::{Origin, content},
    peer::{PeerBuilder, TestPeer, counter, metric_text},
    registry::{Image, Layer, Registry},
    tls::{TestCa, loopback_name},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    process::Command,
};

const ORIGIN_HOST: &str = "damselfly-origin.test";
const REGISTRY_HOST: &str = "damselfly-reg.test";

/// `curl` with `args`, no proxy from the environment, 30 s at most.
async fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(["-sS", "--max-time", "30", "--noproxy", ""])
        .args(args)
        .env_remove("HTTPS_PROXY")
        .env_remove("https_proxy")
        .env_remove("ALL_PROXY")
        .output()
        .await
        .expect("curl runs (apt-get install -y curl)")
}

/// The proxy CA the daemon generated, once it is there.
async fn proxy_ca(peer: &TestPeer) -> String {
    let path = peer.data.join("proxy-ca").join("ca.crt");
    testkit::eventually("the proxy CA", Duration::from_secs(10), || {
        let path = path.clone();
        async move { path.exists() }
    })
    .await;
    path.display().to_string()
}

/// A TLS origin under [`ORIGIN_HOST`] and its CA.
async fn tls_origin() -> (Origin, TestCa) {
    let host = loopback_name(ORIGIN_HOST);
    let ca = TestCa::new("damselfly test origin CA");
    (Origin::start_tls(&ca, &host).await, ca)
}

/// A dfdaemon intercepting `intercept`, trusting `upstream_ca` upstream.
fn daemon(dir: &Path, intercept: &[&str], upstream_ca: &Path) -> PeerBuilder {
    let intercept: Vec<String> = intercept.iter().map(|h| h.to_string()).collect();
    let upstream_ca = upstream_ca.to_owned();
    PeerBuilder::new(dir.join("d"), "connect-host").config(move |c| {
        c.proxy.connect.intercept = intercept;
        c.proxy.connect.upstream_ca_certs = vec![upstream_ca];
    })
}

/// Sends `CONNECT target` to the proxy and reads the answer's head and body (by its
/// `Content-Length`); answers the status, the body and the connection.
async fn connect(proxy: &str, target: &str) -> (u16, String, TcpStream) {
    let mut stream = TcpStream::connect(proxy.trim_start_matches("http://")).await.unwrap();
    stream.write_all(format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        assert_eq!(stream.read(&mut byte).await.unwrap(), 1, "the proxy closed before answering");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let length = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    (status, String::from_utf8(body).unwrap(), stream)
}

/// Whether the proxy closes `stream` within `within` (no byte comes first).
async fn closed_within(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 16];
    matches!(tokio::time::timeout(within, stream.read(&mut buf)).await, Ok(Ok(0) | Err(_)))
}

#[tokio::test(flavor = "multi_thread")]
async fn an_intercepted_host_is_answered_with_the_proxy_ca_and_its_blobs_come_from_the_cache() {
    let (origin, origin_ca) = tls_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path(), &[ORIGIN_HOST], &origin_ca.cert_path)
        .config(|c| c.proxy.rules.push("/bytes/".into()))
        .start()
        .await;
    let ca = proxy_ca(&peer).await;
    let key = peer.data.join("proxy-ca").join("ca.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600, "the CA key is private");

    let url = format!("{origin}/bytes/300000/7");
    let file = dir.path().join("fetched");
    let file_arg = file.display().to_string();
    for (http, version) in [("--http2", "2"), ("--http1.1", "1.1")] {
        let args =
            ["--fail", "--proxy", &peer.proxy, "--cacert", &ca, http, "-o", &file_arg, "-w", "%{http_version}", &url];
        let out = curl(&args).await;
        assert!(out.status.success(), "curl {http}: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout), version, "ALPN settles the protocol");
        let fetched = std::fs::read(&file).unwrap();
        assert!(fetched == content(300_000, 7), "curl {http}: {} bytes, not the origin's", fetched.len());
    }
    assert_eq!(origin.gets(), 1, "the second fetch came from the cache");

    // What curl verified is the proxy's certificate: the origin's CA alone does not pass it.
    let out = curl(&["--proxy", &peer.proxy, "--cacert", &origin_ca.cert_path.display().to_string(), &url]).await;
    assert_eq!(out.status.code(), Some(60), "{}", String::from_utf8_lossy(&out.stderr));

    // Requests no rule sends through P2P are forwarded as they are, statuses included.
    let out = curl(&[
        "--proxy",
        &peer.proxy,
        "--cacert",
        &ca,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{origin}/status/418"),
    ])
    .await;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "418");
    let out = curl(&["--fail", "--proxy", &peer.proxy, "--cacert", &ca, &format!("{origin}/ranged/5000/3")]).await;
    assert!(out.stdout == content(5000, 3));
    assert_eq!(origin.gets(), 2, "forwarded, not cached");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_intercepted_upstream_whose_certificate_no_trusted_ca_signed_is_never_fetched() {
    let (origin, _origin_ca) = tls_origin().await;
    let dir = tempfile::tempdir().unwrap();
    // Trusts another CA than the origin's (and the built-in and system roots).
    let stranger = TestCa::new("not the origin's CA");
    let peer = daemon(dir.path(), &[ORIGIN_HOST], &stranger.cert_path)
        .config(|c| c.proxy.rules.push("/bytes/".into()))
        .start()
        .await;
    let ca = proxy_ca(&peer).await;
    // Through P2P and forwarded alike: a 502 naming the backend, nothing served.
    for path in ["/bytes/1000/1", "/ranged/1000/1"] {
        let url = format!("{origin}{path}");
        let out = curl(&["--proxy", &peer.proxy, "--cacert", &ca, "-D", "-", "-o", "/dev/null", &url]).await;
        let head = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
        // The first status line is the proxy's answer to CONNECT, the last the request's.
        let status = head.lines().rfind(|l| l.starts_with("http/")).unwrap_or_default().to_owned();
        assert!(status.split(' ').nth(1) == Some("502"), "{path}: {head}");
        assert!(head.contains("x-dragonfly-error-type: backend"), "{path}: {head}");
    }
    assert_eq!(origin.gets(), 0, "no request reached the origin over an unverified connection");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_no_rule_names_is_tunnelled_and_the_client_sees_the_origin_s_own_certificate() {
    let (origin, origin_ca) = tls_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path(), &["registry.example", "*.elsewhere.test"], &origin_ca.cert_path).start().await;
    let ca = proxy_ca(&peer).await;
    let url = format!("{origin}/bytes/100000/9");
    let origin_ca = origin_ca.cert_path.display().to_string();

    for round in 1..=2 {
        let out = curl(&["--fail", "--proxy", &peer.proxy, "--cacert", &origin_ca, &url]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout == content(100_000, 9));
        assert_eq!(origin.gets(), round, "a tunnel caches nothing");
    }
    let out = curl(&["--proxy", &peer.proxy, "--cacert", &ca, &url]).await;
    assert_eq!(out.status.code(), Some(60), "the proxy CA does not vouch for a tunnelled host");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connect_to_a_refused_target_is_a_403_and_nothing_is_reached() {
    let (origin, origin_ca) = tls_origin().await;
    let port = origin.base.rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path(), &[ORIGIN_HOST], &origin_ca.cert_path).default_target_policy().start().await;

    // Intercepted or tunnelled, a name that resolves to loopback or a loopback address alike.
    for target in [format!("{ORIGIN_HOST}:{port}"), format!("127.0.0.1:{port}"), format!("localhost:{port}")] {
        let (status, body, _) = connect(&peer.proxy, &target).await;
        assert_eq!(status, 403, "{target}: {body}");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["code"], "proxy");
        assert!(body["message"].as_str().unwrap().contains("loopback"), "{target}: {body}");
    }
    let (status, body, _) = connect(&peer.proxy, ORIGIN_HOST).await;
    assert_eq!(status, 400, "no port: {body}");

    let ca = proxy_ca(&peer).await;
    let out = curl(&["--proxy", &peer.proxy, "--cacert", &ca, &format!("{origin}/bytes/10")]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(origin.gets(), 0);
    let refused = counter(&metric_text(&peer.http).await, "damselfly_dfdaemon_proxy_connects_total{mode=\"refused\"}");
    assert_eq!(refused, 5.0, "three refused targets, one without a port, curl's");
}

#[tokio::test(flavor = "multi_thread")]
async fn tunnels_are_bounded_in_number_idle_time_and_handshake_time() {
    let (origin, origin_ca) = tls_origin().await;
    let port = origin.base.rsplit(':').next().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path(), &[ORIGIN_HOST], &origin_ca.cert_path)
        .config(|c| {
            c.proxy.connect.max_connections = 1;
            c.proxy.connect.idle_timeout_secs = 3;
            c.proxy.connect.handshake_timeout_secs = 1;
        })
        .start()
        .await;

    let tunnel = format!("127.0.0.1:{port}");
    let (status, _, mut open) = connect(&peer.proxy, &tunnel).await;
    assert_eq!(status, 200);
    let (status, body, _) = connect(&peer.proxy, &tunnel).await;
    assert_eq!(status, 503, "one connection at most: {body}");
    assert!(!closed_within(&mut open, Duration::from_secs(2)).await, "closed before its idle timeout");
    assert!(closed_within(&mut open, Duration::from_secs(4)).await, "an idle tunnel is closed");

    // Its slot is free again; an intercepted connection whose client never says hello is closed.
    let intercepted = format!("{ORIGIN_HOST}:{port}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut silent = loop {
        let (status, _, stream) = connect(&peer.proxy, &intercepted).await;
        if status == 200 {
            break stream;
        }
        assert!(tokio::time::Instant::now() < deadline, "the slot stayed taken ({status})");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The handshake deadline (1 s), not the idle timeout (3 s), closes it.
    assert!(closed_within(&mut silent, Duration::from_secs(2)).await, "no handshake, no connection");

    let metrics = metric_text(&peer.http).await;
    for (mode, at_least) in [("tunnel", 1.0), ("busy", 1.0), ("intercept", 1.0)] {
        let count = counter(&metrics, &format!("damselfly_dfdaemon_proxy_connects_total{{mode=\"{mode}\"}}"));
        assert!(count >= at_least, "{mode}: {count}\n{metrics}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn skopeo_copies_from_a_tls_registry_through_the_intercepting_proxy_and_blobs_leave_it_once() {
    let host = loopback_name(REGISTRY_HOST);
    let registry = Registry::with_tls(&host).await;
    let image = Image::of(vec![Layer::raw(200_000, 1, "application/vnd.oci.image.layer.v1.tar"), Layer::tar(3000, 2)]);
    let pushed = registry.push("library/secure", "1.0", &image).await;
    let blobs = pushed.for_platform("linux/amd64").blobs.clone();
    let dir = tempfile::tempdir().unwrap();
    let peer = daemon(dir.path(), &[REGISTRY_HOST], registry.ca_cert_path().unwrap()).start().await;
    // skopeo takes every `*.crt` of a directory as a CA (and a `*.key` as half of a client
    // certificate): the proxy CA goes alone into one.
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(proxy_ca(&peer).await, certs.join("damselfly-proxy-ca.crt")).unwrap();

    for round in 1..=2 {
        let out_dir = dir.path().join(format!("pulled-{round}"));
        let out = Command::new("skopeo")
            .args(["copy", "--insecure-policy", "--retry-times", "0", "--src-cert-dir"])
            .arg(&certs)
            .arg("--src-authfile")
            .arg(dir.path().join("no-auth.json"))
            .arg(format!("docker://{}/library/secure:1.0", registry.host))
            .arg(format!("dir:{}", out_dir.display()))
            .env("HTTPS_PROXY", &peer.proxy)
            .env_remove("https_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .output()
            .await
            .expect("skopeo runs (apt-get install -y skopeo)");
        assert!(
            out.status.success(),
            "skopeo copy {round}: {}\nregistry log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            registry.log_tail()
        );
        for blob in &blobs {
            let hex = blob.digest.trim_start_matches("sha256:");
            let bytes = std::fs::read(out_dir.join(hex)).unwrap();
            assert_eq!(bytes.len() as u64, blob.size, "{}", blob.digest);
        }
    }
    // Every blob left the registry once: the second copy's came from the dfdaemon's cache.
    testkit::eventually("the registry's log", Duration::from_secs(5), || async {
        registry.served().by_digest.len() == blobs.len()
    })
    .await;
    let served = registry.served();
    for blob in &blobs {
        assert_eq!(served.by_digest.get(&blob.digest).map(|(gets, _)| *gets), Some(1), "{}: {served:?}", blob.digest);
    }
    assert!(served.manifest_gets >= 2, "manifests are forwarded each time: {served:?}");
}
