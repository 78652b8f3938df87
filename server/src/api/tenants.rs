//! `/tenants` and `/tenants/{id}/members`: the REST face of [`service::tenants`] and
//! [`service::members`].

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
pub use crate::service::{
    members::{AddMember, Member, UpdateMember},
    tenants::{CreateTenant, Tenant, UpdateTenant},
};
use crate::{Error, audit::in_tenant, auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant, delete_tenant))
        .routes(routes!(list_members, add_member))
        .routes(routes!(update_member, remove_member))
}

/// Tenants the caller belongs to (every tenant for platform administrators).
#[utoipa::path(get, path = "/tenants", tag = "tenants", security(("session" = [])), params(PageParams),
    responses((status = 200, body = [Tenant])))]
pub async fn list_tenants(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
) -> Result<Paged<Tenant>, Error> {
    let page = paging.validate()?;
    Ok(Paged::new(service::tenants::list(state.cx(&me), page).await?, page, uri))
}

/// Create a tenant; the caller becomes its admin.
#[utoipa::path(post, path = "/tenants", tag = "tenants", security(("session" = [])), request_body = CreateTenant,
    responses((status = 201, body = Tenant), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_tenant(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Body(body): Body<CreateTenant>,
) -> Result<Response, Error> {
    let tenant = service::tenants::create(state.cx(&me), body).await?;
    Ok(in_tenant(tenant.id, (StatusCode::CREATED, Json(tenant))))
}

/// One tenant.
#[utoipa::path(get, path = "/tenants/{id}", tag = "tenants", security(("session" = [])),
    params(("id" = i64, Path, description = "Tenant id")),
    responses((status = 200, body = Tenant), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_tenant(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<Tenant>, Error> {
    Ok(Json(service::tenants::get(state.cx(&me), id).await?))
}

/// Rename a tenant or change its description (tenant admins).
#[utoipa::path(patch, path = "/tenants/{id}", tag = "tenants", security(("session" = [])), request_body = UpdateTenant,
    params(("id" = i64, Path, description = "Tenant id")),
    responses((status = 200, body = Tenant), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn update_tenant(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<UpdateTenant>,
) -> Result<Response, Error> {
    let tenant = service::tenants::update(state.cx(&me), id, body).await?;
    Ok(in_tenant(id, Json(tenant)))
}

/// Delete a tenant (platform administrators). Its clusters must be deleted first, so nothing
/// is orphaned by accident; memberships go with it.
#[utoipa::path(delete, path = "/tenants/{id}", tag = "tenants", security(("session" = [])),
    params(("id" = i64, Path, description = "Tenant id")),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn delete_tenant(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    service::tenants::delete(state.cx(&me), id).await?;
    Ok(in_tenant(id, StatusCode::NO_CONTENT))
}

/// The tenant's members and their roles.
#[utoipa::path(get, path = "/tenants/{id}/members", tag = "tenants", security(("session" = [])),
    params(("id" = i64, Path, description = "Tenant id"), PageParams),
    responses((status = 200, body = [Member]), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_members(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<i64>,
    Query(paging): Query<PageParams>,
) -> Result<Paged<Member>, Error> {
    let listed = service::members::list(state.cx(&me), id, paging.request()).await?;
    Ok(Paged::new(listed, paging.validate()?, uri))
}

/// Add a user to the tenant (tenant admins).
#[utoipa::path(post, path = "/tenants/{id}/members", tag = "tenants", security(("session" = [])), request_body = AddMember,
    params(("id" = i64, Path, description = "Tenant id")),
    responses((status = 201, body = Member), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn add_member(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<AddMember>,
) -> Result<Response, Error> {
    let member = service::members::add(state.cx(&me), id, body).await?;
    Ok(in_tenant(id, (StatusCode::CREATED, Json(member))))
}

/// Change a member's role (tenant admins). The last admin cannot be demoted.
#[utoipa::path(patch, path = "/tenants/{id}/members/{user_id}", tag = "tenants", security(("session" = [])),
    request_body = UpdateMember,
    params(("id" = i64, Path, description = "Tenant id"), ("user_id" = i64, Path, description = "User id")),
    responses((status = 200, body = Member), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn update_member(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path((id, user_id)): Path<(i64, i64)>,
    Body(body): Body<UpdateMember>,
) -> Result<Response, Error> {
    let member = service::members::update(state.cx(&me), id, user_id, body).await?;
    Ok(in_tenant(id, Json(member)))
}

/// Remove a member (tenant admins). The last admin cannot be removed.
#[utoipa::path(delete, path = "/tenants/{id}/members/{user_id}", tag = "tenants", security(("session" = [])),
    params(("id" = i64, Path, description = "Tenant id"), ("user_id" = i64, Path, description = "User id")),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn remove_member(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path((id, user_id)): Path<(i64, i64)>,
) -> Result<Response, Error> {
    service::members::remove(state.cx(&me), id, user_id).await?;
    Ok(in_tenant(id, StatusCode::NO_CONTENT))
}
