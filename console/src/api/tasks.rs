//! A task's graph as the cluster's schedulers see it now, or as they last reported it
//! (`GET /api/v1/clusters/{id}/tasks/{task}`), and a cluster's recent tasks.

pub use common::api::{PieceSource, TaskInfo, TaskPeer, TaskRecord};
use leptos::prelude::*;

use super::ApiError;
use crate::api::page::Page;

/// The task given by id, or by the URL (with tag and application) it was downloaded from.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn get_task_graph(
    cluster_id: i64,
    task: String,
    tag: String,
    application: String,
) -> Result<TaskInfo, ApiError> {
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

/// Recent tasks of the cluster (the first one the visitor can see when none is given), most
/// recently changed first.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
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
