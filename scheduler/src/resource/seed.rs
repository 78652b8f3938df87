//! Seed peers that keep a `WatchSeedTasks` stream open, and handing them new tasks.

use std::{collections::HashMap, sync::Mutex};

use common::ids::HostId;
use tokio::sync::mpsc;

/// What a seed peer is asked to fetch from the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedOrder {
    pub task_id: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub piece_length: Option<u64>,
}

/// Connected seed peers, each with the channel its stream reads from.
#[derive(Debug, Default)]
pub struct SeedWatchers {
    inner: Mutex<HashMap<HostId, mpsc::Sender<SeedOrder>>>,
}

impl SeedWatchers {
    /// Registers a seed host's stream; replaces an older stream of the same host.
    pub fn watch(&self, host: HostId) -> mpsc::Receiver<SeedOrder> {
        let (tx, rx) = mpsc::channel(256);
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).insert(host, tx);
        rx
    }

    /// Whether any seed peer is connected.
    pub fn any(&self) -> bool {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| !tx.is_closed());
        !map.is_empty()
    }

    /// Whether `host` is a connected seed peer.
    pub fn is_seed(&self, host: &HostId) -> bool {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).get(host).is_some_and(|tx| !tx.is_closed())
    }

    /// Sends `order` to one connected seed peer (the one with the fewest queued orders); returns
    /// whether one took it.
    pub fn dispatch(&self, order: SeedOrder) -> bool {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, tx| !tx.is_closed());
        let best = map.values().max_by_key(|tx| tx.capacity());
        match best {
            Some(tx) => tx.try_send(order).is_ok(),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dispatch_reaches_a_live_watcher_only() {
        let seeds = SeedWatchers::default();
        let order = SeedOrder { task_id: "t".into(), url: "http://o/x".into(), headers: vec![], piece_length: None };
        assert!(!seeds.dispatch(order.clone()));
        let mut rx = seeds.watch(HostId("seed".into()));
        assert!(seeds.any() && seeds.is_seed(&HostId("seed".into())));
        assert!(seeds.dispatch(order.clone()));
        assert_eq!(rx.try_recv().unwrap(), order);
        drop(rx);
        assert!(!seeds.any());
        assert!(!seeds.dispatch(order));
    }
}
