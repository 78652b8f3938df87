//! Roles and their permissions, read-only: the policy is code (see `rbac`), and this shows it
//! to people and to the console.

use axum::{Json, extract::Extension};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ApiState;
use crate::{auth::Principal, rbac};

pub use common::api::{Permission, RoleInfo};

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
                name: name.into(),
                scope: if matches!(name, "root" | "user") { "platform" } else { "tenant" }.into(),
                permissions: rbac::POLICY
                    .iter()
                    .filter(|(role, _, _)| *role == name)
                    .map(|(_, object, action)| Permission { object: (*object).into(), action: (*action).into() })
                    .collect(),
            })
            .collect(),
    )
}
