//! `/clusters/{id}/join-tokens`: the REST face of [`service::join_tokens`]. Redeeming a token is
//! enrolment's business, not this API's.

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
pub use crate::service::join_tokens::{CreateJoinToken, CreatedJoinToken, JoinToken};
use crate::{Error, audit::in_tenant, auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_join_tokens, create_join_token))
        .routes(routes!(get_join_token, revoke_join_token))
}

/// The cluster's join tokens, revoked ones too (those who may change the cluster).
#[utoipa::path(get, path = "/clusters/{id}/join-tokens", tag = "clusters", security(("session" = [])),
    params(("id" = i64, Path, description = "Cluster id"), PageParams),
    responses((status = 200, body = [JoinToken]), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_join_tokens(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<i64>,
    Query(paging): Query<PageParams>,
) -> Result<Paged<JoinToken>, Error> {
    let listed = service::join_tokens::list(state.cx(&me), id, paging.request()).await?;
    Ok(Paged::new(listed, paging.validate()?, uri))
}

/// Make a token a scheduler, seed peer or peer enrols in the cluster with (those who may change
/// the cluster); the answer carries the token, shown only now.
#[utoipa::path(post, path = "/clusters/{id}/join-tokens", tag = "clusters", security(("session" = [])),
    request_body = CreateJoinToken, params(("id" = i64, Path, description = "Cluster id")),
    responses((status = 201, body = CreatedJoinToken), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 415, body = crate::error::ErrorBody)))]
pub async fn create_join_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<CreateJoinToken>,
) -> Result<Response, Error> {
    let mut created = service::join_tokens::create(state.cx(&me), id, body).await?;
    // The enrolling component pins the manager's CA with the token's last part.
    if let Some(pki) = &state.pki {
        created.token = format!("{}.{}", created.token, pki.ca_sha256());
    }
    Ok(in_tenant(created.meta.tenant_id, (StatusCode::CREATED, Json(created))))
}

/// One join token of the cluster (never the token itself).
#[utoipa::path(get, path = "/clusters/{id}/join-tokens/{token_id}", tag = "clusters", security(("session" = [])),
    params(("id" = i64, Path, description = "Cluster id"), ("token_id" = i64, Path, description = "Join token id")),
    responses((status = 200, body = JoinToken), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_join_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path((id, token_id)): Path<(i64, i64)>,
) -> Result<Json<JoinToken>, Error> {
    Ok(Json(service::join_tokens::get(state.cx(&me), id, token_id).await?))
}

/// Revoke a join token for good; it stays listed, as `revoked`, for the record.
#[utoipa::path(delete, path = "/clusters/{id}/join-tokens/{token_id}", tag = "clusters", security(("session" = [])),
    params(("id" = i64, Path, description = "Cluster id"), ("token_id" = i64, Path, description = "Join token id")),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn revoke_join_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path((id, token_id)): Path<(i64, i64)>,
) -> Result<Response, Error> {
    let tenant = service::join_tokens::revoke(state.cx(&me), id, token_id).await?;
    Ok(in_tenant(tenant, StatusCode::NO_CONTENT))
}
