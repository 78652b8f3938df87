//! `/audits`: the REST face of [`service::audits`].

use axum::extract::{Extension, OriginalUri, State};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::Query,
    page::{PageParams, Paged},
};
pub use crate::service::audits::{Audit, AuditFilter};
use crate::{Error, auth::Principal, service};

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_audits))
}

/// Audit entries the caller may see.
#[utoipa::path(get, path = "/audits", tag = "audits", security(("session" = [])), params(PageParams, AuditFilter),
    responses((status = 200, body = [Audit])))]
pub async fn list_audits(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
    Query(filter): Query<AuditFilter>,
) -> Result<Paged<Audit>, Error> {
    let page = paging.validate()?;
    Ok(Paged::new(service::audits::list(state.cx(&me), filter, page).await?, page, uri))
}
