//! Running the scheduler on listeners the caller bound, until a token is cancelled.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::{Error, config::SchedulerConfig, http, resource::Hosts, rpc::SchedulerService};

/// The sockets the scheduler serves on (port 0 is fine).
#[derive(Debug)]
pub struct Listeners {
    /// gRPC for peers.
    pub grpc: TcpListener,
    /// `/healthy` and `/metrics`.
    pub http: TcpListener,
}

/// A scheduler with its state.
#[derive(Debug)]
pub struct Scheduler {
    config: SchedulerConfig,
    hosts: Arc<Hosts>,
}

impl Scheduler {
    /// A scheduler with empty state.
    pub fn new(config: SchedulerConfig) -> Self {
        Self {
            config,
            hosts: Arc::default(),
        }
    }

    /// The hosts it knows, for inspection by tests and the HTTP side.
    pub fn hosts(&self) -> Arc<Hosts> {
        self.hosts.clone()
    }

    /// Serves gRPC and HTTP until `shutdown` is cancelled.
    pub async fn serve(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let started = Instant::now();
        let ttl = Duration::from_secs(self.config.gc.host_ttl_secs);
        let service = SchedulerService {
            hosts: self.hosts.clone(),
            host_ttl_secs: self.config.gc.host_ttl_secs,
        };
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_serving::<proto::scheduler::v1::scheduler_server::SchedulerServer<SchedulerService>>()
            .await;

        let gc = tokio::spawn(collect_garbage(self.hosts.clone(), ttl, shutdown.clone()));
        let grpc = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(proto::scheduler::v1::scheduler_server::SchedulerServer::new(service))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listeners.grpc),
                shutdown.clone().cancelled_owned(),
            );
        let http = axum::serve(listeners.http, http::router(self.hosts.clone(), started))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let (grpc, http) = tokio::join!(grpc, http);
        gc.abort();
        grpc?;
        http?;
        Ok(())
    }
}

async fn collect_garbage(hosts: Arc<Hosts>, ttl: Duration, shutdown: CancellationToken) {
    let period = (ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let removed = hosts.collect_garbage(ttl, Instant::now());
                if removed > 0 {
                    tracing::info!(removed, "forgot hosts that stopped announcing");
                }
            }
        }
    }
}
