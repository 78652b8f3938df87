//! The Damselfly peer: `dfdaemon`, the daemon on every host that downloads content for local
//! clients and serves it to other peers, and `dfget`, its command-line client.
//!
//! Layers: [`download`] produces files (today from the origin; pieces from parents come with the
//! data plane), [`rpc`] is the gRPC edge (the local download API and the scheduler client),
//! [`serve`] wires listeners. Entry point: [`Dfdaemon::serve`].

mod announce;
pub mod config;
pub mod download;
mod error;
mod http;
pub mod rpc;
mod serve;

pub use error::Error;
pub use serve::{Dfdaemon, Listeners};
