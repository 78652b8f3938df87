//! A tenant's members and their roles (`admin`, `member`, `guest`). Tenant admins manage
//! membership; a tenant always keeps at least one admin, so nobody can lock it out.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    Set,
};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Ctx, Listed, PageRequest, exists, found, tenants::live_tenant};
use crate::{
    Error,
    entity::{
        members::{self, MemberRole},
        users,
    },
    rbac::{Act, Obj},
};

pub use common::api::Member;

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

fn tenant_role(field: &str, role: &str) -> Result<MemberRole, Error> {
    MemberRole::try_from_value(&role.to_owned())
        .map_err(|_| Error::invalid(field, "role must be admin, member or guest"))
}

async fn admin_count(db: &impl ConnectionTrait, tenant: i64) -> Result<u64, Error> {
    Ok(members::Entity::find()
        .filter(members::Column::TenantId.eq(tenant))
        .filter(members::Column::Role.eq(MemberRole::Admin))
        .count(db)
        .await?)
}

async fn membership(db: &impl ConnectionTrait, tenant: i64, user: i64) -> Result<members::Model, Error> {
    let query =
        members::Entity::find().filter(members::Column::TenantId.eq(tenant)).filter(members::Column::UserId.eq(user));
    found(db, query, "member").await
}

/// The tenant's members and their roles, in the order they joined. The paging is checked after
/// the caller may read the tenant's members.
pub async fn list(cx: Ctx<'_>, tenant: i64, page: PageRequest) -> Result<Listed<Member>, Error> {
    cx.me.check(cx.rbac, tenant, Obj::Members, Act::Read, "tenant")?;
    live_tenant(cx.db, tenant).await?;
    let page = page.validate()?;
    let query = members::Entity::find().filter(members::Column::TenantId.eq(tenant)).order_by_asc(members::Column::Id);
    let rows = super::list(cx.db, query, page).await?;
    let names: HashMap<i64, String> = users::Entity::find()
        .filter(users::Column::Id.is_in(rows.items.iter().map(|m| m.user_id)))
        .all(cx.db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.name))
        .collect();
    Ok(rows.map(|m| Member {
        user_name: names.get(&m.user_id).cloned().unwrap_or_default(),
        user_id: m.user_id,
        role: m.role.into(),
        created_at: super::timestamp(m.created_at.and_utc()),
    }))
}

/// Adds a user, by name, to the tenant.
pub async fn add(cx: Ctx<'_>, tenant: i64, body: AddMember) -> Result<Member, Error> {
    cx.me.check(cx.rbac, tenant, Obj::Members, Act::Create, "tenant")?;
    live_tenant(cx.db, tenant).await?;
    let role = tenant_role("role", &body.role)?;
    let user = users::Entity::find()
        .filter(users::Column::Name.eq(body.user_name.as_str()))
        .one(cx.db)
        .await?
        .ok_or_else(|| Error::invalid("user_name", "no user has this name"))?;
    if exists(
        cx.db,
        members::Entity::find()
            .filter(members::Column::TenantId.eq(tenant))
            .filter(members::Column::UserId.eq(user.id)),
    )
    .await?
    {
        return Err(Error::Conflict(format!("{} is already a member; change the role instead", user.name)));
    }
    let m = members::ActiveModel {
        tenant_id: Set(tenant),
        user_id: Set(user.id),
        role: Set(role),
        created_at: Set(Utc::now().naive_utc()),
        ..Default::default()
    }
    .insert(cx.db)
    .await?;
    Ok(Member {
        user_id: user.id,
        user_name: user.name,
        role: role.into(),
        created_at: super::timestamp(m.created_at.and_utc()),
    })
}

/// Changes a member's role; the last admin is not demoted.
pub async fn update(cx: Ctx<'_>, tenant: i64, user_id: i64, body: UpdateMember) -> Result<Member, Error> {
    cx.me.check(cx.rbac, tenant, Obj::Members, Act::Update, "tenant")?;
    let role = tenant_role("role", &body.role)?;
    let m = membership(cx.db, tenant, user_id).await?;
    if m.role == MemberRole::Admin && role != MemberRole::Admin && admin_count(cx.db, tenant).await? <= 1 {
        return Err(Error::Conflict("a tenant keeps at least one admin; promote someone else first".into()));
    }
    let user = found(cx.db, users::Entity::find_by_id(user_id), "member").await?;
    let mut active: members::ActiveModel = m.into();
    active.role = Set(role);
    let m = active.update(cx.db).await?;
    Ok(Member {
        user_id,
        user_name: user.name,
        role: role.into(),
        created_at: super::timestamp(m.created_at.and_utc()),
    })
}

/// Removes a member; the last admin is not removed.
pub async fn remove(cx: Ctx<'_>, tenant: i64, user_id: i64) -> Result<(), Error> {
    cx.me.check(cx.rbac, tenant, Obj::Members, Act::Delete, "tenant")?;
    let m = membership(cx.db, tenant, user_id).await?;
    if m.role == MemberRole::Admin && admin_count(cx.db, tenant).await? <= 1 {
        return Err(Error::Conflict("a tenant keeps at least one admin; promote someone else first".into()));
    }
    members::Entity::delete_by_id(m.id).exec(cx.db).await?;
    Ok(())
}
