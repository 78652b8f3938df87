//! Server functions: the console's only way to data.
//!
//! Each one runs on the manager and calls the manager's public HTTP API (over loopback), never
//! its database or services directly; that keeps authorization in the API layer alone.

use common::health::HealthReport;
use leptos::prelude::*;

/// Where the console's server functions reach the manager's public API. The manager provides it
/// as Leptos context when it mounts the console.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone)]
pub struct ManagerApi {
    /// Base URL of the manager's HTTP API, such as `http://127.0.0.1:8080`.
    pub base_url: String,
    /// Shared client, so calls reuse connections.
    pub client: reqwest::Client,
}

#[cfg(feature = "ssr")]
fn manager_api() -> Result<ManagerApi, ServerFnError> {
    use_context::<ManagerApi>().ok_or_else(|| ServerFnError::new("the console is not mounted with a manager API"))
}

/// The manager's health report (`GET /healthy`).
#[server(prefix = "/console/fn")]
pub async fn manager_health() -> Result<HealthReport, ServerFnError> {
    let api = manager_api()?;
    let resp = api
        .client
        .get(format!("{}/healthy", api.base_url))
        .send()
        .await
        .map_err(|e| ServerFnError::new(format!("manager unreachable: {e}")))?;
    if !resp.status().is_success() {
        return Err(ServerFnError::new(format!("manager answered {}", resp.status())));
    }
    resp.json::<HealthReport>().await.map_err(|e| ServerFnError::new(format!("unexpected health report: {e}")))
}
