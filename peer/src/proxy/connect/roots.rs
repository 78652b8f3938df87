//! The CA certificates upstream HTTPS is verified against, besides the built-in Mozilla roots:
//! the system's bundle, where the distribution keeps it (so a CA an operator installed with
//! `update-ca-certificates` or `update-ca-trust` counts), and the files `upstream_ca_certs` names.
//!
//! A certificate of the system's bundle that rustls cannot take is skipped (the bundle is not
//! the operator's to fix); one in a named file is a configuration error: it was asked for.
//! Verification itself is never turned off.

use std::path::Path;

use rustls_pki_types::{CertificateDer, pem::PemObject};

use crate::{Error, config::ConnectConfig};

/// Where distributions keep the system's CA bundle: Debian and Ubuntu, Fedora and RHEL,
/// Alpine and Arch. The first one present is read.
const SYSTEM_BUNDLES: [&str; 3] =
    ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// The roots `[proxy.connect]` adds for the origin clients.
pub fn upstream_roots(config: &ConnectConfig) -> Result<Vec<CertificateDer<'static>>, Error> {
    let mut roots = Vec::new();
    if config.system_roots
        && let Some(bundle) = SYSTEM_BUNDLES.iter().map(Path::new).find(|p| p.exists())
    {
        let found = std::fs::read(bundle).map(|pem| usable(&pem)).unwrap_or_default();
        tracing::debug!(bundle = %bundle.display(), certificates = found.len(), "system CA bundle");
        roots.extend(found);
    }
    for path in &config.upstream_ca_certs {
        let bad =
            |detail: String| Error::Config(format!("proxy.connect.upstream_ca_certs: {}: {detail}", path.display()));
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs =
            CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in the file".into()));
        }
        for cert in certs {
            rustls::RootCertStore::empty().add(cert.clone()).map_err(|e| bad(e.to_string()))?;
            roots.push(cert);
        }
    }
    Ok(roots)
}

/// The certificates of a PEM bundle rustls takes as roots; the others are left out.
fn usable(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .filter(|cert| rustls::RootCertStore::empty().add(cert.clone()).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PEM block holding "not a certificate".
    const NOT_A_CERTIFICATE: &str =
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";

    #[test]
    fn a_bundle_s_unusable_certificates_are_skipped_and_a_named_file_s_are_errors() {
        let (ca, _) = common::tls::CertificateAuthority::generate("upstream CA").unwrap();
        let bundle = format!("{}{NOT_A_CERTIFICATE}", ca.cert_pem());
        assert_eq!(usable(bundle.as_bytes()), vec![ca.cert().clone()]);

        let dir = tempfile::tempdir().unwrap();
        let (good, bad) = (dir.path().join("good.crt"), dir.path().join("bad.crt"));
        std::fs::write(&good, ca.cert_pem()).unwrap();
        std::fs::write(&bad, &bundle).unwrap();
        let named = |paths: Vec<std::path::PathBuf>| {
            upstream_roots(&ConnectConfig { upstream_ca_certs: paths, system_roots: false, ..Default::default() })
        };
        assert_eq!(named(vec![good.clone()]).unwrap(), vec![ca.cert().clone()]);
        let err = named(vec![good, bad]).unwrap_err().to_string();
        assert!(err.contains("proxy.connect.upstream_ca_certs") && err.contains("bad.crt"), "{err}");
        let err = named(vec![dir.path().join("none.crt")]).unwrap_err().to_string();
        assert!(err.contains("none.crt"), "{err}");
    }
}
