//! Configs: platform-wide named settings (platform administrators only).

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Body, Path, Query},
    page::{self, PageParams, Paged},
    validate,
};
use crate::{
    Error,
    auth::Principal,
    entity::configs,
    rbac::{Act, Obj},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct Config {
    pub id: i64,
    pub name: String,
    pub value: String,
    pub bio: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<configs::Model> for Config {
    fn from(c: configs::Model) -> Self {
        Self {
            id: c.id,
            name: c.name,
            value: c.value,
            bio: c.bio,
            created_at: c.created_at.and_utc(),
            updated_at: c.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateConfig {
    pub name: String,
    /// Up to 64 KiB.
    pub value: String,
    pub bio: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateConfig {
    pub value: Option<String>,
    pub bio: Option<String>,
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_configs, create_config)).routes(routes!(
        get_config,
        update_config,
        delete_config
    ))
}

const MAX_VALUE: usize = 64 * 1024;

async fn load(state: &ApiState, me: &Principal, id: i64, act: Act) -> Result<configs::Model, Error> {
    me.check_platform(&state.rbac, Obj::Configs, act)?;
    configs::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("config"))
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
    me.check_platform(&state.rbac, Obj::Configs, Act::Read)?;
    let page = paging.validate()?;
    let query = configs::Entity::find().order_by_asc(configs::Column::Id);
    Ok(page::fetch(&state.db, query, page, uri).await?.map(Config::from))
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
    me.check_platform(&state.rbac, Obj::Configs, Act::Create)?;
    validate::name("name", &body.name)?;
    validate::text("value", &body.value, MAX_VALUE)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    if configs::Entity::find().filter(configs::Column::Name.eq(body.name.as_str())).count(&state.db).await? > 0 {
        return Err(Error::Conflict(format!("a config named {:?} exists", body.name)));
    }
    let now = Utc::now().naive_utc();
    let config = configs::ActiveModel {
        name: Set(body.name),
        value: Set(body.value),
        bio: Set(bio),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;
    Ok((StatusCode::CREATED, Json(config.into())))
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
    Ok(Json(load(&state, &me, id, Act::Read).await?.into()))
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
    let config = load(&state, &me, id, Act::Update).await?;
    let mut active: configs::ActiveModel = config.into();
    if let Some(v) = body.value {
        validate::text("value", &v, MAX_VALUE)?;
        active.value = Set(v);
    }
    if let Some(b) = body.bio {
        validate::text("bio", &b, 1024)?;
        active.bio = Set(b);
    }
    active.updated_at = Set(Utc::now().naive_utc());
    Ok(Json(active.update(&state.db).await?.into()))
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
    load(&state, &me, id, Act::Delete).await?;
    configs::Entity::delete_by_id(id).exec(&state.db).await?;
    Ok(StatusCode::NO_CONTENT)
}
