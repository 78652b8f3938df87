//! The scheduler's HTTP side: `/healthy` for probes and the launcher.

use std::{sync::Arc, time::Instant};

use axum::{Json, Router, extract::State, routing::get};
use common::health::{Component, HealthReport, HealthStatus};

use crate::resource::Hosts;

#[derive(Debug, Clone)]
struct HttpState {
    started: Instant,
    #[allow(dead_code)]
    hosts: Arc<Hosts>,
}

/// Routes served on the HTTP listener.
pub fn router(hosts: Arc<Hosts>, started: Instant) -> Router {
    Router::new().route("/healthy", get(healthy)).with_state(HttpState { started, hosts })
}

async fn healthy(State(state): State<HttpState>) -> Json<HealthReport> {
    Json(HealthReport {
        component: Component::Scheduler,
        version: common::VERSION.to_owned(),
        status: HealthStatus::Ok,
        uptime_secs: state.started.elapsed().as_secs(),
    })
}
