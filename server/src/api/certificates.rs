//! `/clusters/{id}/certificates`: the REST face of [`service::certificates`]: the certificates the
//! manager's CA issued to the cluster's schedulers and dfdaemons, and their revocation.

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    response::Response,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Body, Path, Query},
    page::{PageParams, Paged},
};
use crate::{Error, audit::in_tenant, auth::Principal, service};
pub use common::api::{Certificate, RevokeCertificates, RevokedCertificates};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_certificates)).routes(routes!(revoke_certificates))
}

/// Which of a cluster's certificates to list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CertificateFilter {
    /// Only the certificates of this host.
    #[param(max_length = 253)]
    pub host_id: Option<String>,
}

/// The certificates issued to the cluster's schedulers and dfdaemons, newest first, revoked and
/// expired ones too (those who may change the cluster).
#[utoipa::path(get, path = "/clusters/{id}/certificates", tag = "clusters", security(("session" = [])),
    params(("id" = i64, Path, description = "Cluster id"), PageParams, CertificateFilter),
    responses((status = 200, body = [Certificate]), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
pub async fn list_certificates(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Path(id): Path<i64>,
    Query(paging): Query<PageParams>,
    Query(filter): Query<CertificateFilter>,
) -> Result<Paged<Certificate>, Error> {
    let page = paging.validate()?;
    let listed = service::certificates::list(state.cx(&me), id, filter.host_id.as_deref(), page).await?;
    Ok(Paged::new(listed, page, uri))
}

/// Revoke every unexpired certificate of a host, or one by serial (those who may change the
/// cluster). The manager refuses them at once; the cluster's schedulers and dfdaemons within one
/// settings refresh. The host may enrol again with a join token and gets a new certificate.
#[utoipa::path(post, path = "/clusters/{id}/certificates/revocations", tag = "clusters", security(("session" = [])),
    request_body = RevokeCertificates, params(("id" = i64, Path, description = "Cluster id")),
    responses((status = 200, body = RevokedCertificates), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 415, body = crate::error::ErrorBody)))]
pub async fn revoke_certificates(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<RevokeCertificates>,
) -> Result<Response, Error> {
    let (tenant, revoked) = service::certificates::revoke(state.cx(&me), id, body).await?;
    if let Some(pki) = &state.pki {
        service::certificates::refresh(&state.db, pki.revocations()).await?;
    }
    Ok(in_tenant(tenant, Json(revoked)))
}
