//! The manager's HTTP API: `/api/v1` for people (sign-in tokens), `/oapi/v1` for machines
//! (personal access tokens), `/healthy`, and the OpenAPI document at `/openapi.json`.
//!
//! Handlers are thin: parse (with the JSON-error [`extract`]ors), call the operation in
//! `service` with the caller's [`Principal`] (which asks casbin via [`crate::rbac`] and
//! touches the database), answer. No handler queries the database itself. Every list is
//! paginated the same way ([`page`]); every error has one JSON shape ([`crate::error::ErrorBody`]).
//!
//! [`Principal`]: crate::auth::Principal

mod applications;
mod audits;
mod certificates;
mod clusters;
mod configs;
pub mod extract;
mod health;
mod hosts;
mod jobs;
mod join_tokens;
mod oapi;
mod oauth;
mod openapi;
pub mod page;
mod roles;
mod stats;
mod tasks;
mod tenants;
mod tokens;
mod users;

use axum::{Json, Router, middleware::from_fn_with_state, routing::get};
use utoipa::OpenApi;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use crate::state::ApiState;
use crate::{audit, auth};

/// The whole HTTP API with its state applied, and the OpenAPI document describing it.
pub fn router(state: ApiState) -> (Router, utoipa::openapi::OpenApi) {
    let audited = || from_fn_with_state(state.clone(), audit::record);
    let api_v1 = OpenApiRouter::new()
        .merge(users::routes())
        .merge(tenants::routes())
        .merge(clusters::routes())
        .merge(join_tokens::routes())
        .merge(certificates::routes())
        .merge(tasks::routes())
        .merge(hosts::routes())
        .merge(applications::routes())
        .merge(configs::routes())
        .merge(jobs::routes())
        .merge(tokens::routes())
        .merge(audits::routes())
        .merge(roles::routes())
        .merge(stats::routes())
        .route_layer(audited())
        .route_layer(from_fn_with_state(state.clone(), auth::require_session))
        .merge(users::public_routes().route_layer(audited()));
    let oapi_v1 =
        oapi::routes().route_layer(audited()).route_layer(from_fn_with_state(state.clone(), auth::require_token));
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .nest("/api/v1", api_v1)
        .nest("/oapi/v1", oapi_v1)
        .routes(routes!(health::healthy))
        .split_for_parts();
    let served = doc.clone();
    let metrics = state.metrics.clone();
    let router = router
        .route("/openapi.json", get(move || std::future::ready(Json(served.clone()))))
        .route("/metrics", get(move || std::future::ready(metrics.render())))
        .with_state(state);
    (router, doc)
}
