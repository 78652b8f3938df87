//! `/stats`: the REST face of [`service::stats`], the console's overview charts.

use axum::{
    Json,
    extract::{Extension, State},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{ApiState, extract::Query};
pub use crate::service::stats::{Stats, StatsQuery};
use crate::{Error, auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(get_stats))
}

/// Tasks, peers and traffic over time, from the schedulers of the caller's clusters.
#[utoipa::path(get, path = "/stats", tag = "stats", security(("session" = [])), params(StatsQuery),
    responses((status = 200, body = Stats), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_stats(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Query(q): Query<StatsQuery>,
) -> Result<Json<Stats>, Error> {
    Ok(Json(service::stats::get(state.cx(&me), q, state.sample_interval).await?))
}
