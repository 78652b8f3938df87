//! `/applications`: the REST face of [`service::applications`].

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
pub use crate::service::applications::{Application, CreateApplication, UpdateApplication};
use crate::{Error, audit::in_tenant, auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_applications, create_application)).routes(routes!(
        get_application,
        update_application,
        delete_application
    ))
}

/// Applications of the caller's tenants.
#[utoipa::path(get, path = "/applications", tag = "applications", security(("session" = [])), params(PageParams),
    responses((status = 200, body = [Application])))]
pub async fn list_applications(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
) -> Result<Paged<Application>, Error> {
    let page = paging.validate()?;
    Ok(Paged::new(service::applications::list(state.cx(&me), page).await?, page, uri))
}

/// Create an application (tenant admins).
#[utoipa::path(post, path = "/applications", tag = "applications", security(("session" = [])),
    request_body = CreateApplication,
    responses((status = 201, body = Application), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_application(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Body(body): Body<CreateApplication>,
) -> Result<Response, Error> {
    let app = service::applications::create(state.cx(&me), body).await?;
    Ok(in_tenant(app.tenant_id, (StatusCode::CREATED, Json(app))))
}

/// One application.
#[utoipa::path(get, path = "/applications/{id}", tag = "applications", security(("session" = [])),
    params(("id" = i64, Path, description = "Application id")),
    responses((status = 200, body = Application), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_application(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<Application>, Error> {
    Ok(Json(service::applications::get(state.cx(&me), id).await?))
}

/// Change an application (tenant admins).
#[utoipa::path(patch, path = "/applications/{id}", tag = "applications", security(("session" = [])),
    request_body = UpdateApplication, params(("id" = i64, Path, description = "Application id")),
    responses((status = 200, body = Application), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn update_application(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<UpdateApplication>,
) -> Result<Response, Error> {
    let app = service::applications::update(state.cx(&me), id, body).await?;
    Ok(in_tenant(app.tenant_id, Json(app)))
}

/// Delete an application (tenant admins).
#[utoipa::path(delete, path = "/applications/{id}", tag = "applications", security(("session" = [])),
    params(("id" = i64, Path, description = "Application id")),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_application(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let tenant = service::applications::delete(state.cx(&me), id).await?;
    Ok(in_tenant(tenant, StatusCode::NO_CONTENT))
}
