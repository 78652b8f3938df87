//! Mutual TLS between Damselfly's components: who a connection is, proven by a certificate.
//!
//! The manager is the cluster's certificate authority (or an operator brings one). A scheduler
//! or dfdaemon enrols once with a join token bound to a cluster and gets a certificate whose one
//! URI name is its [`Identity`]: component, cluster and host. Every gRPC hop then runs over
//! rustls with certificates on both sides, and a server takes a caller's identity from the
//! certificate it verified, never from the request. Clients check the server's component too, so
//! a peer's certificate cannot pass for a scheduler's.
//!
//! The plumbing is here, shared by the three services: [`ca`] issues, [`credentials`] keeps a
//! component's key and certificate, [`verify`] checks the other side, [`revoked`] holds the
//! serials no longer honoured, [`transport`] plugs rustls into tonic on both ends. No I/O beyond
//! reading and writing credential files and sockets.

pub mod ca;
pub mod credentials;
pub mod identity;
pub mod revoked;
pub mod settings;
pub mod transport;
pub mod verify;
pub mod web;

#[cfg(test)]
mod tests;

pub use ca::CertificateAuthority;
pub use credentials::{ClientAuth, Credentials, KeyRequest};
pub use identity::{Caller, Component, Identity};
pub use revoked::{Revocations, serial_of};
pub use rustls::{ClientConfig, ServerConfig};
pub use settings::{Expected, JoinToken, Mode, TlsSettings, obtain};
pub use transport::{TlsIncoming, channel};
pub use verify::Expect;
pub use web::{WebIdentity, own_certificate_client};

/// Why a certificate, key or TLS set-up was refused.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File { path: std::path::PathBuf, source: std::io::Error },
    /// PEM or DER that does not hold what it should.
    #[error("bad {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// A certificate without a Damselfly identity, or with one that is not allowed here.
    #[error("identity: {0}")]
    Identity(String),
    /// The manager refused to enrol, or could not be reached.
    #[error("enrolment: {0}")]
    Enrolment(String),
    /// rustls or rcgen refused.
    #[error("tls: {0}")]
    Tls(String),
    /// A socket failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<rustls::Error> for Error {
    fn from(e: rustls::Error) -> Self {
        Self::Tls(e.to_string())
    }
}

impl From<rcgen::Error> for Error {
    fn from(e: rcgen::Error) -> Self {
        Self::Tls(e.to_string())
    }
}

/// The crypto every Damselfly TLS end uses (ring, as reqwest's rustls does), AES-128-GCM
/// first: the piece transport encrypts every byte it moves, and AES-128 does that faster than
/// AES-256 at a strength TLS 1.3 requires every implementation to offer.
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    use rustls::{CipherSuite, crypto::ring};
    let mut provider = ring::default_provider();
    provider.cipher_suites.sort_by_key(|s| match s.suite() {
        CipherSuite::TLS13_AES_128_GCM_SHA256 => 0,
        CipherSuite::TLS13_AES_256_GCM_SHA384 => 1,
        _ => 2,
    });
    std::sync::Arc::new(provider)
}
