//! Users: sign up, sign in (opening a session), sign out, refresh; profiles; password resets;
//! the platform's list of users. A user sees and edits itself; platform administrators see and
//! edit anyone, and only they change a user's state or platform role. Passwords are hashed off
//! the async workers, and a sign-in for a name nobody has costs the same as a wrong password.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{Ctx, Listed, PageRequest, found};
use crate::{
    Error,
    auth::{IssuedToken, Sessions},
    entity::{
        members, tenants,
        users::{self, UserState},
    },
    password,
    rbac::{Act, Obj},
};

pub use common::api::{Me, Membership, User};

impl From<users::Model> for User {
    fn from(u: users::Model) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            state: u.state.to_value(),
            platform_role: u.platform_role,
            created_at: super::timestamp(u.created_at.to_utc()),
            updated_at: super::timestamp(u.updated_at.to_utc()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignIn {
    pub name: String,
    pub password: String,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct SignUp {
    /// 1 to 64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit.
    pub name: String,
    /// 8 to 128 characters.
    pub password: String,
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateUser {
    pub email: Option<String>,
    /// `enabled` or `disabled` (platform administrators only).
    pub state: Option<String>,
    /// `root` or empty (platform administrators only).
    pub platform_role: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ResetPassword {
    /// Required when changing one's own password.
    pub old_password: Option<String>,
    pub new_password: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserFilter {
    /// Exact name.
    pub name: Option<String>,
    /// `enabled` or `disabled`.
    pub state: Option<String>,
}

fn validate_user_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            "name must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        ))
    }
}

fn validate_password(field: &str, password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err(Error::invalid(field, "a password must be 8 to 128 characters"));
    }
    Ok(())
}

fn validate_email(email: &str) -> Result<(), Error> {
    let ok = email.len() <= 256
        && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'))
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok { Ok(()) } else { Err(Error::invalid("email", "email must look like name@example.com")) }
}

/// Hashing is deliberately slow; keep it off the async workers.
async fn hash_password(clear: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || password::hash(&clear)).await.map_err(|e| Error::Internal(e.to_string()))?
}

async fn verify_password(clear: String, phc: String) -> Result<bool, Error> {
    tokio::task::spawn_blocking(move || password::verify(&clear, &phc))
        .await
        .map_err(|e| Error::Internal(e.to_string()))
}

/// A hash of a random password, verified when the user does not exist so that timing does not
/// tell which names are taken.
static DUMMY_PHC: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| password::hash(&password::generate()).unwrap_or_default());

/// What a sign-in attempt came to: who it was for (when the name exists), and a token or why not.
#[derive(Debug)]
pub struct SignInAttempt {
    /// The user the name belongs to, if any.
    pub user_id: Option<i64>,
    /// The session's token, or why none was opened.
    pub outcome: Result<IssuedToken, Error>,
}

/// Checks a name and password and opens a session for an enabled user.
pub async fn sign_in(db: &DatabaseConnection, sessions: &Sessions, body: SignIn) -> Result<SignInAttempt, Error> {
    let user = users::Entity::find().filter(users::Column::Name.eq(body.name.as_str())).one(db).await?;
    let phc = user.as_ref().map_or_else(|| DUMMY_PHC.clone(), |u| u.encrypted_password.clone());
    let matches = verify_password(body.password, phc).await?;
    let user_id = user.as_ref().map(|u| u.id);
    let outcome = match user {
        Some(user) if matches => {
            if user.state != UserState::Enabled {
                Err(Error::Forbidden("this user is disabled; ask a platform administrator".into()))
            } else {
                sessions.open(db, &user).await
            }
        }
        _ => Err(Error::Unauthorized("wrong name or password".into())),
    };
    Ok(SignInAttempt { user_id, outcome })
}

/// Creates an account when `allowed` (the manager's sign-up switch); it belongs to no tenant.
pub async fn sign_up(db: &DatabaseConnection, allowed: bool, body: SignUp) -> Result<User, Error> {
    if !allowed {
        return Err(Error::Forbidden("sign-up is closed on this manager; ask an administrator for an account".into()));
    }
    insert(db, body).await
}

/// Creates an account for someone (platform administrators), whether sign-up is open or not; it
/// belongs to no tenant until a tenant admin adds it.
pub async fn create(cx: Ctx<'_>, body: SignUp) -> Result<User, Error> {
    cx.me.check_platform(cx.rbac, Obj::Users, Act::Create)?;
    insert(cx.db, body).await
}

async fn insert(db: &DatabaseConnection, body: SignUp) -> Result<User, Error> {
    validate_user_name(&body.name)?;
    validate_password("password", &body.password)?;
    if let Some(email) = &body.email {
        validate_email(email)?;
    }
    let exists = users::Entity::find().filter(users::Column::Name.eq(body.name.as_str())).one(db).await?;
    if exists.is_some() {
        return Err(Error::Conflict(format!("the name {:?} is taken", body.name)));
    }
    let now = Utc::now().fixed_offset();
    let user = users::ActiveModel {
        name: Set(body.name.clone()),
        email: Set(body.email),
        encrypted_password: Set(hash_password(body.password).await?),
        state: Set(UserState::Enabled),
        platform_role: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(user.into())
}

/// Ends the caller's sign-in session, if it signed in with one.
pub async fn sign_out(cx: Ctx<'_>) -> Result<(), Error> {
    if let Some(sid) = cx.me.session_id() {
        Sessions::revoke(cx.db, sid).await?;
    }
    Ok(())
}

/// A fresh token for the caller's session.
pub async fn refresh(cx: Ctx<'_>, sessions: &Sessions) -> Result<IssuedToken, Error> {
    let sid = cx.me.session_id().ok_or_else(|| Error::Unauthorized("only sign-in sessions refresh".into()))?;
    sessions.refresh(cx.db, sid).await
}

/// The caller and the live tenants it has a role in.
pub async fn me(cx: Ctx<'_>) -> Result<Me, Error> {
    let user = found(cx.db, users::Entity::find_by_id(cx.me.user_id), "user").await?;
    let rows = members::Entity::find()
        .filter(members::Column::UserId.eq(cx.me.user_id))
        .order_by_asc(members::Column::TenantId)
        .all(cx.db)
        .await?;
    let names: HashMap<i64, String> = tenants::Entity::find()
        .filter(tenants::Column::Id.is_in(rows.iter().map(|m| m.tenant_id)))
        .filter(tenants::Column::IsDel.eq(0))
        .all(cx.db)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let tenants = rows
        .into_iter()
        .filter_map(|m| {
            Some(Membership {
                tenant_id: m.tenant_id,
                tenant_name: names.get(&m.tenant_id)?.clone(),
                role: m.role.into(),
            })
        })
        .collect();
    Ok(Me { user: user.into(), tenants })
}

/// Every user, oldest first (platform administrators); the paging is checked after that.
pub async fn list(cx: Ctx<'_>, filter: UserFilter, page: PageRequest) -> Result<Listed<User>, Error> {
    cx.me.check_platform(cx.rbac, Obj::Users, Act::Read)?;
    let page = page.validate()?;
    let mut query = users::Entity::find().order_by_asc(users::Column::Id);
    if let Some(name) = filter.name {
        query = query.filter(users::Column::Name.eq(name));
    }
    if let Some(s) = filter.state {
        query = query.filter(users::Column::State.eq(s));
    }
    Ok(super::list(cx.db, query, page).await?.map(User::from))
}

/// May the caller see or edit user `id`? Oneself, or a platform administrator; else 404.
fn self_or_root(cx: Ctx<'_>, id: i64, act: Act) -> Result<(), Error> {
    if cx.me.user_id == id {
        return Ok(());
    }
    cx.me.check_platform(cx.rbac, Obj::Users, act).map_err(|_| Error::not_found("user"))
}

/// One user: oneself, or anyone for platform administrators.
pub async fn get(cx: Ctx<'_>, id: i64) -> Result<User, Error> {
    self_or_root(cx, id, Act::Read)?;
    Ok(found(cx.db, users::Entity::find_by_id(id), "user").await?.into())
}

/// Changes a user's email, and for platform administrators its state and platform role.
/// Disabling a user ends its sessions.
pub async fn update(cx: Ctx<'_>, id: i64, body: UpdateUser) -> Result<User, Error> {
    self_or_root(cx, id, Act::Update)?;
    let user = found(cx.db, users::Entity::find_by_id(id), "user").await?;
    let privileged = body.state.is_some() || body.platform_role.is_some();
    if privileged {
        cx.me.check_platform(cx.rbac, Obj::Users, Act::Update)?;
        if id == cx.me.user_id {
            return Err(Error::invalid("state", "platform administrators cannot disable or demote themselves"));
        }
    }
    let mut active: users::ActiveModel = user.into();
    if let Some(email) = body.email {
        if email.is_empty() {
            active.email = Set(None);
        } else {
            validate_email(&email)?;
            active.email = Set(Some(email));
        }
    }
    let mut end_sessions = false;
    if let Some(s) = body.state {
        let state =
            UserState::try_from_value(&s).map_err(|_| Error::invalid("state", "state must be enabled or disabled"))?;
        end_sessions = state == UserState::Disabled;
        active.state = Set(state);
    }
    if let Some(role) = body.platform_role {
        if role != "root" && !role.is_empty() {
            return Err(Error::invalid("platform_role", "platform_role must be root or empty"));
        }
        active.platform_role = Set(role);
    }
    active.updated_at = Set(Utc::now().fixed_offset());
    let user = active.update(cx.db).await?;
    if end_sessions {
        Sessions::revoke_all(cx.db, id).await?;
    }
    Ok(user.into())
}

/// Changes a password: one's own (with the old one), or anyone's for platform administrators.
/// Every session of that user ends.
pub async fn reset_password(cx: Ctx<'_>, id: i64, body: ResetPassword) -> Result<(), Error> {
    self_or_root(cx, id, Act::Update)?;
    validate_password("new_password", &body.new_password)?;
    let user = found(cx.db, users::Entity::find_by_id(id), "user").await?;
    if id == cx.me.user_id {
        let old = body.old_password.ok_or_else(|| Error::invalid("old_password", "give your current password"))?;
        if !verify_password(old, user.encrypted_password.clone()).await? {
            return Err(Error::invalid("old_password", "the current password is wrong"));
        }
    }
    let mut active: users::ActiveModel = user.into();
    active.encrypted_password = Set(hash_password(body.new_password).await?);
    active.updated_at = Set(Utc::now().fixed_offset());
    active.update(cx.db).await?;
    Sessions::revoke_all(cx.db, id).await?;
    Ok(())
}
