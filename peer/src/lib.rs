//! The Damselfly peer: `dfdaemon`, the daemon on every host that downloads content for local
//! clients and serves it to other peers, and `dfget`, its command-line client.
//!
//! Layers: [`storage`] keeps content and metadata; [`transport`] moves piece bytes between peers
//! over TCP; [`download`] fills storage from parents or the origin and exports files; [`rpc`] is
//! the gRPC edge (local download API, scheduler stream, host announcements, seed orders);
//! `serve` wires listeners. Entry point: [`Dfdaemon::serve`].

pub mod config;
pub mod download;
mod error;
pub mod gc;
mod http;
pub mod init_runtime;
pub mod limiter;
pub mod metrics;
pub mod proxy;
pub mod rpc;
mod serve;
pub mod storage;
pub mod transport;

pub use error::Error;

/// A bounded property-test run: `cases` inputs (`PROPTEST_CASES` asks for more when hunting),
/// and no regressions file written into the tree.
#[cfg(test)]
pub(crate) fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(cases);
    proptest::test_runner::Config { cases, failure_persistence: None, ..Default::default() }
}
pub use serve::{Dfdaemon, Listeners};
