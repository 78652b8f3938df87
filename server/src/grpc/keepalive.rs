//! Holding one keepalive stream, and the sweep that expires silent components.
//!
//! A stream stamps its component active on every message. When the stream ends (the component
//! stopped or lost its connection) or stays silent past the timeout, the component is marked
//! inactive at once; the sweep catches what no stream can report, such as a manager replica that
//! died with streams open. Manager shutdown ends streams without marking anything: the
//! components reconnect to another replica, and the sweep judges them if they do not.
//!
//! Messages also carry figures: a peer's upload rate is stamped with its keepalive, and a
//! scheduler's counters are kept as samples (`samples`). A failure to keep a sample is logged,
//! never fatal: liveness matters more than charts.

use std::time::Duration;

use futures::{Stream, StreamExt};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    service::{
        registry::{self, Component, HostKey},
        samples::{self, Sampler, SchedulerStats},
        task_records,
    },
};

/// One keepalive message, in the manager's types.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    pub kind: Component,
    pub key: HostKey,
    /// A peer's or seed peer's upload rate, bytes per second.
    pub upload_rate: u64,
    /// A scheduler's figures.
    pub stats: Option<SchedulerStats>,
    /// Tasks a scheduler reports changed.
    pub tasks: Vec<crate::service::tasks::TaskInfo>,
}

impl KeepAlive {
    fn same_component(&self, other: &Self) -> bool {
        self.kind == other.kind && self.key == other.key
    }
}

/// How often samples are kept and how long.
#[derive(Debug, Clone, Copy)]
pub struct Sampling {
    pub interval: Duration,
    pub retention: Duration,
}

/// Serves one stream until it ends, falls silent for `timeout`, or `shutdown`.
pub async fn hold(
    db: &DatabaseConnection,
    timeout: Duration,
    sampling: Sampling,
    mut messages: impl Stream<Item = Result<KeepAlive, Error>> + Unpin,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let mut current: Option<(KeepAlive, chrono::NaiveDateTime)> = None;
    let mut sampler = Sampler::new(sampling.interval);
    let outcome = loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            next = tokio::time::timeout(timeout, messages.next()) => next,
        };
        let mut msg = match next {
            Err(_) => {
                tracing::info!(?timeout, "keepalive stream fell silent");
                break Ok(());
            }
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => break Err(e),
            Ok(Some(Ok(msg))) => msg,
        };
        let tasks = std::mem::take(&mut msg.tasks);
        if let Some((previous, stamp)) = current.take_if(|(p, _)| !p.same_component(&msg)) {
            // One stream, one component; a stream that changes identity ends the old one's.
            registry::end_keep_alive(db, previous.kind, &previous.key, stamp).await?;
            sampler = Sampler::new(sampling.interval);
        }
        let stamp = match registry::keep_alive(db, msg.kind, &msg.key, msg.upload_rate).await {
            Ok(stamp) => stamp,
            Err(e) => break Err(e),
        };
        if let (Component::Scheduler, Some(stats)) = (msg.kind, &msg.stats)
            && let Err(e) = sampler.offer(db, &msg.key, stats).await
        {
            tracing::warn!(error = %e, hostname = %msg.key.hostname, "keeping a scheduler's sample failed");
        }
        if msg.kind == Component::Scheduler
            && !tasks.is_empty()
            && let Err(e) = task_records::record(db, msg.key.cluster_id, tasks).await
        {
            tracing::warn!(error = %e, hostname = %msg.key.hostname, "recording a scheduler's tasks failed");
        }
        if current.is_none() {
            tracing::info!(kind = ?msg.kind, hostname = %msg.key.hostname, ip = %msg.key.ip, cluster_id = msg.key.cluster_id, "keepalive started");
        }
        current = Some((msg, stamp));
    };
    if let Some((last, stamp)) = current {
        tracing::info!(kind = ?last.kind, hostname = %last.key.hostname, ip = %last.key.ip, "keepalive ended; inactive");
        registry::end_keep_alive(db, last.kind, &last.key, stamp).await?;
    }
    outcome
}

/// How often old samples are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Expires silent components every few seconds, and deletes samples and task records past their
/// retention every hour, until `shutdown`. Every replica runs it: each is a conditional update
/// or delete, so a row is expired or deleted by one of them and the others find nothing to do.
pub async fn sweep(
    db: DatabaseConnection,
    timeout: Duration,
    sampling: Sampling,
    metrics: std::sync::Arc<crate::metrics::Metrics>,
    shutdown: CancellationToken,
) {
    let period = (timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(10));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pruned: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match registry::sweep(&db, timeout).await {
            Ok(0) => {}
            Ok(n) => {
                metrics.expired.inc_by(n);
                tracing::info!(expired = n, "marked silent components inactive");
            }
            Err(e) => tracing::warn!(error = %e, "keepalive sweep failed"),
        }
        if pruned.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            pruned = Some(tokio::time::Instant::now());
            match samples::prune(&db, sampling.retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted old scheduler samples"),
                Err(e) => tracing::warn!(error = %e, "deleting old scheduler samples failed"),
            }
            match task_records::prune(&db, sampling.retention).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(deleted = n, "deleted old task records"),
                Err(e) => tracing::warn!(error = %e, "deleting old task records failed"),
            }
        }
    }
}
