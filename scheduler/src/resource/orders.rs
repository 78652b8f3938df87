//! Hosts that keep a `WatchHostOrders` stream open, and the orders sent to them (today: delete
//! a task's copy). This is how a manager job reaches peers, which serve no control API of
//! their own to the network.

use common::ids::TaskId;

/// An order for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOrder {
    /// Delete the local copy of this task.
    DeleteTask(TaskId),
}

/// Connected hosts, each with the channel its stream reads from.
pub type HostOrders = super::Watchers<HostOrder>;

#[cfg(test)]
mod tests {
    use common::ids::HostId;

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
