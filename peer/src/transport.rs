//! The piece transport: how peers move piece bytes between each other, over plain TCP rather
//! than gRPC messages (no per-message protobuf copies, no HTTP/2 flow-control window in the way;
//! Dragonfly measured 2x the speed and a fraction of the memory this way).
//!
//! One connection carries any number of requests, one at a time:
//!
//! ```text
//! request:  op u8 (1 = get piece) | id_len u8 | task id (id_len bytes) | piece u32 BE
//! response: status u8 | len u64 BE | len bytes (the piece when OK, a UTF-8 reason otherwise)
//! ```
//!
//! The bytes travel over mutual TLS with the cluster's certificates by default ([`tls`]), in
//! plain text only when the whole cluster runs without TLS.
//!
//! Bytes received here are never trusted: the downloader checks each piece against the digest
//! the scheduler holds before it counts as stored, so before serving it.

pub mod client;
pub mod server;
pub mod tls;

/// Operation code of a piece request.
pub const OP_GET_PIECE: u8 = 1;

/// How a piece request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Status {
    /// The piece follows.
    Ok = 0,
    /// This host does not have the piece (or the task).
    NotFound = 1,
    /// All upload slots are taken; try another parent.
    Busy = 2,
    /// The request was malformed or reading failed.
    Error = 3,
}

impl Status {
    /// Decodes a status byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Ok),
            1 => Some(Self::NotFound),
            2 => Some(Self::Busy),
            3 => Some(Self::Error),
            _ => None,
        }
    }
}
