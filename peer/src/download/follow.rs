//! Following a download's pieces while they arrive: the whole-content hash (when a digest is to
//! be checked, in piece order) and the output's temporary copy (each piece as soon as it is
//! stored when nothing is hashed, with `copy_file_range`) grow with the download, so once the
//! last piece is in, little is left but a rename.
//!
//! The copy is written beside the output under a hidden temporary name and published (linked or
//! renamed into place) only after the content is complete and verified; it is a file of its own,
//! so editing the output never touches the cache. When following fails in any way the caller falls
//! back to hashing and copying the stored file after the download.

use std::{
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use common::digest::Algorithm;
use sha2::Digest as _;

use crate::{Error, storage::TaskStore};

/// How often a follower looks for the next piece.
const POLL: Duration = Duration::from_millis(20);

/// What a follower saw: the content's length and, when asked, its digest.
pub(super) struct Followed {
    pub len: u64,
    /// Hex digest in the algorithm asked for; `None` when none was.
    pub hex: Option<String>,
}

/// The output's temporary copy beside it; removed when dropped (after publishing, only the
/// temporary name goes).
pub(super) struct TempOutput {
    path: PathBuf,
    file: std::fs::File,
    /// Set by the follower once every byte is written.
    written: Arc<AtomicBool>,
}

impl TempOutput {
    /// Creates an empty temporary file beside `output`; `None` when that is not possible (the
    /// normal export then reports why).
    pub fn create(output: &Path) -> Option<Self> {
        static NONCE: AtomicU64 = AtomicU64::new(0);
        let dir = output.parent()?;
        let name = output.file_name()?.to_string_lossy();
        let nonce = NONCE.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{}.{nonce}.dfpart", std::process::id()));
        let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).ok()?;
        Some(Self { path, file, written: Arc::default() })
    }

    /// Whether the follower wrote the whole content.
    pub fn written(&self) -> bool {
        self.written.load(Ordering::Acquire)
    }

    /// Puts the copy at `output` (see [`crate::storage::publish`]).
    pub fn publish(self, task: &TaskStore, output: &Path, overwrite: bool) -> Result<(), Error> {
        crate::storage::publish(&self.path, output, overwrite)?;
        task.touch();
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A running follower (a blocking thread); stopped when dropped.
pub(super) struct Follower {
    handle: tokio::task::JoinHandle<Option<Followed>>,
    _stop: StopOnDrop,
}

impl Follower {
    /// Follows `task`, hashing with `algorithm` and writing into `temp` (either may be absent).
    pub fn start(task: Arc<TaskStore>, algorithm: Option<Algorithm>, temp: Option<&TempOutput>) -> Self {
        let stop = StopOnDrop(Arc::default());
        let out = temp.and_then(|t| Some((t.file.try_clone().ok()?, t.written.clone())));
        let flag = stop.0.clone();
        let handle = tokio::task::spawn_blocking(move || follow(&task, algorithm, out, &flag));
        Self { handle, _stop: stop }
    }

    /// Waits for the follower to reach the end (call once every piece is stored); `None` when it
    /// could not follow.
    pub async fn finish(self) -> Option<Followed> {
        let Self { handle, _stop } = self;
        handle.await.ok().flatten()
    }
}

/// Sets its flag when dropped.
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One running whole-content hash.
enum Hasher {
    Blake3(Box<blake3::Hasher>),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn new(algorithm: Algorithm) -> Self {
        match algorithm {
            Algorithm::Blake3 => Self::Blake3(Box::default()),
            Algorithm::Sha256 => Self::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Self::Blake3(h) => {
                h.update(bytes);
            }
            Self::Sha256(h) => h.update(bytes),
        }
    }

    fn finalize(self) -> String {
        match self {
            Self::Blake3(h) => h.finalize().to_hex().to_string(),
            Self::Sha256(h) => hex::encode(h.finalize()),
        }
    }
}

/// The follower's loop (blocking; polls for the next piece until `stop`).
fn follow(
    task: &TaskStore,
    algorithm: Option<Algorithm>,
    mut out: Option<(std::fs::File, Arc<AtomicBool>)>,
    stop: &AtomicBool,
) -> Option<Followed> {
    if algorithm.is_none()
        && let Some((file, written)) = &out
    {
        return copy_as_it_arrives(task, file, written, stop);
    }
    let mut hasher = algorithm.map(Hasher::new);
    let mut cache: Option<std::fs::File> = None;
    let (mut buf, mut next, mut len) = (Vec::new(), 0u32, 0u64);
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let Some(layout) = task.layout() else {
            std::thread::sleep(POLL);
            continue;
        };
        if next >= layout.count() {
            if let Some((_, written)) = &out {
                written.store(true, Ordering::Release);
            }
            return Some(Followed { len, hex: hasher.map(Hasher::finalize) });
        }
        let Some(range) = task.finished_range(next) else {
            std::thread::sleep(POLL);
            continue;
        };
        let cache = match cache.as_mut() {
            Some(f) => f,
            None => cache.insert(task.reader().ok()?),
        };
        // Here there is a hash to make (without one, `copy_as_it_arrives` runs instead), so the
        // bytes pass through this buffer whether or not they are also copied.
        let n = (range.end - range.start) as usize;
        buf.resize(n, 0);
        cache.read_exact_at(&mut buf, range.start).ok()?;
        if let Some(h) = hasher.as_mut() {
            h.update(&buf);
        }
        if let Some((file, _)) = &out
            && file.write_all_at(&buf, range.start).is_err()
        {
            // No copy then; the hash goes on (with no hash to make, there is nothing left).
            out = None;
            hasher.as_ref()?;
        }
        len += n as u64;
        next += 1;
    }
}

/// Without a hash to make, order does not matter: every finished piece is copied at once.
fn copy_as_it_arrives(
    task: &TaskStore,
    out: &std::fs::File,
    written: &AtomicBool,
    stop: &AtomicBool,
) -> Option<Followed> {
    let mut cache: Option<std::fs::File> = None;
    let mut copied = common::bitmap::PieceBitmap::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let Some(layout) = task.layout() else {
            std::thread::sleep(POLL);
            continue;
        };
        if copied.is_complete(layout.count()) {
            written.store(true, Ordering::Release);
            return Some(Followed { len: layout.content_length, hex: None });
        }
        let mut progressed = false;
        for n in task.finished().iter().filter(|n| !copied.contains(*n)).collect::<Vec<_>>() {
            let Some(range) = layout.range(n) else { continue };
            let cache = match cache.as_mut() {
                Some(f) => f,
                None => cache.insert(task.reader().ok()?),
            };
            copy_piece(cache, out, range.start, (range.end - range.start) as usize)?;
            copied.insert(n);
            progressed = true;
        }
        if !progressed {
            std::thread::sleep(POLL);
        }
    }
}

/// Copies one piece to the same offset of `to`: in the kernel when it will, else by hand.
fn copy_piece(from: &std::fs::File, to: &std::fs::File, offset: u64, len: usize) -> Option<()> {
    if !copy_range(from, to, offset, len) {
        let mut buf = vec![0; len];
        from.read_exact_at(&mut buf, offset).ok()?;
        to.write_all_at(&buf, offset).ok()?;
    }
    Some(())
}

/// Copies `len` bytes at `offset` from `from` to the same offset of `to` with
/// `copy_file_range(2)`; `false` when the kernel would not (the caller copies by hand).
fn copy_range(from: &std::fs::File, to: &std::fs::File, offset: u64, len: usize) -> bool {
    let (mut off_in, mut off_out) = (offset as i64, offset as i64);
    let mut left = len;
    while left > 0 {
        match nix::fcntl::copy_file_range(from, Some(&mut off_in), to, Some(&mut off_out), left) {
            Ok(0) | Err(_) => return false,
            Ok(n) => left -= n,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use common::{ids::TaskId, piece::PieceLayout};

    use super::*;
    use crate::storage::Storage;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pieces_arriving_out_of_order_are_hashed_and_copied_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("cache")).unwrap();
        let task = storage.task(&TaskId("t".into()), "http://o/x").unwrap();
        let content: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let layout = PieceLayout::new(content.len() as u64, 4096).unwrap();
        task.set_layout(layout).unwrap();
        let output = dir.path().join("out.bin");
        for (algorithm, hashed) in [(Some(Algorithm::Sha256), true), (None, false)] {
            let temp = TempOutput::create(&output).unwrap();
            let follower = Follower::start(task.clone(), algorithm, Some(&temp));
            if hashed {
                for n in [2u32, 0, 1] {
                    let r = layout.range(n).unwrap();
                    let bytes = &content[r.start as usize..r.end as usize];
                    task.write_piece(n, bytes, &blake3::hash(bytes).to_hex()).unwrap();
                }
            }
            let followed = follower.finish().await.unwrap();
            assert_eq!(followed.len, content.len() as u64);
            let want = algorithm.map(|_| hex::encode(sha2::Sha256::digest(&content)));
            assert_eq!(followed.hex, want);
            assert!(temp.written());
            let temp_path = temp.path.clone();
            temp.publish(&task, &output, true).unwrap();
            assert_eq!(std::fs::read(&output).unwrap(), content);
            assert!(!temp_path.exists(), "the temporary name is gone");
        }
    }

    #[test]
    fn an_unfinished_copy_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let temp = TempOutput::create(&dir.path().join("out.bin")).unwrap();
        let path = temp.path.clone();
        assert!(path.exists() && !temp.written());
        drop(temp);
        assert!(!path.exists());
    }
}
