//! `get_task` (which peers hold a task) and `delete_task` (remove it from them), per cluster.
//!
//! Results follow Dragonfly's job shape so its tools read them:
//! `{"job_states": [{"state", "error", "results": [{"scheduler_cluster_id", "task_id", …}]}]}`.

use std::time::Duration;

use common::task_id::{TaskSpec, task_id};
use sea_orm::{ActiveEnum, DatabaseConnection};
use serde_json::{Value, json};

use crate::service::scheduler_rpc::SchedulerClient;
use crate::{
    Error,
    config::JobsConfig,
    entity::jobs::{self, JobState},
    service::registry::active_schedulers,
};

/// Runs `job` and records its outcome.
pub async fn execute(
    db: &DatabaseConnection,
    config: &JobsConfig,
    reach: &super::Reach,
    job: jobs::Model,
) -> Result<(), Error> {
    let timeout = Duration::from_secs(config.scheduler_timeout_secs.max(1));
    let outcome = match resolve_task_id(&job.args) {
        Ok(task) => {
            let clusters: Vec<i64> = serde_json::from_value(job.cluster_ids.clone()).unwrap_or_default();
            let mut results = Vec::new();
            let mut errors = Vec::new();
            for cluster in clusters {
                match on_cluster(db, &job.r#type, cluster, &task, timeout, reach).await {
                    Ok(r) => results.push(r),
                    Err(e) => {
                        errors.push(format!("cluster {cluster}: {e}"));
                        results.push(json!({"scheduler_cluster_id": cluster, "task_id": task, "error": e}));
                    }
                }
            }
            (if errors.is_empty() { JobState::Success } else { JobState::Failure }, errors.join("; "), results)
        }
        Err(e) => (JobState::Failure, e, vec![]),
    };
    let (state, error, results) = outcome;
    let state_name = state.to_value();
    tracing::info!(job_id = job.id, r#type = %job.r#type, state = state_name.as_str(), "job finished");
    let result = json!({"job_states": [{"state": state_name, "error": error, "results": results}]});
    if !super::record_run(db, super::Claim::of(&job), state, result).await? {
        tracing::info!(job_id = job.id, "job cancelled or deleted while it ran; its result is dropped");
    }
    Ok(())
}

/// `args.task_id`, or the id derived from `args.url` and the other task fields, as dfget does.
fn resolve_task_id(args: &Value) -> Result<String, String> {
    if let Some(id) = args.get("task_id").and_then(Value::as_str) {
        return Ok(id.to_owned());
    }
    let url = args.get("url").and_then(Value::as_str).ok_or("args has neither task_id nor url")?;
    let text = |k: &str| args.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let filtered: Vec<String> = match args.get("filtered_query_params") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => {
            s.split([',', '&']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
        }
        _ => vec![],
    };
    let (tag, application) = (text("tag"), text("application"));
    let spec = TaskSpec {
        url,
        tag: &tag,
        application: &application,
        piece_length: args.get("piece_length").and_then(Value::as_u64),
        filtered_query_params: &filtered,
        blob_digest: false,
    };
    task_id(&spec).map(|id| id.0).map_err(|e| e.to_string())
}

/// Runs the job on every active scheduler of `cluster` and merges their answers.
async fn on_cluster(
    db: &DatabaseConnection,
    kind: &str,
    cluster: i64,
    task: &str,
    timeout: Duration,
    reach: &super::Reach,
) -> Result<Value, String> {
    let active = active_schedulers(db, cluster, reach.keepalive).await.map_err(|e| format!("database: {e}"))?;
    if active.is_empty() {
        return Err("the cluster has no active scheduler".into());
    }
    let mut peers = Vec::new();
    let mut success = Vec::new();
    let mut failure = Vec::new();
    let mut errors = Vec::new();
    for s in &active {
        let mut client = match SchedulerClient::connect(&reach.dialer, cluster, &s.ip, s.port, timeout).await {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let answer = match kind {
            "get_task" => client.task_peers(task).await.map(|p| peers.extend(p)),
            _ => client.delete_task(task).await.map(|notices| {
                for n in notices {
                    let entry = json!({"host_id": n.host_id, "hostname": n.hostname, "ip": n.ip});
                    if n.notified {
                        success.push(entry);
                    } else {
                        let mut e = entry;
                        e["description"] = json!("the host has no open order stream to this scheduler");
                        failure.push(e);
                    }
                }
            }),
        };
        if let Err(e) = answer {
            errors.push(format!("scheduler {}:{}: {e}", s.ip, s.port));
        }
    }
    if errors.len() == active.len() {
        return Err(errors.join("; "));
    }
    if kind == "delete_task" {
        crate::service::task_records::mark_deleted(db, cluster, task).await.map_err(|e| format!("database: {e}"))?;
    }
    Ok(match kind {
        "get_task" => json!({"scheduler_cluster_id": cluster, "task_id": task, "peers": peers}),
        _ => {
            json!({"scheduler_cluster_id": cluster, "task_id": task, "success_tasks": success, "failure_tasks": failure})
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_come_from_args_as_dfget_derives_them() {
        let given = "c".repeat(64);
        assert_eq!(resolve_task_id(&json!({"task_id": given})).unwrap(), given);
        let from_url = resolve_task_id(&json!({"url": "https://o.example/f?X-Amz-Signature=abc"})).unwrap();
        let spec = TaskSpec {
            url: "https://o.example/f",
            tag: "",
            application: "",
            piece_length: None,
            filtered_query_params: &[],
            blob_digest: false,
        };
        assert_eq!(from_url, task_id(&spec).unwrap().0);
        let tagged = resolve_task_id(&json!({"url": "https://o.example/f", "tag": "t"})).unwrap();
        assert_ne!(tagged, from_url);
        assert!(resolve_task_id(&json!({})).is_err());
    }
}
