//! The dfdaemon's HTTP side: `/healthy` for probes and the launcher.

use std::time::Instant;

use axum::{Json, Router, extract::State, routing::get};
use common::health::{Component, HealthReport, HealthStatus};

/// Routes served on the HTTP listener.
pub fn router(started: Instant) -> Router {
    Router::new().route("/healthy", get(healthy)).with_state(started)
}

async fn healthy(State(started): State<Instant>) -> Json<HealthReport> {
    Json(HealthReport {
        component: Component::Dfdaemon,
        version: common::VERSION.to_owned(),
        status: HealthStatus::Ok,
        uptime_secs: started.elapsed().as_secs(),
    })
}
