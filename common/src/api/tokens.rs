//! Personal access tokens, as listed (never the secret, but its prefix) and as just created.

use serde::{Deserialize, Serialize};

use super::{Scope, Timestamp};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonalAccessToken {
    pub id: i64,
    pub tenant_id: i64,
    pub user_id: i64,
    pub name: String,
    pub bio: String,
    /// The first characters, to tell tokens apart.
    pub token_prefix: String,
    pub scopes: Vec<Scope>,
    /// `active` or `inactive`.
    pub state: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expired_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub last_used_at: Option<Timestamp>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// A new token: the only time `token` is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedToken {
    #[serde(flatten)]
    pub meta: PersonalAccessToken,
    /// Send as `Authorization: Bearer <token>` to `/oapi/v1`. Not shown again.
    pub token: String,
}
