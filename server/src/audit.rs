//! The audit log: one entry for every request that changes something (any method but GET,
//! HEAD and OPTIONS) under `/api/v1` and `/oapi/v1`, allowed or not: who, what, when, result.
//! A GET is recorded only when its handler marks it with [`AuditActor`]: the OAuth callback,
//! which signs people in through a browser redirect and so cannot be a POST.
//!
//! The entry is written after the handler answers, so it records the real outcome. Handlers
//! name the tenant an object belongs to with an [`AuditTenant`] response extension, which is
//! how tenant admins see their tenant's entries and nobody else's; a sign-in names its user
//! with [`AuditActor`].

use axum::{
    extract::{MatchedPath, OriginalUri, Request, State},
    http::Method,
    middleware::Next,
    response::{IntoResponse, Response},
};
use sea_orm::{ActiveModelTrait, Set};

use crate::{
    auth::{Credential, Principal},
    entity::audits,
    state::ApiState,
};

/// Response extension: the tenant the changed object belongs to.
#[derive(Debug, Clone, Copy)]
pub struct AuditTenant(pub i64);

/// Answers `response`, marked as a change inside `tenant`.
pub fn in_tenant(tenant: i64, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.extensions_mut().insert(AuditTenant(tenant));
    response
}

/// Response extension: who acted, when the request itself carried no credential (sign-in).
#[derive(Debug, Clone)]
pub struct AuditActor {
    pub user_id: Option<i64>,
    pub name: String,
}

/// Middleware: writes the audit entry for changing requests.
pub async fn record(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    // Nested routers see their own part of the path; the audit wants the whole of it.
    let path = req.extensions().get::<OriginalUri>().map_or_else(|| req.uri().path(), |u| u.path()).to_owned();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| path.clone(), |p| p.as_str().to_owned());
    let principal = req.extensions().get::<Principal>().cloned();
    let response = next.run(req).await;
    if method == Method::GET && response.extensions().get::<AuditActor>().is_none() {
        return response;
    }

    let (actor_type, actor_id, actor_name) = match (&principal, response.extensions().get::<AuditActor>()) {
        (Some(p), _) => {
            let kind = match p.credential {
                Credential::Session { .. } => "user",
                Credential::Token { .. } => "personal_access_token",
            };
            (kind, Some(p.user_id), p.name.clone())
        }
        (None, Some(actor)) if actor.user_id.is_some() || !actor.name.is_empty() => {
            ("user", actor.user_id, actor.name.clone())
        }
        (None, _) => ("anonymous", None, String::new()),
    };
    let status = response.status();
    let entry = audits::ActiveModel {
        tenant_id: Set(response.extensions().get::<AuditTenant>().map(|t| t.0)),
        actor_type: Set(actor_type.into()),
        actor_id: Set(actor_id),
        actor_name: Set(actor_name),
        event: Set(event(&method, &route)),
        operation: Set(method.as_str().to_owned()),
        path: Set(path.chars().take(1024).collect()),
        status_code: Set(i32::from(status.as_u16())),
        state: Set(if status.is_success() || status.is_redirection() { "success" } else { "failure" }.into()),
        created_at: Set(chrono::Utc::now().naive_utc()),
        ..Default::default()
    };
    if let Err(e) = entry.insert(&state.db).await {
        state.metrics.audit_failures.inc();
        tracing::error!(error = %e, %path, "could not write the audit entry");
    }
    response
}

/// A readable event name from the route: `POST /api/v1/clusters/{id}` → `clusters.create`.
fn event(method: &Method, route: &str) -> String {
    let resource = route
        .split('/')
        .filter(|s| !s.is_empty() && !s.starts_with('{') && *s != "api" && *s != "oapi" && *s != "v1")
        .collect::<Vec<_>>()
        .join(".");
    let verb = match *method {
        Method::POST => "create",
        Method::PUT | Method::PATCH => "update",
        Method::DELETE => "delete",
        _ => "other",
    };
    // Action endpoints (`users/signin`, `users/{id}/reset_password`, the OAuth callback) read
    // better without a verb.
    if method == Method::GET
        || method == Method::POST && route.rsplit('/').next().is_some_and(|last| last.contains('_') || is_action(last))
    {
        resource
    } else {
        format!("{resource}.{verb}")
    }
}

fn is_action(segment: &str) -> bool {
    matches!(segment, "signin" | "signup" | "signout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_name_the_resource_and_verb() {
        assert_eq!(event(&Method::POST, "/api/v1/clusters"), "clusters.create");
        assert_eq!(event(&Method::PATCH, "/api/v1/clusters/{id}"), "clusters.update");
        assert_eq!(event(&Method::DELETE, "/oapi/v1/jobs/{id}"), "jobs.delete");
        assert_eq!(event(&Method::POST, "/api/v1/users/signin"), "users.signin");
        assert_eq!(event(&Method::GET, "/api/v1/users/signin/{name}/callback"), "users.signin.callback");
        assert_eq!(event(&Method::POST, "/api/v1/users/{id}/reset_password"), "users.reset_password");
    }
}
