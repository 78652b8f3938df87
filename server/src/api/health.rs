//! `GET /healthy`: liveness for load balancers and Harbor (no authentication).

use axum::{Json, extract::State};
use common::health::{Component, HealthReport, HealthStatus};

use super::ApiState;

/// Always 200 while the process serves; `degraded` when the database is down.
#[utoipa::path(get, path = "/healthy", tag = "health", responses((status = 200, description = "The manager's health")))]
pub async fn healthy(State(state): State<ApiState>) -> Json<HealthReport> {
    let status = match state.db.ping().await {
        Ok(()) => HealthStatus::Ok,
        Err(e) => {
            tracing::warn!(error = %e, "database ping failed");
            HealthStatus::Degraded
        }
    };
    Json(HealthReport {
        component: Component::Manager,
        version: common::VERSION.to_owned(),
        status,
        uptime_secs: state.started.elapsed().as_secs(),
    })
}
