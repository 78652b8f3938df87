//! Jobs: work the manager runs against the scheduler clusters of a tenant (preheat, get_task,
//! delete_task). The shape follows Dragonfly's, which Harbor's preheat provider reads.

use serde::{Deserialize, Serialize};

use super::Timestamp;

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
}
