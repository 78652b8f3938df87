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
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub updated_at: Timestamp,
}

/// A new token: the only time `token` is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(target_arch = "wasm32", serde(from = "wasm::FlatCreatedToken"))]
pub struct CreatedToken {
    #[serde(flatten)]
    pub meta: PersonalAccessToken,
    /// Send as `Authorization: Bearer <token>` to `/oapi/v1`. Not shown again.
    pub token: String,
}

/// The browser reads [`CreatedToken`] through a flat twin, for the reason `users::Me` does:
/// serde's `flatten` costs the size-budgeted WASM bundle a buffering deserializer.
#[cfg(target_arch = "wasm32")]
mod wasm {
    use serde::Deserialize;

    use super::{PersonalAccessToken, Scope, Timestamp};

    #[derive(Deserialize)]
    pub struct FlatCreatedToken {
        id: i64,
        tenant_id: i64,
        user_id: i64,
        name: String,
        bio: String,
        token_prefix: String,
        scopes: Vec<Scope>,
        state: String,
        expired_at: Timestamp,
        last_used_at: Option<Timestamp>,
        created_at: Timestamp,
        token: String,
    }

    impl From<FlatCreatedToken> for super::CreatedToken {
        fn from(t: FlatCreatedToken) -> Self {
            let meta = PersonalAccessToken {
                id: t.id,
                tenant_id: t.tenant_id,
                user_id: t.user_id,
                name: t.name,
                bio: t.bio,
                token_prefix: t.token_prefix,
                scopes: t.scopes,
                state: t.state,
                expired_at: t.expired_at,
                last_used_at: t.last_used_at,
                created_at: t.created_at,
                updated_at: Timestamp::default(),
            };
            Self { meta, token: t.token }
        }
    }
}
