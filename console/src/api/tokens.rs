//! Personal access tokens of the signed-in user.

use super::ApiError;
use crate::api::page::Page;
use common::api::{CreatedToken, PersonalAccessToken as Token};
use leptos::prelude::*;

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_tokens(page: u64) -> Result<Page<Token>, ApiError> {
    super::client::list("/api/v1/personal-access-tokens", page.max(1), 20, &[]).await
}

/// Creates a token that expires after `days` days; the answer carries the secret, once.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn create_token(
    name: String,
    bio: String,
    days: String,
    tenant_id: String,
    scope_job: Option<String>,
    scope_cluster: Option<String>,
) -> Result<CreatedToken, ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        #[serde(skip_serializing_if = "Option::is_none")]
        tenant_id: Option<i64>,
        name: String,
        bio: String,
        scopes: Vec<&'static str>,
        expired_at: String,
    }
    let days: i64 = super::number("days", &days)?;
    if !(1..=3650).contains(&days) {
        return Err(ApiError::invalid("days", "a token lasts 1 to 3650 days"));
    }
    let scopes: Vec<&'static str> =
        [scope_job.map(|_| "job"), scope_cluster.map(|_| "cluster")].into_iter().flatten().collect();
    if scopes.is_empty() {
        return Err(ApiError::invalid("scopes", "choose at least one scope"));
    }
    let tenant_id = match tenant_id.trim() {
        "" => None,
        t => Some(super::number("tenant_id", t)?),
    };
    let expired_at = (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339();
    super::client::post(
        "/api/v1/personal-access-tokens",
        &Body { tenant_id, name: name.trim().to_owned(), bio: bio.trim().to_owned(), scopes, expired_at },
    )
    .await
}

/// Revokes a token: it stops working at once and is removed from the list.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn revoke_token(id: i64) -> Result<(), ApiError> {
    super::client::delete(&format!("/api/v1/personal-access-tokens/{id}")).await
}
