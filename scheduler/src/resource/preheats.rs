//! Preheats in progress: for each, which host still owes a result for which task. A report is
//! taken once, only from a host that was ordered that task and only while the preheat runs, and
//! goes to the preheat's driver (`rpc::preheat`); anything else is refused, so a host cannot
//! report for another, twice, or for work it was never given.

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use common::ids::{HostId, TaskId};
use tokio::sync::mpsc;

/// What a host did with one task of a preheat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreheatOutcome {
    /// The task is whole in the host's cache.
    Cached { content_length: u64 },
    /// It could not be fetched, and why.
    Failed(String),
}

/// One host's result for one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreheatResult {
    pub host_id: HostId,
    pub task_id: TaskId,
    pub outcome: PreheatOutcome,
}

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportRefused {
    #[error("preheat {0} is not running on this scheduler")]
    UnknownPreheat(String),
    #[error("host {host} owes no result for task {task} in this preheat")]
    NotOwed { host: HostId, task: TaskId },
}

#[derive(Debug)]
struct Entry {
    owed: HashSet<(HostId, TaskId)>,
    results: mpsc::UnboundedSender<PreheatResult>,
}

/// Every preheat this scheduler drives.
#[derive(Debug, Default)]
pub struct Preheats {
    inner: Mutex<HashMap<String, Entry>>,
}

impl Preheats {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts tracking preheat `id`; its hosts' results arrive on the receiver. (The channel
    /// is unbounded but holds at most one message per owed result.)
    pub fn begin(&self, id: &str) -> mpsc::UnboundedReceiver<PreheatResult> {
        let (results, rx) = mpsc::unbounded_channel();
        self.map().insert(id.to_owned(), Entry { owed: HashSet::new(), results });
        rx
    }

    /// `host` was ordered `task` and owes its result.
    pub fn owe(&self, id: &str, host: &HostId, task: &TaskId) {
        if let Some(e) = self.map().get_mut(id) {
            e.owed.insert((host.clone(), task.clone()));
        }
    }

    /// The driver gave up on `host`'s result for `task` (the host left, the deadline passed): a
    /// late report is refused.
    pub fn forgive(&self, id: &str, host: &HostId, task: &TaskId) {
        if let Some(e) = self.map().get_mut(id) {
            e.owed.remove(&(host.clone(), task.clone()));
        }
    }

    /// Takes a host's result if it is owed.
    pub fn report(&self, id: &str, result: PreheatResult) -> Result<(), ReportRefused> {
        let mut map = self.map();
        let entry = map.get_mut(id).ok_or_else(|| ReportRefused::UnknownPreheat(id.to_owned()))?;
        if !entry.owed.remove(&(result.host_id.clone(), result.task_id.clone())) {
            return Err(ReportRefused::NotOwed { host: result.host_id, task: result.task_id });
        }
        // The driver may have just ended; then the result has no one left to tell.
        let _ = entry.results.send(result);
        Ok(())
    }

    /// Stops tracking preheat `id`.
    pub fn end(&self, id: &str) {
        self.map().remove(id);
    }

    /// Whether some preheat waits for `host`'s result for `task` (the host wants the content).
    pub fn owed_by(&self, host: &HostId, task: &TaskId) -> bool {
        let key = (host.clone(), task.clone());
        self.map().values().any(|e| e.owed.contains(&key))
    }

    /// How many preheats run.
    pub fn len(&self) -> usize {
        self.map().len()
    }

    /// Whether none runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(host: &str, task: &str) -> PreheatResult {
        PreheatResult {
            host_id: HostId(host.into()),
            task_id: TaskId(task.into()),
            outcome: PreheatOutcome::Cached { content_length: 1 },
        }
    }

    #[test]
    fn a_result_is_taken_once_from_the_host_that_owes_it() {
        let p = Preheats::default();
        let mut rx = p.begin("p1");
        p.owe("p1", &HostId("a".into()), &TaskId("t".into()));
        assert_eq!(
            p.report("p1", result("b", "t")),
            Err(ReportRefused::NotOwed { host: HostId("b".into()), task: TaskId("t".into()) })
        );
        assert_eq!(p.report("p2", result("a", "t")), Err(ReportRefused::UnknownPreheat("p2".into())));
        p.report("p1", result("a", "t")).unwrap();
        assert_eq!(rx.try_recv().unwrap(), result("a", "t"));
        assert!(p.report("p1", result("a", "t")).is_err(), "twice");
        p.end("p1");
        assert!(p.is_empty());
    }

    #[test]
    fn a_forgiven_result_is_refused_when_it_comes_late() {
        let p = Preheats::default();
        let _rx = p.begin("p1");
        p.owe("p1", &HostId("a".into()), &TaskId("t".into()));
        p.forgive("p1", &HostId("a".into()), &TaskId("t".into()));
        assert!(p.report("p1", result("a", "t")).is_err());
    }
}
