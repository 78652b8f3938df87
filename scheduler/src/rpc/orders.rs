//! `DeleteTask` and `WatchHostOrders`: how a manager's `delete_task` job reaches the hosts that
//! hold a task, and how a preheat ([`super::preheat`]) reaches the hosts it warms.

use std::collections::BTreeSet;

use common::ids::{HostId, TaskId};
use proto::scheduler::v1 as pb;
use tokio_stream::StreamExt;
use tonic::{Response, Status};

use super::{BoxStream, SchedulerService};
use crate::resource::HostOrder;

pub fn delete_task(service: &SchedulerService, req: pb::DeleteTaskRequest) -> Result<pb::DeleteTaskResponse, Status> {
    let id = TaskId::parse(&req.task_id).map_err(|e| Status::invalid_argument(format!("task_id: {e}")))?;
    let cell = service.tasks.remove(&id).ok_or_else(|| Status::not_found(format!("task {id} is not known")))?;
    let hosts: BTreeSet<HostId> = cell.lock().snapshot().peers.into_iter().map(|p| p.host_id).collect();
    cell.changed();
    let notices = hosts
        .into_iter()
        .map(|host_id| {
            let known = service.hosts.get(&host_id);
            let notified = service.orders.send(&host_id, HostOrder::DeleteTask(id.clone()));
            pb::HostNotice {
                hostname: known.as_ref().map(|h| h.hostname.clone()).unwrap_or_default(),
                ip: known.map(|h| h.ip).unwrap_or_default(),
                host_id: host_id.0,
                notified,
            }
        })
        .collect();
    tracing::info!(task_id = %id, "task deleted");
    Ok(pb::DeleteTaskResponse { hosts: notices })
}

pub fn watch_host_orders(
    service: &SchedulerService,
    caller: &common::tls::Caller,
    req: pb::WatchHostOrdersRequest,
) -> Result<Response<BoxStream<pb::HostOrder>>, Status> {
    let id = HostId::parse(&req.host_id).map_err(|e| Status::invalid_argument(e.to_string()))?;
    service.daemon_of(caller, &id, super::DAEMONS)?;
    if service.hosts.get(&id).is_none() {
        return Err(Status::failed_precondition(format!("host {id} has not announced itself")));
    }
    tracing::debug!(host_id = %id, "host watching for orders");
    let stream = tokio_stream::wrappers::ReceiverStream::new(service.orders.watch(id)).map(|order| {
        let order = match order {
            HostOrder::DeleteTask(task) => pb::host_order::Order::DeleteTask(pb::DeleteTaskOrder { task_id: task.0 }),
            HostOrder::Preheat { preheat_id, task, concurrent_count } => {
                pb::host_order::Order::Preheat(pb::PreheatOrder {
                    preheat_id,
                    task: Some(super::task_spec(task)),
                    concurrent_count,
                })
            }
            HostOrder::CancelPreheat(preheat_id) => {
                pb::host_order::Order::CancelPreheat(pb::CancelPreheatOrder { preheat_id })
            }
        };
        Ok(pb::HostOrder { order: Some(order) })
    });
    let stream = futures::StreamExt::take_until(stream, service.shutdown.clone().cancelled_owned());
    Ok(Response::new(Box::pin(stream)))
}
