//! Roles and their permissions, read-only: the policy is code ([`crate::rbac`]), and this shows
//! it to people and to the console.

use crate::rbac::{self, Role};

pub use common::api::{Permission, RoleInfo};

/// Every role and what it may do; anyone signed in may read it.
pub fn list() -> Vec<RoleInfo> {
    let roles = [Role::Root, Role::Admin, Role::Member, Role::Guest, Role::User];
    roles
        .into_iter()
        .map(|role| RoleInfo {
            name: role.as_str().into(),
            scope: match role {
                Role::Root | Role::User => "platform",
                Role::Admin | Role::Member | Role::Guest => "tenant",
            }
            .into(),
            permissions: rbac::POLICY
                .iter()
                .filter(|(name, _, _)| *name == role.as_str())
                .map(|(_, object, action)| Permission { object: (*object).into(), action: (*action).into() })
                .collect(),
        })
        .collect()
}
