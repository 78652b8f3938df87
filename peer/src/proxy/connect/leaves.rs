//! The certificates an intercepting proxy shows: one leaf per CONNECT host, signed by the
//! proxy's CA, made on first use and kept for a while.
//!
//! A leaf names exactly the host the CONNECT named (a DNS name, or an address as an IP SAN),
//! serves for server authentication only, and lasts [`VALIDITY`]; it is reused for
//! [`REUSE`], so a cached one always has days left. At most [`CAPACITY`] hosts are kept (the
//! oldest leaf goes first): a client naming endless hosts costs a key generation each, never
//! memory.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::tls::{CertificateAuthority, ca::AltNames};
use tokio::time::Instant;
use url::Host;

/// Hosts whose leaves are kept.
const CAPACITY: usize = 1024;
/// How long a leaf is valid.
const VALIDITY: Duration = Duration::from_secs(7 * 86_400);
/// How long a leaf is shown before a new one is made.
const REUSE: Duration = Duration::from_secs(86_400);

/// The proxy CA and the leaves it has made.
pub(super) struct Leaves {
    ca: CertificateAuthority,
    cache: Mutex<HashMap<String, Leaf>>,
    /// [`CAPACITY`], smaller in tests.
    capacity: usize,
}

impl std::fmt::Debug for Leaves {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaves").field("ca", &self.ca).finish_non_exhaustive()
    }
}

struct Leaf {
    config: Arc<rustls::ServerConfig>,
    made: Instant,
}

impl Leaves {
    pub(super) fn new(ca: CertificateAuthority) -> Self {
        Self { ca, cache: Mutex::new(HashMap::new()), capacity: CAPACITY }
    }

    /// The TLS server configuration presenting a leaf for `target`'s host (made, or cached).
    pub(super) fn server_config(&self, target: &url::Url) -> Result<Arc<rustls::ServerConfig>, common::tls::Error> {
        let (key, names) = match target.host() {
            Some(Host::Domain(d)) => (d.to_owned(), AltNames { dns: vec![d.to_owned()], ips: Vec::new() }),
            Some(Host::Ipv4(ip)) => (ip.to_string(), AltNames { dns: Vec::new(), ips: vec![ip.into()] }),
            Some(Host::Ipv6(ip)) => (ip.to_string(), AltNames { dns: Vec::new(), ips: vec![ip.into()] }),
            None => {
                return Err(common::tls::Error::Malformed { what: "CONNECT target", detail: "no host".into() });
            }
        };
        if let Some(leaf) = self.lock().get(&key).filter(|l| l.made.elapsed() < REUSE) {
            return Ok(leaf.config.clone());
        }
        let config = self.ca.issue_web(&names, VALIDITY)?.server_config()?;
        let mut cache = self.lock();
        if cache.len() >= self.capacity && !cache.contains_key(&key) {
            let oldest = cache.iter().min_by_key(|(_, l)| l.made).map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                cache.remove(&oldest);
            }
        }
        cache.insert(key, Leaf { config: config.clone(), made: Instant::now() });
        Ok(config)
    }

    /// The CA that signs the leaves.
    #[cfg(test)]
    pub(super) fn ca(&self) -> &CertificateAuthority {
        &self.ca
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Leaf>> {
        self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_gets_one_cached_leaf_and_the_cache_stays_bounded() {
        let (ca, _) = CertificateAuthority::generate("test proxy CA").unwrap();
        let leaves = Leaves { capacity: 8, ..Leaves::new(ca) };
        let url = |h: &str| url::Url::parse(&format!("https://{h}:443/")).unwrap();
        let a = leaves.server_config(&url("registry.example")).unwrap();
        let again = leaves.server_config(&url("registry.example")).unwrap();
        assert!(Arc::ptr_eq(&a, &again), "the leaf is cached");
        leaves.server_config(&url("10.1.2.3")).unwrap();
        leaves.server_config(&url("[fd00::1]")).unwrap();
        assert_eq!(leaves.len(), 3);
        for i in 0..20 {
            leaves.server_config(&url(&format!("h{i}.example"))).unwrap();
        }
        assert_eq!(leaves.len(), 8);
        assert!(!leaves.lock().contains_key("registry.example"), "the oldest went first");
        assert!(leaves.lock().contains_key("h19.example"));
    }
}
