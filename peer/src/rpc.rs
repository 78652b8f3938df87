//! The gRPC edge of the peer. Protobuf types stop here:
//! - [`dfdaemon`]: the local download API served on a unix socket, and `connect_unix` for clients;
//! - [`scheduler`]: the download's stream to the scheduler, as the peer's own message types;
//! - `announce`: host announcements; `seed`: seed orders in seed mode.

pub(crate) mod announce;
pub mod dfdaemon;
pub mod scheduler;
pub(crate) mod seed;

pub use dfdaemon::{DfdaemonService, connect_unix};
