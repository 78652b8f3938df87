//! Keeping the schedulers informed about this host: announce to each at start, periodically and
//! whenever the list changes; leave on shutdown. A scheduler that is down only delays the
//! announcement; downloads keep working.

use std::{collections::HashSet, time::Duration};

use common::ids::HostId;
use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use tokio_util::sync::CancellationToken;

use super::scheduler_set::SchedulerSet;
use crate::config::DfdaemonConfig;

/// Announces until `shutdown`, then tells the schedulers the host leaves.
pub async fn run(
    config: DfdaemonConfig,
    upload_port: u16,
    schedulers: SchedulerSet,
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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            Ok(()) = changes.changed() => {}
        }
        for addr in schedulers.addrs() {
            let result = async {
                let mut client = pb::scheduler_client::SchedulerClient::new(schedulers.channel(addr)?);
                client.announce_host(pb::AnnounceHostRequest { host: Some(host.clone()) }).await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            }
            .await;
            match result {
                Ok(()) if announced.insert(addr) => {
                    tracing::info!(host_id = %id, scheduler = %addr, "announced to scheduler");
                }
                Ok(()) => {}
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

/// This host's id as announced.
pub fn host_id(config: &DfdaemonConfig) -> HostId {
    HostId::for_host(&config.host.hostname, &config.host.ip.to_string(), config.seed)
}
