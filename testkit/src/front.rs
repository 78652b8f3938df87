//! One address in front of several servers ([`Front`]), as the load balancer before a set of
//! manager replicas: each connection goes to the next server in turn that accepts it, bytes
//! relayed both ways (TLS passes through untouched). A server that is gone refuses, and the
//! connection goes to the next; a server that dies closes the connections it held.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::net::{TcpListener, TcpStream};

/// A TCP front on `127.0.0.1:<port>`; it stops when dropped.
pub struct Front {
    /// Where clients connect.
    pub addr: SocketAddr,
    servers: Arc<Mutex<Vec<SocketAddr>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Front {
    /// Listens on a free loopback port and relays to `servers`, taking them in turn.
    pub async fn start(servers: Vec<SocketAddr>) -> Self {
        assert!(!servers.is_empty(), "a front needs servers");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let servers = Arc::new(Mutex::new(servers));
        let turn = Arc::new(AtomicUsize::new(0));
        let shared = servers.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let servers = shared.lock().unwrap().clone();
                let first = turn.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    for i in 0..servers.len() {
                        let Ok(mut server) = TcpStream::connect(servers[(first + i) % servers.len()]).await else {
                            continue;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        return;
                    }
                });
            }
        });
        Self { addr, servers, task }
    }

    /// Adds a server; connections from now on may go to it.
    pub fn add(&self, server: SocketAddr) {
        self.servers.lock().unwrap().push(server);
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}
