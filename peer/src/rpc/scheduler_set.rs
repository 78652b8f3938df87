//! The schedulers this host works with, which the manager may change at runtime.
//!
//! Every scheduler hears this host's announcements (any of them may be asked to schedule a
//! download that this host could serve), but each task goes to one scheduler, the same on every
//! host: rendezvous hashing over task id and scheduler address with BLAKE3, so all peers of a
//! task meet on the same scheduler without talking to each other, and a change to the list moves
//! only the tasks of the schedulers that came or went.

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

use crate::Error;

/// A shared, changeable list of scheduler addresses with a channel per address.
#[derive(Debug, Clone)]
pub struct SchedulerSet {
    addrs: Arc<watch::Sender<Vec<SocketAddr>>>,
    /// Lazily connecting channels, kept so streams share connections.
    channels: Arc<Mutex<HashMap<SocketAddr, Channel>>>,
    /// TLS expecting a scheduler of this host's cluster; `None` when TLS is off.
    tls: Option<Arc<common::tls::ClientConfig>>,
}

impl SchedulerSet {
    /// A set starting with `addrs` (possibly none, until the manager answers), reached over
    /// `tls` when given.
    pub fn new(addrs: Vec<SocketAddr>, tls: Option<Arc<common::tls::ClientConfig>>) -> Self {
        Self { addrs: Arc::new(watch::Sender::new(normalise(addrs))), channels: Arc::default(), tls }
    }

    /// Replaces the list; returns whether it changed.
    pub fn replace(&self, addrs: Vec<SocketAddr>) -> bool {
        let addrs = normalise(addrs);
        self.addrs.send_if_modified(|current| {
            if *current == addrs {
                return false;
            }
            *current = addrs;
            true
        })
    }

    /// The addresses now, sorted.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.addrs.borrow().clone()
    }

    /// Wakes on every change of the list.
    pub fn subscribe(&self) -> watch::Receiver<Vec<SocketAddr>> {
        self.addrs.subscribe()
    }

    /// The channel to `addr`, created on first use.
    pub fn channel(&self, addr: SocketAddr) -> Result<Channel, Error> {
        let mut channels = self.channels.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = channels.get(&addr) {
            return Ok(c.clone());
        }
        let c = match &self.tls {
            Some(tls) => common::tls::channel(&addr.to_string(), tls.clone(), std::time::Duration::from_secs(3))?,
            None => super::scheduler::channel(&addr.to_string())?,
        };
        channels.insert(addr, c.clone());
        Ok(c)
    }

    /// Runs one `watch(channel, stop)` task per scheduler until `shutdown`: started for each
    /// scheduler that joins the set, stopped (its `stop` cancelled) for each that leaves. For the
    /// streams a host keeps with every scheduler (seed orders, host orders).
    pub async fn for_each<F, Fut>(&self, shutdown: &CancellationToken, mut watch: F)
    where
        F: FnMut(Channel, CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut changes = self.subscribe();
        let mut running: HashMap<SocketAddr, CancellationToken> = HashMap::new();
        loop {
            let addrs = changes.borrow_and_update().clone();
            running.retain(|addr, stop| {
                let keep = addrs.contains(addr);
                if !keep {
                    stop.cancel();
                }
                keep
            });
            for addr in addrs {
                if running.contains_key(&addr) {
                    continue;
                }
                match self.channel(addr) {
                    Ok(channel) => {
                        let stop = shutdown.child_token();
                        tokio::spawn(watch(channel, stop.clone()));
                        running.insert(addr, stop);
                    }
                    Err(e) => tracing::warn!(error = %e, scheduler = %addr, "cannot reach scheduler"),
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
        }
    }

    /// The scheduler responsible for `task_id`, or `None` while the list is empty.
    pub fn for_task(&self, task_id: &str) -> Option<SocketAddr> {
        pick(&self.addrs.borrow(), task_id)
    }
}

fn normalise(mut addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    addrs.sort();
    addrs.dedup();
    addrs
}

/// Rendezvous hashing: the address with the highest hash of (task, address).
fn pick(addrs: &[SocketAddr], task_id: &str) -> Option<SocketAddr> {
    addrs.iter().copied().max_by_key(|addr| {
        let mut h = blake3::Hasher::new();
        h.update(task_id.as_bytes());
        h.update(b"\0");
        h.update(addr.to_string().as_bytes());
        let bytes = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&bytes.as_bytes()[..8]);
        u64::from_be_bytes(first)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(ports: &[u16]) -> Vec<SocketAddr> {
        ports.iter().map(|p| SocketAddr::from(([127, 0, 0, 1], *p))).collect()
    }

    #[test]
    fn a_task_stays_on_its_scheduler_unless_that_one_leaves() {
        let all = addrs(&[1, 2, 3, 4]);
        assert_eq!(pick(&[], "t"), None);
        let mut moved = 0;
        for i in 0..200 {
            let task = format!("task-{i}");
            let before = pick(&all, &task).unwrap();
            let mut reversed = all.clone();
            reversed.reverse();
            assert_eq!(pick(&reversed, &task), Some(before), "order does not matter");
            let without_4: Vec<_> = all.iter().copied().filter(|a| a.port() != 4).collect();
            let after = pick(&without_4, &task).unwrap();
            if before.port() != 4 {
                assert_eq!(after, before, "tasks of the remaining schedulers stay");
            } else {
                moved += 1;
            }
        }
        // Spread: each of four schedulers gets roughly a quarter.
        assert!((20..80).contains(&moved), "{moved}");
    }

    #[test]
    fn replace_reports_changes_only() {
        let set = SchedulerSet::new(addrs(&[2, 1]), None);
        assert_eq!(set.addrs(), addrs(&[1, 2]));
        assert!(!set.replace(addrs(&[1, 2, 2])));
        assert!(set.replace(addrs(&[3])));
        assert_eq!(set.for_task("x"), Some(addrs(&[3])[0]));
    }
}
