//! Hosts that keep a `WatchHostOrders` stream open, and the orders sent to them (delete a
//! task's copy, preheat a task). This is how a manager job reaches peers, which serve no
//! control API of their own to the network.

use common::ids::TaskId;

use super::SeedOrder;

/// An order for one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostOrder {
    /// Delete the local copy of this task.
    DeleteTask(TaskId),
    /// Fetch this task into the cache, then report it for `preheat_id`.
    Preheat { preheat_id: String, task: SeedOrder, concurrent_count: u32 },
    /// Drop what has not started of this preheat.
    CancelPreheat(String),
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
