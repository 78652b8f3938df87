//! Keeping the schedulers informed about this host: announce to each at start, periodically and
//! whenever the list changes; leave on shutdown. A scheduler answering with a boot id not seen
//! before (met for the first time, or restarted with an empty task table) also hears what the
//! cache holds of its tasks (`cached`). A scheduler that is down only delays the
//! announcement; downloads keep working.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use common::ids::HostId;
use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use tokio_util::sync::CancellationToken;

use super::{cached::CacheAnnouncer, scheduler_set::SchedulerSet};
use crate::config::DfdaemonConfig;

/// Announces until `shutdown`, then tells the schedulers the host leaves.
pub async fn run(
    config: DfdaemonConfig,
    upload_port: u16,
    schedulers: SchedulerSet,
    cache: CacheAnnouncer,
    announced_tx: tokio::sync::watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let id = host_id(&config);
    let host = pb_common::Host {
        id: id.to_string(),
        hostname: config.host.hostname.clone(),
        ip: config.host.ip.to_string(),
        upload_port: u32::from(upload_port),
        r#type: if config.seed { pb_common::HostType::Seed } else { pb_common::HostType::Normal } as i32,
        idc: config.host.idc.clone(),
        location: config.host.location.clone(),
        upload_limit: config.upload.concurrency,
        version: common::VERSION.into(),
        ..Default::default()
    };
    let mut tick = tokio::time::interval(Duration::from_secs(config.scheduler.announce_interval_secs));
    let mut changes = schedulers.subscribe();
    let mut announced = HashSet::new();
    // Each scheduler's boot id as last seen: a new one means it knows nothing of this cache.
    let mut boot_ids: HashMap<std::net::SocketAddr, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            Ok(()) = changes.changed() => {}
        }
        for addr in schedulers.addrs() {
            let result = async {
                let mut client = pb::scheduler_client::SchedulerClient::new(schedulers.channel(addr)?);
                let answer = client.announce_host(pb::AnnounceHostRequest { host: Some(host.clone()) }).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(answer.into_inner().boot_id)
            }
            .await;
            match result {
                Ok(boot_id) => {
                    if announced.insert(addr) {
                        tracing::info!(host_id = %id, scheduler = %addr, "announced to scheduler");
                    }
                    if boot_ids.get(&addr) != Some(&boot_id) {
                        boot_ids.insert(addr, boot_id);
                        tokio::spawn(tell_cache(cache.clone(), schedulers.clone(), addr));
                    }
                }
                Err(e) => tracing::warn!(error = %e, scheduler = %addr, "announce failed; will retry"),
            }
        }
        // Streams open once every scheduler of the round has heard of this host (those that
        // answered): one that has not would refuse the stream for a second.
        if !announced.is_empty() {
            announced_tx.send_if_modified(|a| !std::mem::replace(a, true));
        }
    }
    let leave_all = async {
        for addr in announced {
            let leave = async {
                let mut client = pb::scheduler_client::SchedulerClient::new(schedulers.channel(addr)?);
                client.leave_host(pb::LeaveHostRequest { host_id: id.to_string() }).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            };
            match leave.await {
                Ok(()) => tracing::info!(scheduler = %addr, "left the scheduler"),
                Err(e) => tracing::warn!(error = %e, scheduler = %addr, "leaving the scheduler failed"),
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(2), leave_all).await.is_err() {
        tracing::warn!("leaving the schedulers timed out");
    }
}

/// Tells a scheduler met for the first time or restarted (a new boot id) what this host's cache
/// holds of its tasks.
async fn tell_cache(cache: CacheAnnouncer, schedulers: SchedulerSet, addr: std::net::SocketAddr) {
    match cache.announce_owned(&schedulers, addr).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(scheduler = %addr, tasks = n, "cached tasks announced"),
        Err(e) => tracing::warn!(scheduler = %addr, error = %e, "announcing cached tasks failed"),
    }
}

/// This host's id as announced.
pub fn host_id(config: &DfdaemonConfig) -> HostId {
    HostId::for_host(&config.host.hostname, &config.host.ip.to_string(), config.seed)
}
