//! Hosts that announced themselves.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::{Duration, Instant},
};

use common::ids::HostId;

/// What a host does in the P2P network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKind {
    /// Downloads for local clients and uploads to others.
    Normal,
    /// Fetches new tasks from the origin first and serves them to the cluster.
    Seed,
}

/// A machine running a dfdaemon, as it announced itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    pub id: HostId,
    pub hostname: String,
    pub ip: String,
    /// TCP port of its piece transport.
    pub upload_port: u16,
    pub kind: HostKind,
    /// Data-centre label ("" when unknown).
    pub idc: String,
    /// `region|zone|rack`-style location ("" when unknown).
    pub location: String,
    /// Maximum concurrent uploads it accepts.
    pub upload_limit: u32,
    pub version: String,
}

#[derive(Debug)]
struct Entry {
    /// Shared, so a decision reads a candidate's host without copying its strings.
    host: Arc<Host>,
    last_announce: Instant,
}

/// All known hosts, refreshed by announcements and forgotten after a TTL.
#[derive(Debug, Default)]
pub struct Hosts {
    inner: RwLock<HashMap<HostId, Entry>>,
}

impl Hosts {
    /// Records or refreshes `host`, stamped `now`.
    pub fn announce(&self, host: Host, now: Instant) {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.insert(host.id.clone(), Entry { host: Arc::new(host), last_announce: now });
    }

    /// Forgets a host; returns whether it was known.
    pub fn leave(&self, id: &HostId) -> bool {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).remove(id).is_some()
    }

    /// A snapshot of one host.
    pub fn get(&self, id: &HostId) -> Option<Host> {
        self.shared(id).map(|h| (*h).clone())
    }

    /// One host as announced, shared rather than copied (parent selection reads every
    /// candidate's).
    pub fn shared(&self, id: &HostId) -> Option<Arc<Host>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).get(id).map(|e| e.host.clone())
    }

    /// A snapshot of every host.
    pub fn all(&self) -> Vec<Host> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).values().map(|e| (*e.host).clone()).collect()
    }

    /// How many hosts are known.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no host is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets hosts whose last announcement is older than `ttl` at `now`; returns their ids.
    pub fn collect_garbage(&self, ttl: Duration, now: Instant) -> Vec<HostId> {
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        let gone: Vec<HostId> = map
            .iter()
            .filter(|(_, e)| now.saturating_duration_since(e.last_announce) >= ttl)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            map.remove(id);
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str) -> Host {
        Host {
            id: HostId::for_host(name, "127.0.0.1", false),
            hostname: name.into(),
            ip: "127.0.0.1".into(),
            upload_port: 4000,
            kind: HostKind::Normal,
            idc: String::new(),
            location: String::new(),
            upload_limit: 50,
            version: "0.1.0".into(),
        }
    }

    #[test]
    fn announce_refreshes_and_gc_forgets_silent_hosts() {
        let hosts = Hosts::default();
        let t0 = Instant::now();
        hosts.announce(host("a"), t0);
        hosts.announce(host("b"), t0);
        let mut a2 = host("a");
        a2.upload_port = 4100;
        hosts.announce(a2, t0 + Duration::from_secs(50));
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts.get(&host("a").id).unwrap().upload_port, 4100);

        let removed = hosts.collect_garbage(Duration::from_secs(60), t0 + Duration::from_secs(70));
        assert_eq!(removed, vec![host("b").id]);
        assert!(hosts.get(&host("b").id).is_none());
        assert!(hosts.leave(&host("a").id));
        assert!(!hosts.leave(&host("a").id));
        assert!(hosts.is_empty());
    }
}
