//! A task as the schedulers of one cluster see it right now: its peers, their progress, and who
//! fetched pieces from whom. Read-only and answered at once (the `get_task` job is the
//! asynchronous, audited way); the console draws its live task graph from this. When no
//! scheduler holds the task any more, its record answers instead (`grpc::task_records`: the last
//! state schedulers reported), and the list of records is the cluster's recent tasks.

use std::time::Duration;

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
};
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Path, Query},
    page::{self, PageParams, Paged},
    validate,
};
use crate::{
    Error,
    auth::Principal,
    entity::task_records,
    grpc::{registry::active_schedulers, task_records::find},
    jobs::rpc::{SchedulerClient, TaskInfo},
    rbac::Act,
};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_cluster_task)).routes(routes!(list_cluster_tasks))
}

/// A task of a cluster as last reported by its schedulers.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskRecord {
    pub task_id: String,
    pub url: String,
    pub content_length: Option<u64>,
    pub total_pieces: u32,
    /// Peers of the task, and how many had the whole content.
    pub peers: u32,
    pub finished_peers: u32,
    /// `running`, `succeeded`, `failed`, or `deleted` (by a `delete_task` job).
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<task_records::Model> for TaskRecord {
    fn from(m: task_records::Model) -> Self {
        Self {
            task_id: m.task_id,
            url: m.url,
            content_length: m.content_length.and_then(|l| u64::try_from(l).ok()),
            total_pieces: u32::try_from(m.total_pieces).unwrap_or(0),
            peers: u32::try_from(m.peers).unwrap_or(0),
            finished_peers: u32::try_from(m.finished_peers).unwrap_or(0),
            state: m.state,
            created_at: m.created_at.and_utc(),
            updated_at: m.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// `running`, `succeeded`, `failed` or `deleted`.
    pub state: Option<String>,
    /// Tasks whose URL contains this.
    pub url: Option<String>,
}

/// A cluster's tasks, most recently changed first, as its schedulers reported them.
#[utoipa::path(get, path = "/clusters/{id}/tasks", tag = "clusters", security(("session" = [])),
    params(("id" = i64, Path, description = "Cluster id"), PageParams, TaskFilter),
    responses((status = 200, body = [TaskRecord]), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_cluster_tasks(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<i64>,
    Query(paging): Query<PageParams>,
    Query(filter): Query<TaskFilter>,
) -> Result<Paged<TaskRecord>, Error> {
    let page = paging.validate()?;
    let cluster = super::clusters::load(&state, &me, id, Act::Read).await?;
    let mut query = task_records::Entity::find()
        .filter(task_records::Column::ClusterId.eq(cluster.id))
        .order_by_desc(task_records::Column::UpdatedAt)
        .order_by_desc(task_records::Column::Id);
    if let Some(s) = filter.state {
        if !["running", "succeeded", "failed", "deleted"].contains(&s.as_str()) {
            return Err(Error::invalid("state", "state must be running, succeeded, failed or deleted"));
        }
        query = query.filter(task_records::Column::State.eq(s));
    }
    if let Some(u) = filter.url.filter(|u| !u.is_empty()) {
        validate::text("url", &u, 4096)?;
        query = query.filter(task_records::Column::Url.contains(u));
    }
    Ok(page::fetch(&state.db, query, page, uri).await?.map(TaskRecord::from))
}

/// A task in one cluster: its peers, their progress and piece sources (the task's graph), live
/// from a scheduler, else from its record (`recorded_at` set).
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
    // No scheduler holds it now: its record, if any, is its history.
    if let Some(recorded) = find(&state.db, cluster.id, &task_id).await? {
        return Ok(Json(recorded));
    }
    if active.is_empty() {
        return Err(Error::NotFound(format!(
            "no task {task_id} in cluster {}: it has no active scheduler to ask and no record",
            cluster.id
        )));
    }
    if errors.len() == active.len() {
        return Err(Error::BadGateway(errors.join("; ")));
    }
    Err(Error::NotFound(format!("no scheduler of cluster {} knows task {task_id}", cluster.id)))
}
