//! Users: sign up, sign in, sign out, refresh; profiles; password resets; the platform list.

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Body, Path, Query},
    page::{self, PageParams, Paged},
};
use crate::service::timestamp;
use crate::{
    Error,
    audit::AuditActor,
    auth::{IssuedToken, Principal, Sessions},
    entity::{members, tenants, users},
    password,
    rbac::{Act, Obj, Role},
};

pub use common::api::{Me, Membership, User};

impl From<users::Model> for User {
    fn from(u: users::Model) -> Self {
        Self {
            id: u.id,
            name: u.name,
            email: u.email,
            state: u.state,
            platform_role: u.platform_role,
            created_at: timestamp(u.created_at.to_utc()),
            updated_at: timestamp(u.updated_at.to_utc()),
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

pub fn public_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(signin)).routes(routes!(signup)).merge(super::oauth::routes())
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(signout))
        .routes(routes!(refresh_token))
        .routes(routes!(me))
        .routes(routes!(list_users))
        .routes(routes!(get_user, update_user))
        .routes(routes!(reset_password))
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

/// Sign in with name and password; answers a sign-in token.
#[utoipa::path(post, path = "/users/signin", tag = "users", request_body = SignIn,
    responses((status = 200, body = IssuedToken), (status = 401, body = crate::error::ErrorBody)))]
pub async fn signin(State(state): State<ApiState>, Body(body): Body<SignIn>) -> Result<Response, Error> {
    let user = users::Entity::find().filter(users::Column::Name.eq(body.name.as_str())).one(&state.db).await?;
    let phc = user.as_ref().map_or_else(|| DUMMY_PHC.clone(), |u| u.encrypted_password.clone());
    let matches = verify_password(body.password, phc).await?;
    let actor = AuditActor { user_id: user.as_ref().map(|u| u.id), name: body.name.chars().take(256).collect() };
    let result = match user {
        Some(user) if matches => {
            if user.state != "enabled" {
                Err(Error::Forbidden("this user is disabled; ask a platform administrator".into()))
            } else {
                state.sessions.open(&state.db, &user).await.map(|t| Json(t).into_response())
            }
        }
        _ => Err(Error::Unauthorized("wrong name or password".into())),
    };
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(actor);
    Ok(response)
}

/// Create an account (when the manager allows sign-up). The new user belongs to no tenant
/// until a tenant admin adds it, or it creates a tenant of its own.
#[utoipa::path(post, path = "/users/signup", tag = "users", request_body = SignUp,
    responses((status = 201, body = User), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn signup(State(state): State<ApiState>, Body(body): Body<SignUp>) -> Result<Response, Error> {
    if !state.allow_signup {
        return Err(Error::Forbidden("sign-up is closed on this manager; ask an administrator for an account".into()));
    }
    validate_user_name(&body.name)?;
    validate_password("password", &body.password)?;
    if let Some(email) = &body.email {
        validate_email(email)?;
    }
    let exists = users::Entity::find().filter(users::Column::Name.eq(body.name.as_str())).one(&state.db).await?;
    if exists.is_some() {
        return Err(Error::Conflict(format!("the name {:?} is taken", body.name)));
    }
    let now = Utc::now().fixed_offset();
    let user = users::ActiveModel {
        name: Set(body.name.clone()),
        email: Set(body.email),
        encrypted_password: Set(hash_password(body.password).await?),
        state: Set("enabled".into()),
        platform_role: Set(String::new()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;
    let mut response = (StatusCode::CREATED, Json(User::from(user.clone()))).into_response();
    response.extensions_mut().insert(AuditActor { user_id: Some(user.id), name: user.name });
    Ok(response)
}

/// End this sign-in session; its tokens stop working at once.
#[utoipa::path(post, path = "/users/signout", tag = "users", security(("session" = [])),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody)))]
pub async fn signout(State(state): State<ApiState>, Extension(me): Extension<Principal>) -> Result<StatusCode, Error> {
    if let Some(sid) = me.session_id() {
        Sessions::revoke(&state.db, sid).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A fresh token for this session (the session's own end does not move).
#[utoipa::path(post, path = "/users/refresh_token", tag = "users", security(("session" = [])),
    responses((status = 200, body = IssuedToken), (status = 401, body = crate::error::ErrorBody)))]
pub async fn refresh_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
) -> Result<Json<IssuedToken>, Error> {
    let sid = me.session_id().ok_or_else(|| Error::Unauthorized("only sign-in sessions refresh".into()))?;
    Ok(Json(state.sessions.refresh(&state.db, sid).await?))
}

/// The signed-in user and its tenants.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("session" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(State(state): State<ApiState>, Extension(me): Extension<Principal>) -> Result<Json<Me>, Error> {
    let user = users::Entity::find_by_id(me.user_id).one(&state.db).await?.ok_or_else(|| Error::not_found("user"))?;
    let rows = members::Entity::find()
        .filter(members::Column::UserId.eq(me.user_id))
        .order_by_asc(members::Column::TenantId)
        .all(&state.db)
        .await?;
    let names: std::collections::HashMap<i64, String> = tenants::Entity::find()
        .filter(tenants::Column::Id.is_in(rows.iter().map(|m| m.tenant_id)))
        .filter(tenants::Column::IsDel.eq(0))
        .all(&state.db)
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
                role: Role::tenant_role(&m.role)?,
            })
        })
        .collect();
    Ok(Json(Me { user: user.into(), tenants }))
}

/// Every user (platform administrators only).
#[utoipa::path(get, path = "/users", tag = "users", security(("session" = [])), params(PageParams, UserFilter),
    responses((status = 200, body = [User]), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list_users(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
    Query(filter): Query<UserFilter>,
) -> Result<Paged<User>, Error> {
    me.check_platform(&state.rbac, Obj::Users, Act::Read)?;
    let page = paging.validate()?;
    let mut query = users::Entity::find().order_by_asc(users::Column::Id);
    if let Some(name) = filter.name {
        query = query.filter(users::Column::Name.eq(name));
    }
    if let Some(s) = filter.state {
        query = query.filter(users::Column::State.eq(s));
    }
    Ok(page::fetch(&state.db, query, page, uri).await?.map(User::from))
}

/// May `me` see or edit user `id`? Oneself, or a platform administrator.
fn self_or_root(state: &ApiState, me: &Principal, id: i64, act: Act) -> Result<(), Error> {
    if me.user_id == id {
        return Ok(());
    }
    me.check_platform(&state.rbac, Obj::Users, act).map_err(|_| Error::not_found("user"))
}

/// One user: oneself, or anyone for platform administrators.
#[utoipa::path(get, path = "/users/{id}", tag = "users", security(("session" = [])),
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = User), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_user(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<User>, Error> {
    self_or_root(&state, &me, id, Act::Read)?;
    let user = users::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("user"))?;
    Ok(Json(user.into()))
}

/// Change a user's email; platform administrators also change state and platform role.
/// Disabling a user ends its sessions.
#[utoipa::path(patch, path = "/users/{id}", tag = "users", security(("session" = [])), request_body = UpdateUser,
    params(("id" = i64, Path, description = "User id")),
    responses((status = 200, body = User), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn update_user(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<UpdateUser>,
) -> Result<Json<User>, Error> {
    self_or_root(&state, &me, id, Act::Update)?;
    let user = users::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("user"))?;
    let privileged = body.state.is_some() || body.platform_role.is_some();
    if privileged {
        me.check_platform(&state.rbac, Obj::Users, Act::Update)?;
        if id == me.user_id {
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
        if s != "enabled" && s != "disabled" {
            return Err(Error::invalid("state", "state must be enabled or disabled"));
        }
        end_sessions = s == "disabled";
        active.state = Set(s);
    }
    if let Some(role) = body.platform_role {
        if role != "root" && !role.is_empty() {
            return Err(Error::invalid("platform_role", "platform_role must be root or empty"));
        }
        active.platform_role = Set(role);
    }
    active.updated_at = Set(Utc::now().fixed_offset());
    let user = active.update(&state.db).await?;
    if end_sessions {
        Sessions::revoke_all(&state.db, id).await?;
    }
    Ok(Json(user.into()))
}

/// Change a password: one's own (with the old one), or anyone's for platform administrators.
/// Every session of that user ends.
#[utoipa::path(post, path = "/users/{id}/reset_password", tag = "users", security(("session" = [])),
    request_body = ResetPassword, params(("id" = i64, Path, description = "User id")),
    responses((status = 204), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn reset_password(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<ResetPassword>,
) -> Result<StatusCode, Error> {
    self_or_root(&state, &me, id, Act::Update)?;
    validate_password("new_password", &body.new_password)?;
    let user = users::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("user"))?;
    if id == me.user_id {
        let old = body.old_password.ok_or_else(|| Error::invalid("old_password", "give your current password"))?;
        if !verify_password(old, user.encrypted_password.clone()).await? {
            return Err(Error::invalid("old_password", "the current password is wrong"));
        }
    }
    let mut active: users::ActiveModel = user.into();
    active.encrypted_password = Set(hash_password(body.new_password).await?);
    active.updated_at = Set(Utc::now().fixed_offset());
    active.update(&state.db).await?;
    Sessions::revoke_all(&state.db, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
