//! The manager's health, for the public status page.

use common::health::HealthReport;
use leptos::prelude::*;

use super::ApiError;

/// The manager's health report (`GET /healthy`).
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn manager_health() -> Result<HealthReport, ApiError> {
    super::client::get("/healthy", &[]).await
}
