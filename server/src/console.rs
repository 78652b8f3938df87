//! Mounts the Leptos console on the manager's router: server-rendered pages, the console's
//! server functions, and the static bundle (`/pkg/*`) from the configured site root.
//!
//! Pages other than sign-in, sign-up and status need a session: a visit without one is sent to
//! `/signin?return_to=…` before anything renders, so bookmarked and shared URLs come back to
//! where they pointed. This is only the front door; what a signed-in user sees is still decided
//! by the API the console's server functions call.

use std::path::Path;

use axum::{
    Router,
    extract::{Request, State},
    http::{Method, StatusCode, header},
    middleware::{Next, from_fn_with_state},
    response::{IntoResponse, Response},
};
use console::api::ManagerApi;
use leptos::prelude::{LeptosOptions, provide_context};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::services::{ServeDir, ServeFile};

use crate::{
    api::ApiState,
    auth::{SESSION_COOKIE, cookie},
};

/// Console pages anyone may see.
const PUBLIC_PAGES: &[&str] = &["/signin", "/signup", "/status"];

/// A router serving the console. `api_base` is the manager's own HTTP URL, which the console's
/// server functions call so that the API's authorization applies to the console too.
pub fn router(site_root: &Path, api_base: String, state: ApiState) -> Router {
    if !site_root.join("pkg").join("console_bg.wasm").is_file() {
        tracing::warn!(
            site_root = %site_root.display(),
            "console bundle not found: pages render but will not become interactive (run `make console`)"
        );
    }
    let options = LeptosOptions::builder()
        .output_name("console")
        .site_root(site_root.display().to_string())
        .site_pkg_dir("pkg")
        .build();
    let api = ManagerApi { base_url: api_base, client: reqwest::Client::new() };
    let routes = generate_route_list(console::App);
    let shell_options = options.clone();
    let fallback_api = api.clone();
    Router::new()
        .leptos_routes_with_context(
            &options,
            routes,
            move || provide_context(api.clone()),
            move || console::shell(shell_options.clone()),
        )
        .route_layer(from_fn_with_state(state, require_signed_in))
        // Anything else renders the app's "Page not found" with a 404 status.
        .fallback(leptos_axum::file_and_error_handler_with_context(
            move || provide_context(fallback_api.clone()),
            console::shell,
        ))
        .nest_service("/pkg", ServeDir::new(site_root.join("pkg")).precompressed_gzip())
        .route_service("/favicon.svg", ServeFile::new(site_root.join("favicon.svg")))
        .with_state(options)
}

/// Sends page visits without a live session to the sign-in page.
async fn require_signed_in(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if req.method() != Method::GET || PUBLIC_PAGES.contains(&path) || path.starts_with("/console/fn/") {
        return next.run(req).await;
    }
    if let Some(jwt) = cookie(req.headers(), SESSION_COOKIE)
        && state.sessions.check(&state.db, jwt).await.is_ok()
    {
        return next.run(req).await;
    }
    let here = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let back: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
    let to = format!("/signin?return_to={back}");
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}
