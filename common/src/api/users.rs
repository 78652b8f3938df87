//! Users, and the signed-in user with the tenants it acts in (what the console's every page
//! reads to hide what the user may not do; hiding is courtesy only, the API decides).

use serde::{Deserialize, Serialize};

use super::{Role, Timestamp};

/// A user as the API shows it (never the password hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    /// `enabled` or `disabled`.
    pub state: String,
    /// `root` for platform administrators, else empty.
    pub platform_role: String,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    #[cfg_attr(target_arch = "wasm32", serde(skip_deserializing))]
    pub updated_at: Timestamp,
}

/// The signed-in user and the tenants it acts in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(target_arch = "wasm32", serde(from = "wasm::FlatMe"))]
pub struct Me {
    #[serde(flatten)]
    pub user: User,
    pub tenants: Vec<Membership>,
}

impl Me {
    pub fn is_root(&self) -> bool {
        self.user.platform_role == "root"
    }

    /// Whether the user may change things in `tenant_id` (root, or its admin there).
    pub fn administers(&self, tenant_id: i64) -> bool {
        self.is_root() || self.tenants.iter().any(|m| m.tenant_id == tenant_id && m.role == Role::Admin)
    }

    /// Whether the user may create jobs in `tenant_id`.
    pub fn runs_jobs_in(&self, tenant_id: i64) -> bool {
        self.administers(tenant_id) || self.tenants.iter().any(|m| m.tenant_id == tenant_id && m.role == Role::Member)
    }

    /// The tenant's name when the user belongs to it.
    pub fn tenant_name(&self, tenant_id: i64) -> String {
        self.tenants
            .iter()
            .find(|m| m.tenant_id == tenant_id)
            .map(|m| m.tenant_name.clone())
            .unwrap_or_else(|| format!("tenant {tenant_id}"))
    }
}

/// One tenant the user belongs to, with its role there.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Membership {
    pub tenant_id: i64,
    pub tenant_name: String,
    pub role: Role,
}

/// The browser reads [`Me`] through a flat twin: serde's `flatten` would put a buffering
/// deserializer into the WASM bundle (which has a hard size budget), and the browser only ever
/// reads what the manager wrote from [`Me`] itself, so the two cannot drift on the wire.
#[cfg(any(target_arch = "wasm32", test))]
mod wasm {
    use serde::Deserialize;

    use super::{Membership, User};

    #[derive(Deserialize)]
    pub struct FlatMe {
        id: i64,
        name: String,
        email: Option<String>,
        platform_role: String,
        tenants: Vec<Membership>,
    }

    impl From<FlatMe> for super::Me {
        fn from(m: FlatMe) -> Self {
            let user = User {
                id: m.id,
                name: m.name,
                email: m.email,
                state: String::new(),
                platform_role: m.platform_role,
                created_at: Default::default(),
                updated_at: Default::default(),
            };
            Self { user, tenants: m.tenants }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the browser reads of the manager's `Me`: every field a page shows.
    #[test]
    fn the_browser_reads_me_flat() {
        let user = User {
            id: 7,
            name: "ada".into(),
            email: Some("ada@example.com".into()),
            state: "enabled".into(),
            platform_role: String::new(),
            created_at: "2026-11-24T10:03:07Z".into(),
            updated_at: "2026-11-25T10:03:07Z".into(),
        };
        let membership = Membership { tenant_id: 1, tenant_name: "ml".into(), role: Role::Admin };
        let me = Me { user, tenants: vec![membership.clone()] };
        let read: Me = serde_json::from_str::<wasm::FlatMe>(&serde_json::to_string(&me).unwrap()).unwrap().into();
        assert_eq!(
            (read.user.id, read.user.name.as_str(), read.user.email.as_deref()),
            (7, "ada", Some("ada@example.com"))
        );
        assert_eq!(read.tenants, vec![membership]);
        assert!(read.administers(1) && !read.is_root());
    }
}
