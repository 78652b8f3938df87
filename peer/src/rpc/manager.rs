//! The dfdaemon as a client of the manager (`damselfly.manager.v1`): learn the schedulers, and
//! keep this host alive there (as a seed peer, registered first, or as a peer).
//!
//! The manager only names schedulers; it is never on a download's path. Its answers replace the
//! [`SchedulerSet`] when they name at least one scheduler, so a manager that is down, or a
//! cluster whose schedulers are all restarting, leaves the host on the last known list (or the
//! static `scheduler.addr`/`addrs` if the manager never answered). Each keepalive carries the host's
//! upload rate since the previous one: its load on the console's topology.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use proto::manager::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use common::tls::{Component, Credentials, Expect, Expected, KeyRequest};

use super::scheduler_set::SchedulerSet;
use crate::{Error, config::DfdaemonConfig, metrics::Metrics};

/// The credentials this host calls the manager and schedulers with: per `[tls]`, enrolling with
/// the join token when needed. `None` in plaintext mode.
pub async fn credentials(config: &DfdaemonConfig) -> Result<Option<Credentials>, Error> {
    let expected = Expected {
        component: if config.seed { Component::SeedPeer } else { Component::Peer },
        host_id: super::announce::host_id(config),
        // A seed peer serves the cluster it is configured for; a peer, the one its token names.
        cluster_id: config.seed.then(|| i64::try_from(config.manager.cluster_id).unwrap_or_default()),
    };
    let enrol = |token, request: KeyRequest| async move {
        if config.manager.addr.is_empty() {
            return Err(common::tls::Error::Enrolment(
                "without manager.addr this host cannot enrol; give it [tls] cert, key and ca".into(),
            ));
        }
        proto::enrol::enrol(&config.manager.addr, token, request, &config.host.hostname, config.host.ip).await
    };
    Ok(common::tls::obtain(&config.tls, Some(&config.manager.join_token), &expected, enrol).await?)
}

const MIN_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What this host tells the manager about itself.
#[derive(Debug, Clone)]
struct Me {
    hostname: String,
    ip: String,
    idc: String,
    location: String,
    upload_port: u16,
    seed: bool,
    /// Cluster a seed peer registers in.
    seed_cluster_id: u64,
    keepalive_interval: Duration,
    refresh_interval: Duration,
    /// The revoked serials this host refuses as parent or child (its credentials'); `None`
    /// without TLS.
    revoked: Option<common::tls::Revocations>,
}

/// Follows the manager until `shutdown`.
pub async fn run(
    config: DfdaemonConfig,
    credentials: Option<Credentials>,
    upload_port: u16,
    schedulers: SchedulerSet,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let channel = match &credentials {
        Some(c) => {
            common::tls::channel(&config.manager.addr, c.client_config(Expect::MANAGER)?, Duration::from_secs(3))?
        }
        None => Endpoint::from_shared(format!("http://{}", config.manager.addr))
            .map_err(|e| Error::Config(format!("manager.addr {:?}: {e}", config.manager.addr)))?
            .connect_timeout(Duration::from_secs(3))
            .connect_lazy(),
    };
    let me = Me {
        hostname: config.host.hostname.clone(),
        ip: config.host.ip.to_string(),
        idc: config.host.idc.clone(),
        location: config.host.location.clone(),
        upload_port,
        seed: config.seed,
        seed_cluster_id: config.manager.cluster_id,
        keepalive_interval: Duration::from_secs(config.manager.keepalive_interval_secs),
        refresh_interval: Duration::from_secs(config.manager.refresh_interval_secs),
        revoked: credentials.as_ref().map(|c| c.revocations().clone()),
    };
    // The cluster the manager placed this (normal) peer in, which its keepalive names.
    let (cluster_tx, cluster_rx) = watch::channel(me.seed.then_some(me.seed_cluster_id));
    tokio::join!(
        list_schedulers(&me, channel.clone(), &schedulers, &cluster_tx, &shutdown),
        keep_alive(&me, channel, cluster_rx, &metrics, &shutdown),
    );
    Ok(())
}

/// Asks for schedulers at start (retrying with backoff until the first answer) and then every
/// refresh interval.
async fn list_schedulers(
    me: &Me,
    channel: Channel,
    schedulers: &SchedulerSet,
    cluster: &watch::Sender<Option<u64>>,
    shutdown: &CancellationToken,
) {
    let mut client = pb::manager_client::ManagerClient::new(channel);
    let request = pb::ListSchedulersRequest {
        hostname: me.hostname.clone(),
        ip: me.ip.clone(),
        idc: me.idc.clone(),
        location: me.location.clone(),
        version: common::VERSION.into(),
        os: std::env::consts::OS.into(),
        platform: std::env::consts::ARCH.into(),
        download_port: u32::from(me.upload_port),
        seed_peer: me.seed,
    };
    let mut backoff = MIN_BACKOFF;
    loop {
        let wait = match client.list_schedulers(request.clone()).await {
            Ok(resp) => {
                let resp = resp.into_inner();
                if !me.seed {
                    cluster.send_replace(Some(resp.cluster_id));
                }
                if let Some(revoked) = &me.revoked {
                    match revoked.replace(&resp.revoked_serials) {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(newly_revoked = n, "refusing revoked certificates"),
                        Err(e) => {
                            tracing::warn!(error = %e, "the manager's revocation list is unusable; keeping the last one")
                        }
                    }
                }
                let addrs: Vec<SocketAddr> = resp
                    .schedulers
                    .iter()
                    .filter_map(|s| Some(SocketAddr::new(s.ip.parse().ok()?, u16::try_from(s.port).ok()?)))
                    .collect();
                if addrs.is_empty() {
                    tracing::warn!(
                        cluster_id = resp.cluster_id,
                        "the manager knows no active scheduler; keeping the last list"
                    );
                } else if schedulers.replace(addrs.clone()) {
                    tracing::info!(?addrs, cluster_id = resp.cluster_id, "schedulers from the manager");
                }
                backoff = MIN_BACKOFF;
                // Until some scheduler is known, ask again soon.
                if schedulers.addrs().is_empty() {
                    MIN_BACKOFF.max(Duration::from_secs(1))
                } else {
                    me.refresh_interval
                }
            }
            Err(e) => {
                tracing::warn!(error = %e.message(), "cannot list schedulers; keeping the last list");
                let wait = backoff;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                if schedulers.addrs().is_empty() { wait } else { wait.max(me.refresh_interval.min(MAX_BACKOFF)) }
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Holds a keepalive stream (a seed peer registers first), reconnecting with backoff.
async fn keep_alive(
    me: &Me,
    channel: Channel,
    mut cluster: watch::Receiver<Option<u64>>,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let cluster_id = tokio::select! {
            _ = shutdown.cancelled() => return,
            c = cluster.wait_for(Option::is_some) => match c {
                Ok(c) => c.unwrap_or_default(),
                Err(_) => return,
            },
        };
        let mut client = pb::manager_client::ManagerClient::new(channel.clone());
        let session = async {
            if me.seed {
                client
                    .update_seed_peer(pb::UpdateSeedPeerRequest {
                        hostname: me.hostname.clone(),
                        ip: me.ip.clone(),
                        port: u32::from(me.upload_port),
                        download_port: u32::from(me.upload_port),
                        r#type: "super".into(),
                        idc: me.idc.clone(),
                        location: me.location.clone(),
                        version: common::VERSION.into(),
                        cluster_id,
                    })
                    .await?;
                tracing::info!(cluster_id, "registered with the manager as a seed peer");
            }
            let (tx, rx) = mpsc::channel(1);
            let message = pb::KeepAliveRequest {
                source_type: if me.seed { pb::SourceType::SeedPeer } else { pb::SourceType::Peer } as i32,
                hostname: me.hostname.clone(),
                ip: me.ip.clone(),
                cluster_id,
                ..Default::default()
            };
            let interval = me.keepalive_interval;
            let sender = async move {
                let mut tick = tokio::time::interval(interval);
                let mut rate = UploadRate::new(metrics.upload_traffic.get());
                loop {
                    tick.tick().await;
                    let upload_rate = rate.next(metrics.upload_traffic.get(), tokio::time::Instant::now());
                    if tx.send(pb::KeepAliveRequest { upload_rate, ..message.clone() }).await.is_err() {
                        return;
                    }
                }
            };
            tokio::select! {
                () = sender => Ok(()),
                r = client.keep_alive(ReceiverStream::new(rx)) => r.map(|_| ()),
            }
        };
        let started = tokio::time::Instant::now();
        let result = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = session => r,
        };
        if let Err(e) = result {
            tracing::warn!(error = %e.message(), "manager keepalive failed; retrying");
        }
        if started.elapsed() > me.keepalive_interval * 4 {
            backoff = MIN_BACKOFF;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Bytes per second uploaded between two readings of the upload counter.
#[derive(Debug)]
struct UploadRate {
    bytes: u64,
    at: tokio::time::Instant,
}

impl UploadRate {
    fn new(bytes: u64) -> Self {
        Self { bytes, at: tokio::time::Instant::now() }
    }

    /// The rate since the previous reading (0 for a first reading taken at once).
    fn next(&mut self, bytes: u64, now: tokio::time::Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        if elapsed < 0.001 {
            // Too soon to tell; the bytes count towards the next reading.
            return 0;
        }
        let sent = bytes.saturating_sub(self.bytes);
        self.bytes = bytes;
        self.at = now;
        (sent as f64 / elapsed) as u64
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::UploadRate;

    #[test]
    fn upload_rate_is_bytes_per_second_between_readings() {
        let start = tokio::time::Instant::now();
        let mut rate = UploadRate { bytes: 1000, at: start };
        assert_eq!(rate.next(1000 + 4096, start + Duration::from_secs(2)), 2048);
        assert_eq!(rate.next(1000 + 4096, start + Duration::from_secs(3)), 0);
        // A reading at the same instant says nothing yet; its bytes count in the next one.
        assert_eq!(rate.next(9000, start + Duration::from_secs(3)), 0);
        assert_eq!(rate.next(9000, start + Duration::from_secs(4)), 9000 - 5096);
    }
}
