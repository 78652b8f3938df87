//! `/personal-access-tokens`: the REST face of [`service::tokens`].

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
pub use crate::service::tokens::{CreateToken, CreatedToken, PersonalAccessToken, UpdateToken};
use crate::{Error, audit::in_tenant, auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_tokens, create_token)).routes(routes!(
        get_token,
        update_token,
        delete_token
    ))
}

/// The caller's tokens, and for tenant admins every token of their tenants.
#[utoipa::path(get, path = "/personal-access-tokens", tag = "personal-access-tokens", security(("session" = [])),
    params(PageParams), responses((status = 200, body = [PersonalAccessToken])))]
pub async fn list_tokens(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
) -> Result<Paged<PersonalAccessToken>, Error> {
    let page = paging.validate()?;
    Ok(Paged::new(service::tokens::list(state.cx(&me), page).await?, page, uri))
}

/// Create a token for oneself in one tenant; the answer carries the token, shown only now.
#[utoipa::path(post, path = "/personal-access-tokens", tag = "personal-access-tokens", security(("session" = [])),
    request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Body(body): Body<CreateToken>,
) -> Result<Response, Error> {
    let created = service::tokens::create(state.cx(&me), body).await?;
    Ok(in_tenant(created.meta.tenant_id, (StatusCode::CREATED, Json(created))))
}

/// One token (never the token itself).
#[utoipa::path(get, path = "/personal-access-tokens/{id}", tag = "personal-access-tokens", security(("session" = [])),
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 200, body = PersonalAccessToken), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<PersonalAccessToken>, Error> {
    Ok(Json(service::tokens::get(state.cx(&me), id).await?))
}

/// Disable or re-enable a token, change its expiry or description.
#[utoipa::path(patch, path = "/personal-access-tokens/{id}", tag = "personal-access-tokens", security(("session" = [])),
    request_body = UpdateToken, params(("id" = i64, Path, description = "Token id")),
    responses((status = 200, body = PersonalAccessToken), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn update_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<UpdateToken>,
) -> Result<Response, Error> {
    let t = service::tokens::update(state.cx(&me), id, body).await?;
    Ok(in_tenant(t.tenant_id, Json(t)))
}

/// Revoke a token for good.
#[utoipa::path(delete, path = "/personal-access-tokens/{id}", tag = "personal-access-tokens", security(("session" = [])),
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let tenant = service::tokens::delete(state.cx(&me), id).await?;
    Ok(in_tenant(tenant, StatusCode::NO_CONTENT))
}
