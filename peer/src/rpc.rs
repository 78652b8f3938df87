//! The gRPC edge of the peer. Protobuf types stop here:
//! - [`dfdaemon`]: the local download API served on a unix socket, and `connect_unix` for clients;
//! - [`scheduler`]: the download's stream to the scheduler, as the peer's own message types;
//! - `announce`: host announcements; `seed`: seed orders in seed mode; `orders`: the
//!   scheduler's orders for this host (task deletions).

pub(crate) mod announce;
pub mod dfdaemon;
pub(crate) mod orders;
pub mod scheduler;
pub(crate) mod seed;

pub use dfdaemon::{DfdaemonService, connect_unix};
