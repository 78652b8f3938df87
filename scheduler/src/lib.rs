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
