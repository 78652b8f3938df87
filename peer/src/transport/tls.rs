//! Mutual TLS on the piece transport: only dfdaemons of this host's cluster fetch its pieces,
//! and a child takes pieces only from a parent of its cluster.
//!
//! The certificates are the ones the gRPC hops use (the cluster's CA, renewed in place); the
//! piece transport speaks its own ALPN ([`ALPN`]), so a connection of one protocol is never taken
//! for the other. Pieces are still checked against the scheduler's digests: TLS adds who may
//! read them and keeps them private on the wire.
//!
//! The client receives on a blocking thread, so it runs rustls over a std `TcpStream` read
//! through a large buffer: rustls reads the socket a few KiB at a time, and that buffer turns
//! those reads into one system call per [`READ_BUFFER`].

use std::{
    io::{self, BufReader, Read, Write},
    net::TcpStream,
    sync::Arc,
};

use common::tls::{ClientAuth, Credentials, Expect, Identity};
use rustls::{ClientConfig, ClientConnection, ServerConfig, StreamOwned};
use rustls_pki_types::ServerName;

use crate::Error;

/// The piece transport's application protocol name.
pub const ALPN: &[u8] = b"damselfly-pieces/1";

/// Encrypted bytes read from the socket at a time by a client.
const READ_BUFFER: usize = 256 * 1024;

/// Both ends' TLS for this host: what it presents and whom it accepts.
#[derive(Debug, Clone)]
pub struct PieceTls {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
    accept: Expect,
}

impl PieceTls {
    /// Configurations from this host's credentials: peers of its own cluster only, either way.
    pub fn new(credentials: &Credentials) -> Result<Self, Error> {
        let accept = Expect::daemon(credentials.identity.cluster_id);
        let mut server = (*credentials.server_config(ClientAuth::Required)?).clone();
        server.alpn_protocols = vec![ALPN.to_vec()];
        let mut client = (*credentials.client_config(accept)?).clone();
        client.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Self { server: Arc::new(server), client: Arc::new(client), accept })
    }

    /// A client presenting `credentials` but taking whichever parent `expect` names: a test's
    /// stand-in for a dfdaemon of another cluster that would fetch from this one.
    #[cfg(test)]
    pub(crate) fn reaching(credentials: &Credentials, expect: Expect) -> Result<Self, Error> {
        let mut tls = Self::new(credentials)?;
        let mut client = (*credentials.client_config(expect)?).clone();
        client.alpn_protocols = vec![ALPN.to_vec()];
        tls.client = Arc::new(client);
        Ok(tls)
    }

    /// The server side's configuration (client certificates of the CA required).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// Whether a client that showed `leaf` (already chained to the CA by the handshake) may
    /// fetch pieces here.
    pub fn admits(&self, leaf: Option<&[u8]>) -> Result<Identity, String> {
        let leaf = leaf.ok_or("no client certificate")?;
        let id = Identity::from_cert(leaf).map_err(|e| e.to_string())?;
        if self.accept.accepts(&id) { Ok(id) } else { Err(format!("{id} is not a dfdaemon of this cluster")) }
    }

    /// Runs the client handshake on `tcp` (blocking, within its timeouts).
    pub fn connect(&self, tcp: TcpStream) -> io::Result<ClientStream> {
        // The verifier checks the certificate's identity, never a name: any name parses.
        let name = ServerName::try_from("parent.damselfly").expect("a valid DNS name");
        let conn = ClientConnection::new(self.client.clone(), name).map_err(io::Error::other)?;
        let mut stream = StreamOwned::new(conn, Wire(BufReader::with_capacity(READ_BUFFER, tcp)));
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(ClientStream(Box::new(stream)))
    }
}

/// A client's TLS connection to a parent.
#[derive(Debug)]
pub struct ClientStream(Box<StreamOwned<ClientConnection, Wire>>);

impl Read for ClientStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for ClientStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// The socket under a client's TLS: reads through the buffer, writes straight through.
#[derive(Debug)]
struct Wire(BufReader<TcpStream>);

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_mut().write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.get_mut().write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.get_mut().flush()
    }
}
