//! Where a dfdaemon keeps content: one file per task under `content/<id[..3]>/<id>`, written piece
//! by piece at its offset, plus `meta/<id>.json` with the layout, the finished pieces and their
//! digests, so a restarted daemon still serves and reuses what it has.
//!
//! Storage knows nothing about parents, schedulers or origins: it stores verified pieces and
//! hands out byte ranges. Verification happens before [`TaskStore::write_piece`] is called.

mod task;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use common::ids::TaskId;

pub use task::{BusyGuard, Link, PieceTap, PieceWriter, Seal, TaskMeta, TaskStore, TaskSummary, publish};

use crate::Error;

/// All tasks on this host.
#[derive(Debug)]
pub struct Storage {
    root: PathBuf,
    tasks: Mutex<HashMap<TaskId, Arc<TaskStore>>>,
}

impl Storage {
    /// Opens (creating if needed) the store under `root` and loads every task's metadata.
    pub fn open(root: &Path) -> Result<Self, Error> {
        let meta_dir = root.join("meta");
        std::fs::create_dir_all(&meta_dir)?;
        std::fs::create_dir_all(root.join("content"))?;
        let mut tasks = HashMap::new();
        for entry in std::fs::read_dir(&meta_dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match TaskStore::load(root, &path) {
                Ok(task) => {
                    tasks.insert(task.id().clone(), Arc::new(task));
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "dropping unreadable task metadata");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        tracing::info!(tasks = tasks.len(), root = %root.display(), "storage opened");
        Ok(Self { root: root.to_owned(), tasks: Mutex::new(tasks) })
    }

    /// How an output at `output` may share the cache's files: [`Link::Prefer`] when its
    /// directory is on the cache's file system, else [`Link::Never`] (`force` asks for
    /// [`Link::Must`], which then fails at export with a clear reason).
    pub fn link_mode(&self, output: &Path, force: bool) -> Link {
        use std::os::unix::fs::MetadataExt;
        if force {
            return Link::Must;
        }
        let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev()).ok();
        match (output.parent().and_then(dev), dev(&self.root.join("content"))) {
            (Some(a), Some(b)) if a == b => Link::Prefer,
            _ => Link::Never,
        }
    }

    /// The task, creating an empty entry when it is new.
    pub fn task(&self, id: &TaskId, url: &str) -> Result<Arc<TaskStore>, Error> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tasks.get(id) {
            return Ok(t.clone());
        }
        let task = Arc::new(TaskStore::create(&self.root, id, url)?);
        tasks.insert(id.clone(), task.clone());
        Ok(task)
    }

    /// The task, created empty when it is new, and marked in use until the guard drops. Marked
    /// under the same lock [`Storage::remove_unused`] checks, so a task a download has taken is
    /// never removed under it.
    pub fn task_in_use(&self, id: &TaskId, url: &str) -> Result<(Arc<TaskStore>, BusyGuard), Error> {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        let task = match tasks.get(id) {
            Some(t) => t.clone(),
            None => {
                let task = Arc::new(TaskStore::create(&self.root, id, url)?);
                tasks.insert(id.clone(), task.clone());
                task
            }
        };
        let guard = task.mark_busy();
        Ok((task, guard))
    }

    /// The task if this host has it.
    pub fn get(&self, id: &TaskId) -> Option<Arc<TaskStore>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Removes a task's content and metadata.
    pub fn remove(&self, id: &TaskId) -> Result<bool, Error> {
        let task = self.tasks.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
        match task {
            Some(t) => {
                t.delete_files()?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Removes a task's content and metadata unless a download is using it (see
    /// [`Storage::task_in_use`]).
    pub fn remove_unused(&self, id: &TaskId) -> Result<Removal, Error> {
        let task = {
            let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
            match tasks.get(id) {
                None => return Ok(Removal::Absent),
                Some(t) if t.is_busy() => return Ok(Removal::InUse),
                Some(_) => tasks.remove(id),
            }
        };
        let Some(task) = task else { return Ok(Removal::Absent) };
        let freed = task.disk_bytes();
        task.delete_files()?;
        Ok(Removal::Removed { freed_bytes: freed })
    }

    /// Every task, for GC and listings.
    pub fn tasks(&self) -> Vec<Arc<TaskStore>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }
}

/// What [`Storage::remove_unused`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// Content and metadata are gone; they took `freed_bytes` on disk.
    Removed { freed_bytes: u64 },
    /// A download is using the task; nothing was removed.
    InUse,
    /// This host does not hold the task.
    Absent,
}

#[cfg(test)]
mod tests {
    use common::piece::PieceLayout;

    use super::*;

    #[test]
    fn a_task_id_that_cannot_name_a_file_is_refused_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let storage = Storage::open(&root).unwrap();
        for bad in ["../../escape", "a/b", "..", "", ".hidden", &"a".repeat(65)] {
            assert!(storage.task(&TaskId(bad.into()), "http://o/x").is_err(), "{bad:?}");
        }
        assert!(!dir.path().join("escape").exists());
        let names: Vec<_> = std::fs::read_dir(root.join("content")).unwrap().collect();
        assert!(names.is_empty(), "{names:?}");
        assert!(storage.task(&TaskId("ab".repeat(32)), "http://o/x").is_ok());
    }

    #[test]
    fn a_task_in_use_is_not_removed_until_its_download_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let id = TaskId("cd".repeat(32));
        let (task, in_use) = storage.task_in_use(&id, "http://o/x").unwrap();
        task.set_layout(PieceLayout::new(10, 1024).unwrap()).unwrap();
        task.write_raw(0, b"0123456789").unwrap();
        task.persist().unwrap();
        assert_eq!(storage.remove_unused(&id).unwrap(), Removal::InUse);
        assert!(storage.get(&id).is_some());
        drop(in_use);
        let Removal::Removed { freed_bytes } = storage.remove_unused(&id).unwrap() else { panic!("not removed") };
        assert!(freed_bytes > 0);
        assert!(storage.get(&id).is_none());
        assert!(!dir.path().join("meta").join(format!("{}.json", id.0)).exists());
        assert_eq!(storage.remove_unused(&id).unwrap(), Removal::Absent);
    }
}
