//! Orders from the schedulers for this host: keeps a `WatchHostOrders` stream open with each
//! scheduler in the [`SchedulerSet`] and carries them out: delete a task's copy (a manager's
//! `delete_task` job), or preheat a task (fetch it into the cache through the P2P network, then
//! report the result to the scheduler that ordered it). Each stream reconnects when it breaks
//! ([`super::watch`]); preheats under way carry on across a reconnect.
//!
//! The scheduler paces a preheat (so many tasks in flight per host); the host still bounds the
//! tasks of one preheat it runs at once, so a scheduler cannot make it start thousands.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::ids::{HostId, TaskId};
use proto::scheduler::v1 as pb;
use tokio::sync::{Semaphore, watch};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::scheduler_set::SchedulerSet;
use crate::{
    download::{Downloader, EventSink, TaskRequest, TaskShape},
    storage::Storage,
};

/// Most tasks of one preheat this host fetches at once, whatever the order says.
const MAX_PREHEAT_CONCURRENCY: usize = 64;
/// Longest failure reason sent back (the scheduler takes up to 4 KiB).
const MAX_REASON: usize = 1024;
/// Tries to deliver one report before giving it up (the preheat then times out on it).
const REPORT_TRIES: u32 = 3;

/// Takes orders from every scheduler until `shutdown`.
pub async fn run(
    storage: Arc<Storage>,
    downloader: Downloader,
    schedulers: SchedulerSet,
    host_id: HostId,
    announced: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    super::watch::on_every_scheduler(schedulers, announced, shutdown, |channel, stop| {
        let taker = Taker {
            storage: storage.clone(),
            downloader: downloader.clone(),
            host_id: host_id.clone(),
            channel,
            preheats: Arc::default(),
        };
        taker.watch(stop)
    })
    .await;
}

/// One preheat under way on this host.
struct Preheat {
    slots: Arc<Semaphore>,
    cancel: CancellationToken,
    /// Tasks ordered and not yet reported.
    outstanding: usize,
}

/// Carries out one scheduler's orders.
#[derive(Clone)]
struct Taker {
    storage: Arc<Storage>,
    downloader: Downloader,
    host_id: HostId,
    channel: Channel,
    preheats: Arc<Mutex<HashMap<String, Preheat>>>,
}

impl Taker {
    /// Keeps the scheduler's order stream open until `shutdown`.
    async fn watch(self, shutdown: CancellationToken) {
        let open = || {
            let mut client = pb::scheduler_client::SchedulerClient::new(self.channel.clone());
            let request = pb::WatchHostOrdersRequest { host_id: self.host_id.0.clone() };
            async move {
                let opened = client.watch_host_orders(request).await.map(tonic::Response::into_inner);
                if let Err(e) = &opened {
                    tracing::debug!(error = %e, "cannot watch host orders; retrying");
                }
                opened
            }
        };
        super::watch::keep_open(&shutdown, open, |order| self.carry_out(order)).await;
    }

    fn carry_out(&self, order: pb::HostOrder) {
        match order.order {
            Some(pb::host_order::Order::DeleteTask(d)) => self.delete(&d.task_id),
            Some(pb::host_order::Order::Preheat(p)) => self.preheat(p),
            Some(pb::host_order::Order::CancelPreheat(c)) => {
                let gone = self.preheats.lock().unwrap_or_else(|p| p.into_inner()).remove(&c.preheat_id);
                if let Some(p) = gone {
                    tracing::info!(preheat_id = %c.preheat_id, "preheat cancelled; tasks not yet started are dropped");
                    p.cancel.cancel();
                }
            }
            None => tracing::debug!("empty host order ignored"),
        }
    }

    fn delete(&self, task_id: &str) {
        let Ok(id) = TaskId::parse(task_id) else {
            tracing::warn!("order to delete a task whose id could not have been derived ignored");
            return;
        };
        match self.storage.remove(&id) {
            Ok(true) => tracing::info!(task_id = %id, "task deleted on the scheduler's order"),
            Ok(false) => tracing::debug!(task_id = %id, "ordered to delete a task this host does not hold"),
            Err(e) => tracing::warn!(task_id = %id, error = %e, "could not delete the task"),
        }
    }

    fn preheat(&self, order: pb::PreheatOrder) {
        let preheat_id = order.preheat_id;
        let Some(spec) = order.task else {
            tracing::warn!(preheat_id, "preheat order without a task ignored");
            return;
        };
        let task_id = spec.task_id.clone();
        let request = request_of(spec);
        let (slots, cancel) = {
            let mut preheats = self.preheats.lock().unwrap_or_else(|p| p.into_inner());
            let p = preheats.entry(preheat_id.clone()).or_insert_with(|| Preheat {
                slots: Arc::new(Semaphore::new((order.concurrent_count as usize).clamp(1, MAX_PREHEAT_CONCURRENCY))),
                cancel: CancellationToken::new(),
                outstanding: 0,
            });
            p.outstanding += 1;
            (p.slots.clone(), p.cancel.clone())
        };
        let taker = self.clone();
        tokio::spawn(async move {
            let outcome = match request {
                Err(why) => Err(why),
                Ok(req) => {
                    let _slot = tokio::select! {
                        // Cancelled before it started: the scheduler no longer waits for it.
                        () = cancel.cancelled() => return,
                        slot = slots.acquire_owned() => slot,
                    };
                    match taker.downloader.fetch_task(&req, &EventSink::none()).await {
                        Ok(task) => Ok(task.layout().map_or(0, |l| l.content_length)),
                        Err(e) => Err(e.to_string()),
                    }
                }
            };
            match &outcome {
                Ok(len) => tracing::info!(%preheat_id, %task_id, content_length = len, "preheated"),
                Err(why) => tracing::warn!(%preheat_id, %task_id, why, "preheat of a task failed"),
            }
            taker.report(&preheat_id, task_id, outcome).await;
            let mut preheats = taker.preheats.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(p) = preheats.get_mut(&preheat_id) {
                p.outstanding -= 1;
                if p.outstanding == 0 {
                    preheats.remove(&preheat_id);
                }
            }
        });
    }

    async fn report(&self, preheat_id: &str, task_id: String, outcome: Result<u64, String>) {
        let (success, description, content_length) = match outcome {
            Ok(len) => (true, String::new(), len),
            Err(why) => (false, truncate(why, MAX_REASON), 0),
        };
        let report = pb::PreheatReport {
            host_id: self.host_id.0.clone(),
            preheat_id: preheat_id.to_owned(),
            task_id,
            success,
            description,
            content_length,
        };
        let mut client = pb::scheduler_client::SchedulerClient::new(self.channel.clone());
        for attempt in 1..=REPORT_TRIES {
            match client.report_preheat(report.clone()).await {
                Ok(_) => return,
                Err(e) if e.code() == tonic::Code::Unavailable && attempt < REPORT_TRIES => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => {
                    tracing::warn!(preheat_id, error = %e, "the scheduler did not take the preheat report");
                    return;
                }
            }
        }
    }
}

/// The download a preheat order asks for, or why it cannot be made.
fn request_of(spec: pb::TaskSpec) -> Result<TaskRequest, String> {
    let url = url::Url::parse(&spec.url).map_err(|e| format!("the task's URL is not valid: {e}"))?;
    let shape = TaskShape {
        tag: spec.tag,
        application: spec.application,
        filtered_query_params: spec.filtered_query_params,
        piece_length: spec.piece_length,
        blob_digest: spec.blob_digest_task_id,
    };
    TaskRequest::ordered(&spec.task_id, url, shape, spec.request_headers.into_iter().collect())
        .map_err(|e| e.to_string())
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut end = max;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}
