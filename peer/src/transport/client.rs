//! Fetching pieces from a parent over one reused connection.
//!
//! A piece is received on a blocking thread, like a plain `curl`: chunks of [`CHUNK`] bytes go
//! through one buffer that stays in the CPU's cache while the caller hashes and stores them.
//! Receiving a whole piece (megabytes) into memory first and then hashing, writing and copying it
//! read it back from main memory at each step, which cost more than the network itself.

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    time::Duration,
};

use super::{OP_GET_PIECE, Status};

/// Why a fetch from a parent failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Could not connect, or the connection broke (or stalled).
    #[error("parent unreachable: {0}")]
    Unreachable(#[from] std::io::Error),
    /// The parent does not have the piece.
    #[error("parent does not have the piece")]
    NotFound,
    /// The parent has no free upload slot.
    #[error("parent is busy")]
    Busy,
    /// The parent reported an error or spoke nonsense.
    #[error("parent error: {0}")]
    Remote(String),
    /// This host could not take the bytes (storing them failed).
    #[error("storing the piece failed: {0}")]
    Local(String),
}

/// Bytes received and handed on at a time.
pub const CHUNK: usize = 256 * 1024;

/// How long connecting, or a read or write without progress, may take before the parent counts
/// as unreachable.
const STALL: Duration = Duration::from_secs(30);

/// A connection to one parent's piece transport (blocking; use it on a blocking thread).
#[derive(Debug)]
pub struct PieceConnection {
    stream: TcpStream,
    buf: Box<[u8]>,
}

impl PieceConnection {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Result<Self, FetchError> {
        let stream = TcpStream::connect_timeout(&addr, STALL)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(STALL))?;
        stream.set_write_timeout(Some(STALL))?;
        Ok(Self { stream, buf: vec![0; CHUNK].into_boxed_slice() })
    }

    /// Fetches piece `piece` of `task_id`, which must be `expected_len` bytes, handing it to
    /// `sink` in consecutive chunks. An error from `sink` stops the fetch ([`FetchError::Local`];
    /// the connection is then out of step and must be dropped, like after any error).
    pub fn fetch_piece<E: std::fmt::Display>(
        &mut self,
        task_id: &str,
        piece: u32,
        expected_len: u64,
        mut sink: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), FetchError> {
        let id = task_id.as_bytes();
        let mut req = Vec::with_capacity(6 + id.len());
        req.push(OP_GET_PIECE);
        req.push(u8::try_from(id.len()).map_err(|_| FetchError::Remote("task id too long".into()))?);
        req.extend_from_slice(id);
        req.extend_from_slice(&piece.to_be_bytes());
        self.stream.write_all(&req)?;

        let mut head = [0u8; 9];
        self.stream.read_exact(&mut head)?;
        let status = head[0];
        let len = u64::from_be_bytes(head[1..].try_into().expect("8 bytes"));
        match Status::from_u8(status) {
            Some(Status::Ok) => {
                if len != expected_len {
                    return Err(FetchError::Remote(format!("piece {piece} is {len} bytes, expected {expected_len}")));
                }
                let mut left = len;
                while left > 0 {
                    let want = left.min(CHUNK as u64) as usize;
                    self.stream.read_exact(&mut self.buf[..want])?;
                    sink(&self.buf[..want]).map_err(|e| FetchError::Local(e.to_string()))?;
                    left -= want as u64;
                }
                Ok(())
            }
            Some(other) => {
                let mut reason = vec![0; len.min(4096) as usize];
                self.stream.read_exact(&mut reason)?;
                match other {
                    Status::NotFound => Err(FetchError::NotFound),
                    Status::Busy => Err(FetchError::Busy),
                    _ => Err(FetchError::Remote(String::from_utf8_lossy(&reason).into_owned())),
                }
            }
            None => Err(FetchError::Remote(format!("unknown status {status}"))),
        }
    }
}
