//! The dfdaemon's configuration: one TOML tree, every key documented with its default.
//!
//! ```toml
//! # Content, metadata and the download socket live here. Default: /var/lib/damselfly/dfdaemon
//! data_dir = "/var/lib/damselfly/dfdaemon"
//! # Seed mode: fetch new tasks from the origin first and serve them to the cluster. Default: false
//! seed = false
//!
//! [host]
//! # Name announced to the scheduler. Default: the machine's hostname
//! hostname = ""
//! # Address other peers reach this host on. Default: 127.0.0.1
//! ip = "127.0.0.1"
//! # Data-centre and location labels for parent affinity. Default: ""
//! idc = ""
//! location = ""
//!
//! [server]
//! # Unix socket of the local download API (what `dfget --endpoint` takes). Default: <data_dir>/dfdaemon.sock
//! socket = ""
//! # /healthy and /metrics. Default: 0.0.0.0:4003
//! http_addr = "0.0.0.0:4003"
//! # Piece transport other peers download from. Default: 0.0.0.0:4000
//! upload_addr = "0.0.0.0:4000"
//! # HTTP proxy and registry mirror for the node's runtimes and HTTP clients. Default:
//! # 127.0.0.1:4001: the proxy fetches the public URLs it is given (see [proxy]), so it is this
//! # machine's alone unless an operator opens it (e.g. to pods through the node's address)
//! # behind a firewall.
//! proxy_addr = "127.0.0.1:4001"
//!
//! [proxy]
//! # GET requests whose URL matches one of these regexes go through P2P. Default: ["blobs/sha256.*"]
//! rules = ["blobs/sha256.*"]
//! # Upstream for mirror requests that name none (X-Dragonfly-Registry, ?ns=). Its host is
//! # trusted as configured: reached even on a private address or outside allowed_hosts.
//! # Default: "" (none)
//! registry_mirror = ""
//! # Seconds a registry's acceptance of a requester's credentials for a blob is reused before
//! # the blob is served from the P2P network again without asking (a HEAD of the blob at the
//! # registry); 0 asks every time. Default: 60
//! auth_cache_secs = 60
//! # The task id of an OCI blob URL (/v2/<repository>/blobs/sha256:<hex>) comes from its digest
//! # alone, so the same layer from several registries or repositories is fetched from an origin
//! # once (its content is checked against the digest before it is served, and each requester is
//! # still checked by its own registry). A request's
//! # X-Dragonfly-Enable-Task-ID-Based-Blob-Digest: true|false decides for itself. Default: false
//! blob_digest_task_id = false
//! # More upstream registries for runtimes that name none (CRI-O, podman): each behind a path
//! # prefix. A registries.conf mirror `location = "127.0.0.1:4001/reg-a"` sends
//! # /v2/reg-a/<repository>/..., which goes to this upstream as /v2/<repository>/... . A prefix is
//! # one or more repository path components; a repository of the default upstream starting with
//! # it is shadowed. The upstreams are trusted like registry_mirror. With entries, the dfdaemon
//! # answers /v2/ itself and relays token requests to each upstream's token service. Default: []
//! # [[proxy.registries]]
//! # prefix = "reg-a"
//! # upstream = "https://reg-a.example.com"
//! # Hosts that proxy requests and seed orders may fetch from: "registry.example.com",
//! # "*.example.com" (names under it), or an address or CIDR ("203.0.113.0/24", matching URLs
//! # that name an address). Each redirect hop is checked too. Default: [] (any host)
//! allowed_hosts = []
//! # Proxy requests and seed orders never reach an address that is not public (loopback,
//! # private, link-local such as 169.254.169.254, CGNAT, unspecified, multicast, their IPv4-in-
//! # IPv6 forms…) unless it lies in one of these networks, e.g. ["10.20.0.0/16"] for an origin
//! # on the LAN. A name is refused when any of its addresses is. `dfget` downloads (the local
//! # user's own) are not restricted. Default: [] (public addresses only)
//! allowed_private_networks = []
//!
//! [proxy.connect]
//! # HTTPS_PROXY clients send CONNECT host:port; the target is held to the [proxy] policy like
//! # any proxy request (a 403 otherwise). Hosts matching these patterns ("registry.example.com",
//! # "*.example.com", an address or CIDR, or "*" for every host) are intercepted: the client's
//! # TLS ends here with a certificate for the host signed by the proxy's CA, and its requests
//! # take the proxy's path (blobs through P2P); every other CONNECT is a byte tunnel.
//! # Default: [] (intercept nothing)
//! intercept = []
//! # The CA that signs intercepted hosts' certificates, PEM; both or neither. Clients must trust
//! # it. Default: generated on first start in <data_dir>/proxy-ca (ca.crt; ca.key 0600), kept
//! # for later starts, and logged with its path. It is not the cluster's mTLS CA.
//! # ca_cert = "/etc/damselfly/proxy-ca.crt"
//! # ca_key = "/etc/damselfly/proxy-ca.key"
//! # CA certificates (PEM files) trusted for every HTTPS origin the dfdaemon fetches from
//! # (intercepted hosts included), besides the built-in Mozilla roots and the system's bundle
//! # (/etc/ssl/certs/ca-certificates.crt, /etc/pki/tls/certs/ca-bundle.crt or /etc/ssl/cert.pem,
//! # the first there). Default: []
//! upstream_ca_certs = []
//! # Trust the system's bundle too. Default: true
//! system_roots = true
//! # Tunnels and intercepted connections open at once; a CONNECT beyond it gets 503. Default: 512
//! max_connections = 512
//! # Seconds a client has to finish the TLS handshake with an intercepting proxy. Default: 10
//! handshake_timeout_secs = 10
//! # Seconds to connect a tunnel to its target. Default: 10
//! connect_timeout_secs = 10
//! # Seconds a tunnel, or an intercepted connection with no request being answered, may carry
//! # no byte before it is closed. Default: 120
//! idle_timeout_secs = 120
//!
//! [download]
//! # Pieces fetched at once per task. Default: 16
//! concurrency = 16
//! # Host-wide download limit from parents in bytes/s (0 = unlimited). Default: 0
//! rate_limit = 0
//! # Host-wide limit for origin fetches in bytes/s (0 = unlimited). Default: 0
//! back_to_source_rate_limit = 0
//! # Range requests to the origin at once per task, when it serves ranges: alone (1 = one GET),
//! # or the pieces the scheduler hands this peer (it hands one at a time). Default: 4
//! back_to_source_concurrency = 4
//!
//! [upload]
//! # Piece uploads accepted at once, and the children the scheduler lets this host serve; more
//! # get "busy". Whatever it says, one upload sends at a time and at most 4 are sending or
//! # waiting their turn (a fifth child is told "busy" and asks another parent). Default: 64
//! concurrency = 64
//! # Host-wide upload limit in bytes/s (0 = unlimited). Default: 0
//! rate_limit = 0
//!
//! [gc]
//! # Seconds between cache collections. Default: 900
//! interval_secs = 900
//! # Remove tasks unused for this long, in seconds. Default: 2592000 (30 days)
//! task_ttl_secs = 2592000
//! # Evict least recently used tasks when the disk is fuller than this (percent). Default: 80
//! disk_high_watermark_percent = 80
//! # ...until it is at most this full (percent). Default: 60
//! disk_low_watermark_percent = 60
//!
//! [scheduler]
//! # gRPC address of the scheduler, IP:port ("" = none: every download goes to the origin).
//! # Default: ""
//! addr = ""
//! # More schedulers of the cluster, IP:port each (a site without a manager): this host
//! # announces itself to every one, and each task goes to one of them by rendezvous hashing,
//! # the same on every host (the same set a manager's list feeds). Taken together with addr.
//! # Default: []
//! addrs = []
//! # Seconds between host announcements. Default: 30
//! announce_interval_secs = 30
//!
//! [manager]
//! # gRPC address of the manager, host:port ("" = use scheduler.addr and addrs only). When set,
//! # the schedulers come from the manager (scheduler.addr and addrs are the fallback until it
//! # first answers), and the host keeps itself alive there. Default: ""
//! addr = ""
//! # Cluster a seed peer registers in (normal peers are placed by the manager); without a
//! # manager, the cluster a seed peer's certificate names. Default: 1
//! cluster_id = 1
//! # Seconds between keepalive messages. Default: 5
//! keepalive_interval_secs = 5
//! # Seconds between scheduler list refreshes. Default: 60
//! refresh_interval_secs = 60
//! # The join token from the manager (POST /api/v1/clusters/<id>/join-tokens, role peer or
//! # seed_peer): used once to enrol, when [tls] holds no usable certificate. Default: ""
//! join_token = ""
//!
//! [tls]
//! # "mtls": the manager and schedulers are reached over mutual TLS with this host's certificate
//! # from the cluster's CA. "plaintext": no TLS, nobody authenticated (debugging only). Default: mtls
//! mode = "mtls"
//! # Where the enrolled key and certificate are kept. Default: <data_dir>/tls
//! dir = ""
//! # An operator's own certificate (PEM, leaf first), key and CA, instead of enrolling; all three
//! # or none. The certificate must name damselfly://peer/<cluster>/<hostname>-<ip> (seed peers:
//! # damselfly://seed-peer/<cluster>/<hostname>-<ip>-seed). Default: none
//! # cert = "/etc/damselfly/dfdaemon.crt"
//! # key = "/etc/damselfly/dfdaemon.key"
//! # ca = "/etc/damselfly/ca.crt"
//! ```

use std::{
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::{
    Error,
    download::TargetPolicy,
    proxy::{Prefixed, Upstreams},
};

/// The whole dfdaemon configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DfdaemonConfig {
    /// Content, metadata and the download socket live here.
    pub data_dir: PathBuf,
    /// Seed mode.
    pub seed: bool,
    /// How this host presents itself.
    pub host: HostConfig,
    /// Listening addresses.
    pub server: ServerConfig,
    /// Downloading.
    pub download: DownloadConfig,
    /// Serving pieces to other peers.
    pub upload: UploadConfig,
    /// The HTTP proxy and registry mirror.
    pub proxy: ProxyConfig,
    /// Cache garbage collection.
    pub gc: GcConfig,
    /// The scheduler to announce to.
    pub scheduler: SchedulerClientConfig,
    /// The manager that names the schedulers.
    pub manager: ManagerClientConfig,
    /// Mutual TLS.
    pub tls: common::tls::TlsSettings,
}

/// The manager that names the schedulers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerClientConfig {
    /// gRPC `host:port`; empty means none (only `scheduler.addr` and `addrs`).
    pub addr: String,
    /// Cluster a seed peer registers in.
    pub cluster_id: u64,
    /// Seconds between keepalive messages.
    pub keepalive_interval_secs: u64,
    /// Seconds between scheduler list refreshes.
    pub refresh_interval_secs: u64,
    /// Enrols with this when no certificate is at hand.
    pub join_token: String,
}

impl Default for ManagerClientConfig {
    fn default() -> Self {
        Self {
            addr: String::new(),
            cluster_id: 1,
            keepalive_interval_secs: 5,
            refresh_interval_secs: 60,
            join_token: String::new(),
        }
    }
}

/// Cache garbage collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// Seconds between collections.
    pub interval_secs: u64,
    /// Tasks unused for this many seconds are removed.
    pub task_ttl_secs: u64,
    /// Evict when the disk is fuller than this (percent).
    pub disk_high_watermark_percent: u8,
    /// Evict until the disk is at most this full (percent).
    pub disk_low_watermark_percent: u8,
}

impl Default for GcConfig {
    fn default() -> Self {
        Self {
            interval_secs: 900,
            task_ttl_secs: 30 * 24 * 3600,
            disk_high_watermark_percent: 80,
            disk_low_watermark_percent: 60,
        }
    }
}

/// Downloading.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DownloadConfig {
    /// Pieces fetched at once per task.
    pub concurrency: usize,
    /// Host-wide download limit from parents, bytes/s (0 = unlimited).
    pub rate_limit: u64,
    /// Host-wide limit for origin fetches, bytes/s (0 = unlimited).
    pub back_to_source_rate_limit: u64,
    /// Range requests to the origin at once per task: fetching alone (1 = one streaming GET), or
    /// the pieces the scheduler hands out when several peers share the origin.
    pub back_to_source_concurrency: usize,
}

impl Default for DownloadConfig {
    fn default() -> Self {
        Self { concurrency: 16, rate_limit: 0, back_to_source_rate_limit: 0, back_to_source_concurrency: 4 }
    }
}

/// Serving pieces to other peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UploadConfig {
    /// Piece uploads accepted at once (and announced as this host's load limit); at most
    /// [`QUEUE`](crate::transport::server::QUEUE) of them send or wait at a time.
    pub concurrency: u32,
    /// Host-wide upload limit, bytes/s (0 = unlimited).
    pub rate_limit: u64,
}

impl Default for UploadConfig {
    fn default() -> Self {
        Self { concurrency: 64, rate_limit: 0 }
    }
}

/// How this host presents itself to the scheduler and other peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HostConfig {
    /// Name announced to the scheduler; empty means the machine's hostname.
    pub hostname: String,
    /// Address other peers reach this host on.
    pub ip: IpAddr,
    /// Data-centre label.
    pub idc: String,
    /// `region|zone|rack` location label.
    pub location: String,
}

/// Listening addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Unix socket of the local download API; empty means `<data_dir>/dfdaemon.sock`.
    pub socket: PathBuf,
    /// `/healthy` and `/metrics`.
    pub http_addr: SocketAddr,
    /// Piece transport other peers download from.
    pub upload_addr: SocketAddr,
    /// HTTP proxy and registry mirror.
    pub proxy_addr: SocketAddr,
}

/// The HTTP proxy and registry mirror.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Regexes: matching GET URLs go through P2P.
    pub rules: Vec<String>,
    /// Upstream for mirror requests that name none; empty for none. Trusted as configured: its
    /// host is reached whatever `allowed_hosts` and `allowed_private_networks` say.
    pub registry_mirror: String,
    /// More upstreams, each behind a path prefix; trusted like `registry_mirror`.
    pub registries: Vec<RegistryEntry>,
    /// Seconds a registry's acceptance of a requester for a blob is reused.
    pub auth_cache_secs: u64,
    /// OCI blob URLs get their digest's task id.
    pub blob_digest_task_id: bool,
    /// Hosts proxy requests and seed orders may fetch from: `name`, `*.suffix`, an IP address
    /// or a CIDR (matching URLs that name an address). Empty: any host.
    pub allowed_hosts: Vec<String>,
    /// Networks whose non-public addresses (loopback, private, link-local…) proxy requests and
    /// seed orders may reach anyway. Empty: public addresses only.
    pub allowed_private_networks: Vec<ipnet::IpNet>,
    /// CONNECT: tunnels, and which hosts are intercepted.
    pub connect: ConnectConfig,
}

/// `[proxy.connect]`: HTTPS_PROXY clients' CONNECT tunnels, and which hosts are intercepted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectConfig {
    /// Host patterns whose CONNECTs are intercepted (`*` for all); empty: tunnel everything.
    pub intercept: Vec<String>,
    /// The operator's CA certificate for intercepted hosts (PEM); `None` with `ca_key`: generated.
    pub ca_cert: Option<PathBuf>,
    /// Its key (PEM).
    pub ca_key: Option<PathBuf>,
    /// Extra CA certificates (PEM files) trusted for upstream HTTPS.
    pub upstream_ca_certs: Vec<PathBuf>,
    /// Whether the system's CA bundle is trusted for upstream HTTPS too.
    pub system_roots: bool,
    /// Tunnels and intercepted connections at once.
    pub max_connections: usize,
    /// Deadline of a client's TLS handshake, seconds.
    pub handshake_timeout_secs: u64,
    /// Deadline of a tunnel's connect, seconds.
    pub connect_timeout_secs: u64,
    /// Seconds without traffic (and, intercepted, without a request being answered) before a
    /// connection is closed.
    pub idle_timeout_secs: u64,
}

impl Default for ConnectConfig {
    fn default() -> Self {
        Self {
            intercept: Vec::new(),
            ca_cert: None,
            ca_key: None,
            upstream_ca_certs: Vec::new(),
            system_roots: true,
            max_connections: 512,
            handshake_timeout_secs: 10,
            connect_timeout_secs: 10,
            idle_timeout_secs: 120,
        }
    }
}

impl ConnectConfig {
    fn validate(&self) -> Result<(), Error> {
        let patterns: Vec<String> = self.intercept.iter().filter(|p| p.trim() != "*").cloned().collect();
        crate::download::HostPatterns::parse(&patterns)
            .map_err(|e| Error::Config(format!("proxy.connect.intercept: {e}")))?;
        if self.ca_cert.is_some() != self.ca_key.is_some() {
            return Err(Error::Config("proxy.connect.ca_cert and ca_key: both or neither".into()));
        }
        if self.max_connections == 0
            || self.handshake_timeout_secs == 0
            || self.connect_timeout_secs == 0
            || self.idle_timeout_secs == 0
        {
            return Err(Error::Config(
                "proxy.connect: max_connections and every *_timeout_secs must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            rules: vec!["blobs/sha256.*".into()],
            registry_mirror: String::new(),
            registries: Vec::new(),
            auth_cache_secs: 60,
            blob_digest_task_id: false,
            allowed_hosts: Vec::new(),
            allowed_private_networks: Vec::new(),
            connect: ConnectConfig::default(),
        }
    }
}

impl ProxyConfig {
    /// The policy proxy requests and seed orders are fetched under: these allowed hosts and
    /// networks, the registry mirror's host trusted.
    pub fn target_policy(&self) -> Result<TargetPolicy, Error> {
        let upstreams = self.upstreams()?;
        let trusted: Vec<url::Url> = upstreams.all().cloned().collect();
        TargetPolicy::new(&self.allowed_hosts, &self.allowed_private_networks, &trusted)
            .map_err(|e| Error::Config(format!("proxy.allowed_hosts: {e}")))
    }

    /// The configured upstream registries of mirror requests.
    pub fn upstreams(&self) -> Result<Upstreams, Error> {
        let default = (!self.registry_mirror.is_empty())
            .then(|| upstream_url(&self.registry_mirror))
            .transpose()
            .map_err(|e| Error::Config(format!("proxy.registry_mirror {:?}: {e}", self.registry_mirror)))?;
        let mut prefixed: Vec<Prefixed> = Vec::new();
        for entry in &self.registries {
            let at = |why: String| Error::Config(format!("proxy.registries prefix {:?}: {why}", entry.prefix));
            if !valid_prefix(&entry.prefix) {
                return Err(at("must be repository path components: lower-case letters, digits, \
                               separators . _ - inside a component, / between them"
                    .into()));
            }
            if let Some(other) = prefixed.iter().find(|p| {
                let (a, b) = (format!("{}/", p.prefix), format!("{}/", entry.prefix));
                a.starts_with(&b) || b.starts_with(&a)
            }) {
                return Err(at(format!("overlaps the prefix {:?}: which one a path means is unclear", other.prefix)));
            }
            let upstream =
                upstream_url(&entry.upstream).map_err(|e| at(format!("upstream {:?}: {e}", entry.upstream)))?;
            prefixed.push(Prefixed { prefix: entry.prefix.clone(), upstream });
        }
        Ok(Upstreams { default, prefixed })
    }
}

/// One `[[proxy.registries]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    /// The path a runtime's mirror location carries after the dfdaemon's address (`reg-a`).
    pub prefix: String,
    /// The registry it stands for (`https://reg-a.example.com`).
    pub upstream: String,
}

/// Repository path components as the distribution spec writes them: `[a-z0-9]+` joined by
/// `.`, `_`, `__` or `-`s inside a component, `/` between components.
fn valid_prefix(prefix: &str) -> bool {
    !prefix.is_empty()
        && prefix.split('/').all(|component| {
            let bytes = component.as_bytes();
            !bytes.is_empty()
                && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
                && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
                && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        })
}

/// An upstream registry's URL: `http` or `https`, a host, no query, no credentials.
fn upstream_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err("must carry no query and no credentials".into());
    }
    if url.path() != "/" {
        return Err("must carry no path (the request's path replaces it)".into());
    }
    Ok(url)
}

impl SchedulerClientConfig {
    /// Every configured scheduler (`addr` and `addrs`), once each; the configuration is
    /// validated, so each parses.
    pub fn static_addrs(&self) -> Vec<SocketAddr> {
        let mut all: Vec<SocketAddr> = std::iter::once(&self.addr)
            .filter(|a| !a.is_empty())
            .chain(&self.addrs)
            .filter_map(|a| a.parse().ok())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// The scheduler to announce to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SchedulerClientConfig {
    /// gRPC address (`host:port`); empty means none.
    pub addr: String,
    /// More schedulers, taken together with `addr`.
    pub addrs: Vec<String>,
    /// Seconds between host announcements.
    pub announce_interval_secs: u64,
}

impl Default for DfdaemonConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/damselfly/dfdaemon"),
            seed: false,
            host: HostConfig::default(),
            server: ServerConfig::default(),
            download: DownloadConfig::default(),
            upload: UploadConfig::default(),
            proxy: ProxyConfig::default(),
            gc: GcConfig::default(),
            scheduler: SchedulerClientConfig::default(),
            manager: ManagerClientConfig::default(),
            tls: common::tls::TlsSettings::default(),
        }
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        Self { hostname: String::new(), ip: [127, 0, 0, 1].into(), idc: String::new(), location: String::new() }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            socket: PathBuf::new(),
            http_addr: ([0, 0, 0, 0], 4003).into(),
            upload_addr: ([0, 0, 0, 0], 4000).into(),
            proxy_addr: ([127, 0, 0, 1], 4001).into(),
        }
    }
}

impl Default for SchedulerClientConfig {
    fn default() -> Self {
        Self { addr: String::new(), addrs: Vec::new(), announce_interval_secs: 30 }
    }
}

/// Values from flags or the environment; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub seed: Option<bool>,
    pub hostname: Option<String>,
    pub socket: Option<PathBuf>,
    pub http_addr: Option<SocketAddr>,
    pub upload_addr: Option<SocketAddr>,
    pub proxy_addr: Option<SocketAddr>,
    pub scheduler_addr: Option<String>,
    pub manager_addr: Option<String>,
    pub join_token: Option<String>,
    /// `[proxy] registry_mirror`: `damselfly up --registry-mirror` hands it to every dfdaemon.
    pub registry_mirror: Option<String>,
}

impl DfdaemonConfig {
    /// Reads `path` (if any), applies `overrides`, derives defaults, validates.
    /// `machine_hostname` fills an empty `host.hostname`.
    pub fn load(path: Option<&Path>, overrides: Overrides, machine_hostname: &str) -> Result<Self, Error> {
        let mut c: Self = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
                toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
            }
            None => Self::default(),
        };
        let o = overrides;
        if let Some(v) = o.data_dir {
            c.data_dir = v;
        }
        if let Some(v) = o.seed {
            c.seed = v;
        }
        if let Some(v) = o.hostname {
            c.host.hostname = v;
        }
        if let Some(v) = o.socket {
            c.server.socket = v;
        }
        if let Some(v) = o.http_addr {
            c.server.http_addr = v;
        }
        if let Some(v) = o.upload_addr {
            c.server.upload_addr = v;
        }
        if let Some(v) = o.proxy_addr {
            c.server.proxy_addr = v;
        }
        if let Some(v) = o.scheduler_addr {
            c.scheduler.addr = v;
        }
        if let Some(v) = o.manager_addr {
            c.manager.addr = v;
        }
        if let Some(v) = o.join_token {
            c.manager.join_token = v;
        }
        if let Some(v) = o.registry_mirror {
            c.proxy.registry_mirror = v;
        }
        if c.host.hostname.is_empty() {
            c.host.hostname = machine_hostname.to_owned();
        }
        if c.server.socket.as_os_str().is_empty() {
            c.server.socket = c.data_dir.join("dfdaemon.sock");
        }
        if c.tls.dir.as_os_str().is_empty() {
            c.tls.dir = c.data_dir.join("tls");
        }
        if c.download.concurrency == 0 || c.upload.concurrency == 0 || c.download.back_to_source_concurrency == 0 {
            return Err(Error::Config("download.concurrency and upload.concurrency must be at least 1".into()));
        }
        for rule in &c.proxy.rules {
            regex::Regex::new(rule).map_err(|e| Error::Config(format!("proxy.rules: {rule:?}: {e}")))?;
        }
        c.proxy.target_policy()?;
        c.proxy.connect.validate()?;
        if c.gc.interval_secs == 0
            || c.gc.disk_high_watermark_percent > 100
            || c.gc.disk_low_watermark_percent >= c.gc.disk_high_watermark_percent
        {
            return Err(Error::Config(
                "gc: interval_secs must be positive and disk_low_watermark_percent < disk_high_watermark_percent <= 100"
                    .into(),
            ));
        }
        if c.scheduler.announce_interval_secs == 0 {
            return Err(Error::Config("scheduler.announce_interval_secs must be at least 1".into()));
        }
        if !c.scheduler.addr.is_empty() && c.scheduler.addr.parse::<SocketAddr>().is_err() {
            return Err(Error::Config(format!(
                "scheduler.addr {:?} must be host:port with an IP address",
                c.scheduler.addr
            )));
        }
        if let Some(bad) = c.scheduler.addrs.iter().find(|a| a.parse::<SocketAddr>().is_err()) {
            return Err(Error::Config(format!("scheduler.addrs: {bad:?} must be IP:port")));
        }
        if !c.manager.addr.is_empty()
            && tonic::transport::Endpoint::from_shared(format!("http://{}", c.manager.addr)).is_err()
        {
            return Err(Error::Config(format!("manager.addr {:?} must be host:port", c.manager.addr)));
        }
        if c.manager.cluster_id == 0 || c.manager.keepalive_interval_secs == 0 || c.manager.refresh_interval_secs == 0 {
            return Err(Error::Config(
                "manager.cluster_id, manager.keepalive_interval_secs and manager.refresh_interval_secs must be at least 1"
                    .into(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_socket_and_hostname_and_rejects_bad_values() {
        let c =
            DfdaemonConfig::load(None, Overrides { data_dir: Some("/d".into()), ..Default::default() }, "box").unwrap();
        assert_eq!(c.server.socket, PathBuf::from("/d/dfdaemon.sock"));
        assert_eq!(c.host.hostname, "box");
        let err = DfdaemonConfig::load(
            None,
            Overrides { scheduler_addr: Some("nowhere".into()), ..Default::default() },
            "box",
        )
        .unwrap_err();
        assert!(err.to_string().contains("scheduler.addr"), "{err}");
        let err = toml::from_str::<DfdaemonConfig>("sead = true").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    fn load_text(text: &str) -> Result<DfdaemonConfig, Error> {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        DfdaemonConfig::load(Some(file.path()), Overrides::default(), "box")
    }

    #[test]
    fn a_static_scheduler_list_is_addr_and_addrs_together() {
        let c = load_text("[scheduler]\naddr = \"10.0.0.2:8002\"\naddrs = [\"10.0.0.1:8002\", \"10.0.0.2:8002\"]\n")
            .unwrap();
        assert_eq!(c.scheduler.static_addrs(), ["10.0.0.1:8002".parse().unwrap(), "10.0.0.2:8002".parse().unwrap()]);
        let c = load_text("[scheduler]\naddrs = [\"10.0.0.1:8002\"]\n").unwrap();
        assert_eq!(c.scheduler.static_addrs(), ["10.0.0.1:8002".parse().unwrap()]);
        assert!(load_text("").unwrap().scheduler.static_addrs().is_empty());
        let err = load_text("[scheduler]\naddrs = [\"scheduler.example:8002\"]\n").unwrap_err();
        assert!(err.to_string().contains("scheduler.addrs"), "{err}");
    }

    #[test]
    fn proxy_targets_are_public_unless_hosts_and_networks_are_named() {
        let check = |c: &DfdaemonConfig, url: &str| c.proxy.target_policy().unwrap().check_url(&url.parse().unwrap());
        let default = load_text("").unwrap();
        assert!(default.proxy.allowed_hosts.is_empty() && default.proxy.allowed_private_networks.is_empty());
        assert!(check(&default, "http://127.0.0.1/").is_err());
        assert!(check(&default, "https://registry.example/").is_ok());

        let c = load_text(
            r#"
            [proxy]
            registry_mirror = "http://192.168.5.5:5000"
            allowed_hosts = ["registry.example", "*.cdn.example", "10.20.0.0/16"]
            allowed_private_networks = ["10.20.0.0/16", "fd00::/8"]
            "#,
        )
        .unwrap();
        assert_eq!(
            c.proxy.allowed_private_networks,
            vec!["10.20.0.0/16".parse().unwrap(), "fd00::/8".parse().unwrap()]
        );
        assert!(check(&c, "http://10.20.1.1/").is_ok(), "an allowed host on an allowed network");
        assert!(check(&c, "http://10.21.1.1/").is_err(), "neither");
        assert!(check(&c, "https://blobs.cdn.example/").is_ok());
        assert!(check(&c, "https://elsewhere.example/").is_err());
        assert!(check(&c, "http://192.168.5.5:5000/v2/").is_ok(), "the configured mirror is trusted");

        let err = load_text("[proxy]\nallowed_hosts = [\"reg*.example\"]").unwrap_err();
        assert!(err.to_string().contains("proxy.allowed_hosts"), "{err}");
        let err = load_text("[proxy]\nallowed_private_networks = [\"10.0.0.1\"]").unwrap_err();
        assert!(err.to_string().contains("allowed_private_networks"), "{err}");
        let err = toml::from_str::<DfdaemonConfig>("[proxy]\nallow_private_targets = true").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn connect_rules_and_bounds_are_checked() {
        let c = load_text("[proxy.connect]\nintercept = [\"*\", \"reg.example\", \"*.cdn.example\", \"10.0.0.0/8\"]")
            .unwrap();
        assert_eq!(c.proxy.connect.intercept.len(), 4);
        assert_eq!(c.proxy.connect.idle_timeout_secs, 120);
        for (text, key) in [
            ("intercept = [\"reg*.example\"]", "proxy.connect.intercept"),
            ("ca_cert = \"/x.crt\"", "both or neither"),
            ("max_connections = 0", "max_connections"),
            ("handshake_timeout_secs = 0", "timeout_secs"),
        ] {
            let err = load_text(&format!("[proxy.connect]\n{text}")).unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        let err = toml::from_str::<DfdaemonConfig>("[proxy.connect]\nhijack = true").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }

    #[test]
    fn prefixed_registries_are_checked_at_start_and_trusted() {
        let c = load_text(
            r#"
            [proxy]
            registry_mirror = "https://index.docker.io"
            [[proxy.registries]]
            prefix = "reg-a"
            upstream = "http://10.1.2.3:5000"
            [[proxy.registries]]
            prefix = "mirrors/reg-b"
            upstream = "https://b.example"
            "#,
        )
        .unwrap();
        let upstreams = c.proxy.upstreams().unwrap();
        let prefixes: Vec<_> = upstreams.prefixed.iter().map(|p| (p.prefix.as_str(), p.upstream.as_str())).collect();
        assert_eq!(prefixes, vec![("reg-a", "http://10.1.2.3:5000/"), ("mirrors/reg-b", "https://b.example/")]);
        let policy = c.proxy.target_policy().unwrap();
        assert!(policy.check_url(&"http://10.1.2.3:5000/v2/".parse().unwrap()).is_ok(), "an upstream is trusted");
        let entry = |prefix: &str, upstream: &str| {
            format!(
                "[proxy]\n[[proxy.registries]]\nprefix = \"a\"\nupstream = \"https://a.example\"\n[[proxy.registries]]\nprefix = {prefix:?}\nupstream = {upstream:?}\n"
            )
        };
        for (prefix, upstream, says) in [
            ("", "https://b.example", "repository path components"),
            ("Reg", "https://b.example", "repository path components"),
            ("b/", "https://b.example", "repository path components"),
            ("../b", "https://b.example", "repository path components"),
            ("a", "https://b.example", "overlaps"),
            ("a/b", "https://b.example", "overlaps"),
            ("b", "ftp://b.example", "http:// or https://"),
            ("b", "https://u:p@b.example", "no credentials"),
            ("b", "https://b.example/v2", "no path"),
            ("b", "not a url", "upstream"),
        ] {
            let err = load_text(&entry(prefix, upstream)).unwrap_err().to_string();
            assert!(err.contains("proxy.registries") && err.contains(says), "{prefix:?} {upstream:?}: {err}");
        }
        let err =
            load_text("[[proxy.registries]]\nprefix = \"a\"\nupstream = \"https://a.example\"\nextra = 1").unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
