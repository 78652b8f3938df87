//! Roles and what they may do, as the API shows them. The policy itself is the manager's
//! (`server::rbac`); these are only the names it answers with.

use serde::{Deserialize, Serialize};

/// A role, on the platform (`root`, `user`) or in one tenant (`admin`, `member`, `guest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Platform administrator: everything, in every tenant.
    Root,
    /// Everything inside its tenant.
    Admin,
    /// Reads its tenant, creates jobs, manages its own tokens.
    Member,
    /// Reads its tenant, manages its own tokens.
    Guest,
    /// Any signed-in user, outside any tenant (may create a tenant of its own).
    User,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Root => "root",
            Role::Admin => "admin",
            Role::Member => "member",
            Role::Guest => "guest",
            Role::User => "user",
        }
    }

    /// A tenant role by name, as stored in `members.role`.
    pub fn tenant_role(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Role::Admin),
            "member" => Some(Role::Member),
            "guest" => Some(Role::Guest),
            _ => None,
        }
    }
}

/// What a personal access token may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `/oapi/v1/jobs`.
    Job,
    /// `/oapi/v1/clusters`.
    Cluster,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Job => "job",
            Scope::Cluster => "cluster",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RoleInfo {
    /// `root`, `admin`, `member`, `guest`, `user`.
    pub name: String,
    /// `platform` (root, any signed-in user) or `tenant`.
    pub scope: String,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Permission {
    /// An object kind such as `clusters`, or `*`.
    pub object: String,
    /// `read`, `create`, `update`, `delete`, or `*`.
    pub action: String,
}
