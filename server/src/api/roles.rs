//! `/roles`: the REST face of [`service::roles`].

use axum::{Json, extract::Extension};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::ApiState;
pub use crate::service::roles::RoleInfo;
use crate::{auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_roles))
}

/// Every role and what it may do.
#[utoipa::path(get, path = "/roles", tag = "users", security(("session" = [])),
    responses((status = 200, body = [RoleInfo])))]
pub async fn list_roles(Extension(_me): Extension<Principal>) -> Json<Vec<RoleInfo>> {
    Json(service::roles::list())
}
