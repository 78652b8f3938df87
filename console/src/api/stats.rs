//! Tasks, peers and traffic over time, for the overview's charts.

use super::ApiError;
use common::api::Stats;
use leptos::prelude::*;

/// The windows the overview offers, as the API names them.
pub const WINDOWS: &[&str] = &["1h", "6h", "24h", "7d"];

/// Figures of every cluster the visitor can see over `window` (`1h`, `6h`, `24h`, `7d`).
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn get_stats(window: String) -> Result<Stats, ApiError> {
    super::client::get("/api/v1/stats", &[("window", window)]).await
}
