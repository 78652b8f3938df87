//! The caller of a guarded request, and the questions handlers ask about it.

use std::collections::BTreeMap;

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::{
    Error,
    entity::{members, users},
    rbac::{Act, Obj, Rbac, Role, Scope},
};

/// How the caller proved who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A sign-in token of this session.
    Session { id: String },
    /// A personal access token, bound to one tenant and narrowed to its scopes.
    Token { id: i64, scopes: Vec<Scope> },
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub name: String,
    /// Platform administrator.
    pub root: bool,
    pub credential: Credential,
    /// The caller's role in each tenant it may act in (one tenant for a token).
    pub tenants: BTreeMap<i64, Role>,
}

/// Which tenants' objects a caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visible {
    /// Every tenant's (platform root).
    All,
    /// Only these tenants'.
    Tenants(Vec<i64>),
}

impl Principal {
    /// Loads the user and its memberships; a disabled or deleted user is `Unauthorized`.
    pub async fn load(
        db: &DatabaseConnection,
        user_id: i64,
        credential: Credential,
        token_tenant: Option<i64>,
    ) -> Result<Self, Error> {
        let user = users::Entity::find_by_id(user_id)
            .one(db)
            .await?
            .filter(|u| u.state == "enabled")
            .ok_or_else(|| Error::Unauthorized("the user is disabled or gone".into()))?;
        let mut query = members::Entity::find().filter(members::Column::UserId.eq(user_id));
        if let Some(tenant) = token_tenant {
            query = query.filter(members::Column::TenantId.eq(tenant));
        }
        let tenants =
            query.all(db).await?.into_iter().filter_map(|m| Some((m.tenant_id, Role::tenant_role(&m.role)?))).collect();
        Ok(Self { user_id, name: user.name, root: user.platform_role == "root", credential, tenants })
    }

    /// The session id, for sign-out and refresh.
    pub fn session_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::Session { id } => Some(id),
            Credential::Token { .. } => None,
        }
    }

    fn check_scope(&self, obj: Obj) -> Result<(), Error> {
        if let Credential::Token { scopes, .. } = &self.credential {
            match obj.scope() {
                Some(scope) if scopes.contains(&scope) => {}
                _ => {
                    return Err(Error::Forbidden(format!(
                        "this personal access token's scopes do not cover {}",
                        obj.as_str()
                    )));
                }
            }
        }
        Ok(())
    }

    /// May the caller `act` on `obj` inside `tenant`? An object the caller may not even read
    /// (another tenant's, or another user's token) answers `NotFound(what)`, so its existence
    /// does not leak; one it may read but not change answers `Forbidden`.
    pub fn check(&self, rbac: &Rbac, tenant: i64, obj: Obj, act: Act, what: &str) -> Result<(), Error> {
        self.check_scope(obj)?;
        if self.root && rbac.allows(Role::Root, obj, act) {
            return Ok(());
        }
        let role = *self.tenants.get(&tenant).ok_or_else(|| Error::not_found(what))?;
        if rbac.allows(role, obj, act) {
            Ok(())
        } else if act != Act::Read && rbac.allows(role, obj, Act::Read) {
            Err(Error::Forbidden(format!(
                "your role ({}) in this tenant may not {} {}",
                role.as_str(),
                act.as_str(),
                obj.as_str()
            )))
        } else {
            Err(Error::not_found(what))
        }
    }

    /// May the caller `act` on a platform-wide object (users, configs, new tenants)?
    pub fn check_platform(&self, rbac: &Rbac, obj: Obj, act: Act) -> Result<(), Error> {
        self.check_scope(obj)?;
        let role = if self.root { Role::Root } else { Role::User };
        if rbac.allows(role, obj, act) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("only platform administrators may {} {}", act.as_str(), obj.as_str())))
        }
    }

    /// The tenants whose `obj` the caller may read.
    pub fn visible(&self, rbac: &Rbac, obj: Obj) -> Result<Visible, Error> {
        self.check_scope(obj)?;
        if self.root && rbac.allows(Role::Root, obj, Act::Read) {
            return Ok(Visible::All);
        }
        Ok(Visible::Tenants(
            self.tenants.iter().filter(|(_, role)| rbac.allows(**role, obj, Act::Read)).map(|(t, _)| *t).collect(),
        ))
    }

    /// The tenant a new object goes to: the one asked for, or the caller's only tenant where it
    /// may create `obj`.
    pub fn tenant_for_create(&self, rbac: &Rbac, asked: Option<i64>, obj: Obj) -> Result<i64, Error> {
        if let Some(tenant) = asked {
            self.check(rbac, tenant, obj, Act::Create, "tenant")?;
            return Ok(tenant);
        }
        self.check_scope(obj)?;
        let allowed: Vec<i64> =
            self.tenants.iter().filter(|(_, role)| rbac.allows(**role, obj, Act::Create)).map(|(t, _)| *t).collect();
        match allowed.as_slice() {
            [one] => Ok(*one),
            [] if self.tenants.is_empty() && !self.root => Err(Error::Forbidden(
                "you belong to no tenant yet; ask a tenant admin to add you, or create a tenant".into(),
            )),
            [] => Err(Error::Forbidden(format!("none of your roles may create {}", obj.as_str()))),
            _ => Err(Error::invalid("tenant_id", "you belong to several tenants; say which one with tenant_id")),
        }
    }
}
