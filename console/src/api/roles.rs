//! Roles and what they may do, as the manager's policy says (read-only: the policy is code).

use leptos::prelude::*;

use super::ApiError;
use common::api::RoleInfo;

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_roles() -> Result<Vec<RoleInfo>, ApiError> {
    super::client::get("/api/v1/roles", &[]).await
}
