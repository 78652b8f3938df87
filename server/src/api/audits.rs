//! The audit log, newest first: tenant admins see their tenants' entries, platform
//! administrators everything (including sign-ins and platform changes).

use axum::extract::{Extension, OriginalUri, State};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::Query,
    page::{self, PageParams, Paged},
};
use crate::service::timestamp;
use crate::{
    Error,
    auth::{Principal, Visible},
    entity::audits,
    rbac::Obj,
};

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
            created_at: timestamp(a.created_at.and_utc()),
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

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_audits))
}

/// Audit entries the caller may see.
#[utoipa::path(get, path = "/audits", tag = "audits", security(("session" = [])), params(PageParams, AuditFilter),
    responses((status = 200, body = [Audit])))]
pub async fn list_audits(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
    Query(filter): Query<AuditFilter>,
) -> Result<Paged<Audit>, Error> {
    let page = paging.validate()?;
    let mut query = audits::Entity::find().order_by_desc(audits::Column::Id);
    if let Visible::Tenants(ids) = me.visible(&state.rbac, Obj::Audits)? {
        query = query.filter(audits::Column::TenantId.is_in(ids));
    }
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
    Ok(page::fetch(&state.db, query, page, uri).await?.map(Audit::from))
}
