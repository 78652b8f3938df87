//! Seed mode: keep a `WatchSeedTasks` stream open and fetch every ordered task into the cache,
//! from the origin (the scheduler tells the seed to go back to source), so normal peers can take
//! pieces from here while it still downloads. One stream per scheduler in the [`SchedulerSet`],
//! following its changes; each reconnects when it breaks.

use std::time::Duration;

use common::ids::{HostId, TaskId};
use proto::scheduler::v1 as pb;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::scheduler_set::SchedulerSet;
use crate::download::{Downloader, TaskRequest};

/// Takes seed orders from every scheduler until `shutdown`.
pub async fn run(
    downloader: Downloader,
    schedulers: SchedulerSet,
    host_id: HostId,
    mut announced: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    // The scheduler only accepts watchers that have announced themselves as seed hosts.
    tokio::select! {
        _ = shutdown.cancelled() => return,
        _ = announced.wait_for(|a| *a) => {}
    }
    schedulers.for_each(&shutdown, |channel, stop| watch_one(downloader.clone(), channel, host_id.clone(), stop)).await;
}

/// Keeps one scheduler's seed-order stream open until `shutdown`.
async fn watch_one(downloader: Downloader, channel: Channel, host_id: HostId, shutdown: CancellationToken) {
    loop {
        let mut client = pb::scheduler_client::SchedulerClient::new(channel.clone());
        let stream = client.watch_seed_tasks(pb::WatchSeedTasksRequest { host_id: host_id.0.clone() }).await;
        match stream {
            Ok(resp) => {
                tracing::info!(host_id = %host_id, "watching for seed tasks");
                let mut orders = resp.into_inner();
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        msg = orders.message() => match msg {
                            Ok(Some(order)) => start(&downloader, order),
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch seed tasks; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

fn start(downloader: &Downloader, order: pb::SeedTask) {
    let Some(spec) = order.task else { return };
    let Ok(url) = url::Url::parse(&spec.url) else {
        tracing::warn!(url = %spec.url, "seed order with an invalid URL ignored");
        return;
    };
    let req = TaskRequest {
        task_id: TaskId(spec.task_id),
        url,
        headers: spec.request_headers.into_iter().collect(),
        piece_length: spec.piece_length,
        disable_back_to_source: false,
        tag: spec.tag,
        application: spec.application,
    };
    let downloader = downloader.clone();
    tokio::spawn(async move {
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        match downloader.fetch_task(&req, &tx).await {
            Ok(_) => tracing::info!(task_id = %req.task_id, "seed task cached"),
            Err(e) => tracing::warn!(task_id = %req.task_id, error = %e, "seed task failed"),
        }
    });
}
