//! Fetching pieces from a parent over one reused connection.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt, BufReader},
    net::TcpStream,
};

use super::{OP_GET_PIECE, Status};

/// Why a fetch from a parent failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Could not connect, or the connection broke.
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
}

/// A connection to one parent's piece transport.
#[derive(Debug)]
pub struct PieceConnection {
    stream: BufReader<TcpStream>,
}

/// Largest piece accepted from a parent (guards memory against a lying parent).
const MAX_PIECE: u64 = 1 << 30;

impl PieceConnection {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> Result<Self, FetchError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream: BufReader::with_capacity(256 * 1024, stream) })
    }

    /// Fetches piece `piece` of `task_id`; `expected_len` bounds what is accepted.
    pub async fn get_piece(&mut self, task_id: &str, piece: u32, expected_len: u64) -> Result<Vec<u8>, FetchError> {
        let id = task_id.as_bytes();
        let mut req = Vec::with_capacity(6 + id.len());
        req.push(OP_GET_PIECE);
        req.push(u8::try_from(id.len()).map_err(|_| FetchError::Remote("task id too long".into()))?);
        req.extend_from_slice(id);
        req.extend_from_slice(&piece.to_be_bytes());
        self.stream.get_mut().write_all(&req).await?;

        let status = self.stream.read_u8().await?;
        let len = self.stream.read_u64().await?;
        match Status::from_u8(status) {
            Some(Status::Ok) => {
                if len != expected_len || len > MAX_PIECE {
                    return Err(FetchError::Remote(format!("piece {piece} is {len} bytes, expected {expected_len}")));
                }
                let mut buf = vec![0; len as usize];
                self.stream.read_exact(&mut buf).await?;
                Ok(buf)
            }
            Some(other) => {
                let mut reason = vec![0; len.min(4096) as usize];
                self.stream.read_exact(&mut reason).await?;
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
