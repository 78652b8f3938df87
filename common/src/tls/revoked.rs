//! Revoked certificates: the serial numbers of certificates the CA issued that must no longer be
//! honoured, before they expire.
//!
//! The manager keeps the record (who revoked which host's certificates, and why) and hands each
//! scheduler and dfdaemon the serials of its cluster with the settings they already poll, so a
//! revocation reaches every component within one refresh. A component's [`Revocations`] is one
//! shared set, held by its [`super::Credentials`] and every TLS configuration made from them:
//! replacing its contents takes effect at the next handshake (the verifiers consult it) and at
//! the next request on a connection already open ([`super::Caller::of`] does), without a restart.
//!
//! Serials, not hosts, are what is refused: a host that is re-imaged and enrols again with a new
//! join token gets a new serial and is welcome, while its stolen old key stays refused.

use std::{
    collections::HashSet,
    sync::{Arc, RwLock},
};

use super::Error;

/// The most serials a component keeps for its cluster: far above any real revocation list,
/// low enough that a hostile list cannot take a component's memory.
pub const MAX_REVOKED: usize = 100_000;

/// The revoked serial numbers a component refuses, shared by its TLS configurations.
#[derive(Debug, Clone)]
pub struct Revocations(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    set: RwLock<HashSet<String>>,
    /// Bumped whenever a serial is newly revoked, for streams that must end then.
    changed: tokio::sync::watch::Sender<u64>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self(Arc::new(Inner { set: RwLock::default(), changed: tokio::sync::watch::Sender::new(0) }))
    }
}

impl Revocations {
    /// Whether the certificate with `serial` (lowercase hex, as [`serial_of`] gives it) is
    /// revoked.
    pub fn contains(&self, serial: &str) -> bool {
        self.0.set.read().unwrap_or_else(std::sync::PoisonError::into_inner).contains(serial)
    }

    /// A receiver that sees a change each time a serial is newly revoked.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.0.changed.subscribe()
    }

    /// Makes `serials` the whole revoked set, refusing a list over [`MAX_REVOKED`] or with an
    /// entry that is not a serial; answers how many serials are newly revoked.
    pub fn replace<I, S>(&self, serials: I) -> Result<usize, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut next = HashSet::new();
        for serial in serials {
            if next.len() == MAX_REVOKED {
                return Err(Error::Malformed {
                    what: "revocation list",
                    detail: format!("over {MAX_REVOKED} serials"),
                });
            }
            next.insert(normalise(serial.as_ref())?);
        }
        let added = {
            let mut set = self.0.set.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let added = next.difference(&set).count();
            *set = next;
            added
        };
        if added > 0 {
            self.0.changed.send_modify(|v| *v += 1);
        }
        Ok(added)
    }

    /// How many serials are revoked.
    pub fn len(&self) -> usize {
        self.0.set.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Refuses `leaf` if its serial is revoked: the check a verifier runs after the chain.
    pub(crate) fn check(&self, leaf: &[u8]) -> Result<(), rustls::Error> {
        if self.is_empty() {
            return Ok(());
        }
        let serial = serial_of(leaf).map_err(|e| rustls::Error::General(e.to_string()))?;
        if self.contains(&serial) {
            return Err(rustls::Error::General(format!("certificate {serial} was revoked")));
        }
        Ok(())
    }
}

/// The serial number of a DER certificate, lowercase hex without separators or leading zeros
/// beyond the encoding's own.
pub fn serial_of(der: &[u8]) -> Result<String, Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| Error::Malformed { what: "certificate", detail: e.to_string() })?;
    Ok(hex::encode(cert.raw_serial()))
}

/// A serial as given in a list: 1–40 hex digits (RFC 5280 caps serials at 20 bytes), lowercased.
fn normalise(serial: &str) -> Result<String, Error> {
    if serial.is_empty() || serial.len() > 40 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Malformed {
            what: "revoked serial",
            detail: format!("{:?} is not 1 to 40 hex digits", trim(serial)),
        });
    }
    Ok(serial.to_ascii_lowercase())
}

fn trim(s: &str) -> String {
    s.chars().take(48).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_replaces_the_set_and_counts_what_is_new() {
        let r = Revocations::default();
        assert_eq!(r.replace(["0A1b", "ff"]).unwrap(), 2);
        assert!(r.contains("0a1b") && r.contains("ff"));
        assert_eq!(r.replace(["ff", "01"]).unwrap(), 1);
        assert!(!r.contains("0a1b"), "a serial no longer listed is honoured again");
        assert_eq!(r.len(), 2);
    }

    #[test]
    fn a_bad_or_oversized_list_changes_nothing() {
        let r = Revocations::default();
        r.replace(["ab"]).unwrap();
        for bad in ["", "xyz", "../etc", &"a".repeat(41)] {
            assert!(r.replace(["cd", bad]).is_err(), "{bad:?}");
        }
        let huge = (0..=MAX_REVOKED).map(|i| format!("{i:x}"));
        assert!(r.replace(huge).is_err());
        assert!(r.contains("ab") && r.len() == 1);
    }
}
