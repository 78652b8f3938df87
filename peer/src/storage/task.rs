//! One task's content file and metadata.

use std::{
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, RwLock},
    time::{SystemTime, UNIX_EPOCH},
};

use common::{bitmap::PieceBitmap, digest::PieceDigest, ids::TaskId, piece::PieceLayout};
use serde::{Deserialize, Serialize};

use crate::Error;

mod seal;
mod writer;
pub use seal::Seal;
pub use writer::{PieceTap, PieceWriter};

/// What `meta/<id>.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskMeta {
    pub task_id: TaskId,
    pub url: String,
    pub content_length: Option<u64>,
    pub piece_length: Option<u64>,
    /// Finished piece numbers.
    pub finished: Vec<u32>,
    /// BLAKE3 hex of each finished piece, by number.
    pub digests: std::collections::BTreeMap<u32, String>,
    /// Unix seconds of the last use, for GC.
    pub last_used: u64,
    /// The complete content file's seal (see [`Seal`]); absent before completion.
    #[serde(default)]
    pub sealed: Option<Seal>,
}

#[derive(Debug)]
struct State {
    layout: Option<PieceLayout>,
    finished: PieceBitmap,
    digests: std::collections::BTreeMap<u32, String>,
    last_used: u64,
    sealed: Option<Seal>,
}

/// One task's content file and what is known about it.
#[derive(Debug)]
pub struct TaskStore {
    id: TaskId,
    url: String,
    content: PathBuf,
    meta: PathBuf,
    file: Mutex<Option<std::fs::File>>,
    state: RwLock<State>,
    /// Downloads in progress on this task; GC leaves busy tasks alone.
    busy: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Held while writing the content file: concurrent writers then sleep instead of spinning
    /// on the inode's lock (which the kernel takes for every write to a file anyway).
    write_lock: Mutex<()>,
    /// Who wants each stored piece's bytes while they are still in memory (see [`PieceTap`]).
    taps: Mutex<Vec<std::sync::Weak<dyn PieceTap>>>,
    /// Pieces a [`PieceWriter`] is writing now.
    writing: Mutex<std::collections::HashSet<u32>>,
    /// Bumped whenever the layout is set or a piece finishes, so a reader waiting for a piece
    /// (the proxy answering a `Range` while the task is still arriving) wakes without polling.
    changes: tokio::sync::watch::Sender<u64>,
}

/// What the cache holds of one task, as `dfctl task` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSummary {
    pub task_id: TaskId,
    /// The URL the task was created for.
    pub url: String,
    /// Content and piece lengths, once known.
    pub layout: Option<PieceLayout>,
    pub finished_pieces: u32,
    /// Every piece is here.
    pub complete: bool,
    /// Bytes the content file takes on disk.
    pub disk_bytes: u64,
    /// Unix seconds of the last use.
    pub last_used: u64,
    /// A download is using it.
    pub in_use: bool,
}

/// Marks a task busy while alive (see [`TaskStore::mark_busy`]).
#[derive(Debug)]
pub struct BusyGuard(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Removes `path`; one already gone is fine.
fn remove_if_exists(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// Whether `id` can name a file in the cache: ASCII letters and digits only, so no separator,
/// no `..` and no hidden name, whatever reached the edges' checks.
fn nameable(id: &TaskId) -> bool {
    (1..=TaskId::LEN).contains(&id.0.len()) && id.0.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn paths(root: &Path, id: &TaskId) -> Result<(PathBuf, PathBuf), Error> {
    if !nameable(id) {
        return Err(Error::InvalidRequest(format!("task id {:?} cannot name a file", id.0)));
    }
    let prefix = id.0.get(..3).unwrap_or(&id.0);
    Ok((root.join("content").join(prefix).join(&id.0), root.join("meta").join(format!("{}.json", id.0))))
}

impl TaskStore {
    pub(super) fn create(root: &Path, id: &TaskId, url: &str) -> Result<Self, Error> {
        let (content, meta) = paths(root, id)?;
        if let Some(dir) = content.parent() {
            std::fs::create_dir_all(dir)?;
        }
        Ok(Self {
            id: id.clone(),
            url: url.to_owned(),
            content,
            meta,
            file: Mutex::new(None),
            busy: Default::default(),
            write_lock: Mutex::new(()),
            taps: Mutex::default(),
            writing: Mutex::default(),
            changes: tokio::sync::watch::Sender::new(0),
            state: RwLock::new(State {
                layout: None,
                finished: PieceBitmap::new(),
                digests: Default::default(),
                last_used: now(),
                sealed: None,
            }),
        })
    }

    pub(super) fn load(root: &Path, meta_path: &Path) -> Result<Self, Error> {
        let meta: TaskMeta =
            serde_json::from_slice(&std::fs::read(meta_path)?).map_err(|e| Error::Io(std::io::Error::other(e)))?;
        let (content, meta_file) = paths(root, &meta.task_id)?;
        let layout = match (meta.content_length, meta.piece_length) {
            (Some(c), Some(p)) => Some(PieceLayout::new(c, p).map_err(|e| Error::Io(std::io::Error::other(e)))?),
            _ => None,
        };
        let (mut digests, mut sealed) = (meta.digests, meta.sealed);
        if !Self::matches(sealed, &content) {
            // Changed since it was complete (an output linked to it was edited): start afresh,
            // in a new file.
            tracing::warn!(task_id = %meta.task_id, "cached content was changed outside the cache; forgetting it");
            remove_if_exists(&content)?;
            (digests, sealed) = (Default::default(), None);
        }
        let on_disk = std::fs::metadata(&content).map(|m| m.len()).unwrap_or(0);
        let finished: PieceBitmap = match layout {
            // Pieces whose bytes are not all on disk are forgotten.
            Some(l) => {
                meta.finished.iter().copied().filter(|n| l.range(*n).is_some_and(|r| r.end <= on_disk)).collect()
            }
            None => PieceBitmap::new(),
        };
        Ok(Self {
            id: meta.task_id,
            url: meta.url,
            content,
            meta: meta_file,
            file: Mutex::new(None),
            busy: Default::default(),
            write_lock: Mutex::new(()),
            taps: Mutex::default(),
            writing: Mutex::default(),
            changes: tokio::sync::watch::Sender::new(0),
            state: RwLock::new(State { layout, finished, digests, last_used: meta.last_used, sealed }),
        })
    }

    /// The task's id.
    pub fn id(&self) -> &TaskId {
        &self.id
    }

    /// The URL it was created for.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The piece layout, once the content length is known.
    pub fn layout(&self) -> Option<PieceLayout> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).layout
    }

    /// Fixes the layout and sizes the content file. A different layout than before is an error.
    pub fn set_layout(&self, layout: PieceLayout) -> Result<(), Error> {
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        match state.layout {
            Some(l) if l == layout => return Ok(()),
            Some(l) => {
                return Err(Error::Integrity(format!("task {} has layout {l:?}, now told {layout:?}", self.id)));
            }
            None => {}
        }
        let file = self.open_file()?;
        file.set_len(layout.content_length)?;
        state.layout = Some(layout);
        drop(state);
        self.changed();
        Ok(())
    }

    fn open_file(&self) -> Result<std::fs::File, Error> {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = guard.as_ref() {
            return Ok(f.try_clone()?);
        }
        let f = std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&self.content)?;
        *guard = Some(f.try_clone()?);
        Ok(f)
    }

    /// Writes piece `n` (already verified) and marks it finished; a piece already finished is
    /// left as it is.
    pub fn write_piece(self: &Arc<Self>, n: u32, bytes: &[u8], digest: PieceDigest) -> Result<(), Error> {
        let Some(mut writer) = self.piece_writer(n)? else {
            return if self.finished_range(n).is_some() {
                Ok(())
            } else {
                Err(Error::Integrity(format!("piece {n} is being written by another download")))
            };
        };
        writer.write(bytes)?;
        writer.finish(digest)
    }

    /// Hands every piece stored from now on to `tap` until it is dropped.
    pub fn add_tap(&self, tap: std::sync::Weak<dyn PieceTap>) {
        let mut taps = self.taps.lock().unwrap_or_else(|p| p.into_inner());
        taps.retain(|t| t.strong_count() > 0);
        taps.push(tap);
    }

    fn live_taps(&self) -> Vec<Arc<dyn PieceTap>> {
        let mut taps = self.taps.lock().unwrap_or_else(|p| p.into_inner());
        taps.retain(|t| t.strong_count() > 0);
        taps.iter().filter_map(std::sync::Weak::upgrade).collect()
    }

    /// Writes bytes at `offset` before the layout is known (an origin without a content length);
    /// call [`set_layout`](Self::set_layout) and [`mark_finished`](Self::mark_finished) at the end.
    pub fn write_raw(&self, offset: u64, bytes: &[u8]) -> Result<(), Error> {
        let file = self.open_file()?;
        let _writing = self.write_lock.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all_at(bytes, offset)?;
        Ok(())
    }

    /// Marks piece `n`, written with [`write_raw`](Self::write_raw), as finished.
    pub fn mark_finished(&self, n: u32, digest: PieceDigest) {
        let hex = digest.to_hex();
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        state.finished.insert(n);
        state.digests.insert(n, hex);
        drop(state);
        self.changed();
    }

    /// Wakes whoever [`watch`](Self::watch)es the task.
    fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A receiver that sees a change whenever the layout is set or a piece finishes.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The byte range of piece `n` if it is finished (for serving straight from the file).
    pub fn finished_range(&self, n: u32) -> Option<std::ops::Range<u64>> {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        if !state.finished.contains(n) {
            return None;
        }
        state.layout?.range(n)
    }

    /// A read-only handle on the content file.
    pub fn reader(&self) -> Result<std::fs::File, Error> {
        Ok(std::fs::File::open(&self.content)?)
    }

    /// Which pieces are finished.
    pub fn finished(&self) -> PieceBitmap {
        self.state.read().unwrap_or_else(|p| p.into_inner()).finished.clone()
    }

    /// The digest recorded for a finished piece.
    pub fn digest(&self, n: u32) -> Option<PieceDigest> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).digests.get(&n).and_then(|hex| hex.parse().ok())
    }

    /// Whether every piece is finished.
    pub fn is_complete(&self) -> bool {
        let state = self.state.read().unwrap_or_else(|p| p.into_inner());
        state.layout.is_some_and(|l| state.finished.is_complete(l.count()))
    }

    /// Records a use (for LRU GC).
    pub fn touch(&self) {
        self.state.write().unwrap_or_else(|p| p.into_inner()).last_used = now();
    }

    /// Sets the last use (GC tests and imports).
    pub fn set_last_used(&self, unix_secs: u64) {
        self.state.write().unwrap_or_else(|p| p.into_inner()).last_used = unix_secs;
    }

    /// Keeps GC away from this task until the guard drops.
    pub fn mark_busy(&self) -> BusyGuard {
        self.busy.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        BusyGuard(self.busy.clone())
    }

    /// Whether a download is using the task.
    pub fn is_busy(&self) -> bool {
        self.busy.load(std::sync::atomic::Ordering::SeqCst) > 0
    }

    /// Bytes the content file takes on disk (its allocated blocks: a partial file is sparse).
    pub fn disk_bytes(&self) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&self.content).map(|m| m.blocks() * 512).unwrap_or(0)
    }

    /// What the cache holds of this task now.
    pub fn summary(&self) -> TaskSummary {
        let (layout, finished_pieces, complete, last_used) = {
            let s = self.state.read().unwrap_or_else(|p| p.into_inner());
            let finished = s.finished.len();
            (s.layout, finished, s.layout.is_some_and(|l| s.finished.is_complete(l.count())), s.last_used)
        };
        TaskSummary {
            task_id: self.id.clone(),
            url: self.url.clone(),
            layout,
            finished_pieces,
            complete,
            disk_bytes: self.disk_bytes(),
            last_used,
            in_use: self.is_busy(),
        }
    }

    /// Unix seconds of the last use.
    pub fn last_used(&self) -> u64 {
        self.state.read().unwrap_or_else(|p| p.into_inner()).last_used
    }

    /// Writes the metadata file (temp + rename) after syncing the content, which is sealed once
    /// complete.
    pub fn persist(&self) -> Result<(), Error> {
        if let Some(f) = self.file.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            f.sync_data()?;
        }
        self.seal()?;
        let meta = {
            let s = self.state.read().unwrap_or_else(|p| p.into_inner());
            TaskMeta {
                task_id: self.id.clone(),
                url: self.url.clone(),
                content_length: s.layout.map(|l| l.content_length),
                piece_length: s.layout.map(|l| l.piece_length),
                finished: s.finished.iter().collect(),
                digests: s.digests.clone(),
                last_used: s.last_used,
                sealed: s.sealed,
            }
        };
        let tmp = self.meta.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&meta).map_err(|e| Error::Io(std::io::Error::other(e)))?)?;
        std::fs::rename(tmp, &self.meta)?;
        Ok(())
    }

    /// Puts the complete content at `output` atomically (temp file beside it, then a hard link or,
    /// with `overwrite`, a rename). The output shares the cache's inode when `link` allows and
    /// the file system does (no copy; an edit of the output unseals the cache's file, which is
    /// then forgotten, see [`Seal`]); otherwise it is a copy.
    pub fn export(&self, output: &Path, overwrite: bool, link: Link) -> Result<(), Error> {
        if !self.is_complete() {
            return Err(Error::Integrity(format!("task {} is not complete", self.id)));
        }
        let dir = output
            .parent()
            .ok_or_else(|| Error::InvalidRequest(format!("{} has no parent directory", output.display())))?;
        let name = output.file_name().unwrap_or_default().to_string_lossy();
        let tmp = dir.join(format!(".{name}.{}.dfpart", std::process::id()));
        let result = (|| {
            let linked = match link {
                Link::Never => Err(None),
                Link::Prefer | Link::Must => std::fs::hard_link(&self.content, &tmp).map_err(Some),
            };
            match (linked, link) {
                (Ok(()), _) => {}
                (Err(Some(e)), Link::Must) => {
                    return Err(match e.kind() {
                        std::io::ErrorKind::CrossesDevices => Error::InvalidRequest(format!(
                            "--force-hard-link needs {} on the same file system as the cache ({})",
                            output.display(),
                            self.content.display()
                        )),
                        _ => Error::Io(e),
                    });
                }
                (Err(_), _) => {
                    std::fs::copy(&self.content, &tmp)?;
                }
            }
            publish(&tmp, output, overwrite)
        })();
        let _ = std::fs::remove_file(&tmp);
        self.touch();
        result
    }

    pub(super) fn delete_files(&self) -> Result<(), Error> {
        *self.file.lock().unwrap_or_else(|p| p.into_inner()) = None;
        remove_if_exists(&self.content)?;
        remove_if_exists(&self.meta)
    }
}

/// Whether an output may share the cache's inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// Always a copy (the output is on another file system).
    Never,
    /// A hard link when the file system allows, else a copy (the default, as in Dragonfly).
    Prefer,
    /// A hard link or an error (`--force-hard-link`).
    Must,
}

/// Puts the finished temporary file `tmp` at `output`: renamed over it with `overwrite`, else
/// hard-linked, so an existing file is never replaced. The caller removes `tmp` afterwards.
pub fn publish(tmp: &Path, output: &Path, overwrite: bool) -> Result<(), Error> {
    if overwrite {
        std::fs::rename(tmp, output)?;
    } else {
        std::fs::hard_link(tmp, output).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::OutputExists(output.display().to_string()),
            _ => Error::Io(e),
        })?;
    }
    Ok(())
}
