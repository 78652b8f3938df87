//! Schedulers, seed peers and peers: rows written by gRPC registration ([`super::registry`]),
//! read and cleaned up here. They belong to a cluster and through it to a tenant. Active hosts
//! cannot be deleted (they would re-register at once); inactive ones can.
//!
//! The three tables share one implementation through [`HostTable`]; only the answered shape
//! and the policy object differ.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveEnum, ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    sea_query::{Query as SqlQuery, SimpleExpr},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Ctx, Listed, Page};
use crate::{
    Error,
    auth::Visible,
    entity::{
        clusters, peers,
        schedulers::{self, HostState},
        seed_peers,
    },
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
            state: m.state.to_value(),
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
            state: m.state.to_value(),
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
            state: m.state.to_value(),
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

/// What the three host tables have in common.
pub trait HostTable: EntityTrait<Model: FromQueryResult + Sized + Send + Sync> {
    /// The answered shape.
    type Dto: From<Self::Model>;
    /// The policy object guarding the table.
    const OBJ: Obj;
    /// How an error names one row.
    const WHAT: &'static str;
    /// The `id`, `cluster_id`, `state`, `hostname` and `ip` columns.
    const ID: Self::Column;
    const CLUSTER_ID: Self::Column;
    const STATE: Self::Column;
    const HOSTNAME: Self::Column;
    const IP: Self::Column;
    /// A row's cluster and state.
    fn placed(row: &Self::Model) -> (i64, HostState);
}

macro_rules! host_table {
    ($entity:ident, $dto:ident, $obj:expr, $what:literal) => {
        impl HostTable for $entity::Entity {
            type Dto = $dto;
            const OBJ: Obj = $obj;
            const WHAT: &'static str = $what;
            const ID: Self::Column = $entity::Column::Id;
            const CLUSTER_ID: Self::Column = $entity::Column::ClusterId;
            const STATE: Self::Column = $entity::Column::State;
            const HOSTNAME: Self::Column = $entity::Column::Hostname;
            const IP: Self::Column = $entity::Column::Ip;
            fn placed(row: &Self::Model) -> (i64, HostState) {
                (row.cluster_id, row.state)
            }
        }
    };
}

host_table!(schedulers, Scheduler, Obj::Schedulers, "scheduler");
host_table!(seed_peers, SeedPeer, Obj::SeedPeers, "seed peer");
host_table!(peers, Peer, Obj::Peers, "peer");

/// `cluster_id IN (clusters of these tenants)`.
fn in_visible_clusters(column: impl ColumnTrait, tenants: Vec<i64>) -> SimpleExpr {
    column.in_subquery(
        SqlQuery::select()
            .column(clusters::Column::Id)
            .from(clusters::Entity)
            .and_where(clusters::Column::TenantId.is_in(tenants))
            .to_owned(),
    )
}

/// The hosts of table `T` in the caller's tenants' clusters.
pub async fn list<T: HostTable>(cx: Ctx<'_>, filter: HostFilter, page: Page) -> Result<Listed<T::Dto>, Error> {
    let mut query = T::find().order_by_asc(T::ID);
    if let Visible::Tenants(ids) = cx.me.visible(cx.rbac, T::OBJ)? {
        query = query.filter(in_visible_clusters(T::CLUSTER_ID, ids));
    }
    if let Some(c) = filter.cluster_id {
        query = query.filter(T::CLUSTER_ID.eq(c));
    }
    if let Some(s) = filter.state {
        query = query.filter(T::STATE.eq(s));
    }
    if let Some(h) = filter.hostname {
        query = query.filter(T::HOSTNAME.eq(h));
    }
    if let Some(ip) = filter.ip {
        query = query.filter(T::IP.eq(ip));
    }
    Ok(super::list(cx.db, query, page).await?.map(T::Dto::from))
}

/// One host the caller may `act` on, with its tenant: that of its cluster (deleted clusters
/// included: their hosts stay visible to the tenant until cleaned up).
async fn load<T: HostTable>(cx: Ctx<'_>, id: i64, act: Act) -> Result<(T::Model, i64), Error> {
    let row = T::find().filter(T::ID.eq(id)).one(cx.db).await?.ok_or_else(|| Error::not_found(T::WHAT))?;
    let tenant = clusters::Entity::find_by_id(T::placed(&row).0)
        .one(cx.db)
        .await?
        .map(|c| c.tenant_id)
        .ok_or_else(|| Error::not_found(T::WHAT))?;
    cx.me.check(cx.rbac, tenant, T::OBJ, act, T::WHAT)?;
    Ok((row, tenant))
}

/// One host.
pub async fn get<T: HostTable>(cx: Ctx<'_>, id: i64) -> Result<T::Dto, Error> {
    Ok(load::<T>(cx, id, Act::Read).await?.0.into())
}

/// Forgets an inactive host; answers its tenant.
pub async fn delete<T: HostTable>(cx: Ctx<'_>, id: i64) -> Result<i64, Error> {
    let (row, tenant) = load::<T>(cx, id, Act::Delete).await?;
    if T::placed(&row).1 == HostState::Active {
        return Err(Error::Conflict(format!("the {} is active; stop it first", T::WHAT)));
    }
    T::delete_many().filter(T::ID.eq(id)).exec(cx.db).await?;
    Ok(tenant)
}
