//! Hosts that keep a `WatchHostOrders` stream open, and the orders sent to them (today: delete
//! a task's copy). This is how a manager job reaches peers, which serve no control API of
//! their own to the network.

use std::{collections::HashMap, sync::Mutex};

use common::ids::{HostId, TaskId};
use tokio::sync::mpsc;

/// An order for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOrder {
    /// Delete the local copy of this task.
    DeleteTask(TaskId),
}

/// Connected hosts, each with the channel its stream reads from.
#[derive(Debug, Default)]
pub struct HostOrders {
    inner: Mutex<HashMap<HostId, mpsc::Sender<HostOrder>>>,
}

impl HostOrders {
    /// Registers a host's stream; replaces an older stream of the same host.
    pub fn watch(&self, host: HostId) -> mpsc::Receiver<HostOrder> {
        let (tx, rx) = mpsc::channel(256);
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).insert(host, tx);
        rx
    }

    /// Queues `order` for `host`; false when the host has no open stream or its queue is full.
    pub fn send(&self, host: &HostId, order: HostOrder) -> bool {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| !tx.is_closed());
        map.get(host).is_some_and(|tx| tx.try_send(order).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_reach_only_connected_hosts() {
        let orders = HostOrders::default();
        let a = HostId("a".into());
        let mut rx = orders.watch(a.clone());
        assert!(orders.send(&a, HostOrder::DeleteTask(TaskId("t".into()))));
        assert_eq!(rx.try_recv().unwrap(), HostOrder::DeleteTask(TaskId("t".into())));
        assert!(!orders.send(&HostId("b".into()), HostOrder::DeleteTask(TaskId("t".into()))));
        drop(rx);
        assert!(!orders.send(&a, HostOrder::DeleteTask(TaskId("t".into()))));
    }
}
