//! The audit log: one entry per change made through the API.

use serde::{Deserialize, Serialize};

use super::Timestamp;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Audit {
    pub id: i64,
    pub tenant_id: Option<i64>,
    /// `user`, `personal_access_token` or `anonymous`.
    pub actor_type: String,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub actor_id: Option<i64>,
    pub actor_name: String,
    /// Such as `clusters.create`.
    pub event: String,
    /// The HTTP method.
    pub operation: String,
    pub path: String,
    pub status_code: i32,
    /// `success` or `failure`.
    pub state: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}
