//! A component's own key and certificate, and the CA it trusts: kept in a directory
//! (`key.pem` 0600, `cert.pem`, `ca.pem`) so a restart does not enrol again.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime},
};

use rustls::{ClientConfig, RootCertStore, ServerConfig, server::WebPkiClientVerifier};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use super::{Error, Identity, provider, revoked::Revocations, verify};

/// What a component proves itself with.
#[derive(Clone)]
pub struct Credentials {
    /// Leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    key_pem: String,
    cert_pem: String,
    ca_pem: String,
    /// The CA certificates it trusts.
    pub roots: Vec<CertificateDer<'static>>,
    /// Who the leaf says this is.
    pub identity: Identity,
    /// When the leaf became valid.
    pub not_before: SystemTime,
    /// When the leaf stops being valid.
    pub not_after: SystemTime,
    /// The key and chain handshakes present: shared by every configuration made from these
    /// credentials and their clones, so [`Credentials::install`] reaches live servers and
    /// channels without restarting them.
    live: Arc<LiveKey>,
    /// The serials this component refuses, shared the same way as `live`.
    revoked: Revocations,
}

/// The certified key handshakes present now.
#[derive(Debug)]
struct LiveKey(std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>);

impl LiveKey {
    fn get(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl rustls::server::ResolvesServerCert for LiveKey {
    fn resolve(&self, _: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.get())
    }
}

impl rustls::client::ResolvesClientCert for LiveKey {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.get())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("identity", &self.identity).field("not_after", &self.not_after).finish()
    }
}

/// Whether a server asks its clients for certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Every client shows a certificate from the CA.
    Required,
    /// Clients may come without one (the manager: enrolment happens before a client has one);
    /// each RPC then decides from [`super::Caller`].
    Optional,
}

impl Credentials {
    /// Credentials from PEM; the key must match the leaf and the leaf must chain to `ca_pem`.
    pub fn from_pem(cert_pem: &str, key_pem: &str, ca_pem: &str) -> Result<Self, Error> {
        let chain = parse_certs(cert_pem, "certificate")?;
        let roots = parse_certs(ca_pem, "CA certificate")?;
        let leaf = chain
            .first()
            .ok_or(Error::Malformed { what: "certificate", detail: "no certificate in the PEM".into() })?;
        let identity = Identity::from_cert(leaf)?;
        let (not_before, not_after) = validity(leaf)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| Error::Malformed { what: "private key", detail: e.to_string() })?;
        let signing = provider().key_provider.load_private_key(key)?;
        let certified = Arc::new(rustls::sign::CertifiedKey::new(chain.clone(), signing));
        certified
            .keys_match()
            .map_err(|e| Error::Malformed { what: "private key", detail: format!("not the certificate's: {e}") })?;
        verify::chains_to(leaf, &chain[1..], &roots)?;
        Ok(Self {
            chain,
            key_pem: key_pem.to_owned(),
            cert_pem: cert_pem.to_owned(),
            ca_pem: ca_pem.to_owned(),
            roots,
            identity,
            not_before,
            not_after,
            live: Arc::new(LiveKey(std::sync::RwLock::new(certified))),
            revoked: Revocations::default(),
        })
    }

    /// Makes `renewed` what every configuration made from these credentials presents from the
    /// next handshake on (a renewal: same identity, same CA).
    pub fn install(&self, renewed: &Credentials) -> Result<(), Error> {
        if renewed.identity != self.identity || renewed.roots != self.roots {
            return Err(Error::Identity(format!("a renewal must keep {} and its CA", self.identity)));
        }
        let next = renewed.live.get();
        *self.live.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(())
    }

    /// The credentials kept in `dir`, if it holds any.
    pub fn load(dir: &Path) -> Result<Option<Self>, Error> {
        let cert = dir.join("cert.pem");
        if !cert.exists() {
            return Ok(None);
        }
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|source| Error::File { path, source })
        };
        Self::from_pem(&read("cert.pem")?, &read("key.pem")?, &read("ca.pem")?).map(Some)
    }

    /// Keeps them in `dir`: the key 0600, every file replaced whole.
    pub fn store(&self, dir: &Path) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::File { path: dir.to_owned(), source })?;
        write_private(&dir.join("key.pem"), self.key_pem.as_bytes())?;
        write_private(&dir.join("ca.pem"), self.ca_pem.as_bytes())?;
        write_private(&dir.join("cert.pem"), self.cert_pem.as_bytes())
    }

    /// The revoked serials every configuration made from these credentials refuses (and their
    /// clones share): what the manager's revocation list is loaded into.
    pub fn revocations(&self) -> &Revocations {
        &self.revoked
    }

    /// The chain in PEM, leaf first.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key in PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The trusted CA in PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// How long the leaf stays valid from `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        self.not_after.duration_since(now).unwrap_or_default()
    }

    /// A server configuration presenting these credentials and checking clients against the CA.
    pub fn server_config(&self, auth: ClientAuth) -> Result<Arc<ServerConfig>, Error> {
        let mut roots = RootCertStore::empty();
        for root in &self.roots {
            roots.add(root.clone())?;
        }
        let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
        let verifier = match auth {
            ClientAuth::Required => builder.build(),
            ClientAuth::Optional => builder.allow_unauthenticated().build(),
        }
        .map_err(|e| Error::Tls(e.to_string()))?;
        let verifier = Arc::new(verify::NotRevoked::new(verifier, self.revoked.clone()));
        let mut config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(self.live.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        // No session resumption: a resumed handshake skips the verifier, and with it the check
        // of a certificate revoked since the session began.
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        config.send_tls13_tickets = 0;
        Ok(Arc::new(config))
    }

    /// A client configuration presenting these credentials to a server that must be `expect`.
    pub fn client_config(&self, expect: verify::Expect) -> Result<Arc<ClientConfig>, Error> {
        let verifier = verify::ComponentVerifier::new(&self.roots, expect)?.refusing(self.revoked.clone());
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(self.live.clone());
        config.alpn_protocols = vec![b"h2".to_vec()];
        // Every handshake verifies the server (and whether it was revoked) in full.
        config.resumption = rustls::client::Resumption::disabled();
        Ok(Arc::new(config))
    }
}

/// A fresh key and a certificate request over it, for enrolment.
pub struct KeyRequest {
    key_pem: String,
    /// The request's DER, sent to the manager.
    pub csr_der: Vec<u8>,
}

impl std::fmt::Debug for KeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRequest").finish_non_exhaustive()
    }
}

impl KeyRequest {
    /// A new ECDSA P-256 key and its request.
    pub fn generate() -> Result<Self, Error> {
        let key = rcgen::KeyPair::generate()?;
        let csr = rcgen::CertificateParams::default().serialize_request(&key)?;
        Ok(Self { key_pem: key.serialize_pem(), csr_der: csr.der().to_vec() })
    }

    /// The new key, PEM.
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

/// Every certificate in a PEM text.
pub fn parse_certs(pem: &str, what: &'static str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Malformed { what, detail: e.to_string() })?;
    if certs.is_empty() {
        return Err(Error::Malformed { what, detail: "no certificate in the PEM".into() });
    }
    Ok(certs)
}

/// When a DER certificate starts and stops being valid.
pub fn validity(der: &[u8]) -> Result<(SystemTime, SystemTime), Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::Malformed { what: "certificate", detail: e.to_string() })?;
    let at = |t: x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(t.timestamp()).unwrap_or(0))
    };
    Ok((at(cert.validity().not_before), at(cert.validity().not_after)))
}

/// Writes a file only its owner reads, replacing any old one whole (write aside, then rename).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let err = |source| Error::File { path: path.to_owned(), source };
    let aside = path.with_extension("tmp");
    let _ = std::fs::remove_file(&aside);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&aside).map_err(err)?;
    file.write_all(bytes).and_then(|()| file.sync_all()).map_err(err)?;
    std::fs::rename(&aside, path).map_err(err)
}
