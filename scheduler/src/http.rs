//! The scheduler's HTTP side: `/healthy` for probes and the launcher, `/metrics` for Prometheus.

use std::{sync::Arc, time::Instant};

use axum::{
    Json, Router,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
    routing::get,
};
use common::health::{Component, HealthReport, HealthStatus};

use crate::{
    metrics::Metrics,
    resource::{Hosts, Tasks},
};

#[derive(Debug, Clone)]
struct HttpState {
    started: Instant,
    hosts: Arc<Hosts>,
    tasks: Arc<Tasks>,
    metrics: Arc<Metrics>,
}

/// Routes served on the HTTP listener.
pub fn router(hosts: Arc<Hosts>, tasks: Arc<Tasks>, metrics: Arc<Metrics>, started: Instant) -> Router {
    Router::new().route("/healthy", get(healthy)).route("/metrics", get(metrics_text)).with_state(HttpState {
        started,
        hosts,
        tasks,
        metrics,
    })
}

async fn metrics_text(State(state): State<HttpState>) -> Response {
    let body = state.metrics.render(&state.hosts, &state.tasks);
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

async fn healthy(State(state): State<HttpState>) -> Json<HealthReport> {
    Json(HealthReport {
        component: Component::Scheduler,
        version: common::VERSION.to_owned(),
        status: HealthStatus::Ok,
        uptime_secs: state.started.elapsed().as_secs(),
    })
}
