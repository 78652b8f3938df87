//! One certificate authority per test binary, so every component a test starts runs mutual TLS
//! as in production: the manager is given this CA as an operator's own (`[tls] ca_cert`), and
//! schedulers and dfdaemons get certificates from it as files (`[tls] cert/key/ca`), named as
//! enrolment would name them. Enrolment itself (join token → certificate) has its own tests and
//! is what `damselfly up` does.

use std::{path::PathBuf, sync::OnceLock, time::Duration};

use common::{
    ids::HostId,
    tls::{CertificateAuthority, Component, Identity, TlsSettings, ca::AltNames},
};

struct TestCa {
    ca: CertificateAuthority,
    dir: PathBuf,
}

fn test_ca() -> &'static TestCa {
    static CA: OnceLock<TestCa> = OnceLock::new();
    CA.get_or_init(|| {
        let dir = tempfile::Builder::new().prefix("damselfly-test-ca").tempdir().unwrap().keep();
        let ca = CertificateAuthority::load_or_generate(&dir).unwrap();
        TestCa { ca, dir }
    })
}

/// The CA itself, to issue certificates a test needs (a stranger's, another role's).
pub fn ca() -> &'static CertificateAuthority {
    &test_ca().ca
}

/// The CA's certificate and key files, for a manager's `[tls] ca_cert` and `ca_key`.
pub fn ca_files() -> (PathBuf, PathBuf) {
    let dir = &test_ca().dir;
    (dir.join("ca.crt"), dir.join("ca.key"))
}

/// `[tls]` settings holding files of a fresh certificate for `component` `host` of `cluster_id`.
pub fn settings_for(component: Component, cluster_id: i64, host: &HostId) -> TlsSettings {
    let identity = Identity { component, cluster_id, host_id: host.clone() };
    let credentials = ca().issue(&identity, &AltNames::default(), Duration::from_secs(86_400)).unwrap();
    // Beside the CA: one directory per test binary's run holds all it issued.
    let dir = tempfile::Builder::new().prefix("cert").tempdir_in(&test_ca().dir).unwrap().keep();
    credentials.store(&dir).unwrap();
    TlsSettings {
        dir: dir.clone(),
        cert: Some(dir.join("cert.pem")),
        key: Some(dir.join("key.pem")),
        ca: Some(dir.join("ca.pem")),
        ..TlsSettings::default()
    }
}

/// A gRPC channel to `addr` presenting a fresh certificate of the test CA for `component`
/// `host` of `cluster_id`, and accepting only the server `expect` names.
pub fn channel(
    addr: &str,
    component: Component,
    cluster_id: i64,
    host: &str,
    expect: common::tls::Expect,
) -> tonic::transport::Channel {
    let identity = Identity { component, cluster_id, host_id: HostId(host.into()) };
    let credentials = ca().issue(&identity, &AltNames::default(), Duration::from_secs(86_400)).unwrap();
    common::tls::channel(addr, credentials.client_config(expect).unwrap(), Duration::from_secs(3)).unwrap()
}

/// A web server certificate of the test CA naming `dns` (and nothing the console dials: not
/// `127.0.0.1`), for a manager's `[server] tls_cert` and `tls_key`: the files' paths.
pub fn web_files(dns: &[&str]) -> (PathBuf, PathBuf) {
    let identity = Identity { component: Component::Manager, cluster_id: 0, host_id: HostId("web".into()) };
    let names = AltNames { dns: dns.iter().map(|d| (*d).to_owned()).collect(), ips: vec![] };
    let credentials = ca().issue(&identity, &names, Duration::from_secs(86_400)).unwrap();
    let dir = tempfile::Builder::new().prefix("web").tempdir_in(&test_ca().dir).unwrap().keep();
    credentials.store(&dir).unwrap();
    (dir.join("cert.pem"), dir.join("key.pem"))
}
