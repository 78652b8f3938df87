//! How server functions reach the manager's API: over loopback, as the signed-in visitor.
//!
//! The visitor's `jwt` cookie (set at sign-in, HttpOnly) is read from the request the server
//! function is answering and sent on as `Authorization: Bearer`, so the API sees exactly the
//! user the browser is, and its authorization and tenant rules apply unchanged.

use http::{Method, StatusCode, header};
use leptos::prelude::*;
use serde::{Serialize, de::DeserializeOwned};

use super::ApiError;
use crate::api::page::Page;

/// The name of the session cookie the API also accepts.
pub const SESSION_COOKIE: &str = "jwt";

/// Where the console's server functions reach the manager's public API. The manager provides it
/// as Leptos context when it mounts the console.
#[derive(Debug, Clone)]
pub struct ManagerApi {
    /// Base URL of the manager's API, such as `http://127.0.0.1:8080` (or `https://` when the
    /// manager serves HTTPS; `client` then trusts its certificate).
    pub base_url: String,
    /// Shared client, so calls reuse connections.
    pub client: reqwest::Client,
}

/// The session token of the request being answered, if it carries one.
pub fn session_token() -> Option<String> {
    let parts = use_context::<http::request::Parts>()?;
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

/// The API as one visitor: the manager's address and the visitor's session token.
#[derive(Debug, Clone)]
pub struct Caller {
    api: ManagerApi,
    token: Option<String>,
}

impl Caller {
    /// Calls made with `token` (a sign-in token), for code running outside a Leptos request.
    pub fn new(api: ManagerApi, token: Option<String>) -> Self {
        Self { api, token }
    }

    /// The visitor of the request being answered.
    pub fn from_context() -> Result<Self, ApiError> {
        let api = use_context::<ManagerApi>()
            .ok_or_else(|| ApiError::unavailable("the console is not mounted with a manager API"))?;
        Ok(Self { api, token: session_token() })
    }

    /// One call to the API. `path` starts after the base URL (`/api/v1/clusters`).
    pub async fn send<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<reqwest::Response, ApiError> {
        let mut req = self.api.client.request(method, format!("{}{path}", self.api.base_url)).query(query);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        let resp = req.send().await.map_err(|e| {
            set_status(StatusCode::BAD_GATEWAY);
            ApiError::unavailable(format!("the manager could not be reached: {e}"))
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        let error = error_from(resp).await;
        // A server function answers with the API's status (400 for a bad field, 404 for what the
        // visitor may not see) rather than a blanket 500; a page rendered on the server does too.
        set_status(StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_GATEWAY));
        Err(error)
    }

    /// `GET path` → one object.
    pub async fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, ApiError> {
        json(self.send::<()>(Method::GET, path, query, None).await?).await
    }

    /// `GET path?page=&per_page=` → one page and the total count (`X-Total-Count`).
    pub async fn list<T: DeserializeOwned>(
        &self,
        path: &str,
        page: u64,
        per_page: u64,
        filters: &[(&str, String)],
    ) -> Result<Page<T>, ApiError> {
        let mut query = vec![("page", page.to_string()), ("per_page", per_page.to_string())];
        query.extend(filters.iter().filter(|(_, v)| !v.is_empty()).cloned());
        let resp = self.send::<()>(Method::GET, path, &query, None).await?;
        let total = resp
            .headers()
            .get("x-total-count")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_default();
        Ok(Page { items: json(resp).await?, total, page, per_page })
    }

    /// `POST path` with a JSON body → the created object.
    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ApiError> {
        json(self.send(Method::POST, path, &[], Some(body)).await?).await
    }
}

async fn error_from(resp: reqwest::Response) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Body {
        code: String,
        message: String,
        field: Option<String>,
    }
    let status = resp.status();
    match resp.json::<Body>().await {
        Ok(b) => ApiError { status: status.as_u16(), code: b.code, message: b.message, field: b.field },
        Err(_) => ApiError {
            status: status.as_u16(),
            code: "unexpected".into(),
            message: format!("the manager answered {status}"),
            field: None,
        },
    }
}

async fn json<T: DeserializeOwned>(resp: reqwest::Response) -> Result<T, ApiError> {
    resp.json().await.map_err(|e| ApiError::unavailable(format!("the manager's answer was not understood: {e}")))
}

/// One call to the API as the current visitor.
pub async fn send<B: Serialize>(
    method: Method,
    path: &str,
    query: &[(&str, String)],
    body: Option<&B>,
) -> Result<reqwest::Response, ApiError> {
    Caller::from_context()?.send(method, path, query, body).await
}

/// `GET path` → one object.
pub async fn get<T: DeserializeOwned>(path: &str, query: &[(&str, String)]) -> Result<T, ApiError> {
    Caller::from_context()?.get(path, query).await
}

/// `GET path?page=&per_page=` → one page and the total count, as the current visitor.
pub async fn list<T: DeserializeOwned>(
    path: &str,
    page: u64,
    per_page: u64,
    filters: &[(&str, String)],
) -> Result<Page<T>, ApiError> {
    Caller::from_context()?.list(path, page, per_page, filters).await
}

/// `POST path` with a JSON body → the created object.
pub async fn post<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    Caller::from_context()?.post(path, body).await
}

/// `PATCH path` with a JSON body → the updated object.
pub async fn patch<B: Serialize, T: DeserializeOwned>(path: &str, body: &B) -> Result<T, ApiError> {
    json(send(Method::PATCH, path, &[], Some(body)).await?).await
}

/// `DELETE path`.
pub async fn delete(path: &str) -> Result<(), ApiError> {
    send::<()>(Method::DELETE, path, &[], None).await.map(drop)
}

/// Sets (or, with an empty token and `max_age` 0, clears) the session cookie on the answer.
pub fn set_session_cookie(token: &str, max_age: i64) {
    let Some(resp) = use_context::<leptos_axum::ResponseOptions>() else { return };
    let cookie = format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}");
    if let Ok(value) = http::HeaderValue::from_str(&cookie) {
        resp.append_header(header::SET_COOKIE, value);
    }
}

/// Answers the current request with `status` (for pages: 404 for a missing object, say).
pub fn set_status(status: StatusCode) {
    if let Some(resp) = use_context::<leptos_axum::ResponseOptions>() {
        resp.set_status(status);
    }
}
