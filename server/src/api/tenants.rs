//! Tenants and their members. Anyone signed in may create a tenant and becomes its admin;
//! admins manage membership; only platform administrators delete a tenant.

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
    response::Response,
};
use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Body, Path, Query},
    page::{self, PageParams, Paged},
    validate,
};
use crate::service::timestamp;
use crate::{
    Error,
    audit::in_tenant,
    auth::{Principal, Visible},
    entity::{clusters, members, tenants, users},
    rbac::{Act, Obj, Role},
};

pub use common::api::{Member, Tenant};

impl From<tenants::Model> for Tenant {
    fn from(t: tenants::Model) -> Self {
        Self {
            id: t.id,
            name: t.name,
            bio: t.bio,
            created_at: timestamp(t.created_at.and_utc()),
            updated_at: timestamp(t.updated_at.and_utc()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTenant {
    pub name: String,
    pub bio: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateTenant {
    pub name: Option<String>,
    pub bio: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct AddMember {
    /// The user to add, by name.
    pub user_name: String,
    /// `admin`, `member` or `guest`.
    pub role: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateMember {
    /// `admin`, `member` or `guest`.
    pub role: String,
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(list_tenants, create_tenant))
        .routes(routes!(get_tenant, update_tenant, delete_tenant))
        .routes(routes!(list_members, add_member))
        .routes(routes!(update_member, remove_member))
}

fn tenant_role(field: &str, role: &str) -> Result<Role, Error> {
    Role::tenant_role(role).ok_or_else(|| Error::invalid(field, "role must be admin, member or guest"))
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
    let mut query = tenants::Entity::find().filter(tenants::Column::IsDel.eq(0)).order_by_asc(tenants::Column::Id);
    if let Visible::Tenants(ids) = me.visible(&state.rbac, Obj::Tenants)? {
        query = query.filter(tenants::Column::Id.is_in(ids));
    }
    Ok(page::fetch(&state.db, query, page, uri).await?.map(Tenant::from))
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
    me.check_platform(&state.rbac, Obj::Tenants, Act::Create)?;
    validate::name("name", &body.name)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    let taken = tenants::Entity::find()
        .filter(tenants::Column::Name.eq(body.name.as_str()))
        .filter(tenants::Column::IsDel.eq(0))
        .count(&state.db)
        .await?;
    if taken > 0 {
        return Err(Error::Conflict(format!("a tenant named {:?} exists", body.name)));
    }
    let now = Utc::now().naive_utc();
    let txn = state.db.begin().await?;
    let tenant = tenants::ActiveModel {
        name: Set(body.name),
        bio: Set(bio),
        is_del: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    members::ActiveModel {
        tenant_id: Set(tenant.id),
        user_id: Set(me.user_id),
        role: Set(Role::Admin.as_str().into()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(in_tenant(tenant.id, (StatusCode::CREATED, Json(Tenant::from(tenant.clone())))))
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
    me.check(&state.rbac, id, Obj::Tenants, Act::Read, "tenant")?;
    Ok(Json(crate::service::tenants::live_tenant(&state.db, id).await?.into()))
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
    me.check(&state.rbac, id, Obj::Tenants, Act::Update, "tenant")?;
    let tenant = crate::service::tenants::live_tenant(&state.db, id).await?;
    let mut active: tenants::ActiveModel = tenant.into();
    if let Some(name) = body.name {
        validate::name("name", &name)?;
        let taken = tenants::Entity::find()
            .filter(tenants::Column::Name.eq(name.as_str()))
            .filter(tenants::Column::IsDel.eq(0))
            .filter(tenants::Column::Id.ne(id))
            .count(&state.db)
            .await?;
        if taken > 0 {
            return Err(Error::Conflict(format!("a tenant named {name:?} exists")));
        }
        active.name = Set(name);
    }
    if let Some(bio) = body.bio {
        validate::text("bio", &bio, 1024)?;
        active.bio = Set(bio);
    }
    active.updated_at = Set(Utc::now().naive_utc());
    let tenant = active.update(&state.db).await?;
    Ok(in_tenant(id, Json(Tenant::from(tenant))))
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
    me.check(&state.rbac, id, Obj::Tenants, Act::Delete, "tenant")?;
    let tenant = crate::service::tenants::live_tenant(&state.db, id).await?;
    let live_clusters = clusters::Entity::find()
        .filter(clusters::Column::TenantId.eq(id))
        .filter(clusters::Column::IsDel.eq(0))
        .count(&state.db)
        .await?;
    if live_clusters > 0 {
        return Err(Error::Conflict(format!("the tenant still has {live_clusters} cluster(s); delete them first")));
    }
    let txn = state.db.begin().await?;
    members::Entity::delete_many().filter(members::Column::TenantId.eq(id)).exec(&txn).await?;
    let mut active: tenants::ActiveModel = tenant.into();
    active.is_del = Set(id);
    active.updated_at = Set(Utc::now().naive_utc());
    active.update(&txn).await?;
    txn.commit().await?;
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
    me.check(&state.rbac, id, Obj::Members, Act::Read, "tenant")?;
    crate::service::tenants::live_tenant(&state.db, id).await?;
    let page = paging.validate()?;
    let query = members::Entity::find().filter(members::Column::TenantId.eq(id)).order_by_asc(members::Column::Id);
    let rows = page::fetch(&state.db, query, page, uri).await?;
    let names: std::collections::HashMap<i64, String> = users::Entity::find()
        .filter(users::Column::Id.is_in(rows.items.iter().map(|m| m.user_id)))
        .all(&state.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    Ok(rows.map(|m| Member {
        user_name: names.get(&m.user_id).cloned().unwrap_or_default(),
        user_id: m.user_id,
        role: Role::tenant_role(&m.role).unwrap_or(Role::Guest),
        created_at: timestamp(m.created_at.and_utc()),
    }))
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
    me.check(&state.rbac, id, Obj::Members, Act::Create, "tenant")?;
    crate::service::tenants::live_tenant(&state.db, id).await?;
    let role = tenant_role("role", &body.role)?;
    let user = users::Entity::find()
        .filter(users::Column::Name.eq(body.user_name.as_str()))
        .one(&state.db)
        .await?
        .ok_or_else(|| Error::invalid("user_name", "no user has this name"))?;
    let existing = members::Entity::find()
        .filter(members::Column::TenantId.eq(id))
        .filter(members::Column::UserId.eq(user.id))
        .count(&state.db)
        .await?;
    if existing > 0 {
        return Err(Error::Conflict(format!("{} is already a member; change the role instead", user.name)));
    }
    let m = members::ActiveModel {
        tenant_id: Set(id),
        user_id: Set(user.id),
        role: Set(role.as_str().into()),
        created_at: Set(Utc::now().naive_utc()),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;
    let body = Member { user_id: user.id, user_name: user.name, role, created_at: timestamp(m.created_at.and_utc()) };
    Ok(in_tenant(id, (StatusCode::CREATED, Json(body))))
}

async fn admin_count(db: &DatabaseConnection, tenant: i64) -> Result<u64, Error> {
    Ok(members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant))
        .filter(members::Column::Role.eq(Role::Admin.as_str()))
        .count(db)
        .await?)
}

async fn membership(db: &DatabaseConnection, tenant: i64, user: i64) -> Result<members::Model, Error> {
    members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant))
        .filter(members::Column::UserId.eq(user))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("member"))
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
    me.check(&state.rbac, id, Obj::Members, Act::Update, "tenant")?;
    let role = tenant_role("role", &body.role)?;
    let m = membership(&state.db, id, user_id).await?;
    if m.role == Role::Admin.as_str() && role != Role::Admin && admin_count(&state.db, id).await? <= 1 {
        return Err(Error::Conflict("a tenant keeps at least one admin; promote someone else first".into()));
    }
    let user = users::Entity::find_by_id(user_id).one(&state.db).await?.ok_or_else(|| Error::not_found("member"))?;
    let mut active: members::ActiveModel = m.into();
    active.role = Set(role.as_str().into());
    let m = active.update(&state.db).await?;
    let body = Member { user_id, user_name: user.name, role, created_at: timestamp(m.created_at.and_utc()) };
    Ok(in_tenant(id, Json(body)))
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
    me.check(&state.rbac, id, Obj::Members, Act::Delete, "tenant")?;
    let m = membership(&state.db, id, user_id).await?;
    if m.role == Role::Admin.as_str() && admin_count(&state.db, id).await? <= 1 {
        return Err(Error::Conflict("a tenant keeps at least one admin; promote someone else first".into()));
    }
    members::Entity::delete_by_id(m.id).exec(&state.db).await?;
    Ok(in_tenant(id, StatusCode::NO_CONTENT))
}
