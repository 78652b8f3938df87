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

/// How this host reaches parents: over mutual TLS with its credentials, or in plain text when
/// the cluster runs without TLS (`[tls] mode = "plaintext"`).
#[derive(Debug, Clone, Default)]
pub struct Dialer {
    tls: Option<super::tls::PieceTls>,
}

impl Dialer {
    /// Plain text: only for a cluster whose gRPC hops are plain text too.
    pub fn plaintext() -> Self {
        Self { tls: None }
    }

    /// Mutual TLS with this host's credentials.
    pub fn tls(tls: super::tls::PieceTls) -> Self {
        Self { tls: Some(tls) }
    }

    /// Connects to `addr` (blocking; use it on a blocking thread).
    pub fn connect(&self, addr: SocketAddr) -> Result<PieceConnection, FetchError> {
        let tcp = TcpStream::connect_timeout(&addr, STALL)?;
        tcp.set_nodelay(true)?;
        tcp.set_read_timeout(Some(STALL))?;
        tcp.set_write_timeout(Some(STALL))?;
        let stream = match &self.tls {
            None => Stream::Plain(tcp),
            Some(tls) => Stream::Tls(tls.connect(tcp)?),
        };
        Ok(PieceConnection { stream, buf: vec![0; CHUNK].into_boxed_slice() })
    }
}

/// A connection's bytes, as they travel.
#[derive(Debug)]
enum Stream {
    Plain(TcpStream),
    Tls(super::tls::ClientStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// A connection to one parent's piece transport (blocking; use it on a blocking thread).
#[derive(Debug)]
pub struct PieceConnection {
    stream: Stream,
    buf: Box<[u8]>,
}

impl PieceConnection {
    /// Connects to `addr` in plain text.
    pub fn connect(addr: SocketAddr) -> Result<Self, FetchError> {
        Dialer::plaintext().connect(addr)
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
        self.stream.flush()?;

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

/// A parent may answer anything: the client encodes its request exactly, takes a piece only of
/// the length it expects, reads at most a bounded reason, and otherwise fails without panicking.
#[cfg(test)]
mod properties {
    use std::net::{Shutdown, TcpListener};

    use proptest::prelude::*;

    use super::*;

    /// A request as the parent read it.
    #[derive(Debug, PartialEq, Eq)]
    struct Received {
        op: u8,
        id: Vec<u8>,
        piece: u32,
    }

    /// A parent that reads one request, answers `answer`, and hands back the request it read.
    fn parent(answer: Vec<u8>) -> (SocketAddr, std::thread::JoinHandle<Option<Received>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let thread = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let mut head = [0u8; 2];
            s.read_exact(&mut head).ok()?;
            let mut rest = vec![0; usize::from(head[1]) + 4];
            s.read_exact(&mut rest).ok()?;
            let piece = u32::from_be_bytes(rest[rest.len() - 4..].try_into().unwrap());
            rest.truncate(rest.len() - 4);
            // The child may stop reading at any point and drop the connection: fine.
            let _ = s.write_all(&answer);
            let _ = s.shutdown(Shutdown::Write);
            let _ = s.read_to_end(&mut Vec::new());
            Some(Received { op: head[0], id: rest, piece })
        });
        (addr, thread)
    }

    /// A well-formed answer, a status or length that is off, or bytes that stop early.
    fn answer() -> impl Strategy<Value = (Vec<u8>, u64)> {
        let framed = (
            prop_oneof![3 => 0..4u8, 1 => any::<u8>()],
            proptest::collection::vec(any::<u8>(), 0..600),
            prop_oneof![3 => Just(None), 1 => proptest::option::of(any::<u64>())],
            prop_oneof![3 => Just(None), 1 => proptest::option::of(any::<u64>())],
            prop_oneof![3 => Just(None), 1 => proptest::option::of(any::<prop::sample::Index>())],
        )
            .prop_map(|(status, body, len, expected, cut)| {
                let len = len.unwrap_or(body.len() as u64);
                let mut bytes = vec![status];
                bytes.extend(len.to_be_bytes());
                bytes.extend(&body);
                if let Some(cut) = cut {
                    bytes.truncate(cut.index(bytes.len() + 1));
                }
                (bytes, expected.unwrap_or(len))
            });
        prop_oneof![3 => framed, 1 => (proptest::collection::vec(any::<u8>(), 0..40), any::<u64>())]
    }

    /// What the fetch must come to, for an answer and the length expected.
    fn outcome(answer: &[u8], expected_len: u64) -> Result<Vec<u8>, &'static str> {
        let Some((head, body)) = answer.split_first_chunk::<9>() else { return Err("unreachable") };
        let len = u64::from_be_bytes(head[1..].try_into().unwrap());
        let whole = |want: u64| usize::try_from(want).ok().and_then(|want| body.get(..want));
        match Status::from_u8(head[0]) {
            Some(Status::Ok) if len != expected_len => Err("remote"),
            Some(Status::Ok) => whole(len).map(<[u8]>::to_vec).ok_or("unreachable"),
            Some(status) => match whole(len.min(4096)) {
                None => Err("unreachable"),
                Some(_) if status == Status::NotFound => Err("not found"),
                Some(_) if status == Status::Busy => Err("busy"),
                Some(_) => Err("remote"),
            },
            None => Err("remote"),
        }
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn a_fetch_takes_exactly_the_expected_piece_or_fails(
            (answer, expected_len) in answer(),
            task_id in prop_oneof![3 => "[0-9a-f]{64}", 1 => any::<String>(), 1 => "[a-z]{250,260}"],
            piece in any::<u32>(),
        ) {
            let (addr, parent) = parent(answer.clone());
            let mut got = Vec::new();
            let fetched = PieceConnection::connect(addr)?.fetch_piece(&task_id, piece, expected_len, |chunk| {
                got.extend_from_slice(chunk);
                Ok::<_, std::io::Error>(())
            });
            let request = parent.join().unwrap();
            if task_id.len() > 255 {
                prop_assert!(matches!(fetched, Err(FetchError::Remote(_))), "{fetched:?}");
                prop_assert_eq!(request, None, "nothing is sent for an id too long to frame");
                return Ok(());
            }
            prop_assert_eq!(request, Some(Received { op: OP_GET_PIECE, id: task_id.into_bytes(), piece }));
            prop_assert!(got.len() as u64 <= expected_len, "{} bytes taken, {} expected", got.len(), expected_len);
            let kind = match &fetched {
                Ok(()) => Ok(got),
                Err(FetchError::Unreachable(_)) => Err("unreachable"),
                Err(FetchError::NotFound) => Err("not found"),
                Err(FetchError::Busy) => Err("busy"),
                Err(FetchError::Remote(reason)) => {
                    prop_assert!(reason.len() <= 3 * 4096, "{} bytes of reason", reason.len());
                    Err("remote")
                }
                Err(FetchError::Local(_)) => Err("local"),
            };
            prop_assert_eq!(kind, outcome(&answer, expected_len));
        }
    }
}
