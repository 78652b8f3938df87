//! Signing in and out, signing up, the signed-in user, and its password.

use leptos::prelude::*;

use super::ApiError;
use common::api::{Me, OAuthProvider};

/// Signs in with a password, sets the session cookie, and sends the browser to `return_to`.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn sign_in(name: String, password: String, return_to: Option<String>) -> Result<String, ApiError> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        name: &'a str,
        password: &'a str,
    }
    #[derive(serde::Deserialize)]
    struct Issued {
        token: String,
        expires_at: String,
    }
    if name.trim().is_empty() {
        return Err(ApiError::invalid("name", "enter your user name"));
    }
    if password.is_empty() {
        return Err(ApiError::invalid("password", "enter your password"));
    }
    let issued: Issued = super::client::post("/api/v1/users/signin", &Body { name: name.trim(), password: &password })
        .await
        // Here a 401 means wrong credentials, not a lost session: show it by the password.
        .map_err(|e| if e.status == 401 { ApiError { field: Some("password".into()), ..e } } else { e })?;
    super::client::set_session_cookie(&issued.token, seconds_until(&issued.expires_at));
    let to = super::local_path(return_to.as_deref());
    leptos_axum::redirect(&to);
    Ok(to)
}

/// Creates an account (where the manager allows sign-up), then signs in with it.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn sign_up(name: String, password: String, email: Option<String>) -> Result<String, ApiError> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        name: &'a str,
        password: &'a str,
        email: Option<&'a str>,
    }
    let email = email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    let _: serde_json::Value =
        super::client::post("/api/v1/users/signup", &Body { name: name.trim(), password: &password, email }).await?;
    sign_in(name, password, None).await
}

/// Ends the session on the manager and clears the cookie. Its path is fixed (no build hash) so
/// the manager's tests can reach it as a browser would.
#[server(prefix = "/console/fn", endpoint = "sign_out", output = crate::api::json::Json)]
pub async fn sign_out() -> Result<(), ApiError> {
    // The session may already be over; signing out still clears the cookie.
    let _ = super::client::send::<()>(http::Method::POST, "/api/v1/users/signout", &[], None).await;
    super::client::set_session_cookie("", 0);
    leptos_axum::redirect("/signin");
    Ok(())
}

/// The signed-in user and its tenants.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn current_user() -> Result<Me, ApiError> {
    super::client::get("/api/v1/users/me", &[]).await
}

/// The OAuth2 / OIDC providers the sign-in page offers.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn oauth_providers() -> Result<Vec<OAuthProvider>, ApiError> {
    super::client::get("/api/v1/users/oauth/providers", &[]).await
}

/// Changes the signed-in user's password.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn change_password(old_password: String, new_password: String, repeat: String) -> Result<(), ApiError> {
    #[derive(serde::Serialize)]
    struct Body {
        old_password: String,
        new_password: String,
    }
    if new_password != repeat {
        return Err(ApiError::invalid("repeat", "the two new passwords differ"));
    }
    let me = current_user().await?;
    let path = format!("/api/v1/users/{}/reset_password", me.user.id);
    super::client::send(http::Method::POST, &path, &[], Some(&Body { old_password, new_password })).await.map(drop)
}

#[cfg(feature = "ssr")]
fn seconds_until(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| (t.to_utc() - chrono::Utc::now()).num_seconds().max(0))
        .unwrap_or(3600)
}
