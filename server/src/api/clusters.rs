//! `/clusters`: the REST face of [`service::clusters`].

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
    response::Response,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Body, Path, Query},
    page::{PageParams, Paged},
};
pub use crate::service::clusters::{Cluster, ClusterFilter, CreateCluster, UpdateCluster};
use crate::{Error, audit::in_tenant, auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_clusters, create_cluster)).routes(routes!(
        get_cluster,
        update_cluster,
        delete_cluster
    ))
}

/// Clusters of the caller's tenants.
#[utoipa::path(get, path = "/clusters", tag = "clusters", security(("session" = [])),
    params(PageParams, ClusterFilter), responses((status = 200, body = [Cluster])))]
pub async fn list_clusters(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
    Query(filter): Query<ClusterFilter>,
) -> Result<Paged<Cluster>, Error> {
    let page = paging.validate()?;
    Ok(Paged::new(service::clusters::list(state.cx(&me), filter, page).await?, page, uri))
}

/// Create a cluster (tenant admins).
#[utoipa::path(post, path = "/clusters", tag = "clusters", security(("session" = [])), request_body = CreateCluster,
    responses((status = 201, body = Cluster), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_cluster(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Body(body): Body<CreateCluster>,
) -> Result<Response, Error> {
    let cluster = service::clusters::create(state.cx(&me), body).await?;
    Ok(in_tenant(cluster.tenant_id, (StatusCode::CREATED, Json(cluster))))
}

/// One cluster.
#[utoipa::path(get, path = "/clusters/{id}", tag = "clusters", security(("session" = [])),
    params(("id" = i64, Path, description = "Cluster id")),
    responses((status = 200, body = Cluster), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_cluster(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<Cluster>, Error> {
    Ok(Json(service::clusters::get(state.cx(&me), id).await?))
}

/// Change a cluster (tenant admins); given config objects replace the old ones whole.
#[utoipa::path(patch, path = "/clusters/{id}", tag = "clusters", security(("session" = [])), request_body = UpdateCluster,
    params(("id" = i64, Path, description = "Cluster id")),
    responses((status = 200, body = Cluster), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn update_cluster(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<UpdateCluster>,
) -> Result<Response, Error> {
    let cluster = service::clusters::update(state.cx(&me), id, body).await?;
    Ok(in_tenant(cluster.tenant_id, Json(cluster)))
}

/// Delete a cluster (tenant admins). Refused while schedulers or seed peers are active in it.
#[utoipa::path(delete, path = "/clusters/{id}", tag = "clusters", security(("session" = [])),
    params(("id" = i64, Path, description = "Cluster id")),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn delete_cluster(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let tenant = service::clusters::delete(state.cx(&me), id).await?;
    Ok(in_tenant(tenant, StatusCode::NO_CONTENT))
}
