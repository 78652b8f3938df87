//! Mounts the Leptos console on the manager's router: server-rendered pages, the console's
//! server functions, and the static bundle (`/pkg/*`) from the configured site root.
//!
//! Pages other than sign-in, sign-up and status need a session: a visit without one is sent to
//! `/signin?return_to=…` before anything renders, so bookmarked and shared URLs come back to
//! where they pointed. This is only the front door; what a signed-in user sees is still decided
//! by the API the console's server functions call.

use std::{convert::Infallible, path::Path, time::Duration};

use axum::{
    Json, Router,
    extract::{Query, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::{Next, from_fn_with_state},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use console::api::{
    ApiError, ManagerApi,
    client::Caller,
    topology::{Topology, fetch},
};
use futures::{Stream, StreamExt};
use leptos::prelude::{LeptosOptions, provide_context};
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio_util::sync::CancellationToken;
use tower_http::services::{ServeDir, ServeFile};

use crate::{
    auth::{SESSION_COOKIE, cookie},
    state::ApiState,
};

/// Console pages anyone may see.
const PUBLIC_PAGES: &[&str] = &["/signin", "/signup", "/status"];

/// A router serving the console. `api_base` is the manager's own HTTP or HTTPS URL, which the
/// console's server functions call with `client` so that the API's authorization applies to the
/// console too. `shutdown` ends the live event streams, so a graceful stop does not wait on open
/// pages.
pub fn router(
    site_root: &Path,
    api_base: String,
    client: reqwest::Client,
    state: ApiState,
    shutdown: CancellationToken,
) -> Router {
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
    let api = ManagerApi { base_url: api_base, client };
    let routes = generate_route_list(console::App);
    let shell_options = options.clone();
    let fallback_api = api.clone();
    let events = Router::new()
        .route("/console/events/topology", get(topology_events))
        .with_state(Events { api: api.clone(), shutdown });
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
        .merge(events)
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

/// How often an open topology page's snapshot is rebuilt (and sent when it changed).
const TOPOLOGY_EVERY: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct Events {
    api: ManagerApi,
    shutdown: CancellationToken,
}

#[derive(serde::Deserialize)]
struct TopologyQuery {
    cluster_id: i64,
}

/// Server-sent `topology` events for one cluster: the snapshot at once, then each change. The
/// snapshot is read through the public API as the visitor (like the console's server
/// functions), so a cluster the visitor may not see answers 404 before the stream opens.
async fn topology_events(
    State(events): State<Events>,
    headers: HeaderMap,
    Query(q): Query<TopologyQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, (StatusCode, Json<ApiError>)> {
    let caller = Caller::new(events.api, cookie(&headers, SESSION_COOKIE).map(str::to_owned));
    let first = fetch(&caller, q.cluster_id)
        .await
        .map_err(|e| (StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_GATEWAY), Json(e)))?;
    let cluster_id = q.cluster_id;
    // State: the caller, a snapshot to send now (the first one), and the last one sent; `None`
    // once the stream has said its last word.
    let start = Some((caller, Some(first), None::<Topology>));
    let changes = futures::stream::unfold(start, move |state| async move {
        let (caller, next, last) = state?;
        let current = match next {
            Some(t) => t,
            None => loop {
                tokio::time::sleep(TOPOLOGY_EVERY).await;
                match fetch(&caller, cluster_id).await {
                    Ok(t) if Some(&t) != last.as_ref() => break t,
                    Ok(_) => {}
                    // Signed out, or the cluster is gone: tell the page, then end the stream.
                    Err(e) if matches!(e.status, 401 | 403 | 404) => {
                        return Some((Ok(Event::default().event("gone").data(e.message)), None));
                    }
                    Err(e) => tracing::debug!(error = %e, "topology snapshot failed; trying again"),
                }
            },
        };
        let event = Event::default().event("topology").json_data(&current).unwrap_or_default();
        Some((Ok(event), Some((caller, None, Some(current)))))
    });
    let stream = changes.take_until(events.shutdown.cancelled_owned());
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
