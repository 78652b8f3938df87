//! A task as the schedulers of one cluster see it right now: its peers, their progress, and who
//! fetched pieces from whom. Read-only and answered at once (the `get_task` job is the
//! asynchronous, audited way); the console draws its live task graph from this. When no
//! scheduler holds the task any more, its record answers instead ([`super::task_records`]: the
//! last state schedulers reported), and the list of records is the cluster's recent tasks.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Deserialize;
use utoipa::IntoParams;

use super::timestamp;
use super::{
    Ctx, Listed, Page, clusters,
    registry::active_schedulers,
    scheduler_rpc::{Dialer, SchedulerClient},
    task_records, validate,
};
use crate::{Error, entity, rbac::Act};

pub use common::api::{PieceSource, TaskInfo, TaskPeer, TaskRecord};

impl From<entity::task_records::Model> for TaskRecord {
    fn from(m: entity::task_records::Model) -> Self {
        Self {
            cluster_id: m.cluster_id,
            task_id: m.task_id,
            url: m.url,
            content_length: m.content_length.and_then(|l| u64::try_from(l).ok()),
            total_pieces: u32::try_from(m.total_pieces).unwrap_or(0),
            peers: u32::try_from(m.peers).unwrap_or(0),
            finished_peers: u32::try_from(m.finished_peers).unwrap_or(0),
            state: m.state,
            created_at: timestamp(m.created_at.and_utc()),
            updated_at: timestamp(m.updated_at.and_utc()),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskFilter {
    /// `running`, `succeeded`, `failed` or `deleted`.
    pub state: Option<String>,
    /// Tasks whose URL contains this.
    pub url: Option<String>,
}

/// A cluster's tasks, most recently changed first, as its schedulers reported them.
pub async fn list(cx: Ctx<'_>, cluster: i64, filter: TaskFilter, page: Page) -> Result<Listed<TaskRecord>, Error> {
    let cluster = clusters::load(cx, cluster, Act::Read).await?;
    let mut query = entity::task_records::Entity::find()
        .filter(entity::task_records::Column::ClusterId.eq(cluster.id))
        .order_by_desc(entity::task_records::Column::UpdatedAt)
        .order_by_desc(entity::task_records::Column::Id);
    if let Some(s) = filter.state {
        if !["running", "succeeded", "failed", "deleted"].contains(&s.as_str()) {
            return Err(Error::invalid("state", "state must be running, succeeded, failed or deleted"));
        }
        query = query.filter(entity::task_records::Column::State.eq(s));
    }
    if let Some(u) = filter.url.filter(|u| !u.is_empty()) {
        validate::text("url", &u, 4096)?;
        query = query.filter(entity::task_records::Column::Url.contains(u));
    }
    Ok(super::list(cx.db, query, page).await?.map(TaskRecord::from))
}

/// A task in one cluster, live from the first active scheduler that holds it, else from its
/// record. Schedulers silent for longer than `keepalive_timeout` are not asked.
pub async fn get(
    cx: Ctx<'_>,
    dialer: &Dialer,
    cluster: i64,
    task_id: &str,
    keepalive_timeout: Duration,
) -> Result<TaskInfo, Error> {
    let cluster = clusters::load(cx, cluster, Act::Read).await?;
    validate::text("task_id", task_id, 256)?;
    if task_id.trim().is_empty() {
        return Err(Error::invalid("task_id", "task_id must not be empty"));
    }
    let active = active_schedulers(cx.db, cluster.id, keepalive_timeout).await?;
    let mut errors = Vec::new();
    for s in &active {
        let asked = async {
            let mut client =
                SchedulerClient::connect(dialer, cluster.id, &s.ip, s.port, Duration::from_secs(5)).await?;
            client.stat_task(task_id).await
        };
        match asked.await {
            Ok(Some(info)) => return Ok(info),
            Ok(None) => {}
            Err(e) => errors.push(e),
        }
    }
    // No scheduler holds it now: its record, if any, is its history.
    if let Some(recorded) = task_records::find(cx.db, cluster.id, task_id).await? {
        return Ok(recorded);
    }
    if active.is_empty() {
        return Err(Error::NotFound(format!(
            "no task {task_id} in cluster {}: it has no active scheduler to ask and no record",
            cluster.id
        )));
    }
    if errors.len() == active.len() {
        return Err(Error::BadGateway(errors.join("; ")));
    }
    Err(Error::NotFound(format!("no scheduler of cluster {} knows task {task_id}", cluster.id)))
}
