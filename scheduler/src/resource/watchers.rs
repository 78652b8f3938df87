//! Hosts that keep an order stream open (`WatchHostOrders`, `WatchSeedTasks`), each with the
//! channel its stream reads from. Peers serve no control API to the network, so this is the only
//! way the scheduler (and through it a manager job) reaches them. A closed stream drops out on the
//! next look; a newer stream of the same host replaces the older one.

use std::{collections::HashMap, sync::Mutex};

use common::ids::HostId;
use tokio::sync::mpsc;

/// Orders a stream may hold before new ones are refused (the host is not reading).
const QUEUE: usize = 256;

/// What became of an order offered to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// In the host's queue.
    Queued,
    /// The host's queue is full: it is connected but behind; try again later.
    Full,
    /// The host has no open stream.
    Gone,
}

/// Connected hosts of one kind of order stream.
#[derive(Debug)]
pub struct Watchers<T> {
    inner: Mutex<HashMap<HostId, mpsc::Sender<T>>>,
}

impl<T> Default for Watchers<T> {
    fn default() -> Self {
        Self { inner: Mutex::new(HashMap::new()) }
    }
}

impl<T> Watchers<T> {
    fn live(&self) -> std::sync::MutexGuard<'_, HashMap<HostId, mpsc::Sender<T>>> {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| !tx.is_closed());
        map
    }

    /// Registers a host's stream; replaces an older stream of the same host.
    pub fn watch(&self, host: HostId) -> mpsc::Receiver<T> {
        let (tx, rx) = mpsc::channel(QUEUE);
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).insert(host, tx);
        rx
    }

    /// Queues `order` for `host`; false when the host has no open stream or its queue is full.
    pub fn send(&self, host: &HostId, order: T) -> bool {
        self.offer(host, order) == Delivery::Queued
    }

    /// Queues `order` for `host`, telling a full queue (retry later) from a closed stream.
    pub fn offer(&self, host: &HostId, order: T) -> Delivery {
        match self.live().get(host).map(|tx| tx.try_send(order)) {
            Some(Ok(())) => Delivery::Queued,
            Some(Err(mpsc::error::TrySendError::Full(_))) => Delivery::Full,
            Some(Err(mpsc::error::TrySendError::Closed(_))) | None => Delivery::Gone,
        }
    }

    /// Whether any host is connected.
    pub fn any(&self) -> bool {
        !self.live().is_empty()
    }

    /// Whether `host` has an open stream.
    pub fn is_connected(&self, host: &HostId) -> bool {
        self.live().contains_key(host)
    }

    /// Sends `order` to the connected host with the fewest queued orders; returns whether one
    /// took it.
    pub fn dispatch(&self, order: T) -> bool {
        self.live().values().max_by_key(|tx| tx.capacity()).is_some_and(|tx| tx.try_send(order).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_loaded_host_gets_a_dispatched_order() {
        let w = Watchers::<u32>::default();
        let mut busy = w.watch(HostId("busy".into()));
        let mut idle = w.watch(HostId("idle".into()));
        assert!(w.send(&HostId("busy".into()), 1));
        assert!(w.dispatch(2));
        assert_eq!(idle.try_recv().unwrap(), 2);
        assert_eq!(busy.try_recv().unwrap(), 1);
        assert!(busy.try_recv().is_err());
    }

    #[test]
    fn a_full_queue_is_told_from_a_closed_stream() {
        let w = Watchers::<usize>::default();
        let host = HostId("slow".into());
        let mut rx = w.watch(host.clone());
        for i in 0..QUEUE {
            assert_eq!(w.offer(&host, i), Delivery::Queued);
        }
        assert_eq!(w.offer(&host, QUEUE), Delivery::Full);
        assert_eq!(rx.try_recv().unwrap(), 0);
        assert_eq!(w.offer(&host, QUEUE), Delivery::Queued, "room again once the host reads");
        drop(rx);
        assert_eq!(w.offer(&host, 0), Delivery::Gone);
        assert_eq!(w.offer(&HostId("never".into()), 0), Delivery::Gone);
    }

    #[test]
    fn a_newer_stream_replaces_the_older_one() {
        let w = Watchers::<u32>::default();
        let mut old = w.watch(HostId("a".into()));
        let mut new = w.watch(HostId("a".into()));
        assert!(w.send(&HostId("a".into()), 7));
        assert_eq!(new.try_recv().unwrap(), 7);
        assert!(old.try_recv().is_err());
    }
}
