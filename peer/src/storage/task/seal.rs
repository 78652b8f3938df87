//! Noticing that a complete content file changed behind the cache's back.
//!
//! An output is hard-linked to the cache when it can be (Dragonfly's default: no copy, no second
//! copy on disk), so the user's file and the cache are one inode, and an edit of the output is an
//! edit of the cache. Once a task is complete the cache never writes its file again, so the file
//! is sealed: its modification time is set to a value no write produces (a whole second plus one
//! nanosecond, in the past) and recorded with its length. A file whose time or length moved was
//! changed by someone else; the task is then forgotten and its file unlinked (the user's output
//! keeps the inode), never served, exported or written into again.

use std::{
    fs::{File, Metadata},
    os::unix::fs::MetadataExt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use super::TaskStore;
use crate::Error;

/// A complete content file's modification time and length, as sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub mtime_secs: i64,
    pub mtime_nanos: i64,
    pub len: u64,
}

impl Seal {
    fn of(meta: &Metadata) -> Self {
        Self { mtime_secs: meta.mtime(), mtime_nanos: meta.mtime_nsec(), len: meta.len() }
    }

    /// Stamps `file` with a modification time no write produces and returns the seal.
    fn stamp(file: &File) -> std::io::Result<Self> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(1);
        file.set_modified(UNIX_EPOCH + Duration::new(now.saturating_sub(1), 1))?;
        Ok(Self::of(&file.metadata()?))
    }
}

impl TaskStore {
    /// Seals the content file once the task is complete (see the module docs); a no-op before.
    pub(super) fn seal(&self) -> Result<(), Error> {
        if !self.is_complete() || self.state.read().unwrap_or_else(|p| p.into_inner()).sealed.is_some() {
            return Ok(());
        }
        let seal = Seal::stamp(&self.open_file()?)?;
        self.state.write().unwrap_or_else(|p| p.into_inner()).sealed = Some(seal);
        Ok(())
    }

    /// Whether the content file is as the cache left it: always for a task not yet sealed; for a
    /// sealed one, when its modification time and length are the sealed ones.
    pub fn intact(&self) -> bool {
        let sealed = self.state.read().unwrap_or_else(|p| p.into_inner()).sealed;
        Self::matches(sealed, &self.content)
    }

    /// Forgets every piece and unlinks the content file (an output linked to it keeps its
    /// bytes); the next download starts from a new file.
    pub fn reset(&self) -> Result<(), Error> {
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = None;
        super::remove_if_exists(&self.content)?;
        {
            let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
            state.finished = Default::default();
            state.digests.clear();
            state.sealed = None;
        }
        self.persist()
    }

    /// Whether a content file found at start-up still matches the seal it was left with.
    pub(super) fn matches(seal: Option<Seal>, content: &std::path::Path) -> bool {
        seal.is_none_or(|seal| std::fs::metadata(content).is_ok_and(|m| Seal::of(&m) == seal))
    }
}

#[cfg(test)]
mod tests {
    use common::{digest::PieceDigest, ids::TaskId, piece::PieceLayout};

    use std::{io::Write, os::unix::fs::FileExt};

    use crate::storage::{Link, Storage};

    #[test]
    fn an_edited_linked_output_unseals_the_cache_which_forgets_the_task_and_keeps_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("cache");
        let storage = Storage::open(&root).unwrap();
        let id = TaskId("t".into());
        let task = storage.task(&id, "http://o/x").unwrap();
        task.set_layout(PieceLayout::new(8, 4).unwrap()).unwrap();
        task.write_piece(0, b"abcd", PieceDigest([0; 32])).unwrap();
        task.write_piece(1, b"efgh", PieceDigest([0x11; 32])).unwrap();
        task.persist().unwrap();
        assert!(task.intact());

        let out = dir.path().join("out.bin");
        task.export(&out, false, Link::Prefer).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&out).unwrap().nlink(), 2, "same file system: the output is the cache's inode");
        task.persist().unwrap();
        assert!(task.intact(), "linking and persisting again change nothing");

        // Same length, in place: only the modification time tells.
        std::fs::OpenOptions::new().write(true).open(&out).unwrap().write_all_at(b"X", 0).unwrap();
        assert!(!task.intact(), "an edit through the output is seen");
        // A restart sees it too, and starts afresh in a new file.
        drop(task);
        drop(storage);
        let storage = Storage::open(&root).unwrap();
        let task = storage.task(&id, "http://o/x").unwrap();
        assert!(!task.is_complete() && task.finished_range(0).is_none(), "nothing of the edited file is served");
        assert_eq!(std::fs::read(&out).unwrap(), b"Xbcdefgh", "the user's output is left as the user made it");
        assert_eq!(std::fs::metadata(&out).unwrap().nlink(), 1, "the cache let go of it");

        task.write_piece(0, b"abcd", PieceDigest([0; 32])).unwrap();
        task.write_piece(1, b"efgh", PieceDigest([0x11; 32])).unwrap();
        task.persist().unwrap();
        std::fs::OpenOptions::new().append(true).open(root.join("content/t/t")).unwrap().write_all(b"!").unwrap();
        assert!(!task.intact(), "a longer file is seen");
        task.reset().unwrap();
        assert!(!task.is_complete());
        assert_eq!(std::fs::read(&out).unwrap(), b"Xbcdefgh");
    }
}
