//! `/oapi/v1`: the same jobs and clusters, for machines holding a personal access token
//! (Harbor's preheat provider, CI pipelines). Each route delegates to the `/api/v1` handler;
//! only the credential differs, which the router's layer settles before these run, and a job's
//! state reads as Harbor's provider understands it (`RUNNING` is `PENDING` here).

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    response::Response,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    clusters::{self, Cluster, ClusterFilter, CreateCluster, UpdateCluster},
    extract::{Body, Path, Query},
    jobs::{self, CreateJob, Job, JobFilter},
    page::{PageParams, Paged},
};
use crate::{Error, auth::Principal, error::ErrorBody, service::jobs::ForHarbor};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_jobs, create_job))
        .routes(routes!(get_job))
        .routes(routes!(list_clusters, create_cluster))
        .routes(routes!(get_cluster, update_cluster, delete_cluster))
}

/// Jobs of the token's tenant (scope `job`).
#[utoipa::path(get, path = "/jobs", tag = "oapi", operation_id = "oapi_list_jobs", security(("token" = [])),
    params(PageParams, JobFilter),
    responses((status = 200, body = [Job]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_jobs(
    state: State<ApiState>,
    me: Extension<Principal>,
    uri: OriginalUri,
    paging: Query<PageParams>,
    filter: Query<JobFilter>,
) -> Result<Paged<Job>, Error> {
    Ok(jobs::list_jobs(state, me, uri, paging, filter).await?.map(Job::harbor_view))
}

/// Create a job, e.g. Harbor's preheat (scope `job`).
#[utoipa::path(post, path = "/jobs", tag = "oapi", operation_id = "oapi_create_job", security(("token" = [])),
    request_body = CreateJob,
    responses((status = 201, body = Job), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create_job(
    state: State<ApiState>,
    me: Extension<Principal>,
    body: Body<CreateJob>,
) -> Result<Response, Error> {
    jobs::create_job(state, me, body).await
}

/// One job (scope `job`).
#[utoipa::path(get, path = "/jobs/{id}", tag = "oapi", operation_id = "oapi_get_job", security(("token" = [])),
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_job(state: State<ApiState>, me: Extension<Principal>, id: Path<i64>) -> Result<Json<Job>, Error> {
    Ok(Json(jobs::get_job(state, me, id).await?.0.harbor_view()))
}

/// Clusters of the token's tenant (scope `cluster`).
#[utoipa::path(get, path = "/clusters", tag = "oapi", operation_id = "oapi_list_clusters", security(("token" = [])),
    params(PageParams, ClusterFilter),
    responses((status = 200, body = [Cluster]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_clusters(
    state: State<ApiState>,
    me: Extension<Principal>,
    uri: OriginalUri,
    paging: Query<PageParams>,
    filter: Query<ClusterFilter>,
) -> Result<Paged<Cluster>, Error> {
    clusters::list_clusters(state, me, uri, paging, filter).await
}

/// Create a cluster (scope `cluster`, tenant admin).
#[utoipa::path(post, path = "/clusters", tag = "oapi", operation_id = "oapi_create_cluster", security(("token" = [])),
    request_body = CreateCluster,
    responses((status = 201, body = Cluster), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_cluster(
    state: State<ApiState>,
    me: Extension<Principal>,
    body: Body<CreateCluster>,
) -> Result<Response, Error> {
    clusters::create_cluster(state, me, body).await
}

/// One cluster (scope `cluster`).
#[utoipa::path(get, path = "/clusters/{id}", tag = "oapi", operation_id = "oapi_get_cluster", security(("token" = [])),
    params(("id" = i64, Path, description = "Cluster id")),
    responses((status = 200, body = Cluster), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_cluster(
    state: State<ApiState>,
    me: Extension<Principal>,
    id: Path<i64>,
) -> Result<Json<Cluster>, Error> {
    clusters::get_cluster(state, me, id).await
}

/// Change a cluster (scope `cluster`, tenant admin).
#[utoipa::path(patch, path = "/clusters/{id}", tag = "oapi", operation_id = "oapi_update_cluster",
    security(("token" = [])), request_body = UpdateCluster, params(("id" = i64, Path, description = "Cluster id")),
    responses((status = 200, body = Cluster), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_cluster(
    state: State<ApiState>,
    me: Extension<Principal>,
    id: Path<i64>,
    body: Body<UpdateCluster>,
) -> Result<Response, Error> {
    clusters::update_cluster(state, me, id, body).await
}

/// Delete a cluster (scope `cluster`, tenant admin).
#[utoipa::path(delete, path = "/clusters/{id}", tag = "oapi", operation_id = "oapi_delete_cluster",
    security(("token" = [])), params(("id" = i64, Path, description = "Cluster id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_cluster(
    state: State<ApiState>,
    me: Extension<Principal>,
    id: Path<i64>,
) -> Result<Response, Error> {
    clusters::delete_cluster(state, me, id).await
}
