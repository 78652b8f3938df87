//! The manager's REST contract: the data-transfer objects `/api/v1` answers with, declared once
//! for the manager (which serializes them and documents them in its OpenAPI document) and the
//! console (which deserializes them, in the browser too).
//!
//! Serde only: no I/O, no database or HTTP types, and it builds for wasm32. The `openapi`
//! feature (the manager's alone) derives `utoipa::ToSchema`; field docs and order here *are* the
//! document's, so changing them changes the published contract. Conversions from the manager's
//! rows stay in the manager. Timestamps are [`Timestamp`]s, RFC 3339 text, so the browser never
//! carries a date library.
//!
//! The console's WASM bundle has a hard size budget, so on `wasm32` only the browser skips
//! fields no page shows (`serde(skip_deserializing)`: they read as their default there) and reads
//! the two flattened types ([`Me`], [`CreatedToken`]) through flat twins. Either way the wire is
//! what the manager writes from these types. Types no page shows ([`join_tokens`]) are not built
//! for wasm32 at all.

pub mod audits;
#[cfg(not(target_arch = "wasm32"))]
pub mod certificates;
pub mod clusters;
pub mod jobs;
#[cfg(not(target_arch = "wasm32"))]
pub mod join_tokens;
pub mod oauth;
pub mod roles;
pub mod stats;
pub mod tasks;
pub mod tenants;
pub mod tokens;
pub mod users;

pub use audits::Audit;
#[cfg(not(target_arch = "wasm32"))]
pub use certificates::{Certificate, CertificateState, RevokeCertificates, RevokedCertificates};
pub use clusters::{BlockList, Cluster, PeerClusterConfig, SchedulerClusterConfig, Scopes, SeedPeerClusterConfig};
pub use jobs::{ClusterResult, HostTask, Job, JobResult, JobStateResult, PreheatHostProgress, PreheatProgress};
#[cfg(not(target_arch = "wasm32"))]
pub use join_tokens::{CreatedJoinToken, JoinRole, JoinToken, JoinTokenState};
pub use oauth::OAuthProvider;
pub use roles::{Permission, Role, RoleInfo, Scope};
pub use stats::{Stats, StatsPoint};
pub use tasks::{PieceSource, TaskInfo, TaskPeer, TaskRecord};
pub use tenants::{Member, Tenant};
pub use tokens::{CreatedToken, PersonalAccessToken};
pub use users::{Me, Membership, User};

use serde::{Deserialize, Serialize};

/// A point in time as the API writes it: RFC 3339 in UTC (`2026-11-24T10:03:07.123456Z`), the
/// text the manager's `chrono::DateTime<Utc>` serializes to. The manager builds it from its
/// clock; the console only shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub String);

impl Timestamp {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Timestamp {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Timestamp {
    fn from(text: &str) -> Self {
        Self(text.to_owned())
    }
}

impl AsRef<str> for Timestamp {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// "2026-11-24 10:03:07" from an RFC 3339 timestamp (UTC as the API gives it).
pub fn short_time(rfc3339: &str) -> String {
    let t = rfc3339.replace('T', " ");
    t.get(..19).map(str::to_owned).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_short() {
        assert_eq!(short_time("2026-11-24T10:03:07.123456Z"), "2026-11-24 10:03:07");
        assert_eq!(short_time("bad"), "bad");
    }

    #[test]
    fn timestamps_are_plain_strings_on_the_wire() {
        let t = Timestamp("2026-11-24T10:03:07Z".to_owned());
        assert_eq!(serde_json::to_string(&t).unwrap(), r#""2026-11-24T10:03:07Z""#);
        assert_eq!(serde_json::from_str::<Timestamp>(r#""2026-11-24T10:03:07Z""#).unwrap(), t);
    }
}
