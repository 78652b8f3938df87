//! The job runner: takes `PENDING` jobs from the `jobs` table and runs them against the active
//! schedulers of their clusters, writing state and per-cluster results back.
//!
//! The table is the queue, so jobs survive restarts and several manager replicas share one
//! queue. A replica claims a job with a conditional update (`PENDING → RUNNING`, raising its
//! `attempt`, only if still `PENDING` at the attempt it read), so one replica wins each claim.
//! While a job runs its runner stamps it every [`heartbeat`] period; a job left `RUNNING`
//! without a stamp for `jobs.stale_after_secs` (its replica died) is handed back to `PENDING`
//! and claimed again. Every write of a run (stamp, progress, result) names the attempt it
//! claimed, so a runner that lost its job (handed back after a stall, cancelled, deleted) writes
//! nothing and stops at its next stamp: each job's result is written by one run. Replicas must
//! keep their clocks within a small fraction of `stale_after_secs` (NTP), since stamps are
//! compared across them.
//!
//! With Redis configured, new job ids also travel over it ([`RedisQueue`]) so an idle runner
//! starts them at once instead of at its next poll. Up to `jobs.concurrency` jobs run at once,
//! so a long preheat does not hold up the `get_task` behind it. `get_task` and `delete_task`
//! run in [`tasks`], `preheat` in [`preheat`].

pub mod image;
mod preheat;
mod tasks;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::service::job_queue::RedisQueue;
use crate::{
    Error,
    config::JobsConfig,
    entity::jobs::{self, JobState},
};

/// How long a stopping runner waits for its jobs to record where they stand.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Job types this runner executes.
const RUNNABLE: &[&str] = &["get_task", "delete_task", "preheat"];

/// How the runner reaches a cluster's schedulers.
#[derive(Debug, Clone)]
pub struct Reach {
    /// The registration timeout: only schedulers heard from within it are asked.
    pub keepalive: Duration,
    /// Over mTLS as the manager, or plain text.
    pub dialer: crate::service::scheduler_rpc::Dialer,
}

/// Runs jobs until `shutdown`.
pub async fn run(
    db: DatabaseConnection,
    config: JobsConfig,
    reach: Reach,
    queue: Option<RedisQueue>,
    shutdown: CancellationToken,
) {
    let poll = Duration::from_millis(config.poll_interval_ms.max(10));
    let slots = Arc::new(tokio::sync::Semaphore::new(config.concurrency.max(1)));
    let runner = Runner {
        db: db.clone(),
        config: config.clone(),
        reach,
        shutdown: shutdown.clone(),
        tracker: TaskTracker::new(),
    };
    let mut listener = None;
    loop {
        // A job is claimed only when it can start at once.
        let slot = tokio::select! {
            _ = shutdown.cancelled() => break,
            slot = slots.clone().acquire_owned() => match slot { Ok(s) => s, Err(_) => break },
        };
        match next(&db, &config).await {
            Ok(Some(job)) => {
                runner.start(job, slot);
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot poll the job queue"),
        }
        let Some(queue) = &queue else {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(poll) => {}
            }
            continue;
        };
        // Wait on Redis until the next poll is due; fall back to sleeping while it is down.
        if listener.is_none() {
            match queue.listener().await {
                Ok(conn) => listener = Some(conn),
                Err(e) => tracing::warn!(error = %e, "cannot reach Redis for the job queue; polling the database"),
            }
        }
        let popped = match listener.as_mut() {
            Some(conn) => tokio::select! {
                _ = shutdown.cancelled() => break,
                popped = queue.pop(conn, poll) => popped,
            },
            None => {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(poll) => {}
                }
                continue;
            }
        };
        match popped {
            Ok(Some(id)) => match claim(&db, id).await {
                Ok(Some(job)) => runner.start(job, slot),
                Ok(None) => {}
                Err(e) => tracing::warn!(job_id = id, error = %e, "cannot claim the job"),
            },
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "the Redis job queue failed; reconnecting");
                listener = None;
            }
        }
    }
    // Jobs under way record where they stand (a preheat hands itself back as PENDING) before
    // the manager closes its database.
    runner.tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, runner.tracker.wait()).await.is_err() {
        tracing::warn!("jobs still running at shutdown; they are handed back when stale");
    }
}

/// What every job run needs.
#[derive(Clone)]
struct Runner {
    db: DatabaseConnection,
    config: JobsConfig,
    reach: Reach,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

impl Runner {
    /// Runs a claimed job in the background; `slot` is held until it ends. The run is dropped
    /// (its scheduler calls and streams with it) as soon as a stamp finds the job no longer
    /// this run's.
    fn start(&self, job: jobs::Model, slot: tokio::sync::OwnedSemaphorePermit) {
        let this = self.clone();
        self.tracker.spawn(async move {
            let _slot = slot;
            let claim = Claim::of(&job);
            let run = async {
                match job.r#type.as_str() {
                    "preheat" => preheat::execute(&this.db, &this.config, &this.reach, job, &this.shutdown).await,
                    _ => tasks::execute(&this.db, &this.config, &this.reach, job).await,
                }
            };
            tokio::select! {
                done = run => if let Err(e) = done {
                    tracing::error!(job_id = claim.id, error = %e, "job could not be recorded");
                },
                () = keep_stamped(&this.db, claim, heartbeat(&this.config)) => {
                    tracing::warn!(job_id = claim.id, attempt = claim.attempt,
                        "job no longer ours (cancelled, deleted, or handed back after a stall); run dropped");
                }
            }
        });
    }
}

/// One claim of a job: its id and the attempt this run raised it to. Writes of the run name both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    pub id: i64,
    pub attempt: i64,
}

impl Claim {
    /// The claim a claimed row (as [`claim`] answers it) stands for.
    fn of(job: &jobs::Model) -> Self {
        Self { id: job.id, attempt: job.attempt }
    }
}

/// How often a running job is stamped: a third of the stale window, so two stamps may be lost
/// before another replica takes the job, and at most every 10 s.
fn heartbeat(config: &JobsConfig) -> Duration {
    (Duration::from_secs(config.stale_after_secs) / 3).clamp(Duration::from_millis(100), Duration::from_secs(10))
}

/// Stamps the job every `period` while it is still this claim's; returns when it is not. A
/// failed stamp (the database away) is retried: if the stall outlasts the stale window the job
/// is handed back, and the next stamp that reaches the database finds it gone.
async fn keep_stamped(db: &DatabaseConnection, claim: Claim, period: Duration) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tick.tick().await;
        let stamped = jobs::Entity::update_many()
            .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now().naive_utc()))
            .filter(jobs::Column::Id.eq(claim.id))
            .filter(jobs::Column::Attempt.eq(claim.attempt))
            .filter(jobs::Column::State.eq(JobState::Running))
            .exec(db)
            .await;
        match stamped {
            Ok(r) if r.rows_affected == 1 => {}
            Ok(_) => return,
            Err(e) => tracing::warn!(job_id = claim.id, error = %e, "cannot stamp the running job"),
        }
    }
}

/// Writes a running job's state and result, only while it is still `RUNNING` under `claim`: a
/// job that was cancelled (set to `FAILURE` through the API), deleted, or handed back and
/// claimed again meanwhile is left as it is. Answers whether the write took.
async fn record_run(
    db: &DatabaseConnection,
    claim: Claim,
    state: JobState,
    result: serde_json::Value,
) -> Result<bool, Error> {
    let written = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(state))
        .col_expr(jobs::Column::Result, Expr::value(result))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now().naive_utc()))
        .filter(jobs::Column::Id.eq(claim.id))
        .filter(jobs::Column::Attempt.eq(claim.attempt))
        .filter(jobs::Column::State.eq(JobState::Running))
        .exec(db)
        .await?;
    Ok(written.rows_affected == 1)
}

/// Claims job `id` if it is still `PENDING` and of a runnable type; the row answered carries the
/// attempt this claim raised it to.
async fn claim(db: &DatabaseConnection, id: i64) -> Result<Option<jobs::Model>, Error> {
    let Some(mut job) = jobs::Entity::find_by_id(id).one(db).await? else { return Ok(None) };
    if job.state != JobState::Pending || !RUNNABLE.contains(&job.r#type.as_str()) {
        return Ok(None);
    }
    let claimed = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(JobState::Running))
        .col_expr(jobs::Column::Attempt, Expr::value(job.attempt + 1))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now().naive_utc()))
        .filter(jobs::Column::Id.eq(id))
        .filter(jobs::Column::State.eq(JobState::Pending))
        .filter(jobs::Column::Attempt.eq(job.attempt))
        .exec(db)
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(None);
    }
    job.attempt += 1;
    job.state = JobState::Running;
    tracing::info!(job_id = id, attempt = job.attempt, r#type = %job.r#type, "job claimed");
    Ok(Some(job))
}

/// Claims the oldest runnable `PENDING` job, first handing back stale `RUNNING` ones.
async fn next(db: &DatabaseConnection, config: &JobsConfig) -> Result<Option<jobs::Model>, Error> {
    let now = Utc::now().naive_utc();
    let stale = now - chrono::Duration::seconds(config.stale_after_secs.min(i64::MAX as u64) as i64);
    let handed_back = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(JobState::Pending))
        .filter(jobs::Column::State.eq(JobState::Running))
        .filter(jobs::Column::UpdatedAt.lt(stale))
        .exec(db)
        .await?;
    if handed_back.rows_affected > 0 {
        tracing::warn!(jobs = handed_back.rows_affected, "stale RUNNING jobs handed back to PENDING");
    }
    let candidates = jobs::Entity::find()
        .filter(jobs::Column::State.eq(JobState::Pending))
        .filter(jobs::Column::Type.is_in(RUNNABLE.iter().copied()))
        .order_by_asc(jobs::Column::Id)
        .limit(8)
        .all(db)
        .await?;
    for job in candidates {
        if let Some(job) = claim(db, job.id).await? {
            return Ok(Some(job));
        }
    }
    Ok(None)
}
