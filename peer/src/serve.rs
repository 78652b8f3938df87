//! Running the dfdaemon on listeners the caller bound, until a token is cancelled.

use std::{sync::Arc, time::Instant};

use tokio::{
    net::{TcpListener, UnixListener},
    sync::Semaphore,
};
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;

use crate::{
    Error,
    config::DfdaemonConfig,
    download::{Downloader, DownloaderConfig, OriginClients},
    gc, http,
    limiter::RateLimiter,
    metrics::Metrics,
    proxy,
    rpc::{DfdaemonService, announce, manager, orders, scheduler_set::SchedulerSet, seed},
    storage::Storage,
    transport::{
        client::Dialer,
        server::{self as upload, UploadContext},
    },
};

/// The sockets the dfdaemon serves on.
#[derive(Debug)]
pub struct Listeners {
    /// The local download API (dfget's endpoint).
    pub socket: UnixListener,
    /// `/healthy` and `/metrics`.
    pub http: TcpListener,
    /// The piece transport other peers download from.
    pub upload: TcpListener,
    /// The HTTP proxy and registry mirror.
    pub proxy: TcpListener,
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
    pub async fn serve(self, listeners: Listeners, shutdown: CancellationToken) -> Result<(), Error> {
        let config = self.config;
        let started = Instant::now();
        let storage = Arc::new(Storage::open(&config.data_dir.join("storage"))?);
        let rules = proxy::ProxyRules {
            p2p: config
                .proxy
                .rules
                .iter()
                .map(|r| regex::Regex::new(r).map_err(|e| Error::Config(format!("proxy.rules: {e}"))))
                .collect::<Result<_, _>>()?,
            upstreams: config.proxy.upstreams()?,
            auth_cache_ttl: std::time::Duration::from_secs(config.proxy.auth_cache_secs),
            blob_digest_task_id: config.proxy.blob_digest_task_id,
        };
        let http_client = OriginClients::with_roots(
            config.proxy.target_policy()?,
            &proxy::connect::upstream_roots(&config.proxy.connect)?,
        )?;
        let connect = proxy::connect::Connect::new(&config.proxy.connect, &config.data_dir, shutdown.clone())?;
        // The schedulers: the static ones, replaced by the manager's answers when a manager is set.
        let static_scheduler = config.scheduler.static_addrs();
        // A host with neither scheduler nor manager talks to no one but origins.
        let networked = !static_scheduler.is_empty() || !config.manager.addr.is_empty();
        let credentials = if networked { manager::credentials(&config).await? } else { None };
        let scheduler_tls = credentials
            .as_ref()
            .map(|c| c.client_config(common::tls::Expect::scheduler(Some(c.identity.cluster_id))))
            .transpose()?;
        let renewal = match &credentials {
            Some(c) if config.tls.cert.is_none() && !config.manager.addr.is_empty() => {
                Some(tokio::spawn(proto::enrol::keep_renewed(
                    config.manager.addr.clone(),
                    c.clone(),
                    config.tls.dir.clone(),
                    shutdown.clone(),
                )))
            }
            _ => None,
        };
        // Pieces travel over mutual TLS whenever the gRPC hops do.
        let piece_tls = credentials.as_ref().map(crate::transport::tls::PieceTls::new).transpose()?;
        let schedulers = (!static_scheduler.is_empty() || !config.manager.addr.is_empty())
            .then(|| SchedulerSet::new(static_scheduler, scheduler_tls));
        let host_id = announce::host_id(&config);
        let metrics = Arc::new(Metrics::default());
        let downloader = Downloader::new(
            storage.clone(),
            http_client.clone(),
            schedulers.clone(),
            DownloaderConfig {
                host_id: host_id.clone(),
                concurrency: config.download.concurrency,
                download_rate: config.download.rate_limit,
                back_to_source_rate: config.download.back_to_source_rate_limit,
                back_to_source_concurrency: config.download.back_to_source_concurrency,
                dialer: piece_tls.clone().map(Dialer::tls).unwrap_or_default(),
            },
            metrics.clone(),
            shutdown.clone(),
        );

        let upload_port = listeners.upload.local_addr()?.port();
        let (announced_tx, announced_rx) = tokio::sync::watch::channel(false);
        let announcer = schedulers
            .clone()
            .map(|set| tokio::spawn(announce::run(config.clone(), upload_port, set, announced_tx, shutdown.clone())));
        let manager_client = match (&schedulers, config.manager.addr.is_empty()) {
            (Some(set), false) => Some(tokio::spawn(manager::run(
                config.clone(),
                credentials.clone(),
                upload_port,
                set.clone(),
                metrics.clone(),
                shutdown.clone(),
            ))),
            _ => None,
        };
        let order_taker = schedulers.clone().map(|set| {
            tokio::spawn(orders::run(
                storage.clone(),
                downloader.clone(),
                set,
                host_id.clone(),
                announced_rx.clone(),
                shutdown.clone(),
            ))
        });
        let seeder = match (&schedulers, config.seed) {
            (Some(set), true) => Some(tokio::spawn(seed::run(
                downloader.clone(),
                set.clone(),
                host_id.clone(),
                announced_rx,
                shutdown.clone(),
            ))),
            _ => None,
        };

        let gc_task = tokio::spawn(gc::run(
            storage.clone(),
            config.data_dir.join("storage"),
            gc::GcPolicy {
                task_ttl: std::time::Duration::from_secs(config.gc.task_ttl_secs),
                high_watermark_percent: config.gc.disk_high_watermark_percent,
                low_watermark_percent: config.gc.disk_low_watermark_percent,
            },
            std::time::Duration::from_secs(config.gc.interval_secs),
            shutdown.clone(),
        ));
        let upload_ctx = UploadContext {
            storage: storage.clone(),
            slots: Arc::new(Semaphore::new(config.upload.concurrency as usize)),
            senders: Arc::new(Semaphore::new(crate::transport::server::SENDERS)),
            queue: Arc::new(Semaphore::new(crate::transport::server::QUEUE)),
            limiter: Arc::new(RateLimiter::new(config.upload.rate_limit)),
            metrics: metrics.clone(),
            one_upload_per_piece: config.seed,
            active: Arc::default(),
            limits: crate::transport::server::Limits::default(),
            tls: piece_tls,
        };
        let (reporter, health) = tonic_health::server::health_reporter();
        reporter.set_serving::<proto::dfdaemon::v1::dfdaemon_server::DfdaemonServer<DfdaemonService>>().await;
        let grpc = tonic::transport::Server::builder()
            .add_service(health)
            .add_service(proto::dfdaemon::v1::dfdaemon_server::DfdaemonServer::new(DfdaemonService::new(
                downloader.clone(),
            )))
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(listeners.socket),
                shutdown.clone().cancelled_owned(),
            );
        let http = axum::serve(listeners.http, http::router(started, metrics.clone()))
            .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let upload = upload::serve(listeners.upload, upload_ctx, shutdown.clone());
        let proxy = proxy::serve(listeners.proxy, downloader, http_client, rules, connect, shutdown.clone());
        let (grpc, http, (), proxy) = tokio::join!(grpc, http, upload, proxy);
        for task in [announcer, seeder, order_taker, Some(gc_task), renewal].into_iter().flatten() {
            let _ = task.await;
        }
        if let Some(task) = manager_client {
            let _ = task.await;
        }
        for t in storage.tasks() {
            let _ = t.persist();
        }
        let _ = std::fs::remove_file(&config.server.socket);
        grpc?;
        http?;
        proxy?;
        Ok(())
    }
}
