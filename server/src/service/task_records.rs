//! Tasks schedulers report with their keepalives, kept as one row per (cluster, task): the
//! task's last known graph (and `deleted` once a `delete_task` job removed it). Schedulers hold tasks in memory only; the record is what remains
//! after they forget one, and the list of recent tasks the console offers.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, OnConflict},
};

use super::registry::{cutoff, stamp_now};
use super::timestamp;
use crate::{
    Error,
    entity::task_records::{self, MAX_PEERS},
    service::tasks::TaskInfo,
};

/// `running` while any peer downloads, else `succeeded` when some peer has the whole content,
/// else `failed`.
pub fn state_of(task: &TaskInfo) -> &'static str {
    let is = |states: &[&str]| task.peers.iter().any(|p| states.contains(&p.state.as_str()));
    if is(&["pending", "running", "back_to_source"]) {
        "running"
    } else if is(&["succeeded"]) {
        "succeeded"
    } else {
        "failed"
    }
}

/// Writes (or replaces) the records of `tasks` in `cluster_id`. Tasks with an id or URL no
/// record can hold are skipped with a warning; they never fail the keepalive.
pub async fn record(db: &impl ConnectionTrait, cluster_id: i64, tasks: Vec<TaskInfo>) -> Result<(), Error> {
    let now = stamp_now();
    let mut rows = Vec::with_capacity(tasks.len());
    for mut task in tasks {
        if task.task_id.is_empty() || task.task_id.len() > 128 || task.url.len() > 4096 {
            tracing::warn!(cluster_id, task_id = %task.task_id.chars().take(128).collect::<String>(), "task not recorded: id or URL too long");
            continue;
        }
        let state = state_of(&task);
        let peers = task.peers.len();
        let finished = task.peers.iter().filter(|p| p.state == "succeeded").count();
        task.peers.truncate(MAX_PEERS);
        let count = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        rows.push(task_records::ActiveModel {
            cluster_id: Set(cluster_id),
            task_id: Set(task.task_id.clone()),
            url: Set(task.url.clone()),
            content_length: Set(task.content_length.map(|l| i64::try_from(l).unwrap_or(i64::MAX))),
            total_pieces: Set(i32::try_from(task.total_pieces).unwrap_or(i32::MAX)),
            peers: Set(count(peers)),
            finished_peers: Set(count(finished)),
            state: Set(state.into()),
            info: Set(serde_json::to_value(&task).map_err(|e| Error::Internal(format!("task record: {e}")))?),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        });
    }
    if rows.is_empty() {
        return Ok(());
    }
    use task_records::Column as C;
    task_records::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::columns([C::ClusterId, C::TaskId])
                .update_columns([
                    C::Url,
                    C::ContentLength,
                    C::TotalPieces,
                    C::Peers,
                    C::FinishedPeers,
                    C::State,
                    C::Info,
                    C::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Marks a task's record `deleted` (a `delete_task` job removed it from the cluster's peers), so
/// the history says why the peers that held it no longer do.
pub async fn mark_deleted(db: &impl ConnectionTrait, cluster_id: i64, task_id: &str) -> Result<(), Error> {
    task_records::Entity::update_many()
        .filter(task_records::Column::ClusterId.eq(cluster_id))
        .filter(task_records::Column::TaskId.eq(task_id))
        .col_expr(task_records::Column::State, Expr::value("deleted"))
        .col_expr(task_records::Column::UpdatedAt, Expr::value(stamp_now()))
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes records not updated for `retention`; answers how many.
pub async fn prune(db: &impl ConnectionTrait, retention: std::time::Duration) -> Result<u64, Error> {
    let cutoff = cutoff(retention);
    Ok(task_records::Entity::delete_many()
        .filter(Expr::col(task_records::Column::UpdatedAt).lt(cutoff))
        .exec(db)
        .await?
        .rows_affected)
}

/// A cluster's record of `task_id`, as the API answers it.
pub async fn find(db: &impl ConnectionTrait, cluster_id: i64, task_id: &str) -> Result<Option<TaskInfo>, Error> {
    let Some(row) = task_records::Entity::find()
        .filter(task_records::Column::ClusterId.eq(cluster_id))
        .filter(task_records::Column::TaskId.eq(task_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let mut info: TaskInfo = serde_json::from_value(row.info)
        .map_err(|e| Error::Internal(format!("task record {} is unreadable: {e}", row.id)))?;
    info.recorded_at = Some(timestamp(row.updated_at.and_utc()));
    Ok(Some(info))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::tasks::TaskPeer;

    fn task(states: &[&str]) -> TaskInfo {
        TaskInfo {
            task_id: "t".into(),
            url: "http://o/f".into(),
            content_length: Some(1),
            piece_length: 1,
            total_pieces: 1,
            peers: states
                .iter()
                .map(|s| TaskPeer {
                    host_id: String::new(),
                    hostname: String::new(),
                    ip: String::new(),
                    peer_id: String::new(),
                    state: (*s).into(),
                    finished_pieces: 0,
                    origin_pieces: 0,
                    inline_pieces: 0,
                    sources: vec![],
                })
                .collect(),
            recorded_at: None,
        }
    }

    #[test]
    fn a_task_runs_while_any_peer_downloads_then_succeeds_if_any_peer_has_it() {
        assert_eq!(state_of(&task(&["succeeded", "back_to_source"])), "running");
        assert_eq!(state_of(&task(&["pending"])), "running");
        assert_eq!(state_of(&task(&["failed", "succeeded"])), "succeeded");
        assert_eq!(state_of(&task(&["failed"])), "failed");
        assert_eq!(state_of(&task(&[])), "failed");
    }
}
