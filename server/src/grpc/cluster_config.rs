//! A cluster's settings as schedulers and peers see them, read from the cluster's JSON columns.
//!
//! The REST layer validates these columns on write; here every missing field takes its
//! documented default, so a cluster created with `{}` behaves like a stock Dragonfly cluster.

use serde::Deserialize;

use crate::entity::clusters;

/// `clusters.scheduler_cluster_config`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SchedulerClusterConfig {
    /// Parents offered to a peer at once.
    pub candidate_parent_limit: u32,
    /// Candidates evaluated per scheduling decision.
    pub filter_parent_limit: u32,
    /// Jobs per second the cluster accepts.
    pub job_rate_limit: u32,
}

impl Default for SchedulerClusterConfig {
    fn default() -> Self {
        Self { candidate_parent_limit: 4, filter_parent_limit: 40, job_rate_limit: 10 }
    }
}

/// `clusters.seed_peer_cluster_config`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct SeedPeerClusterConfig {
    /// Concurrent uploads a seed peer accepts.
    pub load_limit: u32,
}

impl Default for SeedPeerClusterConfig {
    fn default() -> Self {
        Self { load_limit: 2000 }
    }
}

/// What peers of the cluster must refuse to download.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct BlockList {
    pub applications: Vec<String>,
    pub urls: Vec<String>,
    pub tags: Vec<String>,
}

/// `clusters.peer_cluster_config`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct PeerClusterConfig {
    /// Concurrent uploads a peer accepts.
    pub load_limit: u32,
    pub block_list: BlockList,
}

impl Default for PeerClusterConfig {
    fn default() -> Self {
        Self { load_limit: 200, block_list: BlockList::default() }
    }
}

/// Everything `GetClusterConfig` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterSettings {
    pub cluster_id: i64,
    pub scheduler: SchedulerClusterConfig,
    pub seed_peer: SeedPeerClusterConfig,
    pub peer: PeerClusterConfig,
}

impl ClusterSettings {
    /// Reads a cluster row's settings; a malformed column (only a hand-edited row) takes the
    /// defaults, logged, rather than cutting the cluster off.
    pub fn from_row(row: &clusters::Model) -> Self {
        Self {
            cluster_id: row.id,
            scheduler: parse(&row.scheduler_cluster_config, "scheduler_cluster_config"),
            seed_peer: parse(&row.seed_peer_cluster_config, "seed_peer_cluster_config"),
            peer: parse(&row.peer_cluster_config, "peer_cluster_config"),
        }
    }
}

fn parse<T: for<'de> Deserialize<'de> + Default>(value: &serde_json::Value, column: &str) -> T {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| {
        tracing::warn!(column, error = %e, "ignoring malformed cluster config");
        T::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_fields_take_defaults() {
        let s: SchedulerClusterConfig = parse(&serde_json::json!({"filter_parent_limit": 15}), "c");
        assert_eq!(s, SchedulerClusterConfig { filter_parent_limit: 15, ..Default::default() });
        let p: PeerClusterConfig = parse(&serde_json::json!({"block_list": {"urls": ["x"]}}), "c");
        assert_eq!(p.load_limit, 200);
        assert_eq!(p.block_list.urls, ["x"]);
        let bad: SeedPeerClusterConfig = parse(&serde_json::json!({"load_limit": "many"}), "c");
        assert_eq!(bad.load_limit, 2000);
    }
}
