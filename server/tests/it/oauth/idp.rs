//! A tiny OAuth2 / OIDC provider on 127.0.0.1:0 for the tests: `/authorize` approves at once,
//! `/token` checks the client, the code and the PKCE verifier, `/userinfo` the access token.
//! It is strict where real providers are, so a manager that cuts corners fails here.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use axum::{
    Form, Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

pub const CLIENT_ID: &str = "damselfly-test";
pub const CLIENT_SECRET: &str = "s3cr3t-never-shown";

struct Grant {
    challenge: String,
    redirect_uri: String,
    claims: Value,
}

#[derive(Default)]
struct Inner {
    /// Claims of whoever "signs in" at the next /authorize.
    next: Value,
    /// Store a wrong challenge at the next /authorize, so the verifier cannot match.
    spoil_challenge: bool,
    /// Answer 500 from /userinfo.
    userinfo_broken: bool,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Value>,
    /// What each /authorize was asked, for assertions.
    authorize_queries: Vec<HashMap<String, String>>,
}

/// A running provider.
#[derive(Clone)]
pub struct Idp {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
    shutdown: CancellationToken,
}

impl Idp {
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/userinfo", get(userinfo))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let metadata = json!({
            "issuer": base,
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "userinfo_endpoint": format!("{base}/userinfo"),
            "code_challenge_methods_supported": ["S256"],
        });
        let app = app.route("/.well-known/openid-configuration", get(move || async move { Json(metadata) }));
        let shutdown = CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await.unwrap();
        });
        Self { base, inner, shutdown }
    }

    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// The next sign-in is the account described by `claims`.
    pub fn sign_in_as(&self, claims: Value) {
        self.inner.lock().unwrap().next = claims;
    }

    pub fn spoil_next_challenge(&self) {
        self.inner.lock().unwrap().spoil_challenge = true;
    }

    pub fn break_userinfo(&self, broken: bool) {
        self.inner.lock().unwrap().userinfo_broken = broken;
    }

    pub fn last_authorize_query(&self) -> HashMap<String, String> {
        self.inner.lock().unwrap().authorize_queries.last().cloned().unwrap()
    }
}

fn random() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

async fn authorize(State(inner): State<Arc<Mutex<Inner>>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut inner = inner.lock().unwrap();
    inner.authorize_queries.push(q.clone());
    let ok = q.get("response_type").map(String::as_str) == Some("code")
        && q.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && q.get("code_challenge_method").map(String::as_str) == Some("S256");
    let (Some(redirect_uri), Some(state), Some(challenge), true) =
        (q.get("redirect_uri"), q.get("state"), q.get("code_challenge"), ok)
    else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "missing or wrong parameters");
    };
    let challenge = if std::mem::take(&mut inner.spoil_challenge) { "spoiled".into() } else { challenge.clone() };
    let code = random();
    let claims = inner.next.clone();
    inner.codes.insert(code.clone(), Grant { challenge, redirect_uri: redirect_uri.clone(), claims });
    let mut back = url::Url::parse(redirect_uri).unwrap();
    back.query_pairs_mut().append_pair("code", &code).append_pair("state", state);
    Redirect::to(back.as_str()).into_response()
}

/// Client credentials from HTTP Basic or the form (client_secret_basic / client_secret_post).
fn client(headers: &HeaderMap, form: &HashMap<String, String>) -> Option<(String, String)> {
    if let Some(basic) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Basic ")) {
        let decoded = String::from_utf8(STANDARD.decode(basic).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let dec = |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().unwrap().1.into_owned();
        return Some((dec(id), dec(secret)));
    }
    Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone()))
}

async fn token(
    State(inner): State<Arc<Mutex<Inner>>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if client(&headers, &form) != Some((CLIENT_ID.into(), CLIENT_SECRET.into())) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "client authentication failed");
    }
    if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "only authorization_code");
    }
    let mut inner = inner.lock().unwrap();
    // Codes are single-use, whatever the outcome.
    let Some(grant) = form.get("code").and_then(|c| inner.codes.remove(c)) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "unknown or used code");
    };
    if form.get("redirect_uri") != Some(&grant.redirect_uri) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "redirect_uri differs");
    }
    let verifier = form.get("code_verifier").cloned().unwrap_or_default();
    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != grant.challenge {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "PKCE verification failed");
    }
    let access = random();
    inner.tokens.insert(access.clone(), grant.claims);
    Json(json!({"access_token": access, "token_type": "Bearer", "expires_in": 3600})).into_response()
}

async fn userinfo(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap) -> Response {
    let inner = inner.lock().unwrap();
    if inner.userinfo_broken {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    let presented = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()?.strip_prefix("Bearer "));
    match presented.and_then(|t| inner.tokens.get(t)) {
        Some(claims) => Json(claims.clone()).into_response(),
        None => oauth_error(StatusCode::UNAUTHORIZED, "invalid_token", "unknown access token"),
    }
}
