//! Following a download's pieces while they arrive: the whole-content hash (when a digest is to
//! be checked, in piece order) and the output's temporary copy (in any order when nothing is
//! hashed) grow with the download, so once the last piece is in, little is left but a rename.
//!
//! The bytes come from memory where they can: the storing thread hands each piece over right
//! after writing it to the cache ([`PieceTap`]), so the copy costs one write and no read-back
//! (on tmpfs, reading the piece back cost more than receiving it). Pieces stored before the
//! follower started, or out of hash order, are read back from the content file.
//!
//! The copy is written beside the output under a hidden temporary name and published (linked or
//! renamed into place) only after the content is complete and verified; it is a file of its own,
//! so editing the output never touches the cache. When following fails in any way the caller falls
//! back to hashing and copying the stored file after the download.

use std::{
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use common::{bitmap::PieceBitmap, digest::Algorithm};
use sha2::Digest as _;

use crate::{
    Error,
    storage::{PieceTap, TaskStore},
};

/// How often a follower looks for the next piece.
const POLL: Duration = Duration::from_millis(20);

/// Bytes read back from the content file at a time.
const CHUNK: usize = 256 * 1024;

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
    /// Keeps the tap registered with the task alive while following.
    _shared: Arc<Shared>,
}

impl Follower {
    /// Follows `task`, hashing with `algorithm` and writing into `temp` (either may be absent).
    pub fn start(task: Arc<TaskStore>, algorithm: Option<Algorithm>, temp: Option<&TempOutput>) -> Self {
        let stop = StopOnDrop(Arc::default());
        let out = temp.and_then(|t| Some((t.file.try_clone().ok()?, t.written.clone())));
        let written = out.as_ref().map(|(_, w)| w.clone());
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                hasher: algorithm.map(Hasher::new),
                out: out.map(|(f, _)| f),
                next: 0,
                copied: PieceBitmap::new(),
                len: 0,
                receiving: Default::default(),
            }),
        });
        let tap: Arc<dyn PieceTap> = shared.clone();
        task.add_tap(Arc::downgrade(&tap));
        let (flag, following) = (stop.0.clone(), shared.clone());
        let handle = tokio::task::spawn_blocking(move || follow(&task, &following, written.as_deref(), &flag));
        Self { handle, _stop: stop, _shared: shared }
    }

    /// Waits for the follower to reach the end (call once every piece is stored); `None` when it
    /// could not follow.
    pub async fn finish(self) -> Option<Followed> {
        let Self { handle, _stop, _shared } = self;
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
#[derive(Debug, Clone)]
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

/// What the follower thread and the task's writing threads share. Writing threads hand over
/// each chunk while its bytes are still in the CPU's cache ([`PieceTap`]); the follower thread
/// takes the rest (pieces stored before it started, or out of hash order) from the content file.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// With a hash, pieces are taken strictly in order (`next`); without, in any order.
    hasher: Option<Hasher>,
    /// The output's temporary copy; `None` once a write to it failed (or there is none).
    out: Option<std::fs::File>,
    /// With a hash: the next piece to hash (and copy).
    next: u32,
    /// Without a hash: the pieces copied.
    copied: PieceBitmap,
    /// Bytes hashed.
    len: u64,
    /// Pieces being received through the tap: how many of their bytes, from the start, were
    /// taken. With a hash only `next` is, and the hash as it was before it is kept to go back to
    /// should the piece be abandoned.
    receiving: std::collections::HashMap<u32, Receiving>,
}

#[derive(Debug)]
struct Receiving {
    taken: u64,
    before: Option<Hasher>,
}

impl State {
    /// Whether the follower thread should take piece `n` from the content file.
    fn wants(&self, n: u32) -> bool {
        !self.receiving.contains_key(&n)
            && match self.hasher {
                Some(_) => n == self.next,
                None => self.out.is_some() && !self.copied.contains(n),
            }
    }

    /// Hashes and copies `bytes` (at `offset` of the content); `false` when nothing is left to
    /// do (the copy failed and there is no hash).
    fn absorb(&mut self, offset: u64, bytes: &[u8]) -> bool {
        if let Some(h) = self.hasher.as_mut() {
            h.update(bytes);
        }
        if let Some(file) = &self.out
            && file.write_all_at(bytes, offset).is_err()
        {
            // No copy then; a hash goes on.
            self.out = None;
        }
        self.out.is_some() || self.hasher.is_some()
    }

    /// Piece `n` (`len` bytes) is hashed and copied.
    fn done(&mut self, n: u32, len: u64) {
        if self.hasher.is_some() {
            self.len += len;
            self.next += 1;
        } else {
            self.copied.insert(n);
        }
    }
}

impl PieceTap for Shared {
    fn chunk(&self, n: u32, offset: u64, at: u64, bytes: &[u8]) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if at == 0 {
            // A piece starts (again): forget an earlier attempt at it.
            if let Some(Receiving { before: Some(h), .. }) = state.receiving.remove(&n) {
                state.hasher = Some(h);
            }
            if !state.wants(n) {
                return;
            }
            let before = state.hasher.clone();
            state.receiving.insert(n, Receiving { taken: 0, before });
        }
        match state.receiving.get(&n) {
            Some(r) if r.taken == at => {}
            _ => return,
        }
        state.absorb(offset, bytes);
        if let Some(r) = state.receiving.get_mut(&n) {
            r.taken += bytes.len() as u64;
        }
    }

    fn finished(&self, n: u32, range: std::ops::Range<u64>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let len = range.end - range.start;
        match state.receiving.remove(&n) {
            Some(r) if r.taken == len => state.done(n, len),
            // Chunks were missed: go back, and let the follower thread take it from the file.
            Some(Receiving { before: Some(h), .. }) => state.hasher = Some(h),
            _ => {}
        }
    }

    fn abandoned(&self, n: u32) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(Receiving { before: Some(h), .. }) = state.receiving.remove(&n) {
            state.hasher = Some(h);
        }
    }
}

/// The follower thread: waits for the layout, takes from the content file every stored piece
/// the taps did not deliver, and ends once every piece is taken (or on `stop`).
fn follow(task: &TaskStore, shared: &Shared, written: Option<&AtomicBool>, stop: &AtomicBool) -> Option<Followed> {
    let lock = || shared.state.lock().unwrap_or_else(|p| p.into_inner());
    let mut cache: Option<std::fs::File> = None;
    let mut buf = Vec::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        let Some(layout) = task.layout() else {
            std::thread::sleep(POLL);
            continue;
        };
        // The piece to take from the content file, if any.
        let pending = {
            let mut state = lock();
            let done = match state.hasher {
                Some(_) => state.next >= layout.count(),
                None => state.out.is_none() || state.copied.is_complete(layout.count()),
            };
            if done {
                if state.out.is_some()
                    && let Some(w) = written
                {
                    w.store(true, Ordering::Release);
                }
                let len = if state.hasher.is_some() { state.len } else { layout.content_length };
                if state.hasher.is_none() && state.out.is_none() {
                    return None;
                }
                return Some(Followed { len, hex: state.hasher.take().map(Hasher::finalize) });
            }
            // Not one a writer is handing over right now (it finishes that one itself).
            match state.hasher {
                Some(_) => Some(state.next).filter(|n| state.wants(*n) && task.finished_range(*n).is_some()),
                None => task.finished().iter().find(|n| state.wants(*n)),
            }
        };
        let Some(n) = pending else {
            std::thread::sleep(POLL);
            continue;
        };
        let range = layout.range(n)?;
        let cache = match cache.as_mut() {
            Some(f) => f,
            None => cache.insert(task.reader().ok()?),
        };
        // A finished piece has no writer, so nothing else takes it meanwhile; it is read in
        // chunks that stay in the CPU's cache between the read, the hash and the copy.
        let mut offset = range.start;
        while offset < range.end {
            let len = (range.end - offset).min(CHUNK as u64) as usize;
            buf.resize(len, 0);
            cache.read_exact_at(&mut buf, offset).ok()?;
            if !lock().absorb(offset, &buf) {
                return None;
            }
            offset += len as u64;
        }
        lock().done(n, range.end - range.start);
    }
}

#[cfg(test)]
mod tests {
    use common::{digest::PieceDigest, ids::TaskId, piece::PieceLayout};

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
                    task.write_piece(n, bytes, PieceDigest(*blake3::hash(bytes).as_bytes())).unwrap();
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_of_an_abandoned_piece_are_undone_and_its_retry_counts_once() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(&dir.path().join("cache")).unwrap();
        let content: Vec<u8> = (0..8192u32).map(|i| (i * 13 % 251) as u8).collect();
        let layout = PieceLayout::new(content.len() as u64, 4096).unwrap();
        let output = dir.path().join("out.bin");
        for algorithm in [Some(Algorithm::Sha256), None] {
            let task = storage
                .task(&TaskId(format!("{algorithm:?}").replace(|c: char| !c.is_ascii_alphanumeric(), "")), "http://o/x")
                .unwrap();
            task.set_layout(layout).unwrap();
            let temp = TempOutput::create(&output).unwrap();
            let follower = Follower::start(task.clone(), algorithm, Some(&temp));
            // A corrupt first attempt at piece 0, in two chunks, then given up.
            let mut bad = task.piece_writer(0).unwrap().unwrap();
            bad.write(&[0xff; 1000]).unwrap();
            bad.write(&[0xee; 1000]).unwrap();
            drop(bad);
            // The right bytes, chunk by chunk, then piece 1 whole.
            let mut good = task.piece_writer(0).unwrap().unwrap();
            for chunk in content[..4096].chunks(1000) {
                good.write(chunk).unwrap();
            }
            good.finish(PieceDigest(*blake3::hash(&content[..4096]).as_bytes())).unwrap();
            task.write_piece(1, &content[4096..], PieceDigest(*blake3::hash(&content[4096..]).as_bytes())).unwrap();
            let followed = follower.finish().await.unwrap();
            assert_eq!(followed.len, content.len() as u64);
            let want = algorithm.map(|_| hex::encode(sha2::Sha256::digest(&content)));
            assert_eq!(followed.hex, want, "the abandoned bytes are not in the hash");
            temp.publish(&task, &output, true).unwrap();
            assert_eq!(std::fs::read(&output).unwrap(), content, "nor in the copy");
        }
    }
}
