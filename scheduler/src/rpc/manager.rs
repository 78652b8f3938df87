//! The scheduler as a client of the manager (`damselfly.manager.v1`): register, keep alive, and
//! follow the cluster's settings.
//!
//! The manager is never on the scheduling path. Registration retries in the background with
//! backoff, so the scheduler serves from its first second; when the manager is unreachable the
//! scheduler keeps the limits it last received (or its own configuration's). Each keepalive
//! session re-registers first, so a manager that lost its row (a fresh database) relearns it.
//! Each keepalive carries the scheduler's figures (tasks, peers, traffic by source), from which
//! the manager draws the console's charts, and the tasks that changed since the previous one,
//! which the manager keeps as their history (a task's graph outlives this scheduler's memory).

use std::{collections::HashMap, net::IpAddr, sync::Arc, time::Duration};

use common::{
    ids::{HostId, TaskId},
    tls::{Component, Credentials, Expect, Expected, KeyRequest},
};

use proto::manager::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::{
    Error,
    config::SchedulerConfig,
    metrics::Metrics,
    resource::{Hosts, Tasks},
    scheduling::{BlockList, Limits, LiveBlockList, LiveLimits},
};

/// Where the manager is and how this scheduler presents itself to it.
#[derive(Debug, Clone)]
pub struct Registration {
    pub manager_addr: String,
    pub cluster_id: u64,
    pub hostname: String,
    pub ip: IpAddr,
    /// The bound gRPC port peers reach.
    pub port: u16,
    pub idc: String,
    pub location: String,
    pub keepalive_interval: Duration,
    pub config_refresh: Duration,
}

impl Registration {
    /// From the configuration, once the gRPC listener is bound to `grpc_addr`; `None` when the
    /// scheduler runs standalone.
    pub fn from_config(config: &SchedulerConfig, grpc_addr: std::net::SocketAddr) -> Option<Self> {
        if config.manager.addr.is_empty() {
            return None;
        }
        let ip = advertised_ip(config, grpc_addr);
        Some(Self {
            manager_addr: config.manager.addr.clone(),
            cluster_id: config.manager.cluster_id,
            hostname: config.host.hostname.clone(),
            ip,
            port: grpc_addr.port(),
            idc: config.host.idc.clone(),
            location: config.host.location.clone(),
            keepalive_interval: Duration::from_secs(config.manager.keepalive_interval_secs),
            config_refresh: Duration::from_secs(config.manager.config_refresh_secs),
        })
    }
}

/// The address peers reach this scheduler on.
pub fn advertised_ip(config: &SchedulerConfig, grpc_addr: std::net::SocketAddr) -> IpAddr {
    config
        .host
        .ip
        .unwrap_or_else(|| if grpc_addr.ip().is_unspecified() { IpAddr::from([127, 0, 0, 1]) } else { grpc_addr.ip() })
}

impl Registration {
    /// What this scheduler's certificate must name.
    pub fn expected(&self) -> Expected {
        Expected {
            component: Component::Scheduler,
            host_id: HostId::for_host(&self.hostname, &self.ip.to_string(), false),
            cluster_id: i64::try_from(self.cluster_id).ok(),
        }
    }
}

/// The credentials this scheduler serves and calls with: per `[tls]`, enrolling with the join
/// token when needed. `None` in plaintext mode.
pub async fn credentials(
    config: &SchedulerConfig,
    grpc_addr: std::net::SocketAddr,
    reg: Option<&Registration>,
) -> Result<Option<Credentials>, Error> {
    let expected = reg.map(Registration::expected).unwrap_or_else(|| Expected {
        component: Component::Scheduler,
        host_id: HostId::for_host(&config.host.hostname, &advertised_ip(config, grpc_addr).to_string(), false),
        cluster_id: i64::try_from(config.manager.cluster_id).ok(),
    });
    let enrol = |token, request: KeyRequest| async move {
        match reg {
            Some(reg) => proto::enrol::enrol(&reg.manager_addr, token, request, &reg.hostname, reg.ip).await,
            None => Err(common::tls::Error::Enrolment(
                "a standalone scheduler (no manager.addr) cannot enrol; give it [tls] cert, key and ca".into(),
            )),
        }
    };
    Ok(common::tls::obtain(&config.tls, Some(&config.manager.join_token), &expected, enrol).await?)
}

/// First delay after a failure; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the cluster's settings change at runtime.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub limits: LiveLimits,
    pub block_list: LiveBlockList,
    /// The revoked serials this scheduler refuses (its credentials'); `None` without TLS.
    pub revoked: Option<common::tls::Revocations>,
}

/// Where the keepalive's figures come from.
#[derive(Debug, Clone)]
pub struct Reporter {
    pub tasks: Arc<Tasks>,
    pub hosts: Arc<Hosts>,
    pub metrics: Arc<Metrics>,
}

/// Tasks sent per keepalive at most; the rest go in the next ones.
const TASKS_PER_KEEPALIVE: usize = 32;

/// Which version of each task one keepalive stream has sent.
#[derive(Debug, Default)]
struct SentTasks {
    versions: HashMap<TaskId, u64>,
}

impl SentTasks {
    /// Snapshots of the tasks changed since they were last sent (up to the per-message cap),
    /// marked as sent; forgets tasks the scheduler no longer holds.
    fn changed(&mut self, reporter: &Reporter) -> Vec<proto::scheduler::v1::TaskInfo> {
        let cells = reporter.tasks.cells();
        let held: std::collections::HashSet<&TaskId> = cells.iter().map(|(id, _)| id).collect();
        self.versions.retain(|id, _| held.contains(id));
        let mut out = Vec::new();
        for (id, cell) in cells {
            if out.len() == TASKS_PER_KEEPALIVE {
                break;
            }
            let version = cell.revision();
            if self.versions.get(&id) == Some(&version) {
                continue;
            }
            let snapshot = cell.lock().snapshot();
            if snapshot.peers.is_empty() {
                continue;
            }
            out.push(super::task_info(snapshot, &reporter.hosts));
            self.versions.insert(id, version);
        }
        out
    }
}

impl Reporter {
    fn stats(&self) -> pb::SchedulerStats {
        let census = self.tasks.census();
        let totals = self.metrics.totals();
        pb::SchedulerStats {
            tasks: census.tasks,
            peers: census.peers,
            running_peers: census.running_peers,
            back_to_source_bytes: totals.back_to_source_bytes,
            peer_bytes: totals.peer_bytes,
            succeeded: totals.succeeded,
            failed: totals.failed,
        }
    }
}

/// Registers and keeps alive until `shutdown`, applying the cluster's settings to `policy`;
/// over TLS with `credentials` when given.
pub async fn run(
    reg: Registration,
    credentials: Option<Credentials>,
    policy: Policy,
    reporter: Reporter,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let channel = match &credentials {
        Some(c) => common::tls::channel(&reg.manager_addr, c.client_config(Expect::MANAGER)?, Duration::from_secs(3))?,
        None => Endpoint::from_shared(format!("http://{}", reg.manager_addr))
            .map_err(|e| Error::Config(format!("manager.addr {:?}: {e}", reg.manager_addr)))?
            .connect_timeout(Duration::from_secs(3))
            .connect_lazy(),
    };
    tokio::join!(
        keep_registered(&reg, channel.clone(), &policy, &reporter, &shutdown),
        follow_cluster_config(&reg, channel, &policy, &shutdown),
    );
    Ok(())
}

/// Register, then hold a keepalive stream; after any failure wait (with backoff) and start over.
async fn keep_registered(
    reg: &Registration,
    channel: Channel,
    policy: &Policy,
    reporter: &Reporter,
    shutdown: &CancellationToken,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let mut client = pb::manager_client::ManagerClient::new(channel.clone());
        let session = async {
            let scheduler = client.update_scheduler(update_request(reg)).await?.into_inner();
            if let Some(c) = scheduler.cluster_config {
                apply(policy, &c);
            }
            tracing::info!(id = scheduler.id, cluster_id = reg.cluster_id, manager = %reg.manager_addr, "registered with the manager");
            keep_alive(&mut client, reg, reporter, shutdown).await
        };
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = session => r,
        };
        if shutdown.is_cancelled() {
            return;
        }
        match result {
            Ok(()) => {
                tracing::info!(manager = %reg.manager_addr, "the manager ended the keepalive stream; reconnecting")
            }
            Err(e) => {
                tracing::warn!(manager = %reg.manager_addr, error = %e.message(), "manager unreachable; retrying")
            }
        }
        // A session that lasted is a fresh failure, not a repeated one.
        if started.elapsed() > reg.keepalive_interval * 4 {
            backoff = MIN_BACKOFF;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sends a keepalive every interval until the manager ends the stream or `shutdown`. Dropping
/// the call on shutdown resets the stream, which the manager reads as "inactive".
async fn keep_alive(
    client: &mut pb::manager_client::ManagerClient<Channel>,
    reg: &Registration,
    reporter: &Reporter,
    shutdown: &CancellationToken,
) -> Result<(), tonic::Status> {
    let (tx, rx) = mpsc::channel(1);
    let message = pb::KeepAliveRequest {
        source_type: pb::SourceType::Scheduler as i32,
        hostname: reg.hostname.clone(),
        ip: reg.ip.to_string(),
        cluster_id: reg.cluster_id,
        ..Default::default()
    };
    let interval = reg.keepalive_interval;
    let sender = async move {
        let mut tick = tokio::time::interval(interval);
        // A new stream (maybe to another replica, or a manager with a fresh database) gets every
        // task again.
        let mut sent = SentTasks::default();
        loop {
            tick.tick().await;
            let message = pb::KeepAliveRequest {
                scheduler_stats: Some(reporter.stats()),
                tasks: sent.changed(reporter),
                ..message.clone()
            };
            if tx.send(message).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        () = sender => Ok(()),
        r = client.keep_alive(ReceiverStream::new(rx)) => r.map(|_| ()),
    }
}

/// Reads the cluster's settings every `config_refresh`; failures keep the last ones.
async fn follow_cluster_config(reg: &Registration, channel: Channel, policy: &Policy, shutdown: &CancellationToken) {
    let mut client = pb::manager_client::ManagerClient::new(channel);
    let mut tick = tokio::time::interval(reg.config_refresh);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match client.get_cluster_config(pb::GetClusterConfigRequest { cluster_id: reg.cluster_id }).await {
            Ok(c) => apply(policy, &c.into_inner()),
            Err(e) => tracing::debug!(error = %e.message(), "cluster settings unavailable; keeping the last ones"),
        }
    }
}

fn update_request(reg: &Registration) -> pb::UpdateSchedulerRequest {
    pb::UpdateSchedulerRequest {
        hostname: reg.hostname.clone(),
        ip: reg.ip.to_string(),
        port: u32::from(reg.port),
        idc: reg.idc.clone(),
        location: reg.location.clone(),
        features: vec!["schedule".into()],
        version: common::VERSION.into(),
        cluster_id: reg.cluster_id,
    }
}

/// Takes the cluster's parent limits, clamped to what the scheduler accepts in its own
/// configuration (1–20 parents, 10–1000 candidates).
fn apply(policy: &Policy, c: &pb::ClusterConfig) {
    if let Some(revoked) = &policy.revoked {
        match revoked.replace(&c.revoked_serials) {
            Ok(0) => {}
            Ok(n) => tracing::info!(newly_revoked = n, total = revoked.len(), "refusing revoked certificates"),
            Err(e) => tracing::warn!(error = %e, "the cluster's revocation list is unusable; keeping the last one"),
        }
    }
    let list = c.block_list.clone().unwrap_or_default();
    let (block_list, bad) = BlockList::new(list.applications, &list.urls, list.tags);
    if !bad.is_empty() {
        tracing::warn!(patterns = ?bad, "ignoring block-list URL patterns that do not compile");
    }
    policy.block_list.set(block_list);
    let limits = &policy.limits;
    let next = Limits {
        candidate_parent_limit: (c.candidate_parent_limit as usize).clamp(1, 20),
        filter_parent_limit: (c.filter_parent_limit as usize).clamp(10, 1000),
        peer_load_limit: (c.peer_load_limit > 0).then_some(c.peer_load_limit),
        seed_load_limit: (c.seed_peer_load_limit > 0).then_some(c.seed_peer_load_limit),
        // The cluster's settings carry no back-to-source cap: the configuration's stays.
        back_to_source_limit: limits.get().back_to_source_limit,
        origin_ranges_at_once: limits.get().origin_ranges_at_once,
    };
    if limits.get() != next {
        tracing::info!(
            candidate_parent_limit = next.candidate_parent_limit,
            filter_parent_limit = next.filter_parent_limit,
            peer_load_limit = ?next.peer_load_limit,
            seed_load_limit = ?next.seed_load_limit,
            "applying the cluster's limits"
        );
        limits.set(next);
    }
}
