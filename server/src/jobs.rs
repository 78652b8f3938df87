//! The job runner: takes `PENDING` jobs from the `jobs` table and runs them against the active
//! schedulers of their clusters, writing state and per-cluster results back.
//!
//! The table is the queue, so jobs survive restarts and several manager replicas share one
//! queue: a replica claims a job with a conditional update (`PENDING → RUNNING` only if still
//! `PENDING`), so each job runs once. A job left `RUNNING` by a replica that died is handed
//! back to `PENDING` after `jobs.stale_after_secs`. `get_task` and `delete_task` run here;
//! `preheat` waits for the image issue (it stays `PENDING`).

mod rpc;
mod tasks;

use std::time::Duration;

use chrono::Utc;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr};
use tokio_util::sync::CancellationToken;

use crate::{Error, config::JobsConfig, entity::jobs};

/// Job types this runner executes.
const RUNNABLE: &[&str] = &["get_task", "delete_task"];

/// Runs jobs until `shutdown`.
pub async fn run(db: DatabaseConnection, config: JobsConfig, shutdown: CancellationToken) {
    let poll = Duration::from_millis(config.poll_interval_ms.max(10));
    loop {
        match next(&db, &config).await {
            Ok(Some(job)) => {
                let id = job.id;
                if let Err(e) = tasks::execute(&db, &config, job).await {
                    tracing::error!(job_id = id, error = %e, "job could not be recorded");
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot poll the job queue"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

/// Claims the oldest runnable `PENDING` job, first handing back stale `RUNNING` ones.
async fn next(db: &DatabaseConnection, config: &JobsConfig) -> Result<Option<jobs::Model>, Error> {
    let now = Utc::now().naive_utc();
    let stale = now - chrono::Duration::seconds(config.stale_after_secs.min(i64::MAX as u64) as i64);
    jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value("PENDING"))
        .filter(jobs::Column::State.eq("RUNNING"))
        .filter(jobs::Column::UpdatedAt.lt(stale))
        .exec(db)
        .await?;
    let candidates = jobs::Entity::find()
        .filter(jobs::Column::State.eq("PENDING"))
        .filter(jobs::Column::Type.is_in(RUNNABLE.iter().copied()))
        .order_by_asc(jobs::Column::Id)
        .limit(8)
        .all(db)
        .await?;
    for job in candidates {
        let claimed = jobs::Entity::update_many()
            .col_expr(jobs::Column::State, Expr::value("RUNNING"))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .filter(jobs::Column::Id.eq(job.id))
            .filter(jobs::Column::State.eq("PENDING"))
            .exec(db)
            .await?;
        if claimed.rows_affected == 1 {
            return Ok(Some(job));
        }
    }
    Ok(None)
}
