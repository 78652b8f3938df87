//! Running the scheduler on listeners the caller bound, until a token is cancelled.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use common::tls::{ClientAuth, TlsIncoming};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    config::SchedulerConfig,
    http,
    metrics::Metrics,
    resource::{HostOrders, Hosts, Preheats, SeedWatchers, Tasks},
    rpc::{SchedulerService, manager},
    scheduling::{Limits, LiveBlockList, LiveLimits},
};

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
    tasks: Arc<Tasks>,
    /// Parent limits: the configuration's until the manager sends its cluster's.
    limits: LiveLimits,
}

impl Scheduler {
    /// A scheduler with empty state.
    pub fn new(config: SchedulerConfig) -> Self {
        let limits = LiveLimits::new(Limits {
            candidate_parent_limit: config.scheduling.candidate_parent_limit,
            filter_parent_limit: config.scheduling.filter_parent_limit,
            back_to_source_limit: config.scheduling.back_to_source_limit,
            origin_ranges_at_once: config.scheduling.origin_ranges_at_once,
            peer_load_limit: (config.scheduling.peer_load_limit > 0).then_some(config.scheduling.peer_load_limit),
            seed_load_limit: (config.scheduling.seed_peer_load_limit > 0)
                .then_some(config.scheduling.seed_peer_load_limit),
        });
        Self { config, hosts: Arc::default(), tasks: Arc::default(), limits }
    }

    /// The parent limits in force, for inspection by tests.
    pub fn limits(&self) -> LiveLimits {
        self.limits.clone()
    }

    /// The hosts it knows, for inspection by tests and the HTTP side.
    pub fn hosts(&self) -> Arc<Hosts> {
        self.hosts.clone()
    }

    /// The tasks it knows, for inspection by tests.
    pub fn tasks(&self) -> Arc<Tasks> {
        self.tasks.clone()
    }

    /// Serves gRPC and HTTP until `shutdown` is cancelled.
    pub async fn serve(self, listeners: Listeners, shutdown: CancellationToken) -> Result<(), Error> {
        let started = Instant::now();
        let grpc_addr = listeners.grpc.local_addr()?;
        let reg = manager::Registration::from_config(&self.config, grpc_addr);
        let credentials = manager::credentials(&self.config, grpc_addr, reg.as_ref()).await?;
        let ttl = Duration::from_secs(self.config.gc.host_ttl_secs);
        let block_list = LiveBlockList::default();
        block_list.set(self.config.block_list.build()?);
        let service = SchedulerService {
            hosts: self.hosts.clone(),
            tasks: self.tasks.clone(),
            seeds: Arc::new(SeedWatchers::default()),
            orders: Arc::new(HostOrders::default()),
            preheats: Arc::new(Preheats::default()),
            shutdown: shutdown.clone(),
            limits: self.limits.clone(),
            block_list: block_list.clone(),
            host_ttl_secs: self.config.gc.host_ttl_secs,
            metrics: Arc::new(Metrics::default()),
            cluster_id: credentials.as_ref().map(|c| c.identity.cluster_id),
        };
        let metrics = service.metrics.clone();
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<proto::scheduler::v1::scheduler_server::SchedulerServer<SchedulerService>>().await;

        // Enrolled credentials are renewed while the scheduler runs; an operator's files are the
        // operator's to renew.
        let renewal = match (&credentials, &reg) {
            (Some(c), Some(reg)) if self.config.tls.cert.is_none() => Some(tokio::spawn(proto::enrol::keep_renewed(
                reg.manager_addr.clone(),
                c.clone(),
                self.config.tls.dir.clone(),
                shutdown.clone(),
            ))),
            _ => None,
        };
        let registration = reg.map(|reg| {
            tokio::spawn(manager::run(
                reg,
                credentials.clone(),
                manager::Policy {
                    limits: self.limits.clone(),
                    block_list: block_list.clone(),
                    revoked: credentials.as_ref().map(|c| c.revocations().clone()),
                },
                manager::Reporter { tasks: self.tasks.clone(), hosts: self.hosts.clone(), metrics: metrics.clone() },
                shutdown.clone(),
            ))
        });
        let ttls = Ttls {
            host: ttl,
            task: Duration::from_secs(self.config.gc.task_ttl_secs),
            peer: Duration::from_secs(self.config.gc.peer_ttl_secs),
        };
        let gc = tokio::spawn(collect_garbage(self.hosts.clone(), self.tasks.clone(), ttls, shutdown.clone()));
        let router = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(proto::scheduler::v1::scheduler_server::SchedulerServer::new(service));
        let stop = shutdown.clone().cancelled_owned();
        let grpc: std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> =
            match &credentials {
                Some(c) => {
                    let incoming = TlsIncoming::new(
                        listeners.grpc,
                        c.server_config(ClientAuth::Required)?,
                        c.revocations().clone(),
                    );
                    Box::pin(router.serve_with_incoming_shutdown(incoming, stop))
                }
                None => Box::pin(router.serve_with_incoming_shutdown(TcpListenerStream::new(listeners.grpc), stop)),
            };
        let http = axum::serve(listeners.http, http::router(self.hosts.clone(), self.tasks.clone(), metrics, started))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let (grpc, http) = tokio::join!(grpc, http);
        gc.abort();
        if let Some(renewal) = renewal {
            let _ = renewal.await;
        }
        if let Some(registration) = registration {
            // It returns promptly once `shutdown` is cancelled, resetting its keepalive stream.
            let _ = registration.await;
        }
        grpc?;
        http?;
        Ok(())
    }
}

/// How long silent state is kept (`[gc]`).
#[derive(Debug, Clone, Copy)]
struct Ttls {
    host: Duration,
    task: Duration,
    peer: Duration,
}

async fn collect_garbage(hosts: Arc<Hosts>, tasks: Arc<Tasks>, ttls: Ttls, shutdown: CancellationToken) {
    let period = (ttls.host.min(ttls.peer) / 4).clamp(Duration::from_secs(1), Duration::from_secs(60));
    let mut tick = tokio::time::interval(period);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                for gone in hosts.collect_garbage(ttls.host, Instant::now()) {
                    tracing::info!(host_id = %gone, "forgot a host that stopped announcing");
                    tasks.remove_host(&gone);
                }
                let expired = tasks.expire_peers(ttls.peer, Instant::now());
                if expired > 0 {
                    tracing::info!(expired, "forgot peers silent for the peer TTL");
                }
                let removed = tasks.collect_garbage(ttls.task, Instant::now());
                if removed > 0 {
                    tracing::info!(removed, "forgot tasks without peers");
                }
            }
        }
    }
}
