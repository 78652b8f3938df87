//! rustls under tonic, on both ends.
//!
//! Servers take [`TlsIncoming`] in place of a plain listener stream: handshakes run off the
//! accept loop (a slow or silent client holds only its own task, for at most
//! [`HANDSHAKE_TIMEOUT`]), and each connection carries a [`PeerInfo`] that tonic attaches to
//! every request on it, so a handler asks [`Caller::of`](super::Caller::of) who is calling.
//! Clients get a lazily-connecting tonic `Channel` from [`channel`], which dials TCP and runs
//! the handshake with the configuration given (whose verifier decides whom to accept).

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hyper_util::rt::TokioIo;
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::mpsc,
};
use tokio_rustls::{TlsAcceptor, TlsConnector, server::TlsStream};
use tonic::transport::{Channel, Endpoint, server::Connected};

use super::{Caller, Error, Identity, Revocations, serial_of};

/// A client must finish its handshake within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once; more connections wait in the kernel's backlog.
const HANDSHAKES_AT_ONCE: usize = 256;

/// Who a TLS connection is from; tonic puts it on each request.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote: SocketAddr,
    pub caller: Caller,
    /// The serial of the certificate the caller showed, if any.
    pub serial: Option<String>,
    /// The server's revocation list, consulted again at each request: a connection opened before
    /// its certificate was revoked serves nothing after.
    pub revoked: Revocations,
}

impl PeerInfo {
    /// The caller as of now: [`Caller::Revoked`] once its certificate's serial is revoked.
    pub fn caller_now(&self) -> Caller {
        match (&self.caller, &self.serial) {
            (Caller::Known(id), Some(serial)) if self.revoked.contains(serial) => Caller::Revoked(id.clone()),
            (caller, _) => caller.clone(),
        }
    }
}

/// A server-side TLS connection with what its certificate proved.
#[derive(Debug)]
pub struct TlsConn {
    stream: TlsStream<TcpStream>,
    info: PeerInfo,
}

impl Connected for TlsConn {
    type ConnectInfo = PeerInfo;
    fn connect_info(&self) -> PeerInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepted, handshaken connections of a listener, for `serve_with_incoming`.
pub struct TlsIncoming {
    connections: mpsc::Receiver<io::Result<TlsConn>>,
    acceptor: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TlsIncoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIncoming").finish_non_exhaustive()
    }
}

impl TlsIncoming {
    /// Starts accepting on `listener` with `config`; stops when dropped. `revoked` is the
    /// list `config`'s verifier refuses (from the same credentials), checked again per request.
    pub fn new(listener: TcpListener, config: Arc<ServerConfig>, revoked: Revocations) -> Self {
        let (tx, connections) = mpsc::channel(16);
        let acceptor = tokio::spawn(accept(listener, TlsAcceptor::from(config), revoked, tx));
        Self { connections, acceptor }
    }
}

impl Drop for TlsIncoming {
    fn drop(&mut self) {
        self.acceptor.abort();
    }
}

impl tokio_stream::Stream for TlsIncoming {
    type Item = io::Result<TlsConn>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.connections.poll_recv(cx)
    }
}

/// What a plain HTTP/1 client that reached a TLS port is told.
const PLAIN_HTTP_ANSWER: &str =
    r#"{"code":"bad_request","message":"this port speaks HTTPS (TLS): use an https:// URL"}"#;

/// When the first bytes on a connection are a plain HTTP/1 request line rather than a TLS
/// record, answers `400` with a JSON body saying to use `https://` and closes: whoever typed
/// `http://` learns why, instead of seeing the connection drop. Anything else goes on to the
/// handshake; true when the connection was answered.
async fn answered_plain_http(tcp: &mut TcpStream) -> bool {
    use tokio::io::AsyncWriteExt;
    const METHODS: [&[u8; 4]; 9] = [b"GET ", b"HEAD", b"POST", b"PUT ", b"DELE", b"PATC", b"OPTI", b"CONN", b"TRAC"];
    let mut head = [0u8; 4];
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    // A request line's first four bytes may come in more than one segment.
    loop {
        match tokio::time::timeout_at(deadline, tcp.peek(&mut head)).await {
            Ok(Ok(n)) if n >= 4 => break,
            Ok(Ok(n)) if n > 0 && head[0] != 0x16 && METHODS.iter().any(|m| m.starts_with(&head[..n])) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            _ => return false,
        }
    }
    if !METHODS.contains(&&head) {
        return false;
    }
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{PLAIN_HTTP_ANSWER}",
        PLAIN_HTTP_ANSWER.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        tcp.write_all(answer.as_bytes()).await?;
        tcp.shutdown().await
    })
    .await;
    true
}

async fn accept(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    revoked: Revocations,
    tx: mpsc::Sender<io::Result<TlsConn>>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(HANDSHAKES_AT_ONCE));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of descriptors and the like: say so, breathe, go on.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, tx, revoked) = (acceptor.clone(), tx.clone(), revoked.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let mut tcp = tcp;
            if answered_plain_http(&mut tcp).await {
                return tracing::debug!(%remote, "plain HTTP on a TLS port: answered 400");
            }
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return tracing::debug!(%remote, error = %e, "TLS handshake refused"),
                Err(_) => return tracing::debug!(%remote, "TLS handshake timed out"),
            };
            let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first());
            let serial = leaf.and_then(|leaf| serial_of(leaf).ok());
            let caller = match leaf {
                None => Caller::Anonymous,
                Some(leaf) => match Identity::from_cert(leaf) {
                    Ok(id) => Caller::Known(id),
                    Err(e) => {
                        tracing::warn!(%remote, error = %e, "a certificate of the CA without a usable identity");
                        Caller::Anonymous
                    }
                },
            };
            let _ = tx.send(Ok(TlsConn { stream, info: PeerInfo { remote, caller, serial, revoked } })).await;
        });
    }
}

/// A lazily-connecting channel to `addr` (`host:port`) over TLS with `config`.
pub fn channel(addr: &str, config: Arc<ClientConfig>, connect_timeout: Duration) -> Result<Channel, Error> {
    let endpoint = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Error::Malformed { what: "address", detail: format!("{addr:?}: {e}") })?
        .connect_timeout(connect_timeout);
    let connector = TlsConnector::from(config);
    Ok(endpoint.connect_with_connector_lazy(tower::service_fn(move |uri: tonic::codegen::http::Uri| {
        let connector = connector.clone();
        async move {
            let host = uri.host().unwrap_or("localhost").trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            let _ = tcp.set_nodelay(true);
            // The verifier checks the certificate's identity, not this name; it only has to parse.
            let name = ServerName::try_from(host).unwrap_or_else(|_| ServerName::try_from("localhost").unwrap());
            let stream = connector.connect(name, tcp).await?;
            Ok::<_, io::Error>(TokioIo::new(stream))
        }
    })))
}

/// A response stream that ends with `Unauthenticated` once the certificate of the connection
/// its request came on is revoked: long-lived streams (a dfdaemon's orders, a seed's tasks, a
/// download's parents) stop serving a revoked host at once, not at its next call.
pub struct UntilRevoked<S> {
    inner: S,
    watch: Option<(PeerInfo, tokio_stream::wrappers::WatchStream<u64>)>,
    done: bool,
}

/// The connection a request came on, kept to end its response stream if the caller's
/// certificate is revoked ([`UntilRevoked`]).
#[derive(Debug, Clone)]
pub struct Revocable(Option<PeerInfo>);

impl Revocable {
    /// What `request` came on (a plaintext or anonymous caller has nothing to revoke).
    pub fn of<R>(request: &tonic::Request<R>) -> Self {
        Self(request.extensions().get::<PeerInfo>().filter(|info| info.serial.is_some()).cloned())
    }

    /// `inner`, ending once the certificate is revoked.
    pub fn wrap<S>(self, inner: S) -> UntilRevoked<S> {
        let watch = self.0.map(|info| (tokio_stream::wrappers::WatchStream::from_changes(info.revoked.watch()), info));
        UntilRevoked { inner, watch: watch.map(|(w, i)| (i, w)), done: false }
    }
}

impl<S, T> tokio_stream::Stream for UntilRevoked<S>
where
    S: tokio_stream::Stream<Item = Result<T, tonic::Status>> + Unpin,
{
    type Item = Result<T, tonic::Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Some((info, changes)) = &mut self.watch {
            while let Poll::Ready(Some(_)) = Pin::new(&mut *changes).poll_next(cx) {
                if let Caller::Revoked(id) = info.caller_now() {
                    self.done = true;
                    let message = format!("the certificate of {id} was revoked; enrol again");
                    return Poll::Ready(Some(Err(tonic::Status::unauthenticated(message))));
                }
            }
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}
