//! Checking the other end's certificate: it chains to the cluster's CA and names the component
//! the caller meant to reach. Host names are not what is checked: a scheduler is reached by
//! whatever address the manager lists, and what matters is that it is a scheduler of this
//! cluster, which only its certificate can say.

use std::sync::Arc;

use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature},
    server::{
        ParsedCertificate,
        danger::{ClientCertVerified, ClientCertVerifier},
    },
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};

use super::{Component, Error, Identity, ca::fingerprint, provider, revoked::Revocations};

/// Which server a client expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// The components accepted.
    pub components: &'static [Component],
    /// The cluster it must belong to; `None`: any.
    pub cluster_id: Option<i64>,
}

impl Expect {
    /// The manager.
    pub const MANAGER: Self = Self { components: &[Component::Manager], cluster_id: None };

    /// A scheduler of `cluster_id` (any when `None`).
    pub fn scheduler(cluster_id: Option<i64>) -> Self {
        Self { components: &[Component::Scheduler], cluster_id }
    }

    /// A dfdaemon, seed peer or not, of `cluster_id`: a parent on the piece transport.
    pub fn daemon(cluster_id: i64) -> Self {
        Self { components: &[Component::Peer, Component::SeedPeer], cluster_id: Some(cluster_id) }
    }

    /// Whether `id` is what is expected.
    pub fn accepts(&self, id: &Identity) -> bool {
        self.components.contains(&id.component) && self.cluster_id.is_none_or(|c| c == id.cluster_id)
    }

    fn check(&self, id: &Identity) -> Result<(), rustls::Error> {
        if self.accepts(id) {
            return Ok(());
        }
        let names: Vec<&str> = self.components.iter().map(|c| c.as_str()).collect();
        let cluster = self.cluster_id.map(|c| format!(" of cluster {c}")).unwrap_or_default();
        Err(rustls::Error::General(format!(
            "expected a {}{cluster} here, the certificate is of {id}",
            names.join(" or ")
        )))
    }
}

/// Whether `leaf` (with `intermediates`) chains to one of `roots`, valid now.
pub fn chains_to(
    leaf: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    roots: &[CertificateDer<'static>],
) -> Result<(), Error> {
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root.clone())?;
    }
    let parsed = ParsedCertificate::try_from(leaf)?;
    rustls::client::verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &store,
        intermediates,
        UnixTime::now(),
        provider().signature_verification_algorithms.all,
    )?;
    Ok(())
}

/// The handshake's signatures, checked with the provider's algorithms (`self.algorithms`):
/// the same for every verifier here, which differ only in whose certificate they accept.
macro_rules! handshake_signatures {
    () => {
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    };
}
pub(super) use handshake_signatures;

/// A server certificate must chain to the CA and name the expected component.
#[derive(Debug)]
pub struct ComponentVerifier {
    roots: RootCertStore,
    expect: Expect,
    algorithms: WebPkiSupportedAlgorithms,
    revoked: Revocations,
}

impl ComponentVerifier {
    pub fn new(roots: &[CertificateDer<'static>], expect: Expect) -> Result<Self, Error> {
        let mut store = RootCertStore::empty();
        for root in roots {
            store.add(root.clone())?;
        }
        Ok(Self {
            roots: store,
            expect,
            algorithms: provider().signature_verification_algorithms,
            revoked: Revocations::default(),
        })
    }

    /// The same, also refusing a server whose certificate's serial is in `revoked`.
    pub fn refusing(mut self, revoked: Revocations) -> Self {
        self.revoked = revoked;
        self
    }
}

impl ServerCertVerifier for ComponentVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let id = Identity::from_cert(end_entity).map_err(|e| rustls::Error::General(e.to_string()))?;
        self.expect.check(&id)?;
        self.revoked.check(end_entity)?;
        Ok(ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

/// A client-certificate verifier that also refuses revoked serials: the chain is checked by the
/// verifier it wraps, then the leaf's serial against the component's revocation list.
#[derive(Debug)]
pub struct NotRevoked {
    inner: Arc<dyn ClientCertVerifier>,
    revoked: Revocations,
}

impl NotRevoked {
    pub fn new(inner: Arc<dyn ClientCertVerifier>, revoked: Revocations) -> Self {
        Self { inner, revoked }
    }
}

impl ClientCertVerifier for NotRevoked {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.inner.verify_client_cert(end_entity, intermediates, now)?;
        self.revoked.check(end_entity)?;
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Enrolment, before a component has the CA: the manager must present a chain holding a CA whose
/// SHA-256 is the one the join token carries, and a leaf of that CA naming the manager.
#[derive(Debug)]
pub struct PinnedManager {
    sha256: String,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedManager {
    /// `sha256` in hex, as [`super::CertificateAuthority::fingerprint`] writes it.
    pub fn new(sha256: &str) -> Result<Self, Error> {
        let sha256 = sha256.to_ascii_lowercase();
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Malformed { what: "CA fingerprint", detail: "not 64 hex digits".into() });
        }
        Ok(Self { sha256, algorithms: provider().signature_verification_algorithms })
    }

    /// A client configuration for enrolment (no client certificate yet).
    pub fn client_config(self) -> Result<Arc<rustls::ClientConfig>, Error> {
        let mut config = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self))
            .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ServerCertVerifier for PinnedManager {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| fingerprint(c) == self.sha256)
            .ok_or_else(|| rustls::Error::General("the manager's CA is not the one the join token names".into()))?;
        ComponentVerifier::new(&[ca.clone().into_owned()], Expect::MANAGER)
            .map_err(|e| rustls::Error::General(e.to_string()))?
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    handshake_signatures!();
}
