//! The middleware that turns a request's credential into a [`Principal`] (or a 401/403).

use axum::{
    extract::{Request, State},
    http::{HeaderMap, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

use super::{Principal, token};
use crate::{
    Error,
    entity::personal_access_tokens::{self as pats, TokenState},
    rbac::Scope,
    state::ApiState,
};

/// `/api/v1`: a sign-in token in `Authorization: Bearer` (or the console's `jwt` cookie).
pub async fn require_session(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let presented = bearer(&req).or_else(|| cookie(req.headers(), SESSION_COOKIE)).map(str::to_owned);
    let principal = match session_principal(&state, presented).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}

/// `/oapi/v1`: a personal access token in `Authorization: Bearer` or `?access_token=`.
pub async fn require_token(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let presented = bearer(&req).or_else(|| query_param(&req, "access_token")).map(str::to_owned);
    let principal = match token_principal(&state, presented).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    req.extensions_mut().insert(principal);
    next.run(req).await
}

fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim()).filter(|t| !t.is_empty())
}

/// The cookie the console keeps the sign-in token in.
pub const SESSION_COOKIE: &str = "jwt";

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn query_param<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.uri().query()?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

async fn session_principal(state: &ApiState, presented: Option<String>) -> Result<Principal, Error> {
    let jwt =
        presented.ok_or_else(|| Error::Unauthorized("sign in first: send Authorization: Bearer <token>".into()))?;
    if jwt.starts_with(token::PREFIX) {
        return Err(Error::Unauthorized(
            "personal access tokens work on /oapi/v1; /api/v1 takes a sign-in token".into(),
        ));
    }
    let (user_id, sid) = state.sessions.claims(&jwt)?;
    Principal::for_session(&state.db, user_id, &sid).await
}

async fn token_principal(state: &ApiState, presented: Option<String>) -> Result<Principal, Error> {
    let presented = presented
        .ok_or_else(|| Error::Unauthorized("send a personal access token as Authorization: Bearer <token>".into()))?;
    let rows = Principal::token_rows(&state.db, &token::hash(&presented)).await?;
    let row = rows.first().ok_or_else(|| Error::Unauthorized("unknown personal access token".into()))?;
    if row.state != TokenState::Active {
        return Err(Error::Forbidden("this personal access token is inactive".into()));
    }
    let now = Utc::now().naive_utc();
    if row.expired_at <= now {
        return Err(Error::Forbidden("this personal access token has expired".into()));
    }
    let scopes: Vec<Scope> = serde_json::from_value(row.scopes.clone()).unwrap_or_default();
    let principal = Principal::for_token(&rows, scopes).map_err(|e| match e {
        Error::Unauthorized(_) => Error::Forbidden("the owner of this token is disabled".into()),
        other => other,
    })?;
    if !principal.root && principal.tenants.is_empty() {
        return Err(Error::Forbidden("the owner of this token no longer belongs to its tenant".into()));
    }
    // Record use, at most once a minute per token, so reads stay reads.
    if row.last_used_at.is_none_or(|t| (now - t).num_seconds() >= 60) {
        let stamped = pats::Entity::update_many()
            .col_expr(pats::Column::LastUsedAt, Expr::value(Some(now)))
            .filter(pats::Column::Id.eq(row.id))
            .exec(&state.db)
            .await;
        if let Err(e) = stamped {
            tracing::warn!(error = %e, "could not record token use");
        }
    }
    Ok(principal)
}
