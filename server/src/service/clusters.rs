//! Clusters: a scheduler cluster paired with its seed-peer cluster, with the scopes that decide
//! which peers it serves and the limits its schedulers and peers apply. Field names follow
//! Dragonfly's so its users feel at home. The JSON column shapes ([`Scopes`], the
//! `*ClusterConfig`s) are validated here on every write; the registry reads them back with
//! defaults ([`super::cluster_config`], [`super::scopes`]).

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{Ctx, Listed, Page, exists, owned, tenants::live_tenant, timestamp, validate, visible};
use crate::{
    Error,
    entity::{
        clusters,
        schedulers::{self, HostState},
        seed_peers,
    },
    rbac::{Act, Obj},
};

pub use common::api::{Cluster, PeerClusterConfig, SchedulerClusterConfig, Scopes, SeedPeerClusterConfig};

impl From<clusters::Model> for Cluster {
    fn from(c: clusters::Model) -> Self {
        Self {
            id: c.id,
            tenant_id: c.tenant_id,
            name: c.name,
            bio: c.bio,
            scopes: serde_json::from_value(c.scopes).unwrap_or_default(),
            scheduler_cluster_config: serde_json::from_value(c.scheduler_cluster_config).unwrap_or_default(),
            seed_peer_cluster_config: serde_json::from_value(c.seed_peer_cluster_config).unwrap_or_default(),
            peer_cluster_config: serde_json::from_value(c.peer_cluster_config).unwrap_or_default(),
            is_default: c.is_default,
            created_at: timestamp(c.created_at.and_utc()),
            updated_at: timestamp(c.updated_at.and_utc()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateCluster {
    /// The owning tenant; may be left out by users of exactly one tenant.
    pub tenant_id: Option<i64>,
    pub name: String,
    pub bio: Option<String>,
    pub scopes: Option<Scopes>,
    pub scheduler_cluster_config: Option<SchedulerClusterConfig>,
    pub seed_peer_cluster_config: Option<SeedPeerClusterConfig>,
    pub peer_cluster_config: Option<PeerClusterConfig>,
    /// Platform administrators only; at most one cluster is the default.
    pub is_default: Option<bool>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateCluster {
    pub name: Option<String>,
    pub bio: Option<String>,
    pub scopes: Option<Scopes>,
    pub scheduler_cluster_config: Option<SchedulerClusterConfig>,
    pub seed_peer_cluster_config: Option<SeedPeerClusterConfig>,
    pub peer_cluster_config: Option<PeerClusterConfig>,
    pub is_default: Option<bool>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ClusterFilter {
    /// Exact name.
    pub name: Option<String>,
    pub tenant_id: Option<i64>,
    pub is_default: Option<bool>,
}

fn range(field: &str, v: u32, lo: u32, hi: u32) -> Result<(), Error> {
    if (lo..=hi).contains(&v) { Ok(()) } else { Err(Error::invalid(field, format!("{field} must be {lo} to {hi}"))) }
}

fn patterns(field: &str, list: &[String]) -> Result<(), Error> {
    if list.len() > 100 {
        return Err(Error::invalid(field, format!("{field} takes at most 100 entries")));
    }
    for p in list {
        validate::text(field, p, 1024)?;
        regex::RegexBuilder::new(p)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| Error::invalid(field, format!("{p:?} is not a regular expression: {e}")))?;
    }
    Ok(())
}

fn check_scopes(s: &Scopes) -> Result<(), Error> {
    validate::text("scopes.idc", &s.idc, 1024)?;
    validate::text("scopes.location", &s.location, 1024)?;
    if s.cidrs.len() > 100 {
        return Err(Error::invalid("scopes.cidrs", "scopes.cidrs takes at most 100 entries"));
    }
    for c in &s.cidrs {
        c.parse::<ipnet::IpNet>()
            .map_err(|_| Error::invalid("scopes.cidrs", format!("{c:?} is not a CIDR such as 10.0.0.0/8")))?;
    }
    patterns("scopes.hostnames", &s.hostnames)
}

fn check_scheduler_config(c: &SchedulerClusterConfig) -> Result<(), Error> {
    range("scheduler_cluster_config.candidate_parent_limit", c.candidate_parent_limit, 1, 20)?;
    range("scheduler_cluster_config.filter_parent_limit", c.filter_parent_limit, 10, 1000)?;
    range("scheduler_cluster_config.job_rate_limit", c.job_rate_limit, 1, 1000)
}

fn check_peer_config(c: &PeerClusterConfig) -> Result<(), Error> {
    range("peer_cluster_config.load_limit", c.load_limit, 1, 50_000)?;
    patterns("peer_cluster_config.block_list.urls", &c.block_list.urls)?;
    for (field, list) in [
        ("peer_cluster_config.block_list.applications", &c.block_list.applications),
        ("peer_cluster_config.block_list.tags", &c.block_list.tags),
    ] {
        if list.len() > 100 {
            return Err(Error::invalid(field, format!("{field} takes at most 100 entries")));
        }
        for v in list {
            validate::text(field, v, 1024)?;
        }
    }
    Ok(())
}

fn json<T: Serialize>(v: &T) -> Result<serde_json::Value, Error> {
    serde_json::to_value(v).map_err(|e| Error::Internal(e.to_string()))
}

/// A live cluster the caller may `act` on, or 404/403.
pub async fn load(cx: Ctx<'_>, id: i64, act: Act) -> Result<clusters::Model, Error> {
    let query = clusters::Entity::find_by_id(id).filter(clusters::Column::IsDel.eq(0));
    owned(cx, query, "cluster", act, |c| (c.tenant_id, Obj::Clusters)).await
}

async fn name_taken(db: &impl ConnectionTrait, tenant: i64, name: &str, except: i64) -> Result<bool, Error> {
    let query = clusters::Entity::find()
        .filter(clusters::Column::TenantId.eq(tenant))
        .filter(clusters::Column::Name.eq(name))
        .filter(clusters::Column::IsDel.eq(0))
        .filter(clusters::Column::Id.ne(except));
    exists(db, query).await
}

/// Only platform administrators choose the default cluster: it receives every peer no other
/// scope matches, whichever tenant those peers belong to.
fn check_default(cx: Ctx<'_>, is_default: Option<bool>) -> Result<(), Error> {
    if is_default == Some(true) {
        cx.me
            .check_platform(cx.rbac, Obj::Configs, Act::Update)
            .map_err(|_| Error::Forbidden("only platform administrators choose the default cluster".into()))?;
    }
    Ok(())
}

async fn clear_other_defaults(db: &impl ConnectionTrait, except: i64) -> Result<(), Error> {
    clusters::Entity::update_many()
        .col_expr(clusters::Column::IsDefault, Expr::value(false))
        .filter(clusters::Column::Id.ne(except))
        .filter(clusters::Column::IsDefault.eq(true))
        .exec(db)
        .await?;
    Ok(())
}

/// Clusters of the caller's tenants, oldest first.
pub async fn list(cx: Ctx<'_>, filter: ClusterFilter, page: Page) -> Result<Listed<Cluster>, Error> {
    let query = clusters::Entity::find().filter(clusters::Column::IsDel.eq(0)).order_by_asc(clusters::Column::Id);
    let mut query = visible(cx, query, Obj::Clusters, clusters::Column::TenantId)?;
    if let Some(name) = filter.name {
        query = query.filter(clusters::Column::Name.eq(name));
    }
    if let Some(t) = filter.tenant_id {
        query = query.filter(clusters::Column::TenantId.eq(t));
    }
    if let Some(d) = filter.is_default {
        query = query.filter(clusters::Column::IsDefault.eq(d));
    }
    Ok(super::list(cx.db, query, page).await?.map(Cluster::from))
}

/// Creates a cluster in the tenant asked for (or the caller's only one).
pub async fn create(cx: Ctx<'_>, body: CreateCluster) -> Result<Cluster, Error> {
    let tenant = cx.me.tenant_for_create(cx.rbac, body.tenant_id, Obj::Clusters)?;
    live_tenant(cx.db, tenant).await?;
    validate::name("name", &body.name)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    let scopes = body.scopes.unwrap_or_default();
    check_scopes(&scopes)?;
    let scheduler = body.scheduler_cluster_config.unwrap_or_default();
    check_scheduler_config(&scheduler)?;
    let seed = body.seed_peer_cluster_config.unwrap_or_default();
    range("seed_peer_cluster_config.load_limit", seed.load_limit, 1, 50_000)?;
    let peer = body.peer_cluster_config.unwrap_or_default();
    check_peer_config(&peer)?;
    check_default(cx, body.is_default)?;
    if name_taken(cx.db, tenant, &body.name, 0).await? {
        return Err(Error::Conflict(format!("the tenant has a cluster named {:?}", body.name)));
    }
    let now = Utc::now().naive_utc();
    let is_default = body.is_default.unwrap_or(false);
    let txn = cx.db.begin().await?;
    let cluster = clusters::ActiveModel {
        tenant_id: Set(tenant),
        name: Set(body.name),
        bio: Set(bio),
        scopes: Set(json(&scopes)?),
        scheduler_cluster_config: Set(json(&scheduler)?),
        seed_peer_cluster_config: Set(json(&seed)?),
        peer_cluster_config: Set(json(&peer)?),
        is_default: Set(is_default),
        is_del: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    if is_default {
        clear_other_defaults(&txn, cluster.id).await?;
    }
    txn.commit().await?;
    Ok(cluster.into())
}

/// One cluster the caller may read.
pub async fn get(cx: Ctx<'_>, id: i64) -> Result<Cluster, Error> {
    Ok(load(cx, id, Act::Read).await?.into())
}

/// Changes a cluster; given config objects replace the old ones whole.
pub async fn update(cx: Ctx<'_>, id: i64, body: UpdateCluster) -> Result<Cluster, Error> {
    let cluster = load(cx, id, Act::Update).await?;
    let tenant = cluster.tenant_id;
    check_default(cx, body.is_default)?;
    let mut active: clusters::ActiveModel = cluster.into();
    if let Some(name) = body.name {
        validate::name("name", &name)?;
        if name_taken(cx.db, tenant, &name, id).await? {
            return Err(Error::Conflict(format!("the tenant has a cluster named {name:?}")));
        }
        active.name = Set(name);
    }
    if let Some(bio) = body.bio {
        validate::text("bio", &bio, 1024)?;
        active.bio = Set(bio);
    }
    if let Some(s) = body.scopes {
        check_scopes(&s)?;
        active.scopes = Set(json(&s)?);
    }
    if let Some(c) = body.scheduler_cluster_config {
        check_scheduler_config(&c)?;
        active.scheduler_cluster_config = Set(json(&c)?);
    }
    if let Some(c) = body.seed_peer_cluster_config {
        range("seed_peer_cluster_config.load_limit", c.load_limit, 1, 50_000)?;
        active.seed_peer_cluster_config = Set(json(&c)?);
    }
    if let Some(c) = body.peer_cluster_config {
        check_peer_config(&c)?;
        active.peer_cluster_config = Set(json(&c)?);
    }
    if let Some(d) = body.is_default {
        active.is_default = Set(d);
    }
    active.updated_at = Set(Utc::now().naive_utc());
    let txn = cx.db.begin().await?;
    let cluster = active.update(&txn).await?;
    if body.is_default == Some(true) {
        clear_other_defaults(&txn, id).await?;
    }
    txn.commit().await?;
    Ok(cluster.into())
}

/// Deletes a cluster; refused while schedulers or seed peers are active in it. Answers the
/// tenant it belonged to.
pub async fn delete(cx: Ctx<'_>, id: i64) -> Result<i64, Error> {
    let cluster = load(cx, id, Act::Delete).await?;
    let tenant = cluster.tenant_id;
    let active_schedulers = schedulers::Entity::find()
        .filter(schedulers::Column::ClusterId.eq(id))
        .filter(schedulers::Column::State.eq(HostState::Active))
        .count(cx.db)
        .await?;
    let active_seeds = seed_peers::Entity::find()
        .filter(seed_peers::Column::ClusterId.eq(id))
        .filter(seed_peers::Column::State.eq(HostState::Active))
        .count(cx.db)
        .await?;
    if active_schedulers + active_seeds > 0 {
        return Err(Error::Conflict(format!(
            "the cluster has {active_schedulers} active scheduler(s) and {active_seeds} active seed peer(s); stop them first"
        )));
    }
    let mut active: clusters::ActiveModel = cluster.into();
    active.is_del = Set(id);
    active.is_default = Set(false);
    active.updated_at = Set(Utc::now().naive_utc());
    active.update(cx.db).await?;
    Ok(tenant)
}
