//! A task's graph as the cluster's schedulers see it now (`GET /api/v1/clusters/{id}/tasks/{task}`).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceSource {
    pub parent_id: String,
    pub pieces: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPeer {
    pub host_id: String,
    pub hostname: String,
    pub ip: String,
    pub peer_id: String,
    pub state: String,
    pub finished_pieces: u32,
    pub origin_pieces: u32,
    pub sources: Vec<PieceSource>,
}

impl TaskPeer {
    /// Done, one way or the other: nothing more will change for it.
    pub fn ended(&self) -> bool {
        matches!(self.state.as_str(), "succeeded" | "failed")
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskGraph {
    pub task_id: String,
    pub url: String,
    pub content_length: Option<u64>,
    pub piece_length: u64,
    pub total_pieces: u32,
    pub peers: Vec<TaskPeer>,
}

impl TaskGraph {
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

    /// Whether any peer is still downloading.
    pub fn running(&self) -> bool {
        self.peers.iter().any(|p| !p.ended())
    }
}

/// The task given by id, or by the URL (with tag and application) it was downloaded from.
#[server(prefix = "/console/fn")]
pub async fn get_task_graph(
    cluster_id: i64,
    task: String,
    tag: String,
    application: String,
) -> Result<TaskGraph, ApiError> {
    let task = task.trim();
    let id = if task.contains("://") {
        let spec = common::task_id::TaskSpec {
            url: task,
            tag: tag.trim(),
            application: application.trim(),
            ..Default::default()
        };
        common::task_id::task_id(&spec).map_err(|e| ApiError::invalid("task", e.to_string()))?.0
    } else if task.is_empty() {
        return Err(ApiError::invalid("task", "enter a task id or the URL it was downloaded from"));
    } else {
        task.to_owned()
    };
    super::client::get(&format!("/api/v1/clusters/{cluster_id}/tasks/{id}"), &[]).await
}
