//! `/clusters/{id}/tasks`: the REST face of [`service::tasks`].

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Path, Query},
    page::{PageParams, Paged},
};
use crate::{
    Error,
    auth::Principal,
    service::{
        self,
        tasks::{TaskFilter, TaskInfo, TaskRecord},
    },
};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_cluster_task)).routes(routes!(list_cluster_tasks))
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
    Ok(Paged::new(service::tasks::list(state.cx(&me), id, filter, page).await?, page, uri))
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
    Ok(Json(service::tasks::get(state.cx(&me), &state.dialer, id, &task_id, state.keepalive_timeout).await?))
}
