//! The integration tests' harness, shared by the `server`, `scheduler` and `peer` test binaries
//! so there is one way to start each component: in-process, on `127.0.0.1:0`, in temp dirs,
//! stopped by a `CancellationToken` (the servers' own contract, see ARCHITECTURE.md).
//!
//! Features keep each crate's tests to what they start: `manager` (a manager on a fresh
//! database of each kind, [`db`] and [`manager`], with [`front`] for one address before
//! several), `scheduler` ([`scheduler`]), `peer` ([`peer`]), `registry` (a real
//! `docker-registry` and `skopeo`, [`registry`], and a real containerd, [`containerd`]), `tls`
//! (servers over TLS with a test CA, [`tls`]); [`origin`] is always there, and [`cluster`] needs
//! `scheduler` and `peer`.
//!
//! This is test code: helpers panic with a message instead of returning errors, and [`db`]
//! reads `DAMSELFLY_TEST_DB` (libraries never read the environment; a test harness may).

pub mod origin;
pub mod pki;

#[cfg(all(feature = "scheduler", feature = "peer"))]
pub mod cluster;
#[cfg(feature = "registry")]
pub mod containerd;
#[cfg(feature = "manager")]
pub mod db;
#[cfg(feature = "manager")]
pub mod front;
#[cfg(feature = "manager")]
pub mod manager;
#[cfg(feature = "peer")]
pub mod peer;
#[cfg(feature = "registry")]
pub mod registry;
#[cfg(feature = "scheduler")]
pub mod scheduler;
#[cfg(feature = "tls")]
pub mod tls;

use std::{future::Future, time::Duration};

/// Sends the components' logs to the test's output when `TEST_LOG` is set (once per binary).
pub fn init_logs() {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    }
}

/// Polls `check` every 50 ms until it holds; panics naming `what` after `within`.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
