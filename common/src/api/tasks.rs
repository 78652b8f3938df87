//! A task as the schedulers of one cluster see it (its peers, their progress, who fetched pieces
//! from whom), and a cluster's task records: what the console's task graph and recent tasks show.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// One peer holding a task, as a scheduler reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskPeer {
    pub host_id: String,
    pub hostname: String,
    pub ip: String,
    pub peer_id: String,
    /// `Pending`, `Running`, `BackToSource`, `Succeeded`, `Failed`…
    pub state: String,
    pub finished_pieces: u32,
    /// Pieces this peer fetched from the origin.
    pub origin_pieces: u32,
    /// Pieces it got inline from the scheduler (a tiny content, at most 128 bytes).
    #[serde(default)]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub inline_pieces: u32,
    /// Pieces it fetched from each parent peer: the edges of the task's graph.
    pub sources: Vec<PieceSource>,
}

impl TaskPeer {
    /// Done, one way or the other: nothing more will change for it.
    pub fn ended(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed")
    }
}

/// Pieces one peer fetched from one parent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PieceSource {
    pub parent_id: String,
    pub pieces: u32,
}

/// A task as one scheduler knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskInfo {
    pub task_id: String,
    pub url: String,
    pub content_length: Option<u64>,
    pub piece_length: u64,
    pub total_pieces: u32,
    pub peers: Vec<TaskPeer>,
    /// Set when this is the task's record (its last state a scheduler reported), not a
    /// scheduler's live answer: when the record was last updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub recorded_at: Option<Timestamp>,
}

impl TaskInfo {
    /// Bytes fetched from the origin and from other peers (pieces × piece length, the last
    /// piece counted whole: an estimate within one piece per peer).
    pub fn traffic(&self) -> (u64, u64) {
        let cap = |pieces: u64| {
            let bytes = pieces * self.piece_length;
            self.content_length.map_or(bytes, |len| bytes.min(len))
        };
        let origin = self.peers.iter().map(|p| cap(u64::from(p.origin_pieces))).sum();
        let peers = self.peers.iter().map(|p| cap(p.sources.iter().map(|s| u64::from(s.pieces)).sum::<u64>())).sum();
        (origin, peers)
    }

    /// Whether any peer is still downloading (a record is history: nothing more will come).
    pub fn running(&self) -> bool {
        self.recorded_at.is_none() && self.peers.iter().any(|p| !p.ended())
    }
}

/// A task of a cluster as last reported by its schedulers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskRecord {
    pub cluster_id: i64,
    pub task_id: String,
    pub url: String,
    pub content_length: Option<u64>,
    pub total_pieces: u32,
    /// Peers of the task, and how many had the whole content.
    pub peers: u32,
    pub finished_peers: u32,
    /// `running`, `succeeded`, `failed`, or `deleted` (by a `delete_task` job).
    pub state: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}
