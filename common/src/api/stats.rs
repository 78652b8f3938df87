//! Tasks, peers and traffic over a window, bucketed (`GET /api/v1/stats`).

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Figures over a window, oldest bucket first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    pub window_secs: u64,
    pub bucket_secs: u64,
    pub points: Vec<StatsPoint>,
}

/// One bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatsPoint {
    /// Start of the bucket.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// Tasks the schedulers held at the bucket's end; absent when none reported.
    pub tasks: Option<u64>,
    /// Peers the schedulers held.
    pub peers: Option<u64>,
    /// Peers downloading.
    pub running_peers: Option<u64>,
    /// Bytes peers fetched from the origin during the bucket.
    pub back_to_source_bytes: u64,
    /// Bytes peers fetched from other peers during the bucket.
    pub peer_bytes: u64,
    /// Downloads that finished during the bucket, by result.
    pub succeeded: u64,
    pub failed: u64,
}
