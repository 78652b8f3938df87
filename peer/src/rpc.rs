//! The gRPC edge of the peer. Protobuf types stop here:
//! - [`dfdaemon`]: the local download API served on a unix socket, and `connect_unix` for clients;
//! - [`scheduler`]: the download's stream to the scheduler, as the peer's own message types.

pub mod dfdaemon;
pub mod scheduler;

pub use dfdaemon::{DfdaemonService, connect_unix};
