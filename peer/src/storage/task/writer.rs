//! Writing one piece into the content file chunk by chunk, while it is received.
//!
//! A piece from a parent is received in chunks small enough to stay in the CPU's cache: each
//! chunk is hashed, written to the content file and handed to the taps (a download's output copy
//! and whole-content hash) at once, so the bytes are not read back from memory for each step.
//! The chunks are written before the piece's digest is known to match; that is safe because a
//! piece is served, persisted as finished and published only once [`PieceWriter::finish`] ran,
//! and only one writer at a time may hold a piece, never a finished one, so unchecked bytes never
//! land on a piece anyone reads.

use std::{ops::Range, os::unix::fs::FileExt, sync::Arc};

use common::digest::PieceDigest;

use super::TaskStore;
use crate::Error;

/// Follows the pieces written into a task ([`TaskStore::add_tap`]), called on the writing thread.
/// A piece's chunks come in order, then either `finished` (its digest matched) or `abandoned`.
pub trait PieceTap: Send + Sync + std::fmt::Debug {
    /// `bytes` were written at `offset` of the content; `at` is how far into piece `n` they start.
    fn chunk(&self, n: u32, offset: u64, at: u64, bytes: &[u8]);
    /// Piece `n` (bytes `range`) is whole and verified.
    fn finished(&self, n: u32, range: Range<u64>);
    /// Piece `n`'s bytes were not verified; what was written of it does not count.
    fn abandoned(&self, n: u32);
}

/// The right to write piece `n`; at most one exists per piece, and none for a finished piece.
/// Dropping it without [`finish`](Self::finish) abandons what was written.
#[derive(Debug)]
pub struct PieceWriter {
    task: Arc<TaskStore>,
    /// The taps registered when the piece started (one registered later takes the piece from
    /// the file instead, having missed its first chunks).
    taps: Vec<Arc<dyn PieceTap>>,
    file: std::fs::File,
    n: u32,
    range: Range<u64>,
    /// Bytes written so far, from the piece's start.
    written: u64,
    finished: bool,
}

impl TaskStore {
    /// A writer for piece `n`; `None` when it is finished or another writer holds it.
    pub fn piece_writer(self: &Arc<Self>, n: u32) -> Result<Option<PieceWriter>, Error> {
        let layout = self.layout().ok_or_else(|| Error::Integrity("piece before layout".into()))?;
        let range = layout.range(n).ok_or_else(|| Error::Integrity(format!("piece {n} is out of range")))?;
        let file = self.open_file()?;
        {
            let mut writing = self.writing.lock().unwrap_or_else(|p| p.into_inner());
            if self.finished_range(n).is_some() || !writing.insert(n) {
                return Ok(None);
            }
        }
        let taps = self.live_taps();
        Ok(Some(PieceWriter { task: self.clone(), taps, file, n, range, written: 0, finished: false }))
    }
}

impl PieceWriter {
    /// Writes the piece's next bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), Error> {
        let len = self.range.end - self.range.start;
        if self.written + bytes.len() as u64 > len {
            return Err(Error::Integrity(format!("piece {} is {len} bytes; more were written", self.n)));
        }
        let offset = self.range.start + self.written;
        {
            let _writing = self.task.write_lock.lock().unwrap_or_else(|p| p.into_inner());
            self.file.write_all_at(bytes, offset)?;
        }
        for tap in &self.taps {
            tap.chunk(self.n, offset, self.written, bytes);
        }
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// Marks the piece finished with its (already checked) digest: from now on it is served.
    pub fn finish(mut self, digest: PieceDigest) -> Result<(), Error> {
        let len = self.range.end - self.range.start;
        if self.written != len {
            return Err(Error::Integrity(format!("piece {} should be {len} bytes, got {}", self.n, self.written)));
        }
        let hex = digest.to_hex();
        {
            let mut state = self.task.state.write().unwrap_or_else(|p| p.into_inner());
            state.finished.insert(self.n);
            state.digests.insert(self.n, hex);
        }
        self.task.changed();
        self.finished = true;
        for tap in &self.taps {
            tap.finished(self.n, self.range.clone());
        }
        Ok(())
    }
}

impl Drop for PieceWriter {
    fn drop(&mut self) {
        self.task.writing.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.n);
        if !self.finished {
            for tap in &self.taps {
                tap.abandoned(self.n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use common::{digest::PieceDigest, ids::TaskId, piece::PieceLayout};

    use crate::storage::Storage;

    #[test]
    fn one_writer_per_piece_and_none_once_finished() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        let task = storage.task(&TaskId("t".into()), "http://o/x").unwrap();
        task.set_layout(PieceLayout::new(10, 4).unwrap()).unwrap();
        let mut first = task.piece_writer(1).unwrap().expect("free piece");
        assert!(task.piece_writer(1).unwrap().is_none(), "a second writer for the same piece");
        first.write(b"ab").unwrap();
        assert!(first.write(b"abc").is_err(), "more bytes than the piece holds");
        assert!(task.finished_range(1).is_none(), "unchecked bytes are not served");
        drop(first);
        let mut again = task.piece_writer(1).unwrap().expect("an abandoned piece is free again");
        again.write(b"efgh").unwrap();
        again.finish(PieceDigest([0; 32])).unwrap();
        assert_eq!(task.finished_range(1), Some(4..8));
        assert!(task.piece_writer(1).unwrap().is_none(), "a finished piece is never rewritten");
        let mut short = task.piece_writer(2).unwrap().unwrap();
        short.write(b"i").unwrap();
        assert!(short.finish(PieceDigest([0; 32])).is_err(), "a short piece is not finished");
        assert!(task.finished_range(2).is_none());
    }
}
