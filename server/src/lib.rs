//! The Damselfly manager: the control plane that operators, CI pipelines, schedulers and peers
//! talk to. It owns the database, serves the REST API (`/api/v1`, `/oapi/v1`, `/openapi.json`),
//! the console and `/metrics`, and registers schedulers and peers over gRPC.
//!
//! Entry point: [`Manager::serve`], which takes already-bound listeners and a cancellation token
//! so tests run it in-process on ephemeral ports.

pub mod api;
mod audit;
pub mod auth;
mod browser;
pub mod config;
mod console;
pub mod db;
mod entity;
pub mod error;
mod grpc;
mod https;
mod jobs;
pub mod metrics;
pub mod password;
mod pki;
pub mod rbac;
mod serve;
mod service;
mod state;

pub use error::Error;
/// Resolving a preheat's image into blobs; public for the registry integration tests.
pub use jobs::image;
pub use serve::{Listeners, Manager};

/// A bounded property-test run: `cases` inputs (`PROPTEST_CASES` asks for more when hunting),
/// and no regressions file written into the tree.
#[cfg(test)]
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    proptest::test_runner::Config { cases, failure_persistence: None, ..Default::default() }
}
/// Redeeming a cluster join token: what enrolment (and the tests) call before there is a principal.
pub use service::join_tokens::{JoinGrant, JoinRole, redeem as redeem_join_token};
