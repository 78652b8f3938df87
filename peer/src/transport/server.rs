//! Serving finished pieces to other peers, straight from the content file.
//!
//! With mutual TLS (the default, [`super::tls`]) only a dfdaemon of this host's cluster gets a
//! piece; in plain text, anyone who reaches the port. Either way a connection holds nothing for
//! long: the handshake and each request must arrive within [`Limits::request`], an idle
//! connection closes after [`Limits::idle`], a transfer whose child takes no bytes for
//! [`Limits::stalled`] is dropped (freeing its place in the queue), and one address holds at
//! most [`Limits::connections_per_address`] connections.
//!
//! In plain text a piece goes from the page cache to the socket with `sendfile(2)`; over TLS it
//! is read in [`TLS_CHUNK`]s, encrypted and written ([`Body`] is the difference).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::ids::TaskId;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter},
    net::{TcpListener, TcpStream, tcp::OwnedWriteHalf},
    sync::Semaphore,
};
use tokio_rustls::{TlsAcceptor, server::TlsStream};
use tokio_util::sync::CancellationToken;

use super::{OP_GET_PIECE, Status, tls::PieceTls};
use crate::{limiter::RateLimiter, storage::Storage};

/// What the upload server needs.
#[derive(Debug, Clone)]
pub struct UploadContext {
    pub storage: Arc<Storage>,
    /// Concurrent piece transfers this host accepts; more get `Busy`.
    pub slots: Arc<Semaphore>,
    /// Transfers that send at a time; the other accepted ones wait their turn, in order
    /// ([`SENDERS`]).
    pub senders: Arc<Semaphore>,
    /// Transfers sending or waiting for a turn ([`QUEUE`]); more get `Busy`, so a child asks
    /// another parent rather than wait behind a long queue.
    pub queue: Arc<Semaphore>,
    /// Host-wide upload bandwidth.
    pub limiter: Arc<RateLimiter>,
    /// Where uploaded bytes are counted.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// Seed mode: upload each piece to one child at a time and answer `Busy` to concurrent
    /// requests for it, so the seed's uplink carries new pieces and children pass copies on.
    pub one_upload_per_piece: bool,
    /// Pieces being uploaded right now (only tracked with `one_upload_per_piece`).
    pub active: Arc<std::sync::Mutex<std::collections::HashSet<(TaskId, u32)>>>,
    /// Deadlines and caps for connections.
    pub limits: Limits,
    /// Mutual TLS with the cluster's dfdaemons; `None`: plain text (`[tls] mode = "plaintext"`).
    pub tls: Option<PieceTls>,
}

/// How long a connection may wait or hold, and how many one address may open.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Between requests on a connection.
    pub idle: Duration,
    /// From a request's first byte to its last.
    pub request: Duration,
    /// A transfer whose child takes no bytes this long is dropped.
    pub stalled: Duration,
    /// Connections open at once from one IP address (0: no cap).
    pub connections_per_address: usize,
    /// Leave loopback uncapped: every peer of a one-machine cluster (`damselfly up`) connects
    /// from it.
    pub loopback_uncapped: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(60),
            request: Duration::from_secs(10),
            // Under the client's own 30 s stall timeout, so a stuck child is dropped first.
            stalled: Duration::from_secs(20),
            connections_per_address: 256,
            loopback_uncapped: true,
        }
    }
}

/// Open connections per address; a [`Slot`] gives its place back when dropped.
#[derive(Debug, Default)]
struct Connections(Mutex<HashMap<IpAddr, usize>>);

struct Slot(Arc<Connections>, IpAddr);

impl Connections {
    fn open(self: &Arc<Self>, from: IpAddr, cap: usize) -> Option<Slot> {
        let mut open = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(from).or_default();
        if cap != 0 && *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot(self.clone(), from))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.0.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// Removes a piece from [`UploadContext::active`] when its upload ends.
struct ActivePiece<'a>(&'a std::sync::Mutex<std::collections::HashSet<(TaskId, u32)>>, Option<(TaskId, u32)>);

impl Drop for ActivePiece<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.1.take() {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(&key);
        }
    }
}

/// Accepts connections until `shutdown`.
pub async fn serve(listener: TcpListener, ctx: UploadContext, shutdown: CancellationToken) {
    let connections = Arc::new(Connections::default());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, from)) => {
                    let uncapped = ctx.limits.loopback_uncapped && from.ip().is_loopback();
                    let cap = if uncapped { 0 } else { ctx.limits.connections_per_address };
                    let Some(slot) = connections.open(from.ip(), cap) else {
                        tracing::debug!(%from, "too many upload connections from one address; refused");
                        continue;
                    };
                    let _ = stream.set_nodelay(true);
                    // Keep little unsent data in the kernel, so a transfer holds its turn
                    // (`SENDERS`) until its bytes are on the wire, not merely queued.
                    let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(NOTSENT_LOWAT);
                    let ctx = ctx.clone();
                    let shutdown = shutdown.clone();
                    tokio::spawn(async move {
                        let _slot = slot;
                        tokio::select! {
                            _ = shutdown.cancelled() => {}
                            r = accepted_connection(stream, ctx) => if let Err(e) = r {
                                tracing::debug!(%from, error = %e, "upload connection ended");
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Serves one accepted connection: in plain text, or once its TLS handshake is done and its
/// certificate names a dfdaemon of this cluster.
async fn accepted_connection(stream: TcpStream, ctx: UploadContext) -> std::io::Result<()> {
    let Some(tls) = ctx.tls.clone() else {
        let (rd, wr) = stream.into_split();
        return connection(rd, wr, ctx).await;
    };
    let handshake = TlsAcceptor::from(tls.server_config()).accept(stream);
    let mut stream = tokio::time::timeout(ctx.limits.request, handshake)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake not done in time"))??;
    // A whole chunk is encrypted in one go (rustls queues 64 KiB by default, which would wake
    // the sender four times per chunk).
    stream.get_mut().1.set_buffer_limit(Some(2 * TLS_CHUNK));
    let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.as_ref());
    if let Err(why) = tls.admits(leaf) {
        tracing::warn!(reason = %why, "a piece connection with a certificate of the CA that may not fetch pieces; closed");
        return Ok(());
    }
    let (rd, wr) = tokio::io::split(stream);
    connection(rd, wr, ctx).await
}

async fn connection<R, W>(mut rd: R, wr: W, ctx: UploadContext) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: Body,
{
    let mut wr = BufWriter::with_capacity(256 * 1024, wr);
    loop {
        let op = match tokio::time::timeout(ctx.limits.idle, rd.read_u8()).await {
            Err(_) => return Ok(()),
            Ok(Ok(op)) => op,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
        };
        let head = async {
            let id_len = rd.read_u8().await? as usize;
            let mut id = vec![0; id_len];
            rd.read_exact(&mut id).await?;
            Ok::<_, std::io::Error>((id, rd.read_u32().await?))
        };
        let (id, piece) = tokio::time::timeout(ctx.limits.request, head)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request not sent in time"))??;
        if op != OP_GET_PIECE {
            reply(&mut wr, Status::Error, format!("unknown op {op}").as_bytes()).await?;
            return Ok(());
        }
        let Ok(id) = String::from_utf8(id) else {
            reply(&mut wr, Status::Error, b"task id is not UTF-8").await?;
            return Ok(());
        };
        serve_piece(&mut wr, &ctx, TaskId(id), piece).await?;
    }
}

async fn reply<W: AsyncWriteExt + Unpin>(wr: &mut W, status: Status, body: &[u8]) -> std::io::Result<()> {
    wr.write_u8(status as u8).await?;
    wr.write_u64(body.len() as u64).await?;
    wr.write_all(body).await?;
    wr.flush().await
}

async fn serve_piece<W: Body>(
    wr: &mut BufWriter<W>,
    ctx: &UploadContext,
    id: TaskId,
    piece: u32,
) -> std::io::Result<()> {
    let Some(task) = ctx.storage.get(&id) else {
        return reply(wr, Status::NotFound, b"no such task").await;
    };
    let Some(range) = task.finished_range(piece) else {
        return reply(wr, Status::NotFound, b"piece not finished").await;
    };
    if !task.intact() {
        // Its file was edited through an output linked to it: never serve that.
        tracing::warn!(task_id = %id, "cached content was changed outside the cache; forgetting it");
        let _ = task.reset();
        return reply(wr, Status::NotFound, b"piece not finished").await;
    }
    let Ok(_slot) = ctx.slots.clone().try_acquire_owned() else {
        return reply(wr, Status::Busy, b"upload slots full").await;
    };
    let Ok(_queued) = ctx.queue.clone().try_acquire_owned() else {
        return reply(wr, Status::Busy, b"upload queue full").await;
    };
    let _active = if ctx.one_upload_per_piece {
        let key = (id.clone(), piece);
        if !ctx.active.lock().unwrap_or_else(|p| p.into_inner()).insert(key.clone()) {
            return reply(wr, Status::Busy, b"piece is being uploaded to another peer").await;
        }
        ActivePiece(&ctx.active, Some(key))
    } else {
        ActivePiece(&ctx.active, None)
    };
    let file = match task.reader() {
        Ok(f) => f,
        Err(e) => return reply(wr, Status::Error, e.to_string().as_bytes()).await,
    };
    let len = range.end - range.start;
    wr.write_u8(Status::Ok as u8).await?;
    wr.write_u64(len).await?;
    wr.flush().await?;
    wr.get_mut().send_range(&file, range.start, len, &ctx.limiter, &ctx.senders, ctx.limits.stalled).await?;
    ctx.metrics.upload_traffic.inc_by(len);
    task.touch();
    Ok(())
}

/// Most bytes handed to one `sendfile` call, so the rate limiter stays fine-grained.
const SENDFILE_CHUNK: u64 = 1 << 20;

/// Transfers that send at a time. One piece at the full uplink, then the next, rather than
/// several sharing it: each child gets its piece sooner and passes it on sooner, which is how
/// a piece reaches everyone in a few full-speed hops. The waiting transfers start the moment
/// the one before has handed its last byte to the kernel, so the uplink never idles between.
pub const SENDERS: usize = 1;

/// Transfers sending or waiting for their turn at most: a child whose piece would wait behind
/// more (about 0.6 s of a 20 MiB/s uplink with 4 MiB pieces) is told `Busy` and asks another
/// parent. The host's `[upload] concurrency` caps all its transfers above that.
pub const QUEUE: usize = 4;

/// Unsent bytes an upload socket takes before it stops being writable (`TCP_NOTSENT_LOWAT`):
/// a few milliseconds of an uplink. Bytes in flight are not limited by it, so a long fat path
/// still fills.
const NOTSENT_LOWAT: u32 = 128 * 1024;

/// How long a transfer may hold its turn while its socket takes nothing (a slow or stuck
/// child) before it lets the next transfer send; it queues again for a turn when it can write.
const STALLED_TURN: std::time::Duration = std::time::Duration::from_millis(20);

/// The writing half of a piece connection: how a piece's bytes get onto it.
trait Body: AsyncWrite + Unpin + Send {
    /// Sends `len` bytes of `file` from `offset`, only while holding a turn from `senders`;
    /// gives the turn up while the child takes nothing, and fails after `stalled` of that.
    fn send_range(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
        limiter: &RateLimiter,
        senders: &Semaphore,
        stalled: Duration,
    ) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
}

fn closed() -> std::io::Error {
    std::io::Error::other("upload server closed")
}

fn took_nothing() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, "the child took no bytes")
}

/// Plain text: `sendfile(2)` copies from the page cache to the socket, and the bytes never enter
/// this process.
impl Body for OwnedWriteHalf {
    async fn send_range(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
        limiter: &RateLimiter,
        senders: &Semaphore,
        stalled: Duration,
    ) -> std::io::Result<()> {
        let stream: &TcpStream = self.as_ref();
        let mut turn = Some(senders.acquire().await.map_err(|_| closed())?);
        let mut off = offset as i64;
        let end = offset + len;
        while (off as u64) < end {
            let chunk = (end - off as u64).min(SENDFILE_CHUNK);
            limiter.acquire(chunk).await;
            let mut left = chunk;
            while left > 0 {
                match tokio::time::timeout(STALLED_TURN, stream.writable()).await {
                    Ok(ready) => ready?,
                    Err(_) => {
                        turn = None;
                        tokio::time::timeout(stalled.saturating_sub(STALLED_TURN), stream.writable())
                            .await
                            .map_err(|_| took_nothing())??;
                    }
                }
                if turn.is_none() {
                    turn = Some(senders.acquire().await.map_err(|_| closed())?);
                }
                match stream.try_io(tokio::io::Interest::WRITABLE, || {
                    nix::sys::sendfile::sendfile(stream, file, Some(&mut off), left as usize)
                        .map_err(std::io::Error::from)
                }) {
                    Ok(0) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "content file shorter than piece",
                        ));
                    }
                    Ok(n) => left -= n as u64,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}

/// Bytes read from the content file and encrypted at a time over TLS.
const TLS_CHUNK: usize = 256 * 1024;

/// TLS: each chunk is read from the content file (the page cache, usually), and rustls encrypts
/// it into records on the way to the socket.
impl Body for tokio::io::WriteHalf<TlsStream<TcpStream>> {
    async fn send_range(
        &mut self,
        file: &std::fs::File,
        offset: u64,
        len: u64,
        limiter: &RateLimiter,
        senders: &Semaphore,
        stalled: Duration,
    ) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let mut turn = Some(senders.acquire().await.map_err(|_| closed())?);
        let mut buf = vec![0u8; TLS_CHUNK.min(len as usize)];
        let (mut off, end) = (offset, offset + len);
        while off < end {
            let n = (end - off).min(buf.len() as u64) as usize;
            file.read_exact_at(&mut buf[..n], off).map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "content file shorter than piece")
                }
                _ => e,
            })?;
            limiter.acquire(n as u64).await;
            let mut sent = 0;
            while sent < n {
                // rustls takes what it can encrypt and queue; nothing taken for a while means
                // the child is not reading.
                let written = match tokio::time::timeout(STALLED_TURN, self.write(&buf[sent..n])).await {
                    Ok(written) => written?,
                    Err(_) => {
                        turn = None;
                        tokio::time::timeout(stalled.saturating_sub(STALLED_TURN), self.write(&buf[sent..n]))
                            .await
                            .map_err(|_| took_nothing())??
                    }
                };
                if written == 0 {
                    return Err(std::io::ErrorKind::WriteZero.into());
                }
                sent += written;
                if turn.is_none() {
                    turn = Some(senders.acquire().await.map_err(|_| closed())?);
                }
            }
            off += n as u64;
        }
        tokio::time::timeout(stalled, self.flush()).await.map_err(|_| took_nothing())?
    }
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        net::TcpStream as StdStream,
    };

    use common::{digest::PieceDigest, piece::PieceLayout};

    use super::*;
    use crate::transport::client::{FetchError, PieceConnection};

    const PIECE: u64 = 8 << 20;

    /// An upload server holding one finished 8 MiB piece, with `queue` transfers sending or
    /// waiting at most.
    async fn server(queue: usize) -> (std::net::SocketAddr, CancellationToken, tempfile::TempDir) {
        server_with(queue, Limits::default()).await
    }

    async fn server_with(queue: usize, limits: Limits) -> (std::net::SocketAddr, CancellationToken, tempfile::TempDir) {
        server_over(queue, limits, None).await
    }

    async fn server_over(
        queue: usize,
        limits: Limits,
        tls: Option<PieceTls>,
    ) -> (std::net::SocketAddr, CancellationToken, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let storage = Arc::new(Storage::open(dir.path()).unwrap());
        let task = storage.task(&TaskId("t".into()), "http://o/x").unwrap();
        task.set_layout(PieceLayout::new(PIECE, PIECE).unwrap()).unwrap();
        let bytes = vec![7u8; PIECE as usize];
        task.write_piece(0, &bytes, PieceDigest(*blake3::hash(&bytes).as_bytes())).unwrap();
        let ctx = UploadContext {
            storage,
            slots: Arc::new(Semaphore::new(64)),
            senders: Arc::new(Semaphore::new(SENDERS)),
            queue: Arc::new(Semaphore::new(queue)),
            limiter: Arc::new(RateLimiter::new(0)),
            metrics: Arc::default(),
            one_upload_per_piece: false,
            active: Arc::default(),
            limits,
            tls,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(listener, ctx, shutdown.clone()));
        (addr, shutdown, dir)
    }

    /// Asks for piece 0 and reads only the response's head: a child that stopped reading.
    fn stalled_child(addr: std::net::SocketAddr) -> StdStream {
        let mut s = StdStream::connect(addr).unwrap();
        s.write_all(&[crate::transport::OP_GET_PIECE, 1, b't', 0, 0, 0, 0]).unwrap();
        let mut head = [0u8; 9];
        s.read_exact(&mut head).unwrap();
        assert_eq!(head[0], Status::Ok as u8);
        s
    }

    fn fetch(addr: std::net::SocketAddr) -> Result<(), FetchError> {
        let mut conn = PieceConnection::connect(addr)?;
        let mut got = 0u64;
        conn.fetch_piece("t", 0, PIECE, |chunk| {
            got += chunk.len() as u64;
            Ok::<_, std::io::Error>(())
        })?;
        assert_eq!(got, PIECE);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stalled_child_does_not_hold_the_uplink_and_a_full_queue_answers_busy() {
        let (addr, shutdown, _dir) = server(3).await;
        let outcome = tokio::task::spawn_blocking(move || {
            // One child stops reading mid-piece: after a short while it loses its turn, and the
            // next transfer gets the whole piece.
            let first = stalled_child(addr);
            fetch(addr).expect("a child behind a stalled one is served");
            // Three stalled children (the first among them) fill the queue of three: a fourth is
            // told busy, and served once a place is free.
            let second = stalled_child(addr);
            let third = stalled_child(addr);
            let busy = fetch(addr);
            drop((first, second));
            std::thread::sleep(std::time::Duration::from_millis(100));
            let after = fetch(addr);
            drop(third);
            (busy, after)
        })
        .await
        .unwrap();
        assert!(matches!(outcome.0, Err(FetchError::Busy)), "{:?}", outcome.0.err());
        assert!(outcome.1.is_ok(), "{:?}", outcome.1.err());
        shutdown.cancel();
    }

    /// `attempt`'s first success within 5 s (the deadlines under test are 300 ms; a loaded
    /// machine may take longer to act on them), else its last failure.
    fn eventually<T, E>(mut attempt: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        let until = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match attempt() {
                Err(_) if std::time::Instant::now() < until => std::thread::sleep(Duration::from_millis(50)),
                done => return done,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_child_that_takes_nothing_loses_its_place_and_idle_or_excess_connections_close() {
        // The idle deadline is long enough that the three silent connections are still open when
        // the fourth arrives on a loaded machine, and short enough to wait out.
        let limits = Limits {
            idle: Duration::from_millis(1500),
            request: Duration::from_millis(300),
            stalled: Duration::from_millis(300),
            connections_per_address: 3,
            loopback_uncapped: false,
        };
        let (addr, shutdown, _dir) = server_with(1, limits).await;
        let outcome = tokio::task::spawn_blocking(move || {
            // A stalled child holds the only place in the queue: busy at first, then dropped.
            let stalled = stalled_child(addr);
            let busy = fetch(addr);
            let served = eventually(|| fetch(addr));
            drop(stalled);
            // The dropped child's connection holds its slot until the stall deadline ends it.
            std::thread::sleep(Duration::from_millis(900));

            // Three silent connections are the cap: a fourth is closed at once; after the idle
            // deadline they are closed and a new one is served.
            let silent: Vec<StdStream> = (0..3).map(|_| StdStream::connect(addr).unwrap()).collect();
            std::thread::sleep(Duration::from_millis(100));
            let refused = fetch(addr);
            let mut first = &silent[0];
            let mut byte = [0u8; 1];
            first.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let closed = first.read(&mut byte).map(|n| n == 0);
            let after_idle = eventually(|| fetch(addr));
            // Half a request, then nothing: closed after the request deadline.
            let mut slow = StdStream::connect(addr).unwrap();
            slow.write_all(&[crate::transport::OP_GET_PIECE, 1]).unwrap();
            slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let slow_closed = slow.read(&mut byte).map(|n| n == 0);
            (busy, served, refused, closed, after_idle, slow_closed)
        })
        .await
        .unwrap();
        assert!(matches!(outcome.0, Err(FetchError::Busy)), "{:?}", outcome.0.err());
        assert!(outcome.1.is_ok(), "the stalled transfer gave its place up: {:?}", outcome.1.err());
        assert!(outcome.2.is_err(), "a fourth connection from one address is refused");
        assert!(matches!(outcome.3, Ok(true)), "an idle connection is closed: {:?}", outcome.3);
        assert!(outcome.4.is_ok(), "{:?}", outcome.4.err());
        assert!(matches!(outcome.5, Ok(true)), "a half-sent request is dropped: {:?}", outcome.5);
        shutdown.cancel();
    }

    /// Credentials of a throwaway CA for `component` `host` of `cluster`.
    fn credentials(
        ca: &common::tls::CertificateAuthority,
        component: common::tls::Component,
        cluster: i64,
        host: &str,
    ) -> common::tls::Credentials {
        let identity =
            common::tls::Identity { component, cluster_id: cluster, host_id: common::ids::HostId(host.into()) };
        ca.issue(&identity, &Default::default(), Duration::from_secs(3600)).unwrap()
    }

    fn dialer(creds: &common::tls::Credentials) -> crate::transport::client::Dialer {
        crate::transport::client::Dialer::tls(PieceTls::new(creds).unwrap())
    }

    fn fetch_with(dialer: &crate::transport::client::Dialer, addr: std::net::SocketAddr) -> Result<(), FetchError> {
        let mut conn = dialer.connect(addr)?;
        let mut got = blake3::Hasher::new();
        conn.fetch_piece("t", 0, PIECE, |chunk| {
            got.update(chunk);
            Ok::<_, std::io::Error>(())
        })?;
        assert_eq!(got.finalize(), blake3::hash(&vec![7u8; PIECE as usize]), "the piece's bytes, intact");
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn over_tls_only_dfdaemons_of_the_cluster_fetch_and_children_take_only_such_parents() {
        use common::tls::{CertificateAuthority, Component};
        let (ca, _) = CertificateAuthority::generate("test CA").unwrap();
        let (stranger_ca, _) = CertificateAuthority::generate("another CA").unwrap();
        let parent = credentials(&ca, Component::SeedPeer, 1, "seed-127.0.0.1-seed");
        let (addr, shutdown, _dir) = tls_server(PieceTls::new(&parent).unwrap()).await;
        let outcome = tokio::task::spawn_blocking(move || {
            let child = fetch_with(&dialer(&credentials(&ca, Component::Peer, 1, "a-127.0.0.1")), addr);
            let seed = fetch_with(&dialer(&credentials(&ca, Component::SeedPeer, 1, "b-127.0.0.1-seed")), addr);
            // A dfdaemon of cluster 2 willing to take cluster 1's parents: the parent refuses it.
            let other = credentials(&ca, Component::Peer, 2, "c-127.0.0.1");
            let reaching = PieceTls::reaching(&other, common::tls::Expect::daemon(1)).unwrap();
            let other_cluster = fetch_with(&crate::transport::client::Dialer::tls(reaching), addr);
            let scheduler = fetch_with(&dialer(&credentials(&ca, Component::Scheduler, 1, "s-127.0.0.1")), addr);
            let other_ca = fetch_with(&dialer(&credentials(&stranger_ca, Component::Peer, 1, "d-127.0.0.1")), addr);
            let plain = fetch(addr);
            // A child that stops reading mid-piece gives its turn up over TLS too: the next
            // child's piece arrives while the first still holds its connection.
            let staller = dialer(&credentials(&ca, Component::Peer, 1, "e-127.0.0.1"));
            let stalled = std::thread::spawn(move || {
                let mut conn = staller.connect(addr).unwrap();
                let mut first = true;
                let _ = conn.fetch_piece("t", 0, PIECE, |_| {
                    if std::mem::take(&mut first) {
                        std::thread::sleep(Duration::from_secs(4));
                    }
                    Ok::<_, std::io::Error>(())
                });
            });
            std::thread::sleep(Duration::from_millis(300));
            let started = std::time::Instant::now();
            let behind = fetch_with(&dialer(&credentials(&ca, Component::Peer, 1, "f-127.0.0.1")), addr)
                .map(|()| started.elapsed());
            stalled.join().unwrap();
            (child, seed, other_cluster, scheduler, other_ca, plain, behind)
        })
        .await
        .unwrap();
        assert!(outcome.0.is_ok(), "a peer of the cluster: {:?}", outcome.0.err());
        assert!(outcome.1.is_ok(), "a seed peer of the cluster: {:?}", outcome.1.err());
        assert!(outcome.2.is_err(), "a peer of another cluster is refused");
        assert!(outcome.3.is_err(), "a scheduler's certificate fetches no pieces");
        assert!(outcome.4.is_err(), "a certificate of another CA is refused");
        assert!(outcome.5.is_err(), "plain text gets nothing from a TLS parent");
        let behind = outcome.6.expect("a child behind a stalled one is served");
        assert!(behind < Duration::from_secs(3), "served in {behind:?}, before the stalled child woke");
        shutdown.cancel();

        // The other way: a child takes pieces only from a dfdaemon of its own cluster.
        let (ca, _) = CertificateAuthority::generate("test CA").unwrap();
        let impostor = credentials(&ca, Component::Peer, 2, "x-127.0.0.1");
        let (addr, shutdown, _dir) = tls_server(PieceTls::new(&impostor).unwrap()).await;
        let child = credentials(&ca, Component::Peer, 1, "a-127.0.0.1");
        let refused = tokio::task::spawn_blocking(move || fetch_with(&dialer(&child), addr)).await.unwrap();
        assert!(matches!(refused, Err(FetchError::Unreachable(_))), "{:?}", refused.err());
        shutdown.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revoked_certificate_neither_fetches_nor_serves_pieces() {
        use common::tls::{CertificateAuthority, Component, serial_of};
        let (ca, _) = CertificateAuthority::generate("test CA").unwrap();
        let parent = credentials(&ca, Component::Peer, 1, "p-127.0.0.1");
        let (addr, shutdown, _dir) = tls_server(PieceTls::new(&parent).unwrap()).await;
        let (child, other) =
            (credentials(&ca, Component::Peer, 1, "a-127.0.0.1"), credentials(&ca, Component::Peer, 1, "b-127.0.0.1"));
        let child_serial = serial_of(&child.chain[0]).unwrap();
        let (to_parent, other_dialer) = (dialer(&child), dialer(&other));
        let before = tokio::task::spawn_blocking({
            let to_parent = to_parent.clone();
            move || fetch_with(&to_parent, addr)
        });
        assert!(before.await.unwrap().is_ok(), "served before the revocation");

        // The parent learns the child's serial is revoked: the child is refused, others not.
        parent.revocations().replace([child_serial.as_str()]).unwrap();
        let (refused, served) =
            tokio::task::spawn_blocking(move || (fetch_with(&to_parent, addr), fetch_with(&other_dialer, addr)))
                .await
                .unwrap();
        assert!(refused.is_err(), "a revoked child fetched a piece");
        assert!(served.is_ok(), "another child is served: {:?}", served.err());

        // The child learns the parent's serial is revoked: it takes nothing from that parent.
        parent.revocations().replace(Vec::<String>::new()).unwrap();
        other.revocations().replace([serial_of(&parent.chain[0]).unwrap()]).unwrap();
        let from_revoked = tokio::task::spawn_blocking(move || fetch_with(&dialer(&other), addr)).await.unwrap();
        assert!(matches!(from_revoked, Err(FetchError::Unreachable(_))), "{:?}", from_revoked.err());
        shutdown.cancel();
    }

    /// An upload server over TLS with `tls`, holding the 8 MiB piece.
    async fn tls_server(tls: PieceTls) -> (std::net::SocketAddr, CancellationToken, tempfile::TempDir) {
        server_over(4, Limits::default(), Some(tls)).await
    }

    /// Whoever reaches the port may send any bytes: the server answers each complete request
    /// in order with one well-formed frame, refuses what is not a piece request and closes,
    /// and never serves a piece it has not finished or bytes other than the piece's.
    mod properties {
        use std::net::Shutdown;

        use proptest::prelude::*;

        use super::*;

        /// Task `t`: three pieces of 1 KiB, 1 KiB and 952 B, of which 0 and 2 are finished.
        const LAYOUT: (u64, u64) = (3000, 1024);
        const FINISHED: [u32; 2] = [0, 2];

        fn piece_bytes(n: u32) -> Vec<u8> {
            let layout = PieceLayout::new(LAYOUT.0, LAYOUT.1).unwrap();
            (0..layout.len_of(n).unwrap()).map(|i| (i as u8).wrapping_mul(31).wrapping_add(n as u8)).collect()
        }

        async fn server() -> (std::net::SocketAddr, CancellationToken, tempfile::TempDir) {
            let dir = tempfile::tempdir().unwrap();
            let storage = Arc::new(Storage::open(dir.path()).unwrap());
            let task = storage.task(&TaskId("t".into()), "http://o/x").unwrap();
            task.set_layout(PieceLayout::new(LAYOUT.0, LAYOUT.1).unwrap()).unwrap();
            for n in FINISHED {
                let bytes = piece_bytes(n);
                task.write_piece(n, &bytes, PieceDigest(*blake3::hash(&bytes).as_bytes())).unwrap();
            }
            let ctx = UploadContext {
                storage,
                slots: Arc::new(Semaphore::new(64)),
                senders: Arc::new(Semaphore::new(SENDERS)),
                queue: Arc::new(Semaphore::new(QUEUE)),
                limiter: Arc::new(RateLimiter::new(0)),
                metrics: Arc::default(),
                one_upload_per_piece: false,
                active: Arc::default(),
                limits: Limits::default(),
                tls: None,
            };
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let shutdown = CancellationToken::new();
            tokio::spawn(serve(listener, ctx, shutdown.clone()));
            (addr, shutdown, dir)
        }

        /// One request as a child sends it, its op and id sometimes wrong.
        fn request() -> impl Strategy<Value = Vec<u8>> {
            let op = prop_oneof![4 => Just(crate::transport::OP_GET_PIECE), 1 => any::<u8>()];
            let id = prop_oneof![
                3 => Just(b"t".to_vec()),
                1 => "[0-9a-f]{64}".prop_map(String::into_bytes),
                1 => proptest::collection::vec(any::<u8>(), 0..=255),
            ];
            let piece = prop_oneof![3 => 0..4u32, 1 => any::<u32>()];
            (op, id, piece).prop_map(|(op, id, piece)| {
                let mut bytes = vec![op, id.len() as u8];
                bytes.extend(id);
                bytes.extend(piece.to_be_bytes());
                bytes
            })
        }

        /// Requests, perhaps cut short or followed by junk, or junk alone.
        fn stream() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                3 => (proptest::collection::vec(request(), 0..6), any::<prop::sample::Index>(), any::<bool>()).prop_map(
                    |(requests, cut, whole)| {
                        let bytes = requests.concat();
                        if whole { bytes } else { bytes[..cut.index(bytes.len() + 1)].to_vec() }
                    }
                ),
                1 => proptest::collection::vec(any::<u8>(), 0..300),
            ]
        }

        /// One answer: its status, and the piece's bytes when OK.
        type Answer = (Status, Option<Vec<u8>>);

        /// What the server must answer: one answer per complete request up to the first it
        /// refuses, and whether input was left unread after it.
        fn expected(input: &[u8]) -> (Vec<Answer>, bool) {
            let mut answers = Vec::new();
            let mut rest = input;
            while let [op, id_len, tail @ ..] = rest {
                let id_len = usize::from(*id_len);
                if tail.len() < id_len + 4 {
                    break;
                }
                let (id, tail) = tail.split_at(id_len);
                let piece = u32::from_be_bytes(tail[..4].try_into().unwrap());
                rest = &tail[4..];
                if *op != crate::transport::OP_GET_PIECE || std::str::from_utf8(id).is_err() {
                    answers.push((Status::Error, None));
                    return (answers, !rest.is_empty());
                }
                if id == b"t" && FINISHED.contains(&piece) {
                    answers.push((Status::Ok, Some(piece_bytes(piece))));
                } else {
                    answers.push((Status::NotFound, None));
                }
            }
            (answers, false)
        }

        /// Sends `input`, closes the sending half, and reads the answer to its end (sending
        /// fails when the server has already refused and reset the connection).
        fn exchange(addr: std::net::SocketAddr, input: &[u8]) -> (Vec<u8>, std::io::Result<()>) {
            let mut s = StdStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let sent = s.write_all(input).and_then(|()| s.shutdown(Shutdown::Write));
            let mut out = Vec::new();
            let end = s.read_to_end(&mut out).map(|_| ());
            (out, sent.and(end))
        }

        /// The frames in `bytes`, and whatever trails the last whole one.
        fn frames(mut bytes: &[u8]) -> (Vec<(u8, Vec<u8>)>, usize) {
            let mut frames = Vec::new();
            while bytes.len() >= 9 {
                let len = u64::from_be_bytes(bytes[1..9].try_into().unwrap());
                let Some(body) = usize::try_from(len).ok().and_then(|len| bytes[9..].get(..len)) else { break };
                frames.push((bytes[0], body.to_vec()));
                bytes = &bytes[9 + body.len()..];
            }
            (frames, bytes.len())
        }

        #[test]
        fn any_bytes_get_well_formed_answers_to_complete_requests_only() {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            let (addr, shutdown, _dir) = runtime.block_on(server());
            let mut runner = proptest::test_runner::TestRunner::new(crate::proptest_config(128));
            let outcome = runner.run(&stream(), |input| {
                let (want, leftover) = expected(&input);
                let (got, end) = exchange(addr, &input);
                let (got, trailing) = frames(&got);
                for (status, body) in &got {
                    prop_assert!(Status::from_u8(*status).is_some(), "status {status}");
                    if *status != Status::Ok as u8 {
                        prop_assert!(body.len() <= 4096 && std::str::from_utf8(body).is_ok(), "reason {body:?}");
                    }
                }
                let got: Vec<Answer> = got
                    .into_iter()
                    .map(|(status, body)| {
                        let status = Status::from_u8(status).unwrap();
                        (status, (status == Status::Ok).then_some(body))
                    })
                    .collect();
                if leftover {
                    // Closing with unread input resets the connection, which may cut the last
                    // answer short: what arrived is a prefix of what was due.
                    prop_assert!(got.len() <= want.len() && got[..] == want[..got.len()], "{got:?} for {want:?}");
                } else {
                    prop_assert!(end.is_ok(), "{end:?}");
                    prop_assert_eq!(trailing, 0);
                    prop_assert_eq!(got, want);
                }
                Ok(())
            });
            // The server is still up for a well-behaved child.
            let (after, _) = exchange(addr, &[crate::transport::OP_GET_PIECE, 1, b't', 0, 0, 0, 2]);
            shutdown.cancel();
            outcome.unwrap();
            assert_eq!(frames(&after).0, vec![(Status::Ok as u8, piece_bytes(2))]);
        }
    }
}
