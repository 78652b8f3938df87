//! The scheduler's configuration: one TOML tree, every key documented with its default.
//!
//! With a manager (`[manager] addr`), the cluster's settings it hands out (parent limits, load
//! limits, block list) replace `[scheduling]`'s parent and load limits and `[block_list]` once it
//! first answers. Standalone (`addr = ""`, a site running only schedulers and dfdaemons), these
//! keys are the cluster's settings: give every scheduler of the site the same ones, and
//! `[manager] cluster_id` the cluster its certificates name.
//!
//! ```toml
//! [server]
//! # gRPC for peers. Default: 0.0.0.0:8002
//! grpc_addr = "0.0.0.0:8002"
//! # /healthy and /metrics. Default: 0.0.0.0:8004
//! http_addr = "0.0.0.0:8004"
//!
//! [scheduling]
//! # Parents offered to a peer at once. Default: 4
//! candidate_parent_limit = 4
//! # Candidates evaluated per decision. Default: 15
//! filter_parent_limit = 15
//! # Peers of one task fetching from the origin at once, seed peers included: bounds the
//! # single-source election and how many peers an origin serving ranges hands pieces to
//! # (1–10000). Default: 200
//! back_to_source_limit = 200
//! # Pieces of one task fetched at once from an origin that serves byte ranges, each by another
//! # peer, taking turns (1–1000). Fewer transfers at once make each piece whole, and passed
//! # on, sooner. Default: 3
//! origin_ranges_at_once = 3
//! # Children a normal peer uploads to at once at most, over what it announces (0 = what it
//! # announces). The manager's cluster setting peer_load_limit. Default: 0
//! peer_load_limit = 0
//! # The same for seed peers (the manager's seed_peer_load_limit). Default: 0
//! seed_peer_load_limit = 0
//!
//! [block_list]
//! # Downloads this cluster refuses to schedule: URLs matching one of these regexes, these
//! # applications, these tags. The manager's cluster block list replaces it. Default: none
//! urls = []
//! applications = []
//! tags = []
//!
//! [gc]
//! # Forget a host that has not announced itself for this long. Default: 3600
//! host_ttl_secs = 3600
//! # Forget a task without peers after this long. Default: 1800
//! task_ttl_secs = 1800
//! # Forget a peer that neither reported progress nor served a piece for this long (a finished
//! # peer is then no longer offered as a parent). Default: 86400 (24 h, Dragonfly's peerTTL)
//! peer_ttl_secs = 86400
//!
//! [host]
//! # Name registered with the manager. Default: the machine's hostname
//! hostname = ""
//! # Address peers reach this scheduler on. Default: server.grpc_addr's IP, or 127.0.0.1 when unspecified
//! ip = ""
//! # Data-centre and location labels the manager matches cluster scopes against. Default: ""
//! idc = ""
//! location = ""
//!
//! [manager]
//! # gRPC address of the manager, host:port ("" = standalone: no registration). Default: ""
//! addr = ""
//! # Cluster this scheduler belongs to. Default: 1
//! cluster_id = 1
//! # Seconds between keepalive messages. Default: 5
//! keepalive_interval_secs = 5
//! # Seconds between reads of the cluster's settings (parent limits). Default: 60
//! config_refresh_secs = 60
//! # The join token from the manager (POST /api/v1/clusters/<id>/join-tokens, role scheduler):
//! # used once to enrol, when [tls] holds no usable certificate. Default: ""
//! join_token = ""
//!
//! [tls]
//! # "mtls": peers and the manager must show certificates of the cluster's CA, and this
//! # scheduler shows its own. "plaintext": no TLS, nobody authenticated (debugging only).
//! # Default: mtls
//! mode = "mtls"
//! # Where the enrolled key and certificate are kept. Default: /var/lib/damselfly/scheduler/tls
//! dir = "/var/lib/damselfly/scheduler/tls"
//! # An operator's own certificate (PEM, leaf first), key and CA, instead of enrolling; all three
//! # or none. The certificate must name damselfly://scheduler/<cluster>/<hostname>-<ip>. Default: none
//! # cert = "/etc/damselfly/scheduler.crt"
//! # key = "/etc/damselfly/scheduler.key"
//! # ca = "/etc/damselfly/ca.crt"
//! ```

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
};

use serde::Deserialize;

use crate::Error;

/// The whole scheduler configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerConfig {
    /// Listening addresses.
    pub server: ServerConfig,
    /// Parent selection limits.
    pub scheduling: SchedulingConfig,
    /// Downloads refused, until a manager sends its cluster's list.
    pub block_list: BlockListConfig,
    /// Garbage collection of state.
    pub gc: GcConfig,
    /// How this scheduler presents itself to the manager.
    pub host: HostConfig,
    /// Registration with the manager.
    pub manager: ManagerClientConfig,
    /// Mutual TLS.
    pub tls: common::tls::TlsSettings,
}

/// How this scheduler presents itself to the manager and, through it, to peers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Registered name; empty means the machine's hostname.
    pub hostname: String,
    /// Address peers reach the gRPC port on; `None` derives it from `server.grpc_addr`.
    pub ip: Option<IpAddr>,
    /// Data-centre label.
    pub idc: String,
    /// `region|zone|rack` location label.
    pub location: String,
}

/// Registration with the manager.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerClientConfig {
    /// gRPC `host:port` of the manager; empty means standalone.
    pub addr: String,
    /// Cluster this scheduler belongs to.
    pub cluster_id: u64,
    /// Seconds between keepalive messages; well under the manager's keepalive timeout.
    pub keepalive_interval_secs: u64,
    /// Seconds between reads of the cluster's settings.
    pub config_refresh_secs: u64,
    /// Enrols with this when no certificate is at hand.
    pub join_token: String,
}

impl Default for ManagerClientConfig {
    fn default() -> Self {
        Self {
            addr: String::new(),
            cluster_id: 1,
            keepalive_interval_secs: 5,
            config_refresh_secs: 60,
            join_token: String::new(),
        }
    }
}

/// Parent selection limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulingConfig {
    /// Parents offered to a peer at once (1–20).
    pub candidate_parent_limit: usize,
    /// Candidates evaluated per decision (10–1000).
    pub filter_parent_limit: usize,
    /// Peers of one task fetching from the origin at once (1–10000).
    pub back_to_source_limit: usize,
    /// Pieces of one task fetched at once from an origin serving ranges (1–1000).
    pub origin_ranges_at_once: usize,
    /// Children a normal peer uploads to at once at most; 0: what it announces.
    pub peer_load_limit: u32,
    /// Children a seed peer uploads to at once at most; 0: what it announces.
    pub seed_peer_load_limit: u32,
}

/// Downloads the cluster refuses, as the manager's cluster block list says them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlockListConfig {
    /// URL regexes.
    pub urls: Vec<String>,
    /// Applications, exactly.
    pub applications: Vec<String>,
    /// Tags, exactly.
    pub tags: Vec<String>,
}

impl BlockListConfig {
    /// The list to enforce; a pattern that does not compile is an error.
    pub fn build(&self) -> Result<crate::scheduling::BlockList, Error> {
        let (list, bad) = crate::scheduling::BlockList::new(self.applications.clone(), &self.urls, self.tags.clone());
        if let Some(p) = bad.first() {
            return Err(Error::Config(format!("block_list.urls: {p:?} is not a valid regex")));
        }
        Ok(list)
    }
}

impl Default for SchedulingConfig {
    fn default() -> Self {
        Self {
            candidate_parent_limit: crate::scheduling::DEFAULT_CANDIDATE_PARENT_LIMIT,
            filter_parent_limit: crate::scheduling::DEFAULT_FILTER_PARENT_LIMIT,
            back_to_source_limit: crate::scheduling::DEFAULT_BACK_TO_SOURCE_LIMIT,
            origin_ranges_at_once: crate::scheduling::DEFAULT_ORIGIN_RANGES_AT_ONCE,
            peer_load_limit: 0,
            seed_peer_load_limit: 0,
        }
    }
}

/// Listening addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// gRPC for peers.
    pub grpc_addr: SocketAddr,
    /// `/healthy` and `/metrics`.
    pub http_addr: SocketAddr,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self { grpc_addr: ([0, 0, 0, 0], 8002).into(), http_addr: ([0, 0, 0, 0], 8004).into() }
    }
}

/// Garbage collection of state.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// Seconds after which a host that stopped announcing is forgotten.
    pub host_ttl_secs: u64,
    /// Seconds after which a task without peers is forgotten.
    pub task_ttl_secs: u64,
    /// Seconds after which a peer that neither reported nor served anything is forgotten.
    pub peer_ttl_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self { host_ttl_secs: 3600, task_ttl_secs: 1800, peer_ttl_secs: 86_400 }
    }
}

/// Values from flags or the environment; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub grpc_addr: Option<SocketAddr>,
    pub http_addr: Option<SocketAddr>,
    pub manager_addr: Option<String>,
    pub join_token: Option<String>,
    pub tls_dir: Option<std::path::PathBuf>,
}

impl SchedulerConfig {
    /// Reads `path` (if any), applies `overrides`, derives defaults and validates.
    /// `machine_hostname` fills an empty `host.hostname`.
    pub fn load(path: Option<&Path>, overrides: Overrides, machine_hostname: &str) -> Result<Self, Error> {
        let mut config: Self = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
            }
            None => Self::default(),
        };
        if let Some(v) = overrides.grpc_addr {
            config.server.grpc_addr = v;
        }
        if let Some(v) = overrides.http_addr {
            config.server.http_addr = v;
        }
        if let Some(v) = overrides.manager_addr {
            config.manager.addr = v;
        }
        if let Some(v) = overrides.join_token {
            config.manager.join_token = v;
        }
        if let Some(v) = overrides.tls_dir {
            config.tls.dir = v;
        }
        if config.host.hostname.is_empty() {
            config.host.hostname = machine_hostname.to_owned();
        }
        if config.tls.dir.as_os_str().is_empty() {
            config.tls.dir = std::path::PathBuf::from("/var/lib/damselfly/scheduler/tls");
        }
        if !(1..=20).contains(&config.scheduling.candidate_parent_limit) {
            return Err(Error::Config("scheduling.candidate_parent_limit must be 1–20".into()));
        }
        if !(10..=1000).contains(&config.scheduling.filter_parent_limit) {
            return Err(Error::Config("scheduling.filter_parent_limit must be 10–1000".into()));
        }
        if !(1..=10_000).contains(&config.scheduling.back_to_source_limit) {
            return Err(Error::Config("scheduling.back_to_source_limit must be 1–10000".into()));
        }
        if !(1..=1000).contains(&config.scheduling.origin_ranges_at_once) {
            return Err(Error::Config("scheduling.origin_ranges_at_once must be 1–1000".into()));
        }
        config.block_list.build()?;
        if config.gc.host_ttl_secs == 0 {
            return Err(Error::Config("gc.host_ttl_secs must be at least 1".into()));
        }
        if config.gc.peer_ttl_secs == 0 {
            return Err(Error::Config("gc.peer_ttl_secs must be at least 1".into()));
        }
        if !config.manager.addr.is_empty()
            && tonic::transport::Endpoint::from_shared(format!("http://{}", config.manager.addr)).is_err()
        {
            return Err(Error::Config(format!("manager.addr {:?} must be host:port", config.manager.addr)));
        }
        if config.manager.cluster_id == 0 {
            return Err(Error::Config("manager.cluster_id must be at least 1".into()));
        }
        if config.manager.keepalive_interval_secs == 0 || config.manager.config_refresh_secs == 0 {
            return Err(Error::Config(
                "manager.keepalive_interval_secs and manager.config_refresh_secs must be at least 1".into(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_is_strict_and_validated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        let load = |text: &str| {
            std::fs::write(&path, text).unwrap();
            SchedulerConfig::load(Some(&path), Overrides::default(), "box")
        };
        let err = load("[gc]\nhost_ttl = 5\n").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
        let err = load("[gc]\nhost_ttl_secs = 0\n").unwrap_err();
        assert!(err.to_string().contains("host_ttl_secs"), "{err}");
        let c = load("[gc]\nhost_ttl_secs = 60\n").unwrap();
        assert_eq!(c.gc.host_ttl_secs, 60);
        assert_eq!(c.server.grpc_addr.port(), 8002);
        assert_eq!(c.host.hostname, "box");
        assert!(c.manager.addr.is_empty());
        assert_eq!(c.scheduling.back_to_source_limit, 200);
        assert_eq!(c.gc.peer_ttl_secs, 86_400);
        let err = load("[gc]\npeer_ttl_secs = 0\n").unwrap_err();
        assert!(err.to_string().contains("peer_ttl_secs"), "{err}");
        let err = load("[scheduling]\nback_to_source_limit = 0\n").unwrap_err();
        assert!(err.to_string().contains("back_to_source_limit"), "{err}");
        let c = load("[scheduling]\nback_to_source_limit = 3\n").unwrap();
        assert_eq!(c.scheduling.back_to_source_limit, 3);
        assert_eq!(c.scheduling.origin_ranges_at_once, 3, "the default");
        let err = load("[scheduling]\norigin_ranges_at_once = 0\n").unwrap_err();
        assert!(err.to_string().contains("origin_ranges_at_once"), "{err}");
        let c = load("[scheduling]\norigin_ranges_at_once = 8\n").unwrap();
        assert_eq!(c.scheduling.origin_ranges_at_once, 8);
        let c = load("[scheduling]\npeer_load_limit = 5\nseed_peer_load_limit = 50\n").unwrap();
        assert_eq!((c.scheduling.peer_load_limit, c.scheduling.seed_peer_load_limit), (5, 50));
        let c = load("[block_list]\nurls = [\"^https://big\\\\.example/\"]\ntags = [\"nightly\"]\n").unwrap();
        let list = c.block_list.build().unwrap();
        assert!(list.refuses("https://big.example/m", "", "").is_some());
        assert!(list.refuses("https://small.example/m", "", "nightly").is_some());
        assert!(list.refuses("https://small.example/m", "", "").is_none());
        let err = load("[block_list]\nurls = [\"(\"]\n").unwrap_err();
        assert!(err.to_string().contains("block_list.urls"), "{err}");
        let err = load("[manager]\naddr = \"a b\"\n").unwrap_err();
        assert!(err.to_string().contains("manager.addr"), "{err}");
    }
}
