//! Roles and their permissions, read-only: the policy is code (see `rbac`), and this shows it
//! to people and to the console.

use axum::{Json, extract::Extension};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ApiState;
use crate::{auth::Principal, rbac};

#[derive(Debug, Serialize, ToSchema)]
pub struct RoleInfo {
    /// `root`, `admin`, `member`, `guest`, `user`.
    pub name: &'static str,
    /// `platform` (root, any signed-in user) or `tenant`.
    pub scope: &'static str,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Permission {
    /// An object kind such as `clusters`, or `*`.
    pub object: &'static str,
    /// `read`, `create`, `update`, `delete`, or `*`.
    pub action: &'static str,
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_roles))
}

/// Every role and what it may do.
#[utoipa::path(get, path = "/roles", tag = "users", security(("session" = [])),
    responses((status = 200, body = [RoleInfo])))]
pub async fn list_roles(Extension(_me): Extension<Principal>) -> Json<Vec<RoleInfo>> {
    let roles = ["root", "admin", "member", "guest", "user"];
    Json(
        roles
            .into_iter()
            .map(|name| RoleInfo {
                name,
                scope: if matches!(name, "root" | "user") { "platform" } else { "tenant" },
                permissions: rbac::POLICY
                    .iter()
                    .filter(|(role, _, _)| *role == name)
                    .map(|(_, object, action)| Permission { object, action })
                    .collect(),
            })
            .collect(),
    )
}
