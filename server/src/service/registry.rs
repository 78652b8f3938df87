//! The `schedulers`, `seed_peers` and `peers` tables as a registry: upserts keyed by
//! (cluster, hostname, ip), keepalive marks, and the sweep that expires silent rows.
//!
//! Liveness lives in the database, not in a replica's memory: each keepalive message stamps
//! `last_keep_alive_at`, and a row counts as active only while that stamp is fresher than the
//! timeout. Any replica's sweep may therefore expire any row, and a replica that dies with open
//! streams leaves nothing wrong behind for longer than the timeout.

use std::{net::IpAddr, time::Duration};

use chrono::NaiveDateTime;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, TryIntoModel,
    sea_query::Expr,
};

use crate::{
    Error,
    entity::{
        clusters, peers,
        schedulers::{self, HostState},
        seed_peers,
    },
};

/// Which table a component lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Scheduler,
    SeedPeer,
    Peer,
}

/// The natural key of a registered component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    pub cluster_id: i64,
    pub hostname: String,
    pub ip: IpAddr,
}

/// What a scheduler registers.
#[derive(Debug, Clone)]
pub struct SchedulerRegistration {
    pub key: HostKey,
    pub port: u16,
    pub idc: String,
    pub location: String,
    pub features: Vec<String>,
    pub version: String,
}

/// Kinds of seed peer, as Dragonfly names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeedPeerType {
    Super,
    Strong,
    Weak,
}

impl SeedPeerType {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Super => "super",
            Self::Strong => "strong",
            Self::Weak => "weak",
        }
    }
}

/// What a seed peer registers.
#[derive(Debug, Clone)]
pub struct SeedPeerRegistration {
    pub key: HostKey,
    pub port: u16,
    pub download_port: u16,
    pub kind: SeedPeerType,
    pub idc: String,
    pub location: String,
    pub version: String,
}

/// What a peer tells about itself when it lists schedulers.
#[derive(Debug, Clone)]
pub struct PeerRegistration {
    pub key: HostKey,
    pub download_port: u16,
    pub idc: String,
    pub location: String,
    pub version: String,
    pub os: String,
    pub platform: String,
}

fn now() -> NaiveDateTime {
    chrono::Utc::now().naive_utc()
}

/// A keepalive stamp, in whole seconds: MySQL's `DATETIME` keeps no fraction (and rounds one it
/// is given), so a stamp written and later compared in [`end_keep_alive`] must already be whole to
/// compare equal on every backend.
pub(super) fn stamp_now() -> NaiveDateTime {
    use chrono::Timelike;
    let t = now();
    t.with_nanosecond(0).unwrap_or(t)
}

/// The live (not soft-deleted) cluster `id`, or `NotFound`.
pub async fn live_cluster(db: &impl ConnectionTrait, id: i64) -> Result<clusters::Model, Error> {
    clusters::Entity::find_by_id(id)
        .filter(clusters::Column::IsDel.eq(0))
        .one(db)
        .await?
        .ok_or_else(|| Error::NotFound(format!("cluster {id} not found")))
}

/// All live clusters, oldest first.
pub async fn live_clusters(db: &impl ConnectionTrait) -> Result<Vec<clusters::Model>, Error> {
    Ok(clusters::Entity::find()
        .filter(clusters::Column::IsDel.eq(0))
        .order_by_asc(clusters::Column::Id)
        .all(db)
        .await?)
}

/// Creates or refreshes a scheduler's row; its state is left to the keepalive.
pub async fn upsert_scheduler(db: &impl ConnectionTrait, r: SchedulerRegistration) -> Result<schedulers::Model, Error> {
    live_cluster(db, r.key.cluster_id).await?;
    let features = serde_json::json!(r.features);
    let existing = schedulers::Entity::find()
        .filter(schedulers::Column::ClusterId.eq(r.key.cluster_id))
        .filter(schedulers::Column::Hostname.eq(&r.key.hostname))
        .filter(schedulers::Column::Ip.eq(r.key.ip.to_string()))
        .one(db)
        .await?;
    let t = now();
    let mut row: schedulers::ActiveModel = match existing {
        Some(m) => m.into(),
        None => schedulers::ActiveModel {
            cluster_id: Set(r.key.cluster_id),
            hostname: Set(r.key.hostname.clone()),
            ip: Set(r.key.ip.to_string()),
            state: Set(HostState::Inactive),
            created_at: Set(t),
            ..Default::default()
        },
    };
    row.port = Set(i32::from(r.port));
    row.idc = Set(r.idc);
    row.location = Set(r.location);
    row.features = Set(features);
    row.version = Set(r.version);
    row.updated_at = Set(t);
    Ok(row.save(db).await?.try_into_model()?)
}

/// Creates or refreshes a seed peer's row; its state is left to the keepalive.
pub async fn upsert_seed_peer(db: &impl ConnectionTrait, r: SeedPeerRegistration) -> Result<seed_peers::Model, Error> {
    live_cluster(db, r.key.cluster_id).await?;
    let existing = seed_peers::Entity::find()
        .filter(seed_peers::Column::ClusterId.eq(r.key.cluster_id))
        .filter(seed_peers::Column::Hostname.eq(&r.key.hostname))
        .filter(seed_peers::Column::Ip.eq(r.key.ip.to_string()))
        .one(db)
        .await?;
    let t = now();
    let mut row: seed_peers::ActiveModel = match existing {
        Some(m) => m.into(),
        None => seed_peers::ActiveModel {
            cluster_id: Set(r.key.cluster_id),
            hostname: Set(r.key.hostname.clone()),
            ip: Set(r.key.ip.to_string()),
            state: Set(HostState::Inactive),
            created_at: Set(t),
            ..Default::default()
        },
    };
    row.port = Set(i32::from(r.port));
    row.download_port = Set(i32::from(r.download_port));
    row.r#type = Set(r.kind.as_str().into());
    row.idc = Set(r.idc);
    row.location = Set(r.location);
    row.version = Set(r.version);
    row.updated_at = Set(t);
    Ok(row.save(db).await?.try_into_model()?)
}

/// Creates or refreshes a peer's row. Asking for schedulers is a sign of life, so the row is
/// stamped active like a keepalive.
pub async fn upsert_peer(db: &impl ConnectionTrait, r: PeerRegistration) -> Result<peers::Model, Error> {
    let existing = peers::Entity::find()
        .filter(peers::Column::ClusterId.eq(r.key.cluster_id))
        .filter(peers::Column::Hostname.eq(&r.key.hostname))
        .filter(peers::Column::Ip.eq(r.key.ip.to_string()))
        .one(db)
        .await?;
    let t = now();
    let mut row: peers::ActiveModel = match existing {
        Some(m) => m.into(),
        None => peers::ActiveModel {
            cluster_id: Set(r.key.cluster_id),
            hostname: Set(r.key.hostname.clone()),
            ip: Set(r.key.ip.to_string()),
            created_at: Set(t),
            ..Default::default()
        },
    };
    row.port = Set(i32::from(r.download_port));
    row.download_port = Set(i32::from(r.download_port));
    row.r#type = Set("normal".into());
    row.idc = Set(r.idc);
    row.location = Set(r.location);
    row.version = Set(r.version);
    row.os = Set(r.os);
    row.platform = Set(r.platform);
    row.state = Set(HostState::Active);
    row.last_keep_alive_at = Set(Some(stamp_now()));
    row.updated_at = Set(t);
    Ok(row.save(db).await?.try_into_model()?)
}

/// The cluster's schedulers that are active and whose keepalive is fresher than `timeout`,
/// lowest id first. The freshness check makes the answer right even before a sweep has run.
pub async fn active_schedulers(
    db: &impl ConnectionTrait,
    cluster_id: i64,
    timeout: Duration,
) -> Result<Vec<schedulers::Model>, Error> {
    Ok(schedulers::Entity::find()
        .filter(schedulers::Column::ClusterId.eq(cluster_id))
        .filter(schedulers::Column::State.eq(HostState::Active))
        .filter(schedulers::Column::LastKeepAliveAt.gte(cutoff(timeout)))
        .order_by_asc(schedulers::Column::Id)
        .all(db)
        .await?)
}

/// The instant `timeout` ago: rows stamped before it are older than `timeout`.
pub(super) fn cutoff(timeout: Duration) -> NaiveDateTime {
    now() - chrono::Duration::from_std(timeout).unwrap_or(chrono::Duration::MAX)
}

/// A `WHERE` over (cluster_id, hostname, ip) shared by the three tables, which name the columns
/// alike.
macro_rules! by_key {
    ($entity:ident, $key:expr) => {
        $entity::Entity::update_many()
            .filter($entity::Column::ClusterId.eq($key.cluster_id))
            .filter($entity::Column::Hostname.eq(&$key.hostname))
            .filter($entity::Column::Ip.eq($key.ip.to_string()))
    };
}

/// Stamps a keepalive: the row becomes active as of now, and a peer's or seed peer's upload rate
/// (bytes per second) is recorded. Returns the stamp, or `NotFound` when the component never
/// registered.
pub async fn keep_alive(
    db: &impl ConnectionTrait,
    kind: Component,
    key: &HostKey,
    upload_rate: u64,
) -> Result<NaiveDateTime, Error> {
    let t = stamp_now();
    let rate = i64::try_from(upload_rate).unwrap_or(i64::MAX);
    macro_rules! stamp {
        ($entity:ident $(, $extra:ident)?) => {
            by_key!($entity, key)
                .col_expr($entity::Column::State, Expr::value(HostState::Active))
                .col_expr($entity::Column::LastKeepAliveAt, Expr::value(t))
                $(.col_expr($entity::Column::$extra, Expr::value(rate)))?
                .exec(db)
                .await?
                .rows_affected
        };
    }
    let rows = match kind {
        Component::Scheduler => stamp!(schedulers),
        Component::SeedPeer => stamp!(seed_peers, UploadRate),
        Component::Peer => stamp!(peers, UploadRate),
    };
    if rows == 0 {
        return Err(Error::NotFound(format!(
            "{kind:?} {}/{} is not registered in cluster {}",
            key.hostname, key.ip, key.cluster_id
        )));
    }
    Ok(t)
}

/// Marks the row inactive when a stream ends, unless another stream (maybe on another replica)
/// has stamped it since `last_stamp`.
pub async fn end_keep_alive(
    db: &impl ConnectionTrait,
    kind: Component,
    key: &HostKey,
    last_stamp: NaiveDateTime,
) -> Result<(), Error> {
    macro_rules! end {
        ($entity:ident) => {
            by_key!($entity, key)
                .filter($entity::Column::LastKeepAliveAt.lte(last_stamp))
                .col_expr($entity::Column::State, Expr::value(HostState::Inactive))
                .exec(db)
                .await?
        };
    }
    match kind {
        Component::Scheduler => end!(schedulers),
        Component::SeedPeer => end!(seed_peers),
        Component::Peer => end!(peers),
    };
    Ok(())
}

/// Marks inactive every active row of the three tables whose last keepalive is older than
/// `timeout`. Returns how many rows changed. A row with no keepalive at all was made active by
/// hand (an operator, a test), not by a stream, so it is left to whoever did that.
pub async fn sweep(db: &impl ConnectionTrait, timeout: Duration) -> Result<u64, Error> {
    let before = cutoff(timeout);
    macro_rules! expire {
        ($entity:ident) => {
            $entity::Entity::update_many()
                .filter($entity::Column::State.eq(HostState::Active))
                .filter($entity::Column::LastKeepAliveAt.lt(before))
                .col_expr($entity::Column::State, Expr::value(HostState::Inactive))
                .exec(db)
                .await?
                .rows_affected
        };
    }
    Ok(expire!(schedulers) + expire!(seed_peers) + expire!(peers))
}
