//! A cluster's settings as schedulers and peers see them, read from the cluster's JSON columns.
//!
//! The column shapes are those of [`super::clusters`], which validates them on every write;
//! here every missing field takes its documented default, so a cluster created with `{}` behaves
//! like a stock Dragonfly cluster.

use serde::Deserialize;

use super::clusters::{PeerClusterConfig, SchedulerClusterConfig, SeedPeerClusterConfig};
use crate::entity::clusters;

/// Everything `GetClusterConfig` answers.
#[derive(Debug, Clone, Default)]
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
        assert_eq!((s.candidate_parent_limit, s.filter_parent_limit, s.job_rate_limit), (4, 15, 10));
        let p: PeerClusterConfig = parse(&serde_json::json!({"block_list": {"urls": ["x"]}}), "c");
        assert_eq!(p.load_limit, 200);
        assert_eq!(p.block_list.urls, ["x"]);
        let bad: SeedPeerClusterConfig = parse(&serde_json::json!({"load_limit": "many"}), "c");
        assert_eq!(bad.load_limit, 2000);
    }
}
