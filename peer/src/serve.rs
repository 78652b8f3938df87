//! Running the dfdaemon on listeners the caller bound, until a token is cancelled.

use std::time::Instant;

use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;

use crate::{Error, announce, config::DfdaemonConfig, http, rpc::DfdaemonService};

/// The sockets the dfdaemon serves on.
#[derive(Debug)]
pub struct Listeners {
    /// The local download API (dfget's endpoint).
    pub socket: UnixListener,
    /// `/healthy` and `/metrics`.
    pub http: TcpListener,
    /// The piece transport other peers will download from. Bound and announced now so the port is
    /// stable; connections are refused until the data plane serves pieces on it.
    pub upload: TcpListener,
}

/// A configured dfdaemon.
#[derive(Debug)]
pub struct Dfdaemon {
    config: DfdaemonConfig,
}

impl Dfdaemon {
    /// A dfdaemon with `config`.
    pub fn new(config: DfdaemonConfig) -> Self {
        Self { config }
    }

    /// Serves until `shutdown` is cancelled.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let client = reqwest::Client::builder()
            .user_agent(concat!("damselfly-dfdaemon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let upload_port = listeners.upload.local_addr()?.port();
        let announcer = (!self.config.scheduler.addr.is_empty()).then(|| {
            tokio::spawn(announce::run(
                self.config.clone(),
                upload_port,
                shutdown.clone(),
            ))
        });

        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_serving::<proto::dfdaemon::v1::dfdaemon_server::DfdaemonServer<DfdaemonService>>()
            .await;
        let grpc = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(proto::dfdaemon::v1::dfdaemon_server::DfdaemonServer::new(
                DfdaemonService { client },
            ))
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(listeners.socket),
                shutdown.clone().cancelled_owned(),
            );
        let http = axum::serve(listeners.http, http::router(started))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let upload = refuse_until_data_plane(listeners.upload, shutdown.clone());
        let (grpc, http, ()) = tokio::join!(grpc, http, upload);
        if let Some(announcer) = announcer {
            let _ = announcer.await;
        }
        let _ = std::fs::remove_file(&self.config.server.socket);
        grpc?;
        http?;
        Ok(())
    }
}

async fn refuse_until_data_plane(listener: TcpListener, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            accepted = listener.accept() => if let Ok((_, from)) = accepted {
                tracing::debug!(%from, "piece transport not served yet; closing connection");
            },
        }
    }
}
