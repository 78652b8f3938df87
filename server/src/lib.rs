//! The Damselfly manager: the control plane that operators, CI pipelines, schedulers and peers
//! talk to. It owns the database, serves the REST API and the console, and (later) registration.
//!
//! Entry point: [`Manager::serve`], which takes already-bound listeners and a cancellation token
//! so tests run it in-process on ephemeral ports.

pub mod api;
pub mod config;
mod console;
pub mod db;
mod entity;
mod error;
mod grpc;
pub mod password;
mod serve;

pub use error::Error;
pub use serve::{Listeners, Manager};
