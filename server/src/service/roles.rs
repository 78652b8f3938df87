//! Roles and their permissions, read-only: the policy is code ([`crate::rbac`]), and this shows
//! it to people and to the console.

use serde::Serialize;
use utoipa::ToSchema;

use crate::rbac::{self, Role};

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

/// Every role and what it may do; anyone signed in may read it.
pub fn list() -> Vec<RoleInfo> {
    let roles = [Role::Root, Role::Admin, Role::Member, Role::Guest, Role::User];
    roles
        .into_iter()
        .map(|role| RoleInfo {
            name: role.as_str(),
            scope: match role {
                Role::Root | Role::User => "platform",
                Role::Admin | Role::Member | Role::Guest => "tenant",
            },
            permissions: rbac::POLICY
                .iter()
                .filter(|(name, _, _)| *name == role.as_str())
                .map(|(_, object, action)| Permission { object, action })
                .collect(),
        })
        .collect()
}
