//! Schedulers' keepalive figures kept as samples, and old samples forgotten.
//!
//! A scheduler sends its figures with every keepalive (every few seconds); one row per scheduler
//! per sample interval is plenty for charts and keeps the table small. The first message of each
//! stream is always kept, so a restarted scheduler (whose counters start again at zero) begins its
//! new series at once. Each scheduler holds one stream on one replica, so replicas never write the
//! same scheduler's samples twice.

use std::time::{Duration, Instant};

use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, Set};

use super::registry::{HostKey, cutoff, stamp_now};
use crate::{
    Error,
    entity::{scheduler_samples, schedulers},
};

/// What a scheduler reports with its keepalive: gauges now, counters since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    pub tasks: u64,
    pub peers: u64,
    pub running_peers: u64,
    pub back_to_source_bytes: u64,
    pub peer_bytes: u64,
    pub succeeded: u64,
    pub failed: u64,
}

/// Keeps one stream's figures at most once per `interval`.
#[derive(Debug)]
pub struct Sampler {
    interval: Duration,
    last: Option<Instant>,
    scheduler_id: Option<i64>,
}

impl Sampler {
    pub fn new(interval: Duration) -> Self {
        Self { interval, last: None, scheduler_id: None }
    }

    /// Writes `stats` for the scheduler `key` unless this stream wrote a sample less than the
    /// interval ago. Answers whether a row was written.
    pub async fn offer(
        &mut self,
        db: &impl ConnectionTrait,
        key: &HostKey,
        stats: &SchedulerStats,
    ) -> Result<bool, Error> {
        if self.last.is_some_and(|t| t.elapsed() < self.interval) {
            return Ok(false);
        }
        let id = match self.scheduler_id {
            Some(id) => id,
            None => {
                let id: Option<i64> = schedulers::Entity::find()
                    .select_only()
                    .column(schedulers::Column::Id)
                    .filter(schedulers::Column::ClusterId.eq(key.cluster_id))
                    .filter(schedulers::Column::Hostname.eq(&key.hostname))
                    .filter(schedulers::Column::Ip.eq(key.ip.to_string()))
                    .into_tuple()
                    .one(db)
                    .await?;
                let id = id.ok_or_else(|| Error::NotFound(format!("scheduler {}/{}", key.hostname, key.ip)))?;
                self.scheduler_id = Some(id);
                id
            }
        };
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        scheduler_samples::ActiveModel {
            cluster_id: Set(key.cluster_id),
            scheduler_id: Set(id),
            at: Set(stamp_now()),
            tasks: Set(n(stats.tasks)),
            peers: Set(n(stats.peers)),
            running_peers: Set(n(stats.running_peers)),
            back_to_source_bytes: Set(n(stats.back_to_source_bytes)),
            peer_bytes: Set(n(stats.peer_bytes)),
            succeeded: Set(n(stats.succeeded)),
            failed: Set(n(stats.failed)),
            ..Default::default()
        }
        .insert(db)
        .await?;
        self.last = Some(Instant::now());
        Ok(true)
    }
}

/// Deletes samples older than `retention`; answers how many.
pub async fn prune(db: &impl ConnectionTrait, retention: Duration) -> Result<u64, Error> {
    let cutoff = cutoff(retention);
    Ok(scheduler_samples::Entity::delete_many()
        .filter(scheduler_samples::Column::At.lt(cutoff))
        .exec(db)
        .await?
        .rows_affected)
}
