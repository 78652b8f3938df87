//! `/jobs`: the REST face of [`service::jobs`]. `POST` records the job as `PENDING`; the job
//! runner picks it up. The answer's shape follows Dragonfly's, which Harbor's preheat provider
//! reads.

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
    response::Response,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Body, Path, Query},
    page::{PageParams, Paged},
};
pub use crate::service::jobs::{CreateJob, Job, JobFilter, UpdateJob};
use crate::{Error, audit::in_tenant, auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_jobs, create_job)).routes(routes!(get_job, update_job, delete_job))
}

/// Jobs of the caller's tenants, newest first.
#[utoipa::path(get, path = "/jobs", tag = "jobs", security(("session" = [])), params(PageParams, JobFilter),
    responses((status = 200, body = [Job])))]
pub async fn list_jobs(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
    Query(filter): Query<JobFilter>,
) -> Result<Paged<Job>, Error> {
    let page = paging.validate()?;
    Ok(Paged::new(service::jobs::list(state.cx(&me), filter, page).await?, page, uri))
}

/// Create a job (tenant members and admins). Answers the job as `PENDING`; poll it by id.
#[utoipa::path(post, path = "/jobs", tag = "jobs", security(("session" = [])), request_body = CreateJob,
    responses((status = 201, body = Job), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody)))]
pub async fn create_job(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Body(body): Body<CreateJob>,
) -> Result<Response, Error> {
    let job = service::jobs::create(state.cx(&me), body, &state.job_limiter, state.job_queue.as_ref()).await?;
    Ok(in_tenant(job.tenant_id, (StatusCode::CREATED, Json(job))))
}

/// One job with its state and results.
#[utoipa::path(get, path = "/jobs/{id}", tag = "jobs", security(("session" = [])),
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_job(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<Job>, Error> {
    Ok(Json(service::jobs::get(state.cx(&me), id).await?))
}

/// Change a job's description, or cancel it with `state: FAILURE` (tenant admins); 409 when it
/// has already ended.
#[utoipa::path(patch, path = "/jobs/{id}", tag = "jobs", security(("session" = [])), request_body = UpdateJob,
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
pub async fn update_job(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<UpdateJob>,
) -> Result<Response, Error> {
    let job = service::jobs::update(state.cx(&me), id, body).await?;
    Ok(in_tenant(job.tenant_id, Json(job)))
}

/// Delete a job record (tenant admins); a running preheat is cancelled on its hosts.
#[utoipa::path(delete, path = "/jobs/{id}", tag = "jobs", security(("session" = [])),
    params(("id" = i64, Path, description = "Job id")),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_job(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let tenant = service::jobs::delete(state.cx(&me), id).await?;
    Ok(in_tenant(tenant, StatusCode::NO_CONTENT))
}
