//! HTTPS for the manager's REST API and console: a web server certificate the operator brings
//! (any CA, any names: browsers check it, not Damselfly), and the one client that must reach
//! that listener without a browser's trust store — the console's server functions calling the
//! API over loopback ([`own_certificate_client`]).
//!
//! Nothing here is mutual TLS: browsers and CI show no client certificate, and the API
//! authenticates them by session or token.

use std::sync::Arc;

use rustls::{
    DigitallySignedStruct, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature},
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime, pem::PemObject};

use super::{Error, credentials::parse_certs, provider, verify::handshake_signatures};

/// A web server's certificate chain (leaf first) and key, checked to belong together.
#[derive(Clone)]
pub struct WebIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<rustls::sign::CertifiedKey>,
}

impl std::fmt::Debug for WebIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebIdentity").field("chain", &self.chain.len()).finish_non_exhaustive()
    }
}

impl WebIdentity {
    /// From PEM: the chain (leaf first) and its private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let chain = parse_certs(cert_pem, "certificate")?;
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .map_err(|e| Error::Malformed { what: "private key", detail: e.to_string() })?;
        let signing = provider().key_provider.load_private_key(key)?;
        let key = Arc::new(rustls::sign::CertifiedKey::new(chain.clone(), signing));
        key.keys_match()
            .map_err(|e| Error::Malformed { what: "private key", detail: format!("not the certificate's: {e}") })?;
        Ok(Self { chain, key })
    }

    /// The chain and key as rustls presents them (for a server resolving certificates itself).
    pub fn certified_key(&self) -> Arc<rustls::sign::CertifiedKey> {
        self.key.clone()
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// A server configuration presenting this identity, asking clients for nothing, speaking
    /// HTTP/2 or HTTP/1.1 as the client prefers (ALPN).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, Error> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(self.key.clone())));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// A client configuration that trusts exactly `leaf`, whatever names it carries and whoever
/// issued it: for a process calling its own listener over loopback, where the certificate is
/// known and its names (those browsers use) are not the address dialled.
pub fn own_certificate_client(leaf: CertificateDer<'static>) -> Result<rustls::ClientConfig, Error> {
    let verifier = OwnCertificate { leaf, algorithms: provider().signature_verification_algorithms };
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// Accepts one certificate, byte for byte; the handshake must still be signed by its key.
#[derive(Debug)]
struct OwnCertificate {
    leaf: CertificateDer<'static>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for OwnCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General("not this process's own certificate".into()))
        }
    }

    handshake_signatures!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(name: &str) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap().self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn a_key_must_be_its_certificate_s_and_pem_must_hold_what_it_says() {
        let (cert, key) = self_signed("manager.example");
        let (_, other_key) = self_signed("other.example");
        WebIdentity::from_pem(&cert, &key).unwrap().server_config().unwrap();
        let err = WebIdentity::from_pem(&cert, &other_key).unwrap_err().to_string();
        assert!(err.contains("not the certificate's"), "{err}");
        let err = WebIdentity::from_pem("", &key).unwrap_err().to_string();
        assert!(err.contains("no certificate"), "{err}");
        let err = WebIdentity::from_pem(&cert, "not a key").unwrap_err().to_string();
        assert!(err.contains("private key"), "{err}");
    }

    #[test]
    fn the_own_certificate_client_accepts_only_that_certificate() {
        let (cert, key) = self_signed("manager.example");
        let (other, _) = self_signed("manager.example");
        let own = WebIdentity::from_pem(&cert, &key).unwrap().leaf().clone();
        let other = parse_certs(&other, "certificate").unwrap().remove(0);
        let verifier = OwnCertificate { leaf: own.clone(), algorithms: provider().signature_verification_algorithms };
        let name = ServerName::try_from("127.0.0.1").unwrap();
        assert!(verifier.verify_server_cert(&own, &[], &name, &[], UnixTime::now()).is_ok());
        assert!(verifier.verify_server_cert(&other, &[], &name, &[], UnixTime::now()).is_err());
    }
}
