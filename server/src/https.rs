//! The REST API and console over HTTPS, when `[server] tls_cert` and `tls_key` are set.
//!
//! The listener is [`common::tls::TlsIncoming`], the one gRPC uses: handshakes run off the accept
//! loop, each within a deadline, so a client that connects and says nothing (or speaks plain
//! HTTP, which is no TLS handshake) holds only its own task and is dropped. [`HttpsListener`]
//! hands the finished connections to `axum::serve`, which speaks HTTP/2 or HTTP/1.1 as ALPN
//! settled.
//!
//! The console's server functions call the API over loopback as the visitor (`console::api::
//! client`), so that the API's authorization decides for the console too. Over HTTPS they dial
//! the same listener and trust exactly the manager's own leaf certificate
//! ([`common::tls::own_certificate_client`]): its names are those browsers use, not
//! `127.0.0.1`, and its issuer may be a CA this host does not trust, yet whoever answers with
//! that certificate on the manager's own port holds its key. Calling the router in-process
//! instead would mean a second client in the console, one that skips the listener's layers;
//! a second plain listener on loopback would be one more surface. Neither is simpler.

use std::{io, net::SocketAddr, path::Path};

use axum::serve::Listener;
use common::tls::{TlsIncoming, WebIdentity, transport::TlsConn};
use tokio::net::TcpListener;
use tonic::transport::server::Connected;

use crate::Error;

/// Reads the certificate chain and key `[server] tls_cert` and `tls_key` name.
pub fn load(cert: &Path, key: &Path) -> Result<WebIdentity, Error> {
    let read = |path: &Path, what: &str| {
        std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("server.{what}: cannot read {}: {e}", path.display())))
    };
    WebIdentity::from_pem(&read(cert, "tls_cert")?, &read(key, "tls_key")?)
        .map_err(|e| Error::Config(format!("server.tls_cert / server.tls_key: {e}")))
}

/// The console's client of the API over loopback HTTPS: it trusts exactly the manager's own
/// certificate, and speaks HTTP/1.1 (reqwest is built without HTTP/2 here).
pub fn loopback_client(identity: &WebIdentity) -> Result<reqwest::Client, Error> {
    let mut tls = common::tls::own_certificate_client(identity.leaf().clone())
        .map_err(|e| Error::Config(format!("server.tls_cert: {e}")))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .map_err(|e| Error::Config(format!("the console's client of the API: {e}")))
}

/// Handshaken HTTPS connections of a bound listener, for `axum::serve`.
pub struct HttpsListener {
    incoming: TlsIncoming,
    local: SocketAddr,
}

impl HttpsListener {
    /// Starts accepting on `listener`, presenting `identity`.
    pub fn new(listener: TcpListener, identity: &WebIdentity) -> Result<Self, Error> {
        let local = listener.local_addr()?;
        let config = identity.server_config().map_err(|e| Error::Config(format!("server.tls_cert: {e}")))?;
        Ok(Self { incoming: TlsIncoming::new(listener, config, Default::default()), local })
    }
}

impl Listener for HttpsListener {
    type Io = TlsConn;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TlsConn, SocketAddr) {
        use tokio_stream::StreamExt;
        loop {
            match self.incoming.next().await {
                Some(Ok(conn)) => {
                    let remote = conn.connect_info().remote;
                    return (conn, remote);
                }
                // Failed handshakes are logged and dropped where they happen.
                Some(Err(e)) => tracing::debug!(error = %e, "HTTPS connection failed"),
                // The acceptor ends only with the listener; `axum::serve` is stopping then.
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}
