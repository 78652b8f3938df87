//! A task as the schedulers of one cluster see it right now: its peers, their progress, and who
//! fetched pieces from whom. Read-only and answered at once (the `get_task` job is the
//! asynchronous, audited way); the console draws its live task graph from this.

use std::time::Duration;

use axum::{
    Json,
    extract::{Extension, State},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiState, extract::Path, validate};
use crate::{
    Error,
    auth::Principal,
    grpc::registry::active_schedulers,
    jobs::rpc::{SchedulerClient, TaskInfo},
    rbac::Act,
};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_cluster_task))
}

/// A task in one cluster: its peers, their progress and piece sources (the task's graph).
#[utoipa::path(get, path = "/clusters/{id}/tasks/{task_id}", tag = "clusters", security(("session" = [])),
    params(("id" = i64, Path, description = "Cluster id"), ("task_id" = String, Path, description = "Task id")),
    responses((status = 200, body = TaskInfo), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 502, body = crate::error::ErrorBody)))]
pub async fn get_cluster_task(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path((id, task_id)): Path<(i64, String)>,
) -> Result<Json<TaskInfo>, Error> {
    let cluster = super::clusters::load(&state, &me, id, Act::Read).await?;
    validate::text("task_id", &task_id, 256)?;
    if task_id.trim().is_empty() {
        return Err(Error::invalid("task_id", "task_id must not be empty"));
    }
    let active = active_schedulers(&state.db, cluster.id, state.keepalive_timeout).await?;
    if active.is_empty() {
        return Err(Error::NotFound(format!(
            "no task {task_id} in cluster {}: it has no active scheduler to ask",
            cluster.id
        )));
    }
    let mut errors = Vec::new();
    for s in &active {
        let asked = async {
            let mut client = SchedulerClient::connect(&s.ip, s.port, Duration::from_secs(5)).await?;
            client.stat_task(&task_id).await
        };
        match asked.await {
            Ok(Some(info)) => return Ok(Json(info)),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == active.len() {
        return Err(Error::BadGateway(errors.join("; ")));
    }
    Err(Error::NotFound(format!("no scheduler of cluster {} knows task {task_id}", cluster.id)))
}
