//! The manager given a certificate (`[server] tls_cert`, `tls_key`) serves its API and console
//! over HTTPS only: browsers sign in through the console (whose server functions call the API
//! over loopback HTTPS), cookies are `Secure`, HTTP/2 is offered by ALPN, and plain HTTP on the
//! port is dropped at once without disturbing anyone.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use leptos::server_fn::ServerFn;
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use testkit::{
    db::Backend,
    manager::{ROOT_PASSWORD, TestManager},
    pki,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn given_a_certificate_the_manager_speaks_only_https_and_its_cookies_are_secure() {
    // The certificate names `localhost` only: the console's loopback calls dial 127.0.0.1.
    let (cert, key) = pki::web_files(&["localhost"]);
    let m = TestManager::start_with(Backend::Sqlite, |c| (c.server.tls_cert, c.server.tls_key) = (cert, key)).await;
    assert!(m.base.starts_with("https://localhost:"), "{}", m.base);
    let port: u16 = m.base.rsplit(':').next().unwrap().parse().unwrap();
    // Root signed in over HTTPS to start; the API answers over it.
    assert_eq!(m.get("/api/v1/users/me", &m.root).await.expect(200).body["name"], "root");

    // A browser signs in through the console's page.
    let sign_in = format!("{}{}", m.base, <console::api::auth::SignIn as ServerFn>::PATH);
    let answer = m
        .http
        .post(&sign_in)
        .header("origin", &m.base)
        .header("sec-fetch-site", "same-origin")
        .form(&[("name", "root"), ("password", ROOT_PASSWORD)])
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success() || answer.status().is_redirection(), "{:?}", answer.status());
    let cookie = answer
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("jwt="))
        .expect("signing in sets the session cookie");
    assert!(cookie.split(';').any(|a| a.trim() == "Secure"), "{cookie}");
    let jwt = cookie.split(';').next().unwrap();
    let me = m.http.get(format!("{}/api/v1/users/me", m.base)).header("cookie", jwt).send().await.unwrap();
    assert_eq!(me.status(), 200, "the cookie is a session");

    // Plain HTTP on the HTTPS port: told at once to use https://, with no page of the API.
    let started = Instant::now();
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthy"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("plain HTTP gets an answer from the HTTPS port");
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    assert_eq!(plain.status(), 400);
    let body: serde_json::Value = plain.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("https://"), "{body}");
    // Bytes that are neither TLS nor HTTP get no HTTP answer (at most a TLS alert) and the close.
    let mut junk = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    junk.write_all(b"\x00\x01garbage\r\n\r\n").await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), junk.read_to_end(&mut rest)).await.unwrap();
    assert!(read.is_err() || !rest.starts_with(b"HTTP"), "junk got an HTTP answer: {rest:?}");

    // ALPN offers HTTP/2, and the server speaks it: its first frame is SETTINGS.
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pki::ca().cert_pem().as_bytes()).unwrap()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    let mut frame = [0u8; 9];
    tokio::time::timeout(Duration::from_secs(5), tls.read_exact(&mut frame)).await.unwrap().unwrap();
    assert_eq!(frame[3], 0x4, "an HTTP/2 SETTINGS frame: {frame:?}");
    drop(tls);

    // And HTTPS still answers everyone else.
    m.get("/api/v1/users/me", &m.root).await.expect(200);
    m.stop().await;
}

#[tokio::test]
async fn a_certificate_that_is_not_its_key_s_stops_the_manager_with_the_reason() {
    let (cert, _) = pki::web_files(&["localhost"]);
    let (_, other_key) = pki::web_files(&["localhost"]);
    let dir = tempfile::tempdir().unwrap();
    let mut config = server::config::ManagerConfig::load(
        None,
        server::config::Overrides { data_dir: Some(dir.path().to_owned()), ..Default::default() },
    )
    .unwrap();
    (config.server.tls_cert, config.server.tls_key) = (cert.clone(), other_key);
    let err = server::Manager::open(config.clone(), Some(ROOT_PASSWORD)).await.unwrap_err().to_string();
    assert!(err.contains("server.tls_cert") && err.contains("not the certificate's"), "{err}");
    config.server.tls_key = dir.path().join("missing.pem");
    let err = server::Manager::open(config, Some(ROOT_PASSWORD)).await.unwrap_err().to_string();
    assert!(err.contains("server.tls_key: cannot read") && err.contains("missing.pem"), "{err}");
}
