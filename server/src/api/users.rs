//! `/users`: the REST face of [`service::users`] (sign up, sign in, sign out, refresh; profiles;
//! password resets; the platform list). Sign-ins and sign-ups name their actor for the audit log.

use std::net::SocketAddr;

use axum::{
    Json,
    extract::{ConnectInfo, Extension, OriginalUri, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Body, Path, Query},
    page::{PageParams, Paged},
};
pub use crate::service::users::{Me, ResetPassword, SignIn, SignUp, UpdateUser, User, UserFilter};
use crate::{
    Error,
    audit::AuditActor,
    auth::{IssuedToken, Principal},
    service,
};

pub fn public_routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(signin)).routes(routes!(signup)).merge(super::oauth::routes())
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .routes(routes!(signout))
        .routes(routes!(refresh_token))
        .routes(routes!(me))
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user))
        .routes(routes!(reset_password))
}

/// Sign in with name and password; answers a sign-in token.
///
/// Attempts are limited per name and per client address (429 with `Retry-After`).
#[utoipa::path(post, path = "/users/signin", tag = "users", request_body = SignIn,
    responses((status = 200, body = IssuedToken), (status = 401, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody)))]
pub async fn signin(
    State(state): State<ApiState>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    Body(body): Body<SignIn>,
) -> Result<Response, Error> {
    let actor_name: String = body.name.chars().take(256).collect();
    let _turn = state.sign_in_throttle.admit(&body.name, client.map(|Extension(ConnectInfo(a))| a.ip())).await?;
    let attempt = service::users::sign_in(&state.db, &state.sessions, body).await?;
    let mut response = attempt.outcome.map(|t| Json(t).into_response()).unwrap_or_else(IntoResponse::into_response);
    response.extensions_mut().insert(AuditActor { user_id: attempt.user_id, name: actor_name });
    Ok(response)
}

/// Create an account (when the manager allows sign-up). The new user belongs to no tenant
/// until a tenant admin adds it, or it creates a tenant of its own.
#[utoipa::path(post, path = "/users/signup", tag = "users", request_body = SignUp,
    responses((status = 201, body = User), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn signup(State(state): State<ApiState>, Body(body): Body<SignUp>) -> Result<Response, Error> {
    let user = service::users::sign_up(&state.db, state.allow_signup, body).await?;
    let actor = AuditActor { user_id: Some(user.id), name: user.name.clone() };
    let mut response = (StatusCode::CREATED, Json(user)).into_response();
    response.extensions_mut().insert(actor);
    Ok(response)
}

/// End this sign-in session; its tokens stop working at once.
#[utoipa::path(post, path = "/users/signout", tag = "users", security(("session" = [])),
    responses((status = 204), (status = 401, body = crate::error::ErrorBody)))]
pub async fn signout(State(state): State<ApiState>, Extension(me): Extension<Principal>) -> Result<StatusCode, Error> {
    service::users::sign_out(state.cx(&me)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A fresh token for this session (the session's own end does not move).
#[utoipa::path(post, path = "/users/refresh_token", tag = "users", security(("session" = [])),
    responses((status = 200, body = IssuedToken), (status = 401, body = crate::error::ErrorBody)))]
pub async fn refresh_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
) -> Result<Json<IssuedToken>, Error> {
    Ok(Json(service::users::refresh(state.cx(&me), &state.sessions).await?))
}

/// The signed-in user and its tenants.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("session" = [])),
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(State(state): State<ApiState>, Extension(me): Extension<Principal>) -> Result<Json<Me>, Error> {
    Ok(Json(service::users::me(state.cx(&me)).await?))
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
    let listed = service::users::list(state.cx(&me), filter, paging.request()).await?;
    Ok(Paged::new(listed, paging.validate()?, uri))
}

/// Create an account for someone (platform administrators only), open sign-up or not. The new
/// user belongs to no tenant until a tenant admin adds it.
#[utoipa::path(post, path = "/users", tag = "users", security(("session" = [])), request_body = SignUp,
    responses((status = 201, body = User), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_user(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Body(body): Body<SignUp>,
) -> Result<(StatusCode, Json<User>), Error> {
    Ok((StatusCode::CREATED, Json(service::users::create(state.cx(&me), body).await?)))
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
    Ok(Json(service::users::get(state.cx(&me), id).await?))
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
    Ok(Json(service::users::update(state.cx(&me), id, body).await?))
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
    service::users::reset_password(state.cx(&me), id, body).await?;
    Ok(StatusCode::NO_CONTENT)
}
