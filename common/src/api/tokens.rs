//! Personal access tokens, as listed (never the secret, but its prefix) and as just created.

use serde::{Deserialize, Serialize};

use super::{Scope, Timestamp};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PersonalAccessToken {
    pub id: i64,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub tenant_id: i64,
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
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
#[cfg(any(target_arch = "wasm32", test))]
mod wasm {
    use serde::Deserialize;

    use super::{PersonalAccessToken, Scope, Timestamp};

    #[derive(Deserialize)]
    pub struct FlatCreatedToken {
        id: i64,
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
                tenant_id: 0,
                user_id: 0,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the browser reads of a just-created token: every field the tokens page shows.
    #[test]
    fn the_browser_reads_a_created_token_flat() {
        let meta = PersonalAccessToken {
            id: 3,
            tenant_id: 1,
            user_id: 7,
            name: "ci".into(),
            bio: "builds".into(),
            token_prefix: "dfly_ab".into(),
            scopes: vec![Scope::Job, Scope::Cluster],
            state: "active".into(),
            expired_at: "2027-01-01T00:00:00Z".into(),
            last_used_at: None,
            created_at: "2026-11-24T10:03:07Z".into(),
            updated_at: "2026-11-24T10:03:07Z".into(),
        };
        let created = CreatedToken { meta: meta.clone(), token: "dfly_secret".into() };
        let json = serde_json::to_string(&created).unwrap();
        let read: CreatedToken = serde_json::from_str::<wasm::FlatCreatedToken>(&json).unwrap().into();
        assert_eq!(read.token, "dfly_secret");
        assert_eq!(
            read.meta,
            PersonalAccessToken { tenant_id: 0, user_id: 0, updated_at: Timestamp::default(), ..meta }
        );
    }
}
