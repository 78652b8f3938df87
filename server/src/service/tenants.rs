//! Tenants: the unit of ownership. Every cluster, job, application and token belongs to one;
//! a deleted tenant (soft-deleted, `is_del` set) owns nothing new. Anyone signed in may create a
//! tenant and becomes its admin; only platform administrators delete one, and only once its
//! clusters are gone. Membership is [`super::members`].

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Ctx, Listed, Page, exists, found, validate, visible};
use crate::{
    Error,
    entity::{
        clusters,
        members::{self, MemberRole},
        tenants,
    },
    rbac::{Act, Obj},
};

pub use common::api::Tenant;

impl From<tenants::Model> for Tenant {
    fn from(t: tenants::Model) -> Self {
        Self {
            id: t.id,
            name: t.name,
            bio: t.bio,
            created_at: super::timestamp(t.created_at.and_utc()),
            updated_at: super::timestamp(t.updated_at.and_utc()),
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

/// A live (not deleted) tenant, or 404.
pub async fn live_tenant(db: &impl ConnectionTrait, id: i64) -> Result<tenants::Model, Error> {
    found(db, tenants::Entity::find_by_id(id).filter(tenants::Column::IsDel.eq(0)), "tenant").await
}

/// Whether a live tenant other than `except` has this name.
async fn name_taken(cx: Ctx<'_>, name: &str, except: i64) -> Result<bool, Error> {
    let query = tenants::Entity::find()
        .filter(tenants::Column::Name.eq(name))
        .filter(tenants::Column::IsDel.eq(0))
        .filter(tenants::Column::Id.ne(except));
    exists(cx.db, query).await
}

/// Tenants the caller belongs to (every tenant for platform administrators), oldest first.
pub async fn list(cx: Ctx<'_>, page: Page) -> Result<Listed<Tenant>, Error> {
    let query = tenants::Entity::find().filter(tenants::Column::IsDel.eq(0)).order_by_asc(tenants::Column::Id);
    let query = visible(cx, query, Obj::Tenants, tenants::Column::Id)?;
    Ok(super::list(cx.db, query, page).await?.map(Tenant::from))
}

/// Creates a tenant with the caller as its admin.
pub async fn create(cx: Ctx<'_>, body: CreateTenant) -> Result<Tenant, Error> {
    cx.me.check_platform(cx.rbac, Obj::Tenants, Act::Create)?;
    validate::name("name", &body.name)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    if name_taken(cx, &body.name, 0).await? {
        return Err(Error::Conflict(format!("a tenant named {:?} exists", body.name)));
    }
    let now = Utc::now().naive_utc();
    let txn = cx.db.begin().await?;
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
        user_id: Set(cx.me.user_id),
        role: Set(MemberRole::Admin),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(tenant.into())
}

/// One tenant the caller may read.
pub async fn get(cx: Ctx<'_>, id: i64) -> Result<Tenant, Error> {
    cx.me.check(cx.rbac, id, Obj::Tenants, Act::Read, "tenant")?;
    Ok(live_tenant(cx.db, id).await?.into())
}

/// Renames a tenant or changes its description.
pub async fn update(cx: Ctx<'_>, id: i64, body: UpdateTenant) -> Result<Tenant, Error> {
    cx.me.check(cx.rbac, id, Obj::Tenants, Act::Update, "tenant")?;
    let tenant = live_tenant(cx.db, id).await?;
    let mut active: tenants::ActiveModel = tenant.into();
    if let Some(name) = body.name {
        validate::name("name", &name)?;
        if name_taken(cx, &name, id).await? {
            return Err(Error::Conflict(format!("a tenant named {name:?} exists")));
        }
        active.name = Set(name);
    }
    if let Some(bio) = body.bio {
        validate::text("bio", &bio, 1024)?;
        active.bio = Set(bio);
    }
    active.updated_at = Set(Utc::now().naive_utc());
    Ok(active.update(cx.db).await?.into())
}

/// Deletes a tenant whose clusters are all deleted; its memberships go with it.
pub async fn delete(cx: Ctx<'_>, id: i64) -> Result<(), Error> {
    cx.me.check(cx.rbac, id, Obj::Tenants, Act::Delete, "tenant")?;
    let tenant = live_tenant(cx.db, id).await?;
    let live_clusters = clusters::Entity::find()
        .filter(clusters::Column::TenantId.eq(id))
        .filter(clusters::Column::IsDel.eq(0))
        .count(cx.db)
        .await?;
    if live_clusters > 0 {
        return Err(Error::Conflict(format!("the tenant still has {live_clusters} cluster(s); delete them first")));
    }
    let txn = cx.db.begin().await?;
    members::Entity::delete_many().filter(members::Column::TenantId.eq(id)).exec(&txn).await?;
    let mut active: tenants::ActiveModel = tenant.into();
    active.is_del = Set(id);
    active.updated_at = Set(Utc::now().naive_utc());
    active.update(&txn).await?;
    txn.commit().await?;
    Ok(())
}
