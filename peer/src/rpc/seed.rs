//! Seed mode: keep a `WatchSeedTasks` stream open and fetch every ordered task into the cache,
//! from the origin (the scheduler tells the seed to go back to source), so normal peers can take
//! pieces from here while it still downloads. One stream per scheduler in the [`SchedulerSet`],
//! following its changes; each reconnects when it breaks ([`super::watch`]).

use common::ids::HostId;
use proto::scheduler::v1 as pb;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::scheduler_set::SchedulerSet;
use crate::download::{Downloader, EventSink, TaskRequest, TaskShape};

/// Takes seed orders from every scheduler until `shutdown`.
pub async fn run(
    downloader: Downloader,
    schedulers: SchedulerSet,
    host_id: HostId,
    announced: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    // The scheduler only accepts watchers that have announced themselves as seed hosts.
    super::watch::on_every_scheduler(schedulers, announced, shutdown, |channel, stop| {
        watch_one(downloader.clone(), channel, host_id.clone(), stop)
    })
    .await;
}

/// Keeps one scheduler's seed-order stream open until `shutdown`.
async fn watch_one(downloader: Downloader, channel: Channel, host_id: HostId, shutdown: CancellationToken) {
    let open = || {
        let mut client = pb::scheduler_client::SchedulerClient::new(channel.clone());
        let host_id = host_id.clone();
        async move {
            let request = pb::WatchSeedTasksRequest { host_id: host_id.0.clone() };
            let opened = client.watch_seed_tasks(request).await.map(tonic::Response::into_inner);
            match &opened {
                Ok(_) => tracing::info!(host_id = %host_id, "watching for seed tasks"),
                Err(e) => tracing::warn!(error = %e, "cannot watch seed tasks; retrying"),
            }
            opened
        }
    };
    super::watch::keep_open(&shutdown, open, |order| start(&downloader, order)).await;
}

fn start(downloader: &Downloader, order: pb::SeedTask) {
    let Some(spec) = order.task else { return };
    let Ok(url) = url::Url::parse(&spec.url) else {
        tracing::warn!(url = %spec.url, "seed order with an invalid URL ignored");
        return;
    };
    let shape = TaskShape {
        tag: spec.tag,
        application: spec.application,
        filtered_query_params: spec.filtered_query_params,
        piece_length: spec.piece_length,
        blob_digest: spec.blob_digest_task_id,
    };
    let req = match TaskRequest::ordered(&spec.task_id, url, shape, spec.request_headers.into_iter().collect()) {
        Ok(req) => req,
        Err(e) => {
            tracing::warn!(error = %e, "seed order refused");
            return;
        }
    };
    let downloader = downloader.clone();
    tokio::spawn(async move {
        match downloader.fetch_task(&req, &EventSink::none()).await {
            Ok(_) => tracing::info!(task_id = %req.task_id, "seed task cached"),
            Err(e) => tracing::warn!(task_id = %req.task_id, error = %e, "seed task failed"),
        }
    });
}
