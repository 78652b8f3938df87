//! `/configs`: the REST face of [`service::configs`].

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Body, Path, Query},
    page::{PageParams, Paged},
};
pub use crate::service::configs::{Config, CreateConfig, UpdateConfig};
use crate::{Error, auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_configs, create_config)).routes(routes!(
        get_config,
        update_config,
        delete_config
    ))
}

/// Every config.
#[utoipa::path(get, path = "/configs", tag = "configs", security(("session" = [])), params(PageParams),
    responses((status = 200, body = [Config]), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_configs(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
) -> Result<Paged<Config>, Error> {
    let listed = service::configs::list(state.cx(&me), paging.request()).await?;
    Ok(Paged::new(listed, paging.validate()?, uri))
}

/// Create a config.
#[utoipa::path(post, path = "/configs", tag = "configs", security(("session" = [])), request_body = CreateConfig,
    responses((status = 201, body = Config), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_config(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Body(body): Body<CreateConfig>,
) -> Result<(StatusCode, Json<Config>), Error> {
    Ok((StatusCode::CREATED, Json(service::configs::create(state.cx(&me), body).await?)))
}

/// One config.
#[utoipa::path(get, path = "/configs/{id}", tag = "configs", security(("session" = [])),
    params(("id" = i64, Path, description = "Config id")),
    responses((status = 200, body = Config), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_config(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<Config>, Error> {
    Ok(Json(service::configs::get(state.cx(&me), id).await?))
}

/// Change a config's value or description.
#[utoipa::path(patch, path = "/configs/{id}", tag = "configs", security(("session" = [])), request_body = UpdateConfig,
    params(("id" = i64, Path, description = "Config id")),
    responses((status = 200, body = Config), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn update_config(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<UpdateConfig>,
) -> Result<Json<Config>, Error> {
    Ok(Json(service::configs::update(state.cx(&me), id, body).await?))
}

/// Delete a config.
#[utoipa::path(delete, path = "/configs/{id}", tag = "configs", security(("session" = [])),
    params(("id" = i64, Path, description = "Config id")),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_config(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<StatusCode, Error> {
    service::configs::delete(state.cx(&me), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
