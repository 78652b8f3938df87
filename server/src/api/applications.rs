//! Applications: named download sources of a tenant with a priority, optionally per URL pattern,
//! that schedulers use to decide how eagerly peers go to the origin.

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
    response::Response,
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
    audit::in_tenant,
    auth::{Principal, Visible},
    entity::applications,
    rbac::{Act, Obj},
};

/// Download priority, Dragonfly's levels 0 to 6, for the application and per URL pattern.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Priority {
    /// 0 to 6.
    pub value: u8,
    /// The first pattern matching a URL wins over `value`.
    pub urls: Vec<UrlPriority>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UrlPriority {
    /// Regular expression over the download URL.
    pub url: String,
    /// 0 to 6.
    pub value: u8,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Application {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub url: String,
    pub bio: String,
    pub priority: Priority,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<applications::Model> for Application {
    fn from(a: applications::Model) -> Self {
        Self {
            id: a.id,
            tenant_id: a.tenant_id,
            name: a.name,
            url: a.url,
            bio: a.bio,
            priority: serde_json::from_value(a.priority).unwrap_or_default(),
            created_at: a.created_at.and_utc(),
            updated_at: a.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApplication {
    pub tenant_id: Option<i64>,
    pub name: String,
    /// Where the application lives (for people; not used to match downloads).
    pub url: Option<String>,
    pub bio: Option<String>,
    pub priority: Option<Priority>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateApplication {
    pub name: Option<String>,
    pub url: Option<String>,
    pub bio: Option<String>,
    pub priority: Option<Priority>,
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_applications, create_application)).routes(routes!(
        get_application,
        update_application,
        delete_application
    ))
}

fn check_priority(p: &Priority) -> Result<serde_json::Value, Error> {
    if p.value > 6 {
        return Err(Error::invalid("priority.value", "priority.value must be 0 to 6"));
    }
    if p.urls.len() > 100 {
        return Err(Error::invalid("priority.urls", "priority.urls takes at most 100 entries"));
    }
    for u in &p.urls {
        if u.value > 6 {
            return Err(Error::invalid("priority.urls", "each priority.urls value must be 0 to 6"));
        }
        validate::text("priority.urls", &u.url, 1024)?;
        regex::RegexBuilder::new(&u.url)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| Error::invalid("priority.urls", format!("{:?} is not a regular expression: {e}", u.url)))?;
    }
    serde_json::to_value(p).map_err(|e| Error::Internal(e.to_string()))
}

async fn name_taken(state: &ApiState, tenant: i64, name: &str, except: i64) -> Result<bool, Error> {
    Ok(applications::Entity::find()
        .filter(applications::Column::TenantId.eq(tenant))
        .filter(applications::Column::Name.eq(name))
        .filter(applications::Column::Id.ne(except))
        .count(&state.db)
        .await?
        > 0)
}

async fn load(state: &ApiState, me: &Principal, id: i64, act: Act) -> Result<applications::Model, Error> {
    let app =
        applications::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("application"))?;
    me.check(&state.rbac, app.tenant_id, Obj::Applications, act, "application")?;
    Ok(app)
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
    let mut query = applications::Entity::find().order_by_asc(applications::Column::Id);
    if let Visible::Tenants(ids) = me.visible(&state.rbac, Obj::Applications)? {
        query = query.filter(applications::Column::TenantId.is_in(ids));
    }
    Ok(page::fetch(&state.db, query, page, uri).await?.map(Application::from))
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
    let tenant = me.tenant_for_create(&state.rbac, body.tenant_id, Obj::Applications)?;
    crate::service::tenants::live_tenant(&state.db, tenant).await?;
    validate::name("name", &body.name)?;
    let url = body.url.unwrap_or_default();
    validate::text("url", &url, 1024)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    let priority = check_priority(&body.priority.unwrap_or_default())?;
    if name_taken(&state, tenant, &body.name, 0).await? {
        return Err(Error::Conflict(format!("the tenant has an application named {:?}", body.name)));
    }
    let now = Utc::now().naive_utc();
    let app = applications::ActiveModel {
        tenant_id: Set(tenant),
        name: Set(body.name),
        url: Set(url),
        bio: Set(bio),
        priority: Set(priority),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;
    Ok(in_tenant(tenant, (StatusCode::CREATED, Json(Application::from(app)))))
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
    Ok(Json(load(&state, &me, id, Act::Read).await?.into()))
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
    let app = load(&state, &me, id, Act::Update).await?;
    let tenant = app.tenant_id;
    let mut active: applications::ActiveModel = app.into();
    if let Some(name) = body.name {
        validate::name("name", &name)?;
        if name_taken(&state, tenant, &name, id).await? {
            return Err(Error::Conflict(format!("the tenant has an application named {name:?}")));
        }
        active.name = Set(name);
    }
    if let Some(url) = body.url {
        validate::text("url", &url, 1024)?;
        active.url = Set(url);
    }
    if let Some(bio) = body.bio {
        validate::text("bio", &bio, 1024)?;
        active.bio = Set(bio);
    }
    if let Some(p) = body.priority {
        active.priority = Set(check_priority(&p)?);
    }
    active.updated_at = Set(Utc::now().naive_utc());
    Ok(in_tenant(tenant, Json(Application::from(active.update(&state.db).await?))))
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
    let app = load(&state, &me, id, Act::Delete).await?;
    applications::Entity::delete_by_id(id).exec(&state.db).await?;
    Ok(in_tenant(app.tenant_id, StatusCode::NO_CONTENT))
}
