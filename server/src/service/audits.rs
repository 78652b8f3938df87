//! The audit log, newest first: tenant admins see their tenants' entries, platform
//! administrators everything (including sign-ins and platform changes). Entries are written by
//! [`crate::audit`]; this module only reads them.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Ctx, Listed, Page, visible};
use crate::{Error, entity::audits, rbac::Obj};

pub use common::api::Audit;

impl From<audits::Model> for Audit {
    fn from(a: audits::Model) -> Self {
        Self {
            id: a.id,
            tenant_id: a.tenant_id,
            actor_type: a.actor_type,
            actor_id: a.actor_id,
            actor_name: a.actor_name,
            event: a.event,
            operation: a.operation,
            path: a.path,
            status_code: a.status_code,
            state: a.state,
            created_at: super::timestamp(a.created_at.and_utc()),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    pub actor_name: Option<String>,
    pub event: Option<String>,
    /// `success` or `failure`.
    pub state: Option<String>,
    pub tenant_id: Option<i64>,
}

/// Audit entries the caller may see, newest first.
pub async fn list(cx: Ctx<'_>, filter: AuditFilter, page: Page) -> Result<Listed<Audit>, Error> {
    let query = audits::Entity::find().order_by_desc(audits::Column::Id);
    let mut query = visible(cx, query, Obj::Audits, audits::Column::TenantId)?;
    if let Some(v) = filter.actor_name {
        query = query.filter(audits::Column::ActorName.eq(v));
    }
    if let Some(v) = filter.event {
        query = query.filter(audits::Column::Event.eq(v));
    }
    if let Some(v) = filter.state {
        query = query.filter(audits::Column::State.eq(v));
    }
    if let Some(v) = filter.tenant_id {
        query = query.filter(audits::Column::TenantId.eq(v));
    }
    Ok(super::list(cx.db, query, page).await?.map(Audit::from))
}
