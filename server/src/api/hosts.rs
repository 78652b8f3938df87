//! `/schedulers`, `/seed-peers`, `/peers`: the REST face of [`service::hosts`].
//!
//! The three kinds share their handlers through [`host_routes!`]; only the answered shape differs.

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
    response::Response,
};
use utoipa_axum::router::OpenApiRouter;

use super::{
    ApiState,
    extract::{Path, Query},
    page::{PageParams, Paged},
};
pub use crate::service::hosts::{HostFilter, Peer, Scheduler, SeedPeer};
use crate::{
    Error,
    audit::in_tenant,
    auth::Principal,
    entity::{peers, schedulers, seed_peers},
    service::hosts,
};

macro_rules! host_routes {
    ($module:ident, $entity:ident, $dto:ident, $path:literal, $item_path:literal, $tag:literal, $what:literal) => {
        mod $module {
            use super::*;
            use utoipa_axum::routes;

            pub fn routes() -> OpenApiRouter<ApiState> {
                OpenApiRouter::new().routes(routes!(list)).routes(routes!(get, delete))
            }

            #[doc = concat!("The ", $what, "s of the caller's tenants' clusters.")]
            #[utoipa::path(get, path = $path, tag = $tag, operation_id = concat!("list_", $tag), security(("session" = [])), params(PageParams, HostFilter),
                responses((status = 200, body = [$dto])))]
            pub async fn list(
                State(state): State<ApiState>,
                Extension(me): Extension<Principal>,
                OriginalUri(uri): OriginalUri,
                Query(paging): Query<PageParams>,
                Query(filter): Query<HostFilter>,
            ) -> Result<Paged<$dto>, Error> {
                let page = paging.validate()?;
                Ok(Paged::new(hosts::list::<$entity::Entity>(state.cx(&me), filter, page).await?, page, uri))
            }

            #[doc = concat!("One ", $what, ".")]
            #[utoipa::path(get, path = $item_path, tag = $tag, operation_id = concat!("get_", $tag), security(("session" = [])),
                params(("id" = i64, Path, description = "Id")),
                responses((status = 200, body = $dto), (status = 404, body = crate::error::ErrorBody)))]
            pub async fn get(
                State(state): State<ApiState>,
                Extension(me): Extension<Principal>,
                Path(id): Path<i64>,
            ) -> Result<Json<$dto>, Error> {
                Ok(Json(hosts::get::<$entity::Entity>(state.cx(&me), id).await?))
            }

            #[doc = concat!("Forget an inactive ", $what, " (tenant admins).")]
            #[utoipa::path(delete, path = $item_path, tag = $tag, operation_id = concat!("delete_", $tag), security(("session" = [])),
                params(("id" = i64, Path, description = "Id")),
                responses((status = 204), (status = 403, body = crate::error::ErrorBody),
                    (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
            pub async fn delete(
                State(state): State<ApiState>,
                Extension(me): Extension<Principal>,
                Path(id): Path<i64>,
            ) -> Result<Response, Error> {
                let tenant = hosts::delete::<$entity::Entity>(state.cx(&me), id).await?;
                Ok(in_tenant(tenant, StatusCode::NO_CONTENT))
            }
        }
    };
}

host_routes!(scheduler_routes, schedulers, Scheduler, "/schedulers", "/schedulers/{id}", "schedulers", "scheduler");
host_routes!(seed_peer_routes, seed_peers, SeedPeer, "/seed-peers", "/seed-peers/{id}", "seed-peers", "seed peer");
host_routes!(peer_routes, peers, Peer, "/peers", "/peers/{id}", "peers", "peer");

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new()
        .merge(scheduler_routes::routes())
        .merge(seed_peer_routes::routes())
        .merge(peer_routes::routes())
}
