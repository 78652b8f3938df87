//! Mounts the Leptos console on the manager's router: server-rendered pages, the console's
//! server functions, and the static bundle (`/pkg/*`) from the configured site root.

use std::path::Path;

use axum::Router;
use console::api::ManagerApi;
use leptos::prelude::{LeptosOptions, provide_context};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::services::{ServeDir, ServeFile};

/// A router serving the console. `api_base` is the manager's own HTTP URL, which the console's
/// server functions call so that the API's authorization applies to the console too.
pub fn router(site_root: &Path, api_base: String) -> Router {
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
        // Anything else renders the app's "Page not found" with a 404 status.
        .fallback(leptos_axum::file_and_error_handler_with_context(
            move || provide_context(fallback_api.clone()),
            console::shell,
        ))
        .nest_service("/pkg", ServeDir::new(site_root.join("pkg")).precompressed_gzip())
        .route_service("/favicon.svg", ServeFile::new(site_root.join("favicon.svg")))
        .with_state(options)
}
