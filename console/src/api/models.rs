//! What the console reads from the manager's API: the fields pages show, nothing more (serde
//! ignores the rest). Timestamps stay RFC 3339 strings; [`short_time`] formats them.

use serde::{Deserialize, Serialize};

/// One page of a list and how many items there are in all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

impl<T> Page<T> {
    /// How many pages there are (at least one, so "page 1 of 1" reads right on an empty list).
    pub fn pages(&self) -> u64 {
        self.total.div_ceil(self.per_page.max(1)).max(1)
    }
}

/// The signed-in user and its tenants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub platform_role: String,
    pub tenants: Vec<Membership>,
}

impl Me {
    pub fn is_root(&self) -> bool {
        self.platform_role == "root"
    }

    /// Whether the user may change things in `tenant_id` (root, or its admin there).
    pub fn administers(&self, tenant_id: i64) -> bool {
        self.is_root() || self.tenants.iter().any(|m| m.tenant_id == tenant_id && m.role == "admin")
    }

    /// Whether the user may create jobs in `tenant_id`.
    pub fn runs_jobs_in(&self, tenant_id: i64) -> bool {
        self.administers(tenant_id) || self.tenants.iter().any(|m| m.tenant_id == tenant_id && m.role == "member")
    }

    /// The tenant's name when the user belongs to it.
    pub fn tenant_name(&self, tenant_id: i64) -> String {
        self.tenants
            .iter()
            .find(|m| m.tenant_id == tenant_id)
            .map(|m| m.tenant_name.clone())
            .unwrap_or_else(|| format!("tenant {tenant_id}"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Membership {
    pub tenant_id: i64,
    pub tenant_name: String,
    /// `admin`, `member` or `guest`.
    pub role: String,
}

/// A sign-in provider the sign-in page offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OAuthProvider {
    pub name: String,
    pub display_name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scopes {
    #[serde(default)]
    pub idc: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub cidrs: Vec<String>,
    #[serde(default)]
    pub hostnames: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulerClusterConfig {
    pub candidate_parent_limit: u32,
    pub filter_parent_limit: u32,
    pub job_rate_limit: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeedPeerClusterConfig {
    pub load_limit: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeerClusterConfig {
    pub load_limit: u32,
    #[serde(default)]
    pub block_list: BlockList,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockList {
    #[serde(default)]
    pub applications: Vec<String>,
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// A cluster: a scheduler cluster paired with its seed-peer cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub bio: String,
    pub scopes: Scopes,
    pub scheduler_cluster_config: SchedulerClusterConfig,
    pub seed_peer_cluster_config: SeedPeerClusterConfig,
    pub peer_cluster_config: PeerClusterConfig,
    pub is_default: bool,
    pub created_at: String,
    pub updated_at: String,
}

/// A scheduler, seed peer or peer as registered with the manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub id: i64,
    pub cluster_id: i64,
    pub hostname: String,
    pub ip: String,
    pub port: i32,
    #[serde(default)]
    pub download_port: Option<i32>,
    pub idc: String,
    pub location: String,
    /// `active` or `inactive`.
    pub state: String,
    pub version: String,
    #[serde(default)]
    pub features: Vec<String>,
    #[serde(default)]
    pub os: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    pub last_keep_alive_at: Option<String>,
    /// Seed peers and peers: bytes per second uploaded between their two latest keepalives.
    #[serde(default)]
    pub upload_rate: u64,
    pub created_at: String,
}

/// A personal access token (never the secret, but its prefix).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub id: i64,
    pub tenant_id: i64,
    pub user_id: i64,
    pub name: String,
    pub bio: String,
    pub token_prefix: String,
    pub scopes: Vec<String>,
    /// `active` or `inactive`.
    pub state: String,
    pub expired_at: String,
    pub last_used_at: Option<String>,
    pub created_at: String,
}

/// A token just created: the only time its secret is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub meta: Token,
    pub token: String,
}

/// A job and, once it ran, its results per cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: i64,
    pub tenant_id: i64,
    pub user_id: i64,
    pub r#type: String,
    /// `PENDING`, `RUNNING`, `SUCCESS` or `FAILURE`.
    pub state: String,
    /// Kept as JSON text: arguments differ by job type and pages only show them.
    #[serde(with = "json_text")]
    pub args: String,
    #[serde(default, with = "json_text_opt")]
    pub result: Option<String>,
    pub bio: String,
    pub scheduler_cluster_ids: Vec<i64>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub bio: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: i64,
    pub user_name: String,
    pub role: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub state: String,
    pub platform_role: String,
    pub created_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Audit {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub actor_type: String,
    pub actor_name: String,
    pub event: String,
    pub operation: String,
    pub path: String,
    pub status_code: i32,
    pub state: String,
    pub created_at: String,
}

/// A role and what it may do, as `GET /api/v1/roles` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoleInfo {
    /// `root`, `admin`, `member`, `guest`, `user`.
    pub name: String,
    /// `platform` or `tenant`.
    pub scope: String,
    pub permissions: Vec<Permission>,
}

/// One permission of a role; `*` stands for every object or every action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Permission {
    pub object: String,
    pub action: String,
}

/// "2026-11-24 10:03:07" from an RFC 3339 timestamp (UTC as the API gives it).
pub fn short_time(rfc3339: &str) -> String {
    let t = rfc3339.replace('T', " ");
    t.get(..19).map(str::to_owned).unwrap_or(t)
}

/// JSON values carried as their text, so the types stay plain on both sides of the wire.
mod json_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(serde::ser::Error::custom)?;
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(serde_json::Value::deserialize(d)?.to_string())
    }
}

mod json_text_opt {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(text: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        let value: Option<serde_json::Value> =
            text.as_deref().map(serde_json::from_str).transpose().map_err(serde::ser::Error::custom)?;
        value.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<serde_json::Value>::deserialize(d)?.filter(|v| !v.is_null()).map(|v| v.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_count_up_and_never_reach_zero() {
        let page = |total| Page::<()> { items: vec![], total, page: 1, per_page: 10 };
        assert_eq!(page(0).pages(), 1);
        assert_eq!(page(10).pages(), 1);
        assert_eq!(page(11).pages(), 2);
    }

    #[test]
    fn job_json_round_trips_through_text() {
        let json = r#"{"id":1,"tenant_id":1,"user_id":1,"type":"get_task","state":"SUCCESS","args":{"url":"u"},
            "result":{"job_states":[]},"bio":"","scheduler_cluster_ids":[1],"created_at":"a","updated_at":"b"}"#;
        let job: Job = serde_json::from_str(json).unwrap();
        assert_eq!(job.args, r#"{"url":"u"}"#);
        let again: Job = serde_json::from_str(&serde_json::to_string(&job).unwrap()).unwrap();
        assert_eq!(again, job);
    }

    #[test]
    fn times_are_short() {
        assert_eq!(short_time("2026-11-24T10:03:07.123456Z"), "2026-11-24 10:03:07");
        assert_eq!(short_time("bad"), "bad");
    }
}

/// Tasks, peers and traffic over a window (`GET /api/v1/stats`), oldest bucket first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub window_secs: u64,
    pub bucket_secs: u64,
    pub points: Vec<StatsPoint>,
}

/// One bucket of [`Stats`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsPoint {
    pub at: String,
    pub tasks: Option<u64>,
    pub peers: Option<u64>,
    pub running_peers: Option<u64>,
    pub back_to_source_bytes: u64,
    pub peer_bytes: u64,
    pub succeeded: u64,
    pub failed: u64,
}
