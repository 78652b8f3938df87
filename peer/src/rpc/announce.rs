//! Keeping the scheduler informed about this host: announce at start and periodically, leave on
//! shutdown. A scheduler that is down only delays the announcement; downloads keep working.

use std::time::Duration;

use common::ids::HostId;
use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use tokio_util::sync::CancellationToken;

use crate::config::DfdaemonConfig;

/// Announces until `shutdown`, then tells the scheduler the host leaves.
pub async fn run(
    config: DfdaemonConfig,
    upload_port: u16,
    announced_tx: tokio::sync::watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let addr = format!("http://{}", config.scheduler.addr);
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
    let mut announced = false;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                let result = async {
                    let mut client = pb::scheduler_client::SchedulerClient::connect(addr.clone()).await?;
                    client.announce_host(pb::AnnounceHostRequest { host: Some(host.clone()) }).await?;
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
                }.await;
                match result {
                    Ok(()) if !announced => {
                        tracing::info!(host_id = %id, scheduler = %config.scheduler.addr, "announced to scheduler");
                        announced = true;
                        let _ = announced_tx.send(true);
                    }
                    Ok(()) => {}
                    Err(e) => tracing::warn!(error = %e, scheduler = %config.scheduler.addr, "announce failed; will retry"),
                }
            }
        }
    }
    if announced {
        let leave = async {
            let mut client = pb::scheduler_client::SchedulerClient::connect(addr).await?;
            client.leave_host(pb::LeaveHostRequest { host_id: id.to_string() }).await?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        };
        match tokio::time::timeout(Duration::from_secs(2), leave).await {
            Ok(Ok(())) => tracing::info!("left the scheduler"),
            Ok(Err(e)) => tracing::warn!(error = %e, "leaving the scheduler failed"),
            Err(_) => tracing::warn!("leaving the scheduler timed out"),
        }
    }
}

/// This host's id as announced.
pub fn host_id(config: &DfdaemonConfig) -> HostId {
    HostId::for_host(&config.host.hostname, &config.host.ip.to_string(), config.seed)
}
