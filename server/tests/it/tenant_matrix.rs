//! The tenant matrix: every role × tenant × endpoint × method, against an expectation written
//! here ([`contract`]) independently of the server's policy. Any answer that differs fails, and
//! so does any list, count or error body that shows another tenant's objects.
//!
//! Tenants `alpha` and `beta`; actors: platform root, alpha's admin, member and guest, beta's
//! admin, and a user of no tenant ([`fixture`]). The rows, by surface: objects of `/api/v1`
//! ([`objects`]), lists and the audit log ([`lists`]), members ([`members`]), what schedulers
//! reported ([`cluster_data`]), and `/oapi/v1` with personal access tokens ([`oapi`]). Where a
//! peer is placed is `registration::a_peer_is_placed_only_in_the_cluster_its_certificate_names`.

mod cluster_data;
mod contract;
mod fixture;
mod lists;
mod members;
mod oapi;
mod objects;

use fixture::{Fixture, Report};
use testkit::db::Backend;

testkit::on_every_database!(tenant_matrix);

async fn tenant_matrix(backend: Backend) {
    let f = Fixture::new(backend).await;
    let mut r = Report::default();
    objects::reads_and_changes(&f, &mut r).await;
    objects::creations(&f, &mut r).await;
    lists::collections(&f, &mut r).await;
    lists::join_tokens(&f, &mut r).await;
    members::members(&f, &mut r).await;
    cluster_data::tasks(&f, &mut r).await;
    cluster_data::stats(&f, &mut r).await;
    oapi::oapi(&f, &mut r).await;
    lists::audits(&f, &mut r).await;

    assert!(r.checked > 600, "the matrix checked only {} cases", r.checked);
    assert!(r.failures.is_empty(), "{} of {} cases failed:\n{}", r.failures.len(), r.checked, r.failures.join("\n"));
    f.m.stop().await;
}
