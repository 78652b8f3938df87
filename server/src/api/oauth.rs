//! OAuth2 / OIDC sign-in over HTTP: list the providers, send the browser to one, take it back.
//!
//! The flow lives in [`crate::auth::oauth`]; this file only moves it through cookies and
//! redirects. The flow cookie is scoped to the provider's callback path and cleared by the
//! callback whatever the outcome, so a failed attempt cannot be replayed.

use axum::{
    Json,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Path, Query},
};
use crate::{
    Error,
    audit::AuditActor,
    auth::{
        IssuedToken, cookie,
        oauth::{Callback, FLOW_TTL_SECS},
    },
    config::OAuthProviderConfig,
};

pub use common::api::OAuthProvider;

const FLOW_COOKIE: &str = "dfly_oauth_flow";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SigninParams {
    /// Path on this manager to land on afterwards; anything else means `/`.
    pub return_to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    /// Set by the provider when the sign-in was refused (`access_denied`, say).
    pub error: Option<String>,
    pub error_description: Option<String>,
}

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(providers)).routes(routes!(oauth_signin)).routes(routes!(oauth_callback))
}

/// The OAuth2 / OIDC providers one may sign in with.
#[utoipa::path(get, path = "/users/oauth/providers", tag = "users",
    responses((status = 200, body = [OAuthProvider])))]
pub async fn providers(State(state): State<ApiState>) -> Json<Vec<OAuthProvider>> {
    Json(
        state
            .oauth
            .providers()
            .map(|p| OAuthProvider {
                name: p.name.clone(),
                display_name: if p.display_name.is_empty() { p.name.clone() } else { p.display_name.clone() },
            })
            .collect(),
    )
}

/// Start signing in at a provider: redirects to its authorize page (code flow with PKCE).
#[utoipa::path(get, path = "/users/signin/{name}", tag = "users",
    params(("name" = String, Path, description = "Provider name"), SigninParams),
    responses((status = 303, description = "To the provider's authorize page"),
        (status = 404, body = crate::error::ErrorBody), (status = 502, body = crate::error::ErrorBody)))]
pub async fn oauth_signin(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(params): Query<SigninParams>,
) -> Result<Response, Error> {
    let started = state.oauth.begin(&name, params.return_to.as_deref()).await?;
    let p = state.oauth.provider(&name)?;
    let cookie = flow_cookie(p, &started.flow, FLOW_TTL_SECS);
    let mut response = redirect(started.authorize_url.as_str())?;
    response.headers_mut().append(header::SET_COOKIE, cookie?);
    Ok(response)
}

/// Where the provider sends the browser back. Opens a session like password sign-in does, then
/// redirects to `return_to` with the `jwt` cookie set, or answers the token as JSON when the
/// request accepts `application/json`. Recorded in the audit log as `users.signin.callback`.
#[utoipa::path(get, path = "/users/signin/{name}/callback", tag = "users",
    params(("name" = String, Path, description = "Provider name"), CallbackParams),
    responses((status = 303, description = "To return_to, with the jwt cookie"), (status = 200, body = IssuedToken),
        (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 502, body = crate::error::ErrorBody)))]
pub async fn oauth_callback(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Query(params): Query<CallbackParams>,
    headers: HeaderMap,
) -> Result<Response, Error> {
    let p = state.oauth.provider(&name)?;
    let clear = flow_cookie(p, "", 0)?;
    let callback = Callback {
        code: params.code,
        state: params.state,
        error: params.error,
        error_description: params.error_description,
    };
    let result = finish(&state, &name, callback, &headers).await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().append(header::SET_COOKIE, clear);
    // Failed sign-ins are audited too, as anonymous.
    if response.extensions().get::<AuditActor>().is_none() {
        response.extensions_mut().insert(AuditActor { user_id: None, name: String::new() });
    }
    Ok(response)
}

async fn finish(state: &ApiState, name: &str, callback: Callback, headers: &HeaderMap) -> Result<Response, Error> {
    let p = state.oauth.provider(name)?;
    let finished = state.oauth.finish(&state.db, name, callback, cookie(headers, FLOW_COOKIE)).await?;
    let token = state.sessions.open(&state.db, &finished.user).await?;
    let actor = AuditActor { user_id: Some(finished.user.id), name: finished.user.name.clone() };
    let mut response = if wants_json(headers) {
        Json(token).into_response()
    } else {
        let max_age = (token.expires_at - chrono::Utc::now()).num_seconds().max(0);
        let jwt = format!("jwt={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}", token.token, secure(p));
        let mut response = redirect(&finished.return_to)?;
        response.headers_mut().append(header::SET_COOKIE, header_value(&jwt)?);
        response
    };
    response.extensions_mut().insert(actor);
    Ok(response)
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| v.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")))
}

/// `; Secure` when the provider sends people back over HTTPS.
fn secure(p: &OAuthProviderConfig) -> &'static str {
    if p.redirect_url.starts_with("https:") { "; Secure" } else { "" }
}

/// The flow cookie, readable only on this provider's callback (the path of `redirect_url`, which
/// is what the browser sees, behind a path-rewriting proxy too).
fn flow_cookie(p: &OAuthProviderConfig, value: &str, max_age: i64) -> Result<HeaderValue, Error> {
    let path = url::Url::parse(&p.redirect_url)
        .map(|u| u.path().to_owned())
        .unwrap_or_else(|_| format!("/api/v1/users/signin/{}/callback", p.name));
    header_value(&format!("{FLOW_COOKIE}={value}; Path={path}; HttpOnly; SameSite=Lax; Max-Age={max_age}{}", secure(p)))
}

fn header_value(text: &str) -> Result<HeaderValue, Error> {
    HeaderValue::from_str(text).map_err(|_| Error::Internal("a header value with forbidden characters".into()))
}

fn redirect(location: &str) -> Result<Response, Error> {
    Ok((StatusCode::SEE_OTHER, [(header::LOCATION, header_value(location)?)]).into_response())
}
