//! Test servers over TLS: a [`TestCa`] signing web certificates, a listener that hands
//! `axum::serve` handshaken connections ([`serve_tls`]), and [`loopback_name`], a host name
//! that resolves to 127.0.0.1.
//!
//! Why names: Go clients (skopeo, containerd) never use a proxy for `localhost` or a loopback
//! address, and certificates are checked against the name dialled. A line in `/etc/hosts`
//! (the tests run as root) gives every client, curl and Go alike, a name that goes through
//! the proxy and reaches a loopback listener.

use std::{
    io::Write,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Mutex,
    time::Duration,
};

use axum::Router;
use common::tls::{CertificateAuthority, TlsIncoming, WebIdentity, ca::AltNames, transport::TlsConn};
use tokio::net::TcpListener;

/// A CA for test servers, its certificate written to a file clients are pointed at.
pub struct TestCa {
    pub ca: CertificateAuthority,
    key_pem: String,
    /// The CA certificate, PEM (`ca.crt`).
    pub cert_path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestCa {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Self {
        let (ca, key_pem) = CertificateAuthority::generate(name).unwrap();
        let dir = tempfile::Builder::new().prefix("damselfly-test-ca").tempdir().unwrap();
        let cert_path = dir.path().join("ca.crt");
        std::fs::write(&cert_path, ca.cert_pem()).unwrap();
        Self { ca, key_pem, cert_path, _dir: dir }
    }

    /// A server certificate for `host` (and 127.0.0.1), valid for a day.
    pub fn web(&self, host: &str) -> WebIdentity {
        let names = AltNames { dns: vec![host.to_owned()], ips: vec![[127, 0, 0, 1].into()] };
        self.ca.issue_web(&names, Duration::from_secs(86_400)).unwrap()
    }

    /// Writes `host`'s chain and key to `dir` (`tls.crt`, `tls.key`) for a server that reads
    /// files; answers their paths.
    pub fn web_files(&self, host: &str, dir: &Path) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec![host.to_owned()]).unwrap();
        params.subject_alt_names.push(rcgen::SanType::IpAddress([127, 0, 0, 1].into()));
        let ca_key = rcgen::KeyPair::from_pem(&self.key_pem).unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_pem(self.ca.cert_pem(), ca_key).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (cert_path, key_path) = (dir.join("tls.crt"), dir.join("tls.key"));
        std::fs::write(&cert_path, format!("{}{}", cert.pem(), self.ca.cert_pem())).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }
}

/// Makes `name` resolve to 127.0.0.1 (a line in `/etc/hosts`, added once); answers it.
pub fn loopback_name(name: &str) -> String {
    static HOSTS: Mutex<()> = Mutex::new(());
    let _one_at_a_time = HOSTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let present = hosts.lines().any(|l| {
        let mut fields = l.split('#').next().unwrap_or("").split_whitespace();
        fields.next() == Some("127.0.0.1") && fields.any(|n| n == name)
    });
    if !present {
        let line = format!("{}127.0.0.1 {name}\n", if hosts.is_empty() || hosts.ends_with('\n') { "" } else { "\n" });
        std::fs::OpenOptions::new()
            .append(true)
            .open("/etc/hosts")
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .unwrap_or_else(|e| panic!("cannot add {name} to /etc/hosts (the TLS tests run as root): {e}"));
    }
    name.to_owned()
}

/// Serves `app` over TLS with `identity` on `127.0.0.1:0`; answers the port.
pub async fn serve_tls(app: Router, identity: &WebIdentity) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = listener.local_addr().unwrap();
    let incoming = TlsIncoming::new(listener, identity.server_config().unwrap(), Default::default());
    tokio::spawn(async move { axum::serve(TlsListener { incoming, local }, app).await });
    local.port()
}

struct TlsListener {
    incoming: TlsIncoming,
    local: SocketAddr,
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsConn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TlsConn, SocketAddr) {
        use futures::StreamExt;
        loop {
            match self.incoming.next().await {
                Some(Ok(conn)) => return (conn, self.local),
                Some(Err(_)) => continue,
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}
