//! The gRPC edge of the peer. Protobuf types stop here:
//! - [`dfdaemon`]: the local download API served on a unix socket, and `connect_unix` for clients;
//! - [`scheduler`]: the download's stream to the scheduler, as the peer's own message types;
//! - [`scheduler_set`]: which schedulers this host uses, and which one serves a task;
//! - `manager`: learning the schedulers from the manager and keeping the host alive there;
//! - `announce`: host announcements; `seed`: seed orders in seed mode; `orders`: the
//!   scheduler's orders for this host (task deletions); `watch`: how those two streams are kept
//!   open with every scheduler.

pub(crate) mod announce;
pub use announce::host_id;
pub mod caller;
pub mod dfdaemon;
pub(crate) mod manager;
pub(crate) mod orders;
pub mod scheduler;
pub mod scheduler_set;
pub(crate) mod seed;
mod watch;

pub use dfdaemon::{DfdaemonService, connect_unix};
