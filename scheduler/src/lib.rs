//! The Damselfly scheduler: the per-cluster tracker that peers announce their hosts and downloads
//! to, and that answers with parents to fetch pieces from.
//!
//! Layers: [`resource`] holds state (hosts today; tasks and peers with the data plane),
//! [`scheduling`] picks parents from plain snapshots of that state (pure, no I/O), [`rpc`]
//! converts protobuf at the edge, [`serve`] wires listeners. Entry point: [`Scheduler::serve`].

pub mod config;
mod error;
mod http;
pub mod metrics;
pub mod resource;
mod rpc;
pub mod scheduling;
mod serve;

pub use error::Error;
pub use serve::{Listeners, Scheduler};

/// A bounded property-test run: `cases` inputs (`PROPTEST_CASES` asks for more when hunting),
/// and no regressions file written into the tree.
#[cfg(test)]
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    proptest::test_runner::Config { cases, failure_persistence: None, ..Default::default() }
}
