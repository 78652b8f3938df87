//! Jobs: the list, one job, and the task-clear tools (`get_task`, `delete_task`).

use super::ApiError;
use crate::api::page::Page;
use common::api::Job;
use leptos::prelude::*;

/// What the jobs list is filtered by (empty: any).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobFilter {
    pub r#type: String,
    pub state: String,
    pub user_id: String,
    pub cluster_id: String,
}

/// Jobs, newest first, filtered by type, state, user and cluster.
#[server(prefix = "/console/fn")]
pub async fn list_jobs(page: u64, filter: JobFilter) -> Result<Page<Job>, ApiError> {
    let query = [
        ("type", filter.r#type),
        ("state", filter.state),
        ("user_id", filter.user_id),
        ("scheduler_cluster_id", filter.cluster_id),
    ];
    super::client::list("/api/v1/jobs", page.max(1), 20, &query).await
}

#[server(prefix = "/console/fn")]
pub async fn get_job(id: i64) -> Result<Job, ApiError> {
    super::client::get(&format!("/api/v1/jobs/{id}"), &[]).await
}

/// Starts a `get_task` (`delete = false`) or `delete_task` job for a task given by id or by URL
/// (with the tag and application it was downloaded with), on one cluster or on all of the tenant's.
#[server(prefix = "/console/fn")]
pub async fn task_job(
    delete: bool,
    task: String,
    tag: String,
    application: String,
    cluster_id: String,
) -> Result<Job, ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        r#type: &'static str,
        args: serde_json::Value,
        #[serde(skip_serializing_if = "Option::is_none")]
        scheduler_cluster_ids: Option<Vec<i64>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tenant_id: Option<i64>,
    }
    let task = task.trim();
    let args = if task.is_empty() {
        return Err(ApiError::invalid("task", "enter a task id or the URL it was downloaded from"));
    } else if task.contains("://") {
        serde_json::json!({"url": task, "tag": tag.trim(), "application": application.trim()})
    } else {
        serde_json::json!({"task_id": task})
    };
    // Taken before the first await, as every server function that calls the API twice must.
    let caller = super::client::Caller::from_context()?;
    let (scheduler_cluster_ids, tenant_id) = match cluster_id.trim() {
        "" => (None, None),
        id => {
            let id: i64 = super::number("cluster_id", id)?;
            let cluster: common::api::Cluster = caller.get(&format!("/api/v1/clusters/{id}"), &[]).await?;
            (Some(vec![id]), Some(cluster.tenant_id))
        }
    };
    let r#type = if delete { "delete_task" } else { "get_task" };
    caller.post("/api/v1/jobs", &Body { r#type, args, scheduler_cluster_ids, tenant_id }).await
}
