//! Roles and what they may do, as the API shows them. The policy itself is the manager's
//! (`server::rbac`); these are only the names it answers with.

use serde::{Deserialize, Serialize};

/// A role, on the platform (`root`, `user`) or in one tenant (`admin`, `member`, `guest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(target_arch = "wasm32", serde(try_from = "String"))]
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

    /// Any role by name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "root" => Some(Role::Root),
            "user" => Some(Role::User),
            _ => Self::tenant_role(s),
        }
    }
}

/// How the browser reads a role: from its name, which costs the size-budgeted WASM bundle less
/// than serde's enum machinery.
impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        Self::from_name(&name).ok_or(name)
    }
}

/// What a personal access token may touch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[cfg_attr(target_arch = "wasm32", serde(try_from = "String"))]
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

/// How the browser reads a scope (see [`Role`]'s `TryFrom<String>`).
impl TryFrom<String> for Scope {
    type Error = String;

    fn try_from(name: String) -> Result<Self, String> {
        match name.as_str() {
            "job" => Ok(Scope::Job),
            "cluster" => Ok(Scope::Cluster),
            _ => Err(name),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The browser reads roles and scopes from their names (`TryFrom<String>`): the names are
    /// the ones serde writes.
    #[test]
    fn roles_and_scopes_read_back_from_their_names() {
        for role in [Role::Root, Role::Admin, Role::Member, Role::Guest, Role::User] {
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
            assert_eq!(Role::try_from(role.as_str().to_owned()), Ok(role));
        }
        for scope in [Scope::Job, Scope::Cluster] {
            assert_eq!(serde_json::to_value(scope).unwrap(), scope.as_str());
            assert_eq!(Scope::try_from(scope.as_str().to_owned()), Ok(scope));
        }
        assert_eq!(Role::try_from("owner".to_owned()), Err("owner".to_owned()));
    }
}
