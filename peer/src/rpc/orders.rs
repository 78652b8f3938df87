//! Orders from the schedulers for this host: keeps a `WatchHostOrders` stream open with each
//! scheduler in the [`SchedulerSet`] and carries them out (today: delete a task's copy, for a
//! manager's `delete_task` job). Each stream reconnects when it breaks ([`super::watch`]).

use std::sync::Arc;

use common::ids::{HostId, TaskId};
use proto::scheduler::v1 as pb;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use super::scheduler_set::SchedulerSet;
use crate::storage::Storage;

/// Takes orders from every scheduler until `shutdown`.
pub async fn run(
    storage: Arc<Storage>,
    schedulers: SchedulerSet,
    host_id: HostId,
    announced: watch::Receiver<bool>,
    shutdown: CancellationToken,
) {
    super::watch::on_every_scheduler(schedulers, announced, shutdown, |channel, stop| {
        watch_one(storage.clone(), channel, host_id.clone(), stop)
    })
    .await;
}

/// Keeps one scheduler's order stream open until `shutdown`.
async fn watch_one(storage: Arc<Storage>, channel: Channel, host_id: HostId, shutdown: CancellationToken) {
    let open = || {
        let mut client = pb::scheduler_client::SchedulerClient::new(channel.clone());
        let request = pb::WatchHostOrdersRequest { host_id: host_id.0.clone() };
        async move {
            let opened = client.watch_host_orders(request).await.map(tonic::Response::into_inner);
            if let Err(e) = &opened {
                tracing::debug!(error = %e, "cannot watch host orders; retrying");
            }
            opened
        }
    };
    super::watch::keep_open(&shutdown, open, |order| carry_out(&storage, order)).await;
}

fn carry_out(storage: &Storage, order: pb::HostOrder) {
    match order.order {
        Some(pb::host_order::Order::DeleteTask(d)) => {
            let Ok(id) = TaskId::parse(&d.task_id) else {
                tracing::warn!("order to delete a task whose id could not have been derived ignored");
                return;
            };
            match storage.remove(&id) {
                Ok(true) => tracing::info!(task_id = %id, "task deleted on the scheduler's order"),
                Ok(false) => tracing::debug!(task_id = %id, "ordered to delete a task this host does not hold"),
                Err(e) => tracing::warn!(task_id = %id, error = %e, "could not delete the task"),
            }
        }
        Some(pb::host_order::Order::Preheat(_) | pb::host_order::Order::CancelPreheat(_)) => {
            tracing::debug!("preheat orders are not taken yet");
        }
        None => tracing::debug!("empty host order ignored"),
    }
}
