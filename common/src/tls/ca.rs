//! The cluster's certificate authority: the manager's by default, generated on first start, or
//! an operator's own CA loaded from files.
//!
//! It signs one kind of certificate: a leaf naming exactly one [`Identity`] (plus the holder's
//! DNS name and address, for operators' tools), usable as client and server alike. From a
//! certificate request it takes the public key and nothing else: what a certificate says is
//! decided here from the join token that admitted its holder, never from what was asked for.

use std::{
    net::IpAddr,
    path::Path,
    time::{Duration, SystemTime},
};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateSigningRequestDer};
use sha2::{Digest as _, Sha256};

use super::{Credentials, Error, Identity, WebIdentity, credentials::write_private};

/// Longest certificate request accepted: an ECDSA or RSA-4096 request is well under it.
pub const MAX_CSR_BYTES: usize = 16 * 1024;

/// A generated CA lasts this long.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);

/// Clocks disagree; a certificate is valid from a little before it was made.
const BACKDATE: Duration = Duration::from_secs(300);

/// The CA certificate and the key that signs with it.
pub struct CertificateAuthority {
    cert: CertificateDer<'static>,
    cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority").field("sha256", &self.fingerprint()).finish_non_exhaustive()
    }
}

/// Names a leaf carries besides its identity.
#[derive(Debug, Clone, Default)]
pub struct AltNames {
    pub dns: Vec<String>,
    pub ips: Vec<IpAddr>,
}

impl CertificateAuthority {
    /// A new self-signed CA.
    pub fn generate(common_name: &str) -> Result<(Self, String), Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = SystemTime::now();
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + CA_VALIDITY).into();
        params.serial_number = Some(serial(key.der_bytes(), now));
        let cert = params.self_signed(&key)?;
        let key_pem = key.serialize_pem();
        let ca = Self { cert_pem: cert.pem(), cert: cert.der().clone(), issuer: Issuer::new(params, key) };
        Ok((ca, key_pem))
    }

    /// A CA from its certificate and key in PEM (an operator's, or one generated earlier).
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, Error> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| Error::Malformed { what: "CA key", detail: e.to_string() })?;
        let cert = super::credentials::parse_certs(cert_pem, "CA certificate")?
            .into_iter()
            .next()
            .ok_or(Error::Malformed { what: "CA certificate", detail: "no certificate in the PEM".into() })?;
        let issuer = Issuer::from_ca_cert_der(&cert, key)
            .map_err(|e| Error::Malformed { what: "CA certificate", detail: e.to_string() })?;
        Ok(Self { cert_pem: cert_pem.to_owned(), cert, issuer })
    }

    /// The CA in `dir` (`ca.crt`, `ca.key`), made there on first use; the key is written 0600.
    pub fn load_or_generate(dir: &Path) -> Result<Self, Error> {
        Self::load_or_generate_named(dir, "Damselfly cluster CA")
    }

    /// [`load_or_generate`](Self::load_or_generate) for another CA than the cluster's (the
    /// proxy's, whose certificates clients trust for the hosts it intercepts): a CA generated
    /// here is named `common_name`. The certificate stays readable by all, for operators to
    /// install in trust stores.
    pub fn load_or_generate_named(dir: &Path, common_name: &str) -> Result<Self, Error> {
        let (cert_path, key_path) = (dir.join("ca.crt"), dir.join("ca.key"));
        if cert_path.exists() || key_path.exists() {
            return Self::load(&cert_path, &key_path);
        }
        let (ca, key_pem) = Self::generate(common_name)?;
        Self::store_pem(dir, &ca.cert_pem, &key_pem)?;
        Ok(ca)
    }

    /// Writes a CA's certificate and key as `dir/ca.crt` and `dir/ca.key` (0600), as
    /// [`load_or_generate`](Self::load_or_generate) reads them.
    pub fn store_pem(dir: &Path, cert_pem: &str, key_pem: &str) -> Result<(), Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::File { path: dir.to_owned(), source })?;
        write_private(&dir.join("ca.key"), key_pem.as_bytes())?;
        let cert_path = dir.join("ca.crt");
        std::fs::write(&cert_path, cert_pem.as_bytes()).map_err(|source| Error::File { path: cert_path, source })
    }

    /// A CA from two PEM files.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, Error> {
        let read = |p: &Path| std::fs::read_to_string(p).map_err(|source| Error::File { path: p.to_owned(), source });
        Self::from_pem(&read(cert_path)?, &read(key_path)?)
    }

    /// The CA certificate.
    pub fn cert(&self) -> &CertificateDer<'static> {
        &self.cert
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// SHA-256 of the CA certificate, in hex: what a join token pins.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert)
    }

    /// Signs a leaf for `identity` over the public key of a certificate request (whose signature
    /// must hold); everything else the request asks for is ignored. The answer is PEM: the leaf,
    /// then this CA.
    pub fn issue_for_request(
        &self,
        csr_der: &[u8],
        identity: &Identity,
        names: &AltNames,
        validity: Duration,
    ) -> Result<String, Error> {
        if csr_der.len() > MAX_CSR_BYTES {
            return Err(Error::Malformed {
                what: "certificate request",
                detail: format!("over {MAX_CSR_BYTES} bytes"),
            });
        }
        let csr = CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
            .map_err(|e| Error::Malformed { what: "certificate request", detail: e.to_string() })?;
        let params = leaf(identity, names, validity, csr.public_key.der_bytes())?;
        // The CA follows the leaf, so a client pinning the CA finds it in the handshake.
        Ok(format!("{}{}", params.signed_by(&csr.public_key, &self.issuer)?.pem(), self.cert_pem))
    }

    /// A key and a leaf for `identity`, made here (the manager's own, and tests').
    pub fn issue(&self, identity: &Identity, names: &AltNames, validity: Duration) -> Result<Credentials, Error> {
        let key = KeyPair::generate()?;
        let params = leaf(identity, names, validity, key.der_bytes())?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Credentials::from_pem(&format!("{}{}", cert.pem(), self.cert_pem), &key.serialize_pem(), &self.cert_pem)
    }

    /// A key and a web server leaf for `names` (DNS names and addresses, no identity), usable
    /// for server authentication only: what an intercepting proxy shows a client for the host
    /// it asked for. A name that is not a DNS name is an error.
    pub fn issue_web(&self, names: &AltNames, validity: Duration) -> Result<WebIdentity, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let first = names.dns.first().cloned().or_else(|| names.ips.first().map(ToString::to_string));
        params.distinguished_name = name(first.as_deref().unwrap_or("damselfly"));
        for dns in &names.dns {
            let dns = rcgen::string::Ia5String::try_from(dns.clone())
                .map_err(|e| Error::Malformed { what: "DNS name", detail: e.to_string() })?;
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
        params.subject_alt_names.extend(names.ips.iter().copied().map(SanType::IpAddress));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        params.not_before = (now - BACKDATE).into();
        params.not_after = (now + validity).into();
        params.serial_number = Some(serial(key.der_bytes(), now));
        let cert = params.signed_by(&key, &self.issuer)?;
        WebIdentity::from_pem(&format!("{}{}", cert.pem(), self.cert_pem), &key.serialize_pem())
    }
}

/// A certificate request, bounded in size and with a signature that holds.
pub fn parse_request(csr_der: &[u8]) -> Result<CertificateSigningRequestParams, Error> {
    if csr_der.len() > MAX_CSR_BYTES {
        return Err(Error::Malformed { what: "certificate request", detail: format!("over {MAX_CSR_BYTES} bytes") });
    }
    CertificateSigningRequestParams::from_der(&CertificateSigningRequestDer::from(csr_der))
        .map_err(|e| Error::Malformed { what: "certificate request", detail: e.to_string() })
}

/// SHA-256 of a certificate, in hex.
pub fn fingerprint(cert: &[u8]) -> String {
    hex::encode(Sha256::digest(cert))
}

fn leaf(
    identity: &Identity,
    names: &AltNames,
    validity: Duration,
    public_key: &[u8],
) -> Result<CertificateParams, Error> {
    let mut params = CertificateParams::default();
    params.distinguished_name = name(&identity.host_id.0);
    let uri = rcgen::string::Ia5String::try_from(identity.uri()).map_err(|e| Error::Identity(e.to_string()))?;
    params.subject_alt_names.push(SanType::URI(uri));
    for dns in &names.dns {
        // A hostname that is no DNS name is simply not named; the identity is what counts.
        if let Ok(dns) = rcgen::string::Ia5String::try_from(dns.clone())
            && !dns.as_str().is_empty()
        {
            params.subject_alt_names.push(SanType::DnsName(dns));
        }
    }
    params.subject_alt_names.extend(names.ips.iter().copied().map(SanType::IpAddress));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let now = SystemTime::now();
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + validity).into();
    params.serial_number = Some(serial(public_key, now));
    Ok(params)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Damselfly");
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A serial no two certificates share: the key and the instant, hashed; positive, 16 bytes.
fn serial(public_key: &[u8], at: SystemTime) -> SerialNumber {
    let nanos = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let mut bytes: [u8; 16] = Sha256::new().chain_update(public_key).chain_update(nanos.to_be_bytes()).finalize()[..16]
        .try_into()
        .unwrap_or_default();
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    SerialNumber::from_slice(&bytes)
}
