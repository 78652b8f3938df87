//! Tenants: the unit of ownership. Every cluster, job, application and token belongs to one;
//! a deleted tenant (soft-deleted, `is_del` set) owns nothing new.

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::{Error, entity::tenants};

/// A live (not deleted) tenant, or 404.
pub async fn live_tenant(db: &impl ConnectionTrait, id: i64) -> Result<tenants::Model, Error> {
    tenants::Entity::find_by_id(id)
        .filter(tenants::Column::IsDel.eq(0))
        .one(db)
        .await?
        .ok_or_else(|| Error::not_found("tenant"))
}
