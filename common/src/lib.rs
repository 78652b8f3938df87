//! Types every Damselfly component shares, and the console too.
//!
//! This crate owns vocabulary, not behaviour: identifiers, the REST data-transfer objects the
//! manager answers with, and pure arithmetic such as piece layout. It must never do I/O or pull
//! in a runtime, because the console compiles it to `wasm32-unknown-unknown`.

pub mod bitmap;
pub mod digest;
pub mod health;
pub mod ids;
pub mod piece;
pub mod task_id;

/// The version every Damselfly binary reports (`--version`, health endpoints, registration).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[cfg(feature = "runtime")]
pub mod runtime;
