//! Platform users (platform administrators only; the API answers 403 to everyone else):
//! the list, enabling and disabling, and the platform root role.

use leptos::prelude::*;

use super::ApiError;
use crate::api::page::Page;
use common::api::User;

/// Users filtered by exact name and state (`enabled` / `disabled`; empty: any).
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_users(page: u64, name: String, state: String) -> Result<Page<User>, ApiError> {
    super::client::list("/api/v1/users", page.max(1), 20, &[("name", name.trim().to_owned()), ("state", state)]).await
}

/// Enables or disables a user; disabling ends its sessions at once.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn set_user_state(id: i64, state: String) -> Result<User, ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        state: String,
    }
    if state != "enabled" && state != "disabled" {
        return Err(ApiError::invalid("state", "state must be enabled or disabled"));
    }
    super::client::patch(&format!("/api/v1/users/{id}"), &Body { state }).await
}

/// Makes a user a platform root (`role` = `root`) or takes that away (`role` empty).
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn set_platform_role(id: i64, role: String) -> Result<User, ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        platform_role: String,
    }
    if role != "root" && !role.is_empty() {
        return Err(ApiError::invalid("platform_role", "the platform role is root or nothing"));
    }
    super::client::patch(&format!("/api/v1/users/{id}"), &Body { platform_role: role }).await
}
