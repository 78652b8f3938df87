//! Cluster join tokens, as listed (never the secret, but its prefix) and as just created. The
//! console shows none of them, so they are not built for wasm32 (the bundle's size budget).

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// What a join token enrols in its cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JoinRole {
    Scheduler,
    SeedPeer,
    Peer,
}

/// Whether a join token may still be redeemed. A revoked token stays listed, for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum JoinTokenState {
    Active,
    Revoked,
}

/// A cluster join token, without its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JoinToken {
    pub id: i64,
    pub cluster_id: i64,
    /// The cluster's tenant.
    pub tenant_id: i64,
    pub role: JoinRole,
    pub name: String,
    pub bio: String,
    /// The first characters, to tell tokens apart.
    pub token_prefix: String,
    pub state: JoinTokenState,
    /// How many times the token was redeemed.
    pub uses: i64,
    /// How many redemptions it allows; absent for no limit.
    pub max_uses: Option<i64>,
    /// The user who made it.
    pub created_by: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// A new join token: the only time `token` is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedJoinToken {
    #[serde(flatten)]
    pub meta: JoinToken,
    /// `dfj1.<id>.<secret>.<CA sha256>`, handed to the scheduler or dfdaemon that enrols, which
    /// trusts only a manager of that CA (without TLS: `dfj1.<id>.<secret>`). Not shown again.
    pub token: String,
}
