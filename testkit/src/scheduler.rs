//! A scheduler in-process over real gRPC ([`TestScheduler`]), with handles on its state so a
//! test can see hosts and tasks without asking over the wire.

use std::{sync::Arc, time::Duration};

use scheduler::{
    Listeners, Scheduler,
    config::SchedulerConfig,
    resource::{Hosts, Tasks},
    scheduling::LiveLimits,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

/// A running scheduler.
pub struct TestScheduler {
    /// `127.0.0.1:<port>` of its gRPC API (what peers are given).
    pub addr: String,
    /// `http://127.0.0.1:<port>` of its `/healthy` and `/metrics`.
    pub http: String,
    pub hosts: Arc<Hosts>,
    pub tasks: Arc<Tasks>,
    pub limits: LiveLimits,
    pub shutdown: CancellationToken,
    task: JoinHandle<Result<(), scheduler::Error>>,
}

/// A scheduler configuration that registers with the manager at `manager` (gRPC address) as
/// `hostname`, keeping alive every second.
pub fn registering(manager: &str, hostname: &str) -> SchedulerConfig {
    let mut c = SchedulerConfig::default();
    c.manager.addr = manager.into();
    c.manager.keepalive_interval_secs = 1;
    c.host.hostname = hostname.into();
    c
}

impl TestScheduler {
    /// Starts a scheduler; unless its configuration says otherwise it runs mutual TLS with a
    /// certificate of the test CA naming it (`scheduler-127.0.0.1` when it has no hostname).
    pub async fn start(mut config: SchedulerConfig) -> Self {
        crate::init_logs();
        if config.host.hostname.is_empty() {
            config.host.hostname = "scheduler".into();
        }
        if config.tls.mode == common::tls::Mode::Mtls && config.tls.cert.is_none() {
            let host = common::ids::HostId::for_host(&config.host.hostname, "127.0.0.1", false);
            let cluster = i64::try_from(config.manager.cluster_id).unwrap();
            config.tls = crate::pki::settings_for(common::tls::Component::Scheduler, cluster, &host);
        }
        let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = grpc.local_addr().unwrap().to_string();
        let http_base = format!("http://{}", http.local_addr().unwrap());
        let scheduler = Scheduler::new(config);
        let (hosts, tasks, limits) = (scheduler.hosts(), scheduler.tasks(), scheduler.limits());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(scheduler.serve(Listeners { grpc, http }, shutdown.clone()));
        Self { addr, http: http_base, hosts, tasks, limits, shutdown, task }
    }

    /// `http://` + [`addr`](Self::addr), for gRPC clients.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits (up to 5 s) until `n` hosts have announced themselves; panics otherwise.
    pub async fn wait_for_hosts(&self, n: usize) {
        let hosts = &self.hosts;
        crate::eventually(&format!("{n} hosts to announce themselves"), Duration::from_secs(5), || async move {
            hosts.len() == n
        })
        .await;
    }

    /// Cancels the scheduler and waits (up to 10 s) for a clean stop.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.unwrap().unwrap().unwrap();
    }
}
