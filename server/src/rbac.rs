//! Who may do what: casbin decides, from the caller's role, the kind of object and the action.
//!
//! Roles come from two places. The platform role `root` sits on the user row. Tenant roles
//! (`admin`, `member`, `guest`) sit on the membership rows, looked up on every request, so a
//! change is seen at once by every manager replica. The policy itself is code, not data: it is
//! the product's contract, reviewed with the code, and the same on every replica.
//!
//! The request asked of casbin is `(role, object, action)`; *which tenant* is settled before
//! that (a user without a role in an object's tenant gets 404, never a decision that would show
//! the object exists). A personal access token narrows its owner's rights to its scopes.

use std::sync::Arc;

use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};

use crate::{Error, entity::members::MemberRole};

/// Roles and token scopes are part of the API's contract, declared with it.
pub use common::api::{Role, Scope};

impl From<MemberRole> for Role {
    fn from(r: MemberRole) -> Self {
        match r {
            MemberRole::Admin => Role::Admin,
            MemberRole::Member => Role::Member,
            MemberRole::Guest => Role::Guest,
        }
    }
}

/// The kinds of object the API guards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Obj {
    Tenants,
    Members,
    Users,
    Clusters,
    Schedulers,
    SeedPeers,
    Peers,
    Applications,
    Configs,
    Jobs,
    /// Any token of the tenant (admins revoke other people's tokens).
    Tokens,
    /// The caller's own tokens.
    OwnTokens,
    Audits,
}

impl Obj {
    pub fn as_str(self) -> &'static str {
        match self {
            Obj::Tenants => "tenants",
            Obj::Members => "members",
            Obj::Users => "users",
            Obj::Clusters => "clusters",
            Obj::Schedulers => "schedulers",
            Obj::SeedPeers => "seed-peers",
            Obj::Peers => "peers",
            Obj::Applications => "applications",
            Obj::Configs => "configs",
            Obj::Jobs => "jobs",
            Obj::Tokens => "personal-access-tokens",
            Obj::OwnTokens => "own-personal-access-tokens",
            Obj::Audits => "audits",
        }
    }

    /// The personal-access-token scope that covers this object, if a token may reach it at all.
    pub fn scope(self) -> Option<Scope> {
        match self {
            Obj::Jobs => Some(Scope::Job),
            Obj::Clusters => Some(Scope::Cluster),
            _ => None,
        }
    }
}

/// Actions, from the HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Act {
    Read,
    Create,
    Update,
    Delete,
}

impl Act {
    pub fn as_str(self) -> &'static str {
        match self {
            Act::Read => "read",
            Act::Create => "create",
            Act::Update => "update",
            Act::Delete => "delete",
        }
    }
}

const MODEL: &str = r#"
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub == p.sub && (p.obj == "*" || r.obj == p.obj) && (p.act == "*" || r.act == p.act)
"#;

/// The policy: `(role, object, action)`, `*` for any.
pub const POLICY: &[(&str, &str, &str)] = &[
    ("root", "*", "*"),
    // Tenant administrators: everything inside the tenant except deleting the tenant itself.
    ("admin", "tenants", "read"),
    ("admin", "tenants", "update"),
    ("admin", "members", "*"),
    ("admin", "clusters", "*"),
    ("admin", "schedulers", "read"),
    ("admin", "schedulers", "delete"),
    ("admin", "seed-peers", "read"),
    ("admin", "seed-peers", "delete"),
    ("admin", "peers", "read"),
    ("admin", "peers", "delete"),
    ("admin", "applications", "*"),
    ("admin", "jobs", "*"),
    ("admin", "personal-access-tokens", "*"),
    ("admin", "own-personal-access-tokens", "*"),
    ("admin", "audits", "read"),
    // Members read the tenant and create jobs.
    ("member", "tenants", "read"),
    ("member", "members", "read"),
    ("member", "clusters", "read"),
    ("member", "schedulers", "read"),
    ("member", "seed-peers", "read"),
    ("member", "peers", "read"),
    ("member", "applications", "read"),
    ("member", "jobs", "read"),
    ("member", "jobs", "create"),
    ("member", "own-personal-access-tokens", "*"),
    // Guests read.
    ("guest", "tenants", "read"),
    ("guest", "members", "read"),
    ("guest", "clusters", "read"),
    ("guest", "schedulers", "read"),
    ("guest", "seed-peers", "read"),
    ("guest", "peers", "read"),
    ("guest", "applications", "read"),
    ("guest", "jobs", "read"),
    ("guest", "own-personal-access-tokens", "*"),
    // Anyone signed in may start a tenant of their own (and becomes its admin).
    ("user", "tenants", "create"),
];

/// The casbin enforcer with the policy loaded; cheap to clone.
#[derive(Clone)]
pub struct Rbac {
    enforcer: Arc<Enforcer>,
}

impl std::fmt::Debug for Rbac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rbac").finish_non_exhaustive()
    }
}

impl Rbac {
    /// Builds the enforcer from [`MODEL`] and [`POLICY`].
    pub async fn new() -> Result<Self, Error> {
        let model = DefaultModel::from_str(MODEL).await.map_err(|e| Error::Internal(format!("casbin model: {e}")))?;
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
            .await
            .map_err(|e| Error::Internal(format!("casbin: {e}")))?;
        let rules = POLICY.iter().map(|(s, o, a)| vec![(*s).to_owned(), (*o).to_owned(), (*a).to_owned()]).collect();
        enforcer.add_policies(rules).await.map_err(|e| Error::Internal(format!("casbin policy: {e}")))?;
        Ok(Self { enforcer: Arc::new(enforcer) })
    }

    /// Whether `role` may `act` on `obj`.
    pub fn allows(&self, role: Role, obj: Obj, act: Act) -> bool {
        self.enforcer.enforce((role.as_str(), obj.as_str(), act.as_str())).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn policy_matches_the_role_contract() {
        let rbac = Rbac::new().await.unwrap();
        let all_objs = [
            Obj::Tenants,
            Obj::Members,
            Obj::Users,
            Obj::Clusters,
            Obj::Schedulers,
            Obj::SeedPeers,
            Obj::Peers,
            Obj::Applications,
            Obj::Configs,
            Obj::Jobs,
            Obj::Tokens,
            Obj::OwnTokens,
            Obj::Audits,
        ];
        let all_acts = [Act::Read, Act::Create, Act::Update, Act::Delete];
        for obj in all_objs {
            for act in all_acts {
                assert!(rbac.allows(Role::Root, obj, act), "root {obj:?} {act:?}");
                // Platform objects stay the root's alone.
                if matches!(obj, Obj::Users | Obj::Configs) {
                    for role in [Role::Admin, Role::Member, Role::Guest, Role::User] {
                        assert!(!rbac.allows(role, obj, act), "{role:?} {obj:?} {act:?}");
                    }
                }
                // Guests never change anything but their own tokens.
                if act != Act::Read && obj != Obj::OwnTokens {
                    assert!(!rbac.allows(Role::Guest, obj, act), "guest {obj:?} {act:?}");
                }
            }
        }
        assert!(rbac.allows(Role::Member, Obj::Jobs, Act::Create));
        assert!(!rbac.allows(Role::Member, Obj::Jobs, Act::Delete));
        assert!(!rbac.allows(Role::Member, Obj::Clusters, Act::Create));
        assert!(!rbac.allows(Role::Member, Obj::Tokens, Act::Read));
        assert!(rbac.allows(Role::Admin, Obj::Clusters, Act::Delete));
        assert!(!rbac.allows(Role::Admin, Obj::Tenants, Act::Delete));
        assert!(!rbac.allows(Role::Admin, Obj::Schedulers, Act::Create));
        assert!(rbac.allows(Role::User, Obj::Tenants, Act::Create));
        assert!(!rbac.allows(Role::User, Obj::Clusters, Act::Read));
    }
}
