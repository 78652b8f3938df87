//! A task's graph as the cluster's schedulers see it now, or as they last reported it
//! (`GET /api/v1/clusters/{id}/tasks/{task}`), and a cluster's recent tasks.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::api::page::Page;

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
    /// Set when no scheduler holds the task now: this is its record, last updated then.
    #[serde(default)]
    pub recorded_at: Option<String>,
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

    /// Whether any peer is still downloading (a record is history: nothing more will come).
    pub fn running(&self) -> bool {
        self.recorded_at.is_none() && self.peers.iter().any(|p| !p.ended())
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

/// A cluster's task as its schedulers last reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub cluster_id: i64,
    pub task_id: String,
    pub url: String,
    pub content_length: Option<u64>,
    pub total_pieces: u32,
    pub peers: u32,
    pub finished_peers: u32,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    pub updated_at: String,
}

/// Recent tasks of the cluster (the first one the visitor can see when none is given), most
/// recently changed first.
#[server(prefix = "/console/fn")]
pub async fn recent_tasks(cluster_id: Option<i64>, page: u64) -> Result<Page<TaskRecord>, ApiError> {
    // The caller is taken from the request's context before the first await: after it, the
    // context is gone.
    let caller = super::client::Caller::from_context()?;
    let id = match cluster_id {
        Some(id) => id,
        None => {
            let first: Page<common::api::Cluster> = caller.list("/api/v1/clusters", 1, 1, &[]).await?;
            match first.items.first() {
                Some(c) => c.id,
                None => return Err(ApiError::not_found("you can see no cluster yet")),
            }
        }
    };
    caller.list(&format!("/api/v1/clusters/{id}/tasks"), page.max(1), 20, &[]).await
}
