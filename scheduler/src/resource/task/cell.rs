//! Every task the scheduler knows, each in a [`TaskCell`]: the [`Task`] behind a mutex plus a
//! `watch` version, so a change wakes every stream of that task without polling. Walks over all
//! tasks (host removal, peer and task expiry, the census) live here too.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use common::ids::{HostId, PeerId, TaskId};
use tokio::sync::{Notify, watch};

use super::{PeerPhase, Task};

/// A task and the channels that announce its changes: the version wakes every stream of the
/// task (a change any of them may need to hear of), a nudge one peer's (news for it alone).
#[derive(Debug)]
pub struct TaskCell {
    task: Mutex<Task>,
    version: watch::Sender<u64>,
    nudges: Mutex<HashMap<PeerId, Arc<Notify>>>,
    /// Counts every change, woken streams or nudged: what the manager's task report compares.
    revision: AtomicU64,
}

impl TaskCell {
    /// Locks the task.
    pub fn lock(&self) -> MutexGuard<'_, Task> {
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells every stream of this task that something changed.
    pub fn changed(&self) {
        self.revision.fetch_add(1, Ordering::Relaxed);
        self.version.send_modify(|v| *v += 1);
    }

    /// Changes so far, whoever was told of them.
    pub fn revision(&self) -> u64 {
        self.revision.load(Ordering::Relaxed)
    }

    /// A receiver that wakes on [`changed`](Self::changed).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// What wakes `peer`'s stream alone ([`nudge`](Self::nudge)); a nudge sent while the stream
    /// is busy is kept for its next wait. Dropped with [`forget`](Self::forget).
    pub fn listen(&self, peer: &PeerId) -> Arc<Notify> {
        let mut nudges = self.nudges.lock().unwrap_or_else(|p| p.into_inner());
        nudges.entry(peer.clone()).or_default().clone()
    }

    /// `peer`'s stream ended.
    pub fn forget(&self, peer: &PeerId) {
        self.nudges.lock().unwrap_or_else(|p| p.into_inner()).remove(peer);
    }

    /// Wakes the streams of `peers` only.
    pub fn nudge(&self, peers: &[PeerId]) {
        self.revision.fetch_add(1, Ordering::Relaxed);
        let nudges = self.nudges.lock().unwrap_or_else(|p| p.into_inner());
        for p in peers {
            if let Some(n) = nudges.get(p) {
                n.notify_one();
            }
        }
    }
}

/// All tasks.
#[derive(Debug, Default)]
pub struct Tasks {
    inner: Mutex<HashMap<TaskId, Arc<TaskCell>>>,
}

impl Tasks {
    /// The task, created when new.
    pub fn get_or_create(
        &self,
        id: &TaskId,
        url: &str,
        headers: Vec<(String, String)>,
        piece_length: Option<u64>,
    ) -> Arc<TaskCell> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(TaskCell {
                    task: Mutex::new(Task::new(id.clone(), url.to_owned(), headers, piece_length)),
                    version: watch::channel(0).0,
                    nudges: Mutex::default(),
                    revision: AtomicU64::new(0),
                })
            })
            .clone()
    }

    /// The task if known.
    pub fn get(&self, id: &TaskId) -> Option<Arc<TaskCell>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Forgets a task (a manager's `delete_task` job); answers it if it was known. Streams of
    /// peers still downloading keep their copy of the cell and end on their own.
    pub fn remove(&self, id: &TaskId) -> Option<Arc<TaskCell>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    /// Forgets every peer of `host` in every task (the host left or expired).
    pub fn remove_host(&self, host: &HostId) {
        let cells: Vec<Arc<TaskCell>> =
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for cell in cells {
            if cell.lock().remove_host(host) > 0 {
                cell.changed();
            }
        }
    }

    /// Forgets, in every task, the peers silent for `ttl` ([`Task::expire_peers`]); returns how
    /// many.
    pub fn expire_peers(&self, ttl: Duration, now: Instant) -> usize {
        let cells: Vec<Arc<TaskCell>> =
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        let mut expired = 0;
        for cell in cells {
            let n = cell.lock().expire_peers(ttl, now);
            if n > 0 {
                cell.changed();
                expired += n;
            }
        }
        expired
    }

    /// Drops tasks without peers that have not changed for `ttl`; returns how many.
    pub fn collect_garbage(&self, ttl: Duration, now: Instant) -> usize {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, cell| {
            let t = cell.lock();
            !(t.is_empty() && now.saturating_duration_since(t.updated) > ttl)
        });
        before - map.len()
    }

    /// How many tasks are known.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no task is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every task with its cell, for reports that walk them all.
    pub fn cells(&self) -> Vec<(TaskId, Arc<TaskCell>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(id, c)| (id.clone(), c.clone())).collect()
    }

    /// Tasks, peers, and peers downloading now (running or fetching from the origin).
    pub fn census(&self) -> Census {
        let cells: Vec<Arc<TaskCell>> =
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        let mut census = Census { tasks: cells.len() as u64, ..Census::default() };
        for cell in cells {
            let task = cell.lock();
            census.peers += task.peers.len() as u64;
            census.running_peers +=
                task.peers.values().filter(|p| matches!(p.phase, PeerPhase::Running | PeerPhase::BackToSource)).count()
                    as u64;
        }
        census
    }
}

/// How much a scheduler holds, for its keepalive report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub tasks: u64,
    pub peers: u64,
    pub running_peers: u64,
}

#[cfg(test)]
mod tests {
    use common::ids::PeerId;

    use super::*;
    use crate::{
        resource::Hosts,
        resource::task::{Sent, test_support::*},
        scheduling::Limits,
    };

    #[test]
    fn a_silent_peer_expires_and_is_no_longer_offered_as_a_parent() {
        let hosts = Hosts::default();
        for h in ["a", "b", "c"] {
            hosts.announce(host(h), Instant::now());
        }
        let (a, b, c) = (PeerId("a-1".into()), PeerId("b-1".into()), PeerId("c-1".into()));
        let tasks = Tasks::default();
        let cell = tasks.get_or_create(&TaskId("t".into()), "http://o/x", vec![], Some(1024));
        let mut t = cell.lock();
        fetch_all_from_origin(&mut t, &a, 2);
        t.peer_succeeded(&a);
        t.peer_left(&a);
        t.register(b.clone(), HostId("b".into()), false);
        offer(&mut t, &b, &a);
        t.pieces_finished(&b, &[from_parent(0, &a, 100), from_parent(1, &a, 100)]).unwrap();
        t.peer_succeeded(&b);
        t.peer_left(&b);
        drop(t);

        // b serves c later, so it stays when a, silent since, expires.
        std::thread::sleep(Duration::from_millis(200));
        let ttl = Duration::from_millis(100);
        cell.lock().register(c.clone(), HostId("c".into()), false);
        offer(&mut cell.lock(), &c, &b);
        cell.lock().pieces_finished(&c, &[from_parent(0, &b, 100)]).unwrap();
        assert_eq!(tasks.expire_peers(ttl, Instant::now()), 1);
        let mut t = cell.lock();
        assert!(t.peer(&a).is_none() && t.peer(&b).is_some());
        let uc = t.update_for(&c, &mut Sent::default(), &hosts, &Limits::default()).unwrap();
        assert_eq!(uc.parents.iter().map(|p| p.peer_id.clone()).collect::<Vec<_>>(), vec![b.clone()]);
        drop(t);

        // Everyone goes silent: the task empties, then the task TTL forgets it.
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(tasks.expire_peers(ttl, later), 2);
        assert!(cell.lock().is_empty());
        let task_ttl = Duration::from_secs(1800);
        assert_eq!(tasks.collect_garbage(task_ttl, later), 0, "the task TTL counts from the last peer's removal");
        assert_eq!(tasks.collect_garbage(task_ttl, later + task_ttl), 1);
    }
}
