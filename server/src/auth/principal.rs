//! The caller of a guarded request, and the questions handlers ask about it.

use std::collections::BTreeMap;

use chrono::{NaiveDateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, JoinType, QueryFilter, QuerySelect, Select};

use crate::{
    Error,
    entity::{
        members::{self, MemberRole},
        personal_access_tokens::{self as pats, TokenState},
        sessions,
        users::{self, UserState},
    },
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
    /// Platform administrator, everywhere (a root's personal access token is not: it holds
    /// [`Role::Root`] in its one tenant instead).
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

/// The user behind a credential and one of its memberships: a row of the one query that
/// authenticates a request (`credential ⟕ users ⟕ members`, so a credential whose user is gone
/// still answers a row, with the user's columns empty).
#[derive(Debug, FromQueryResult)]
struct UserRow {
    user_name: Option<String>,
    user_state: Option<UserState>,
    platform_role: Option<String>,
    member_tenant: Option<i64>,
    member_role: Option<MemberRole>,
}

/// A personal access token's row with its user and one membership.
#[derive(Debug, FromQueryResult)]
pub(super) struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub tenant_id: i64,
    pub scopes: serde_json::Value,
    pub state: TokenState,
    pub expired_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    #[sea_orm(nested)]
    user: UserRow,
}

/// `query` (over a table with a `user_id` column) joined with the user and its memberships.
fn with_user<E: EntityTrait>(query: Select<E>, user_id: E::Column) -> Select<E> {
    query
        .join(JoinType::LeftJoin, E::belongs_to(users::Entity).from(user_id).to(users::Column::Id).into())
        .join_rev(
            JoinType::LeftJoin,
            members::Entity::belongs_to(users::Entity).from(members::Column::UserId).to(users::Column::Id).into(),
        )
        .column_as(users::Column::Name, "user_name")
        .column_as(users::Column::State, "user_state")
        .column_as(users::Column::PlatformRole, "platform_role")
        .column_as(members::Column::TenantId, "member_tenant")
        .column_as(members::Column::Role, "member_role")
}

impl Principal {
    /// The caller behind session `sid` of `user_id`, in one query: the session must be live
    /// and the user enabled, or the answer is `Unauthorized`.
    pub async fn for_session(db: &impl ConnectionTrait, user_id: i64, sid: &str) -> Result<Self, Error> {
        let query = sessions::Entity::find()
            .select_only()
            .filter(sessions::Column::Id.eq(sid))
            .filter(sessions::Column::UserId.eq(user_id))
            .filter(sessions::Column::RevokedAt.is_null())
            .filter(sessions::Column::ExpiresAt.gt(Utc::now().naive_utc()));
        let rows = with_user(query, sessions::Column::UserId).into_model::<UserRow>().all(db).await?;
        if rows.is_empty() {
            return Err(Error::Unauthorized("the session has ended; sign in again".into()));
        }
        Self::from_rows(user_id, Credential::Session { id: sid.to_owned() }, None, rows.iter())
    }

    /// A personal access token's row by its hash, with its user and memberships, in one query.
    pub(super) async fn token_rows(db: &impl ConnectionTrait, hash: &str) -> Result<Vec<TokenRow>, Error> {
        let query = pats::Entity::find()
            .select_only()
            .columns([
                pats::Column::Id,
                pats::Column::UserId,
                pats::Column::TenantId,
                pats::Column::Scopes,
                pats::Column::State,
                pats::Column::ExpiredAt,
                pats::Column::LastUsedAt,
            ])
            .filter(pats::Column::TokenHash.eq(hash));
        Ok(with_user(query, pats::Column::UserId).into_model::<TokenRow>().all(db).await?)
    }

    /// The caller behind a token's rows (from [`Self::token_rows`]), narrowed to its tenant.
    pub(super) fn for_token(rows: &[TokenRow], scopes: Vec<Scope>) -> Result<Self, Error> {
        let first = rows.first().ok_or_else(|| Error::Unauthorized("unknown personal access token".into()))?;
        let credential = Credential::Token { id: first.id, scopes };
        Self::from_rows(first.user_id, credential, Some(first.tenant_id), rows.iter().map(|r| &r.user))
    }

    /// A disabled or deleted user is `Unauthorized`; memberships outside `only_tenant` (a
    /// token's) do not count.
    fn from_rows<'r>(
        user_id: i64,
        credential: Credential,
        only_tenant: Option<i64>,
        mut rows: impl Iterator<Item = &'r UserRow>,
    ) -> Result<Self, Error> {
        let first = rows.next().filter(|r| r.user_state == Some(UserState::Enabled));
        let first = first.ok_or_else(|| Error::Unauthorized("the user is disabled or gone".into()))?;
        let mut tenants: BTreeMap<i64, Role> = std::iter::once(first)
            .chain(rows)
            .filter_map(|r| Some((r.member_tenant?, Role::from(r.member_role?))))
            .filter(|(tenant, _)| only_tenant.is_none_or(|t| t == *tenant))
            .collect();
        let mut root = first.platform_role.as_deref() == Some("root");
        // A token is bound to its tenant: a platform root's acts as root there, and nowhere else.
        if let Some(tenant) = only_tenant.filter(|_| root) {
            tenants.insert(tenant, Role::Root);
            root = false;
        }
        Ok(Self { user_id, name: first.user_name.clone().unwrap_or_default(), root, credential, tenants })
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
