//! Sign-in providers (OAuth2/OIDC) as the sign-in page offers them.

use serde::{Deserialize, Serialize};

/// A provider as the sign-in page shows it (never its credentials).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthProvider {
    /// Id for `/api/v1/users/signin/{name}`.
    pub name: String,
    pub display_name: String,
}
