//! Schedulers, seed peers and peers as registered with the manager.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::{ApiError, page::Page};

/// A scheduler, seed peer or peer as the console shows it: the fields of the API's `Scheduler`,
/// `SeedPeer` and `Peer` that its pages read, in one shape for the three lists.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub id: i64,
    pub cluster_id: i64,
    pub hostname: String,
    pub ip: String,
    pub port: i32,
    #[serde(default)]
    pub download_port: Option<i32>,
    pub idc: String,
    pub location: String,
    /// `active` or `inactive`.
    pub state: String,
    pub version: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    pub last_keep_alive_at: Option<String>,
    /// Seed peers and peers: bytes per second uploaded between their two latest keepalives.
    #[serde(default)]
    pub upload_rate: u64,
    pub created_at: String,
}

/// The three kinds of registered host, by their API path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostKind {
    Scheduler,
    SeedPeer,
    Peer,
}

impl HostKind {
    pub fn path(self) -> &'static str {
        match self {
            Self::Scheduler => "/api/v1/schedulers",
            Self::SeedPeer => "/api/v1/seed-peers",
            Self::Peer => "/api/v1/peers",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Scheduler => "scheduler",
            Self::SeedPeer => "seed peer",
            Self::Peer => "peer",
        }
    }
}

/// Hosts of one kind, filtered by cluster, state and hostname (empty: any).
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_hosts(
    kind: HostKind,
    cluster_id: Option<i64>,
    state: String,
    hostname: String,
    page: u64,
    per_page: u64,
) -> Result<Page<Host>, ApiError> {
    let cluster = cluster_id.map(|c| c.to_string()).unwrap_or_default();
    super::client::list(
        kind.path(),
        page.max(1),
        per_page.clamp(1, 1000),
        &[("cluster_id", cluster), ("state", state), ("hostname", hostname)],
    )
    .await
}

/// Removes an inactive host's record (an active one registers again at once, so the API
/// refuses it).
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn delete_host(kind: HostKind, id: i64) -> Result<(), ApiError> {
    super::client::delete(&format!("{}/{id}", kind.path())).await
}

/// Counts for the overview: clusters, and active / all schedulers, seed peers and peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub clusters: u64,
    pub schedulers: (u64, u64),
    pub seed_peers: (u64, u64),
    pub peers: (u64, u64),
}

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn host_counts() -> Result<Counts, ApiError> {
    use super::client::list;
    let total = |path: &'static str, state: &'static str| async move {
        list::<serde_json::Value>(path, 1, 1, &[("state", state.to_owned())]).await.map(|p| p.total)
    };
    let (clusters, s_all, s_on, sp_all, sp_on, p_all, p_on) = futures::try_join!(
        total("/api/v1/clusters", ""),
        total(HostKind::Scheduler.path(), ""),
        total(HostKind::Scheduler.path(), "active"),
        total(HostKind::SeedPeer.path(), ""),
        total(HostKind::SeedPeer.path(), "active"),
        total(HostKind::Peer.path(), ""),
        total(HostKind::Peer.path(), "active"),
    )?;
    Ok(Counts { clusters, schedulers: (s_on, s_all), seed_peers: (sp_on, sp_all), peers: (p_on, p_all) })
}
