//! Jobs: work the manager runs against the scheduler clusters of a tenant (preheat, get_task,
//! delete_task). The shape follows Dragonfly's, which Harbor's preheat provider reads.

use serde::{Deserialize, Serialize};

use super::{Timestamp, tasks::TaskPeer};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Job {
    pub id: i64,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub tenant_id: i64,
    pub user_id: i64,
    /// `preheat`, `get_task` or `delete_task`.
    pub r#type: String,
    /// `PENDING`, `RUNNING`, `SUCCESS` or `FAILURE`.
    pub state: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub args: serde_json::Value,
    /// Per scheduler cluster, once the job has run.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub result: Option<serde_json::Value>,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub bio: String,
    pub scheduler_cluster_ids: Vec<i64>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// A job's `result` as the runner writes it: `job_states[]`, one per cluster for a preheat, one
/// for the whole job for `get_task` and `delete_task`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobResult {
    #[serde(default)]
    pub job_states: Vec<JobStateResult>,
}

/// One `job_states[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobStateResult {
    /// `RUNNING`, `SUCCESS` or `FAILURE`.
    #[serde(default)]
    pub state: String,
    /// Why this part failed, if it did (every failed task's reason, for a preheat).
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub results: Vec<ClusterResult>,
}

/// What a job did in one scheduler cluster. Which fields are set depends on the job's type:
/// `get_task` fills `peers`, `delete_task` the hosts told (`success_tasks`) or not reached
/// (`failure_tasks`), a preheat the tasks each host cached or not, and its `progress`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClusterResult {
    pub scheduler_cluster_id: i64,
    /// The task `get_task` and `delete_task` were about.
    #[serde(default)]
    pub task_id: String,
    /// Why the cluster could not be asked (`get_task`, `delete_task`).
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub peers: Vec<TaskPeer>,
    #[serde(default)]
    pub success_tasks: Vec<HostTask>,
    #[serde(default)]
    pub failure_tasks: Vec<HostTask>,
    /// A preheat's tally, rewritten while it runs.
    #[serde(default)]
    pub progress: Option<PreheatProgress>,
    /// Every host a preheat picked, with its own tally: those still working show here before
    /// they show in `success_tasks` or `failure_tasks`.
    #[serde(default)]
    pub hosts: Vec<PreheatHostProgress>,
}

/// One host of a preheat: how many of its tasks it has answered, and the bytes it cached.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreheatHostProgress {
    #[serde(default)]
    pub host_id: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub finished: u64,
    #[serde(default)]
    pub bytes: u64,
}

/// One host's outcome for one task (a preheat's URL, or a deletion).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostTask {
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub task_id: String,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub ip: String,
    #[serde(default)]
    pub host_id: String,
    /// Why it failed (failures only).
    #[serde(default)]
    pub description: String,
}

/// How far a preheat has gone in one cluster: host × task pairs ordered, those answered (cached
/// or failed), and the bytes cached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreheatProgress {
    pub tasks: u64,
    pub finished: u64,
    pub bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moved from the console's `api::models` (where `args` was kept as text): a job's JSON
    /// arguments and result come back as they went.
    #[test]
    fn job_json_round_trips_through_text() {
        let json = r#"{"id":1,"tenant_id":1,"user_id":1,"type":"get_task","state":"SUCCESS","args":{"url":"u"},
            "result":{"job_states":[]},"bio":"","scheduler_cluster_ids":[1],"created_at":"a","updated_at":"b"}"#;
        let job: Job = serde_json::from_str(json).unwrap();
        assert_eq!(job.args.to_string(), r#"{"url":"u"}"#);
        let again: Job = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
        assert_eq!(again, job);
    }

    /// The shapes the runner writes (`server::jobs`) read into [`JobResult`].
    #[test]
    fn job_results_of_every_type_are_read() {
        let preheat = r#"{"job_states":[{"state":"FAILURE","error":"http://o/a on h2: 404","results":[{
            "scheduler_cluster_id":1,
            "success_tasks":[{"url":"http://o/a","task_id":"t","hostname":"h1","ip":"10.0.0.1","host_id":"x"}],
            "failure_tasks":[{"url":"http://o/a","task_id":"t","hostname":"h2","ip":"10.0.0.2","host_id":"y","description":"404"}],
            "progress":{"tasks":2,"finished":2,"bytes":10},
            "hosts":[{"host_id":"x","hostname":"h1","ip":"10.0.0.1","finished":1,"bytes":10}]}]}]}"#;
        let r: JobResult = serde_json::from_str(preheat).unwrap();
        let cluster = &r.job_states[0].results[0];
        assert_eq!(cluster.progress, Some(PreheatProgress { tasks: 2, finished: 2, bytes: 10 }));
        assert_eq!(
            (cluster.hosts[0].hostname.as_str(), cluster.hosts[0].finished, cluster.hosts[0].bytes),
            ("h1", 1, 10)
        );
        assert_eq!(cluster.failure_tasks[0].description, "404");
        let failed_early = r#"{"job_states":[{"state":"FAILURE","error":"no such image","results":[]}]}"#;
        assert_eq!(serde_json::from_str::<JobResult>(failed_early).unwrap().job_states[0].error, "no such image");
        let unreachable = r#"{"job_states":[{"state":"FAILURE","error":"cluster 2: down","results":[
            {"scheduler_cluster_id":2,"task_id":"t","error":"down"}]}]}"#;
        let r: JobResult = serde_json::from_str(unreachable).unwrap();
        assert_eq!((r.job_states[0].results[0].error.as_str(), r.job_states[0].results[0].progress), ("down", None));
    }
}
