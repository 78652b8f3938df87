//! The manager's HTTP API. Handlers are thin: they parse, call a service, and answer.

use std::time::Instant;

use axum::{Json, Router, extract::State, routing::get};
use common::health::{Component, HealthReport, HealthStatus};
use sea_orm::DatabaseConnection;

/// What handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// When the manager started serving, for uptime.
    pub started: Instant,
}

/// Routes that need no authentication.
pub fn public_routes() -> Router<ApiState> {
    Router::new().route("/healthy", get(healthy))
}

/// `GET /healthy`: always 200 while the process serves; `degraded` when the database is down.
async fn healthy(State(state): State<ApiState>) -> Json<HealthReport> {
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
