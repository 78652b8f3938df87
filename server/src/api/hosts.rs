//! Schedulers, seed peers and peers: rows written by gRPC registration, read and cleaned up
//! here. They belong to a cluster and through it to a tenant. Active hosts cannot be deleted
//! (they would re-register at once); inactive ones can.
//!
//! The three kinds share their handlers through [`host_routes!`]; only the answered shape differs.

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
    response::Response,
};
use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder,
    sea_query::{Query as SqlQuery, SimpleExpr},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;

use super::{
    ApiState,
    extract::{Path, Query},
    page::{self, PageParams, Paged},
};
use crate::{
    Error,
    audit::in_tenant,
    auth::{Principal, Visible},
    entity::{clusters, peers, schedulers, seed_peers},
    rbac::{Act, Obj},
};

/// A scheduler of a cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scheduler {
    pub id: i64,
    pub cluster_id: i64,
    pub hostname: String,
    pub ip: String,
    pub port: i32,
    pub idc: String,
    pub location: String,
    /// `active` or `inactive`.
    pub state: String,
    pub version: String,
    /// Such as `schedule`, `preheat`.
    pub features: Vec<String>,
    pub last_keep_alive_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<schedulers::Model> for Scheduler {
    fn from(m: schedulers::Model) -> Self {
        Self {
            id: m.id,
            cluster_id: m.cluster_id,
            hostname: m.hostname,
            ip: m.ip,
            port: m.port,
            idc: m.idc,
            location: m.location,
            state: m.state,
            version: m.version,
            features: serde_json::from_value(m.features).unwrap_or_default(),
            last_keep_alive_at: m.last_keep_alive_at.map(|t| t.and_utc()),
            created_at: m.created_at.and_utc(),
            updated_at: m.updated_at.and_utc(),
        }
    }
}

/// A seed peer of a cluster.
#[derive(Debug, Serialize, ToSchema)]
pub struct SeedPeer {
    pub id: i64,
    pub cluster_id: i64,
    pub hostname: String,
    pub ip: String,
    pub port: i32,
    pub download_port: i32,
    pub r#type: String,
    pub idc: String,
    pub location: String,
    /// `active` or `inactive`.
    pub state: String,
    pub version: String,
    pub last_keep_alive_at: Option<DateTime<Utc>>,
    /// Bytes per second uploaded to other peers between its two latest keepalives.
    pub upload_rate: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<seed_peers::Model> for SeedPeer {
    fn from(m: seed_peers::Model) -> Self {
        Self {
            id: m.id,
            cluster_id: m.cluster_id,
            hostname: m.hostname,
            ip: m.ip,
            port: m.port,
            download_port: m.download_port,
            r#type: m.r#type,
            idc: m.idc,
            location: m.location,
            state: m.state,
            version: m.version,
            last_keep_alive_at: m.last_keep_alive_at.map(|t| t.and_utc()),
            upload_rate: u64::try_from(m.upload_rate).unwrap_or(0),
            created_at: m.created_at.and_utc(),
            updated_at: m.updated_at.and_utc(),
        }
    }
}

/// A peer that asked the manager for schedulers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Peer {
    pub id: i64,
    pub cluster_id: i64,
    pub hostname: String,
    pub ip: String,
    pub port: i32,
    pub download_port: i32,
    pub r#type: String,
    pub idc: String,
    pub location: String,
    pub os: String,
    pub platform: String,
    /// `active` or `inactive`.
    pub state: String,
    pub version: String,
    pub last_keep_alive_at: Option<DateTime<Utc>>,
    /// Bytes per second uploaded to other peers between its two latest keepalives.
    pub upload_rate: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<peers::Model> for Peer {
    fn from(m: peers::Model) -> Self {
        Self {
            id: m.id,
            cluster_id: m.cluster_id,
            hostname: m.hostname,
            ip: m.ip,
            port: m.port,
            download_port: m.download_port,
            r#type: m.r#type,
            idc: m.idc,
            location: m.location,
            os: m.os,
            platform: m.platform,
            state: m.state,
            version: m.version,
            last_keep_alive_at: m.last_keep_alive_at.map(|t| t.and_utc()),
            upload_rate: u64::try_from(m.upload_rate).unwrap_or(0),
            created_at: m.created_at.and_utc(),
            updated_at: m.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HostFilter {
    pub cluster_id: Option<i64>,
    /// `active` or `inactive`.
    pub state: Option<String>,
    /// Exact hostname.
    pub hostname: Option<String>,
    /// Exact IP.
    pub ip: Option<String>,
}

/// `cluster_id IN (live clusters of these tenants)`.
fn in_visible_clusters(column: impl ColumnTrait, tenants: Vec<i64>) -> SimpleExpr {
    column.in_subquery(
        SqlQuery::select()
            .column(clusters::Column::Id)
            .from(clusters::Entity)
            .and_where(clusters::Column::TenantId.is_in(tenants))
            .to_owned(),
    )
}

/// The tenant of a host's cluster (deleted clusters included: their hosts stay visible to
/// the tenant until cleaned up).
async fn tenant_of(state: &ApiState, cluster_id: i64, what: &str) -> Result<i64, Error> {
    clusters::Entity::find_by_id(cluster_id)
        .one(&state.db)
        .await?
        .map(|c| c.tenant_id)
        .ok_or_else(|| Error::not_found(what))
}

macro_rules! host_routes {
    ($module:ident, $entity:ident, $dto:ident, $obj:expr, $path:literal, $item_path:literal, $tag:literal, $what:literal) => {
        mod $module {
            use super::*;
            use utoipa_axum::routes;

            pub fn routes() -> OpenApiRouter<ApiState> {
                OpenApiRouter::new().routes(routes!(list)).routes(routes!(get, delete))
            }

            #[doc = concat!("The ", $what, "s of the caller's tenants' clusters.")]
            #[utoipa::path(get, path = $path, tag = $tag, operation_id = concat!("list_", $tag), security(("session" = [])), params(PageParams, HostFilter),
                responses((status = 200, body = [$dto])))]
            pub async fn list(
                State(state): State<ApiState>,
                Extension(me): Extension<Principal>,
                OriginalUri(uri): OriginalUri,
                Query(paging): Query<PageParams>,
                Query(filter): Query<HostFilter>,
            ) -> Result<Paged<$dto>, Error> {
                let page = paging.validate()?;
                let mut query = $entity::Entity::find().order_by_asc($entity::Column::Id);
                if let Visible::Tenants(ids) = me.visible(&state.rbac, $obj)? {
                    query = query.filter(in_visible_clusters($entity::Column::ClusterId, ids));
                }
                if let Some(c) = filter.cluster_id {
                    query = query.filter($entity::Column::ClusterId.eq(c));
                }
                if let Some(s) = filter.state {
                    query = query.filter($entity::Column::State.eq(s));
                }
                if let Some(h) = filter.hostname {
                    query = query.filter($entity::Column::Hostname.eq(h));
                }
                if let Some(ip) = filter.ip {
                    query = query.filter($entity::Column::Ip.eq(ip));
                }
                Ok(page::fetch(&state.db, query, page, uri).await?.map($dto::from))
            }

            async fn load(
                state: &ApiState,
                me: &Principal,
                id: i64,
                act: Act,
            ) -> Result<($entity::Model, i64), Error> {
                let row =
                    $entity::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found($what))?;
                let tenant = tenant_of(state, row.cluster_id, $what).await?;
                me.check(&state.rbac, tenant, $obj, act, $what)?;
                Ok((row, tenant))
            }

            #[doc = concat!("One ", $what, ".")]
            #[utoipa::path(get, path = $item_path, tag = $tag, operation_id = concat!("get_", $tag), security(("session" = [])),
                params(("id" = i64, Path, description = "Id")),
                responses((status = 200, body = $dto), (status = 404, body = crate::error::ErrorBody)))]
            pub async fn get(
                State(state): State<ApiState>,
                Extension(me): Extension<Principal>,
                Path(id): Path<i64>,
            ) -> Result<Json<$dto>, Error> {
                Ok(Json(load(&state, &me, id, Act::Read).await?.0.into()))
            }

            #[doc = concat!("Forget an inactive ", $what, " (tenant admins).")]
            #[utoipa::path(delete, path = $item_path, tag = $tag, operation_id = concat!("delete_", $tag), security(("session" = [])),
                params(("id" = i64, Path, description = "Id")),
                responses((status = 204), (status = 403, body = crate::error::ErrorBody),
                    (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
            pub async fn delete(
                State(state): State<ApiState>,
                Extension(me): Extension<Principal>,
                Path(id): Path<i64>,
            ) -> Result<Response, Error> {
                let (row, tenant) = load(&state, &me, id, Act::Delete).await?;
                if row.state == "active" {
                    return Err(Error::Conflict(format!("the {} is active; stop it first", $what)));
                }
                $entity::Entity::delete_by_id(id).exec(&state.db).await?;
                Ok(in_tenant(tenant, StatusCode::NO_CONTENT))
            }
        }
    };
}

host_routes!(
    scheduler_routes,
    schedulers,
    Scheduler,
    Obj::Schedulers,
    "/schedulers",
    "/schedulers/{id}",
    "schedulers",
    "scheduler"
);
host_routes!(
    seed_peer_routes,
    seed_peers,
    SeedPeer,
    Obj::SeedPeers,
    "/seed-peers",
    "/seed-peers/{id}",
    "seed-peers",
    "seed peer"
);
host_routes!(peer_routes, peers, Peer, Obj::Peers, "/peers", "/peers/{id}", "peers", "peer");

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(scheduler_routes::routes())
        .merge(seed_peer_routes::routes())
        .merge(peer_routes::routes())
}
