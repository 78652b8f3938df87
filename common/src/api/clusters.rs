//! Clusters: a scheduler cluster paired with its seed-peer cluster, with the scopes that decide
//! which peers it serves and the limits its schedulers and peers apply. Field names follow
//! Dragonfly's so its users feel at home.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Which peers a cluster serves; a peer goes to the cluster whose scopes match it best.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Scopes {
    /// Data-center name the peer reports.
    pub idc: String,
    /// `|`-separated location path (`country|region|zone`), matched by prefix.
    pub location: String,
    /// Networks the peer's IP belongs to, as CIDRs.
    pub cidrs: Vec<String>,
    /// Regular expressions over the peer's hostname.
    pub hostnames: Vec<String>,
}

/// What the cluster's schedulers apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SchedulerClusterConfig {
    /// Parents offered to a peer at once, 1 to 20. Default: 4.
    pub candidate_parent_limit: u32,
    /// Candidates considered before ranking, 10 to 1000. Default: 40.
    pub filter_parent_limit: u32,
    /// Jobs per second the cluster accepts, 1 to 1000. Default: 10.
    pub job_rate_limit: u32,
}

impl Default for SchedulerClusterConfig {
    fn default() -> Self {
        Self { candidate_parent_limit: 4, filter_parent_limit: 40, job_rate_limit: 10 }
    }
}

/// What the cluster's seed peers apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct SeedPeerClusterConfig {
    /// Concurrent uploads a seed peer serves, 1 to 50000. Default: 2000.
    pub load_limit: u32,
}

impl Default for SeedPeerClusterConfig {
    fn default() -> Self {
        Self { load_limit: 2000 }
    }
}

/// What the cluster's peers apply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct PeerClusterConfig {
    /// Concurrent uploads a peer serves, 1 to 50000. Default: 200.
    pub load_limit: u32,
    /// Downloads the cluster refuses to schedule.
    pub block_list: BlockList,
}

impl Default for PeerClusterConfig {
    fn default() -> Self {
        Self { load_limit: 200, block_list: BlockList::default() }
    }
}

/// Downloads refused by application name, URL pattern (regular expression) or tag.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct BlockList {
    pub applications: Vec<String>,
    pub urls: Vec<String>,
    pub tags: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Cluster {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub bio: String,
    pub scopes: Scopes,
    pub scheduler_cluster_config: SchedulerClusterConfig,
    pub seed_peer_cluster_config: SeedPeerClusterConfig,
    pub peer_cluster_config: PeerClusterConfig,
    /// Peers no other cluster's scopes match go here.
    pub is_default: bool,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub updated_at: Timestamp,
}
