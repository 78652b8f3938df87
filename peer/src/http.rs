//! The dfdaemon's HTTP side: `/healthy` for probes and the launcher, `/metrics` for Prometheus.

use std::{sync::Arc, time::Instant};

use axum::{Json, Router, extract::State, http::header, response::IntoResponse, routing::get};
use common::health::{Component, HealthReport, HealthStatus};

use crate::metrics::Metrics;

/// Routes served on the HTTP listener.
pub fn router(started: Instant, metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/healthy", get(healthy))
        .with_state(started)
        .route("/metrics", get(move || std::future::ready(render(&metrics))))
}

fn render(metrics: &Metrics) -> axum::response::Response {
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], metrics.render())
        .into_response()
}

async fn healthy(State(started): State<Instant>) -> Json<HealthReport> {
    Json(HealthReport {
        component: Component::Dfdaemon,
        version: common::VERSION.to_owned(),
        status: HealthStatus::Ok,
        uptime_secs: started.elapsed().as_secs(),
    })
}
