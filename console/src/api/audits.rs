//! The audit log, newest first. The API decides what each user sees: tenant admins their
//! tenants' entries, platform administrators everything.

use leptos::prelude::*;

use super::ApiError;
use crate::api::page::Page;
use common::api::Audit;

/// What the audit log can be filtered by; every field empty means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditFilter {
    /// Exact actor name (a user name or a token's name).
    pub actor_name: String,
    /// Exact event, such as `clusters.create`.
    pub event: String,
    /// `success` or `failure`.
    pub state: String,
    /// A tenant id, as text from the query string.
    pub tenant_id: String,
}

#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_audits(page: u64, filter: AuditFilter) -> Result<Page<Audit>, ApiError> {
    let tenant_id = match filter.tenant_id.trim() {
        "" => String::new(),
        t => super::number::<i64>("tenant_id", t)?.to_string(),
    };
    super::client::list(
        "/api/v1/audits",
        page.max(1),
        50,
        &[
            ("actor_name", filter.actor_name.trim().to_owned()),
            ("event", filter.event.trim().to_owned()),
            ("state", filter.state),
            ("tenant_id", tenant_id),
        ],
    )
    .await
}
