//! What a download through the scheduler knows: the layout, the digests, the parents and what
//! is being fetched from where; and the choice of the next piece and parent ([`State::pick`]),
//! which does no I/O so it can be tested on its own. The download (`super`) starts the fetches.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::Arc,
    time::Instant,
};

use common::{digest::PieceDigest, ids::PeerId, piece::PieceLayout};
use rand::Rng;

use crate::{Error, rpc::scheduler::Parent, storage::TaskStore};

/// Most pieces fetched from one parent at the same time, shared out over the parents: with one
/// parent, four at once keep its stream busy; with several, one each, so every parent's uplink
/// is split among few transfers and each piece completes (and can be passed on) quickly.
const PER_PARENT_BUDGET: usize = 4;

/// Pieces per window of the preferred order among equally rare pieces.
const HASH_WINDOW: u32 = 8;

/// Parents holding a piece from which it counts as common: common pieces are fetched in
/// content order (by window) instead of rarest first, so the whole-content hash, which must
/// take the pieces in order, keeps up with the download instead of waiting at its end for an
/// early piece fetched last. Rarer pieces still come first, so none stays scarce.
const COMMON: usize = 3;

/// What the download knows about the task and its parents.
pub(super) struct State {
    pub(super) task: Arc<TaskStore>,
    pub(super) layout: Option<PieceLayout>,
    /// Each piece's BLAKE3 as the scheduler holds it.
    pub(super) digests: HashMap<u32, PieceDigest>,
    pub(super) parents: Vec<Parent>,
    /// Parents that failed this download; never offered again.
    pub(super) blocked: HashSet<PeerId>,
    /// Pieces being fetched from parents now.
    pub(super) in_flight: HashSet<u32>,
    /// Fetches running per parent.
    pub(super) parent_load: HashMap<PeerId, usize>,
    /// Pieces held by a local writer, and when to try again.
    pub(super) retry_at: HashMap<u32, Instant>,
    /// Parents that answered `Busy`, and when to ask them again.
    pub(super) parent_busy: HashMap<PeerId, Instant>,
    /// Pieces the scheduler handed to this peer to fetch from the origin, not started yet.
    pub(super) origin_queue: VecDeque<u32>,
    /// Pieces being fetched from the origin now.
    pub(super) origin_in_flight: HashSet<u32>,
    /// Bytes in place from this download, for progress events.
    pub(super) finished_bytes: u64,
}

impl State {
    pub(super) fn new(task: Arc<TaskStore>, layout: Option<PieceLayout>) -> Self {
        Self {
            task,
            layout,
            digests: HashMap::new(),
            parents: Vec::new(),
            blocked: HashSet::new(),
            in_flight: HashSet::new(),
            parent_load: HashMap::new(),
            retry_at: HashMap::new(),
            parent_busy: HashMap::new(),
            origin_queue: VecDeque::new(),
            origin_in_flight: HashSet::new(),
            finished_bytes: 0,
        }
    }

    /// Takes the scheduler's update: the layout once known, new digests, the current parents
    /// (less the blocked ones).
    pub(super) fn apply(
        &mut self,
        content_length: Option<u64>,
        piece_length: Option<u64>,
        digests: Vec<(u32, PieceDigest)>,
        parents: Vec<Parent>,
    ) -> Result<(), Error> {
        if self.layout.is_none()
            && let (Some(c), Some(p)) = (content_length, piece_length)
        {
            let layout = PieceLayout::new(c, p).map_err(|e| Error::Integrity(e.to_string()))?;
            self.task.set_layout(layout)?;
            self.layout = Some(layout);
        }
        self.digests.extend(digests);
        self.parents = parents.into_iter().filter(|p| !self.blocked.contains(&p.peer_id)).collect();
        Ok(())
    }

    /// Stores the scheduler's tiny content as piece 0 when it is the whole content and hashes to
    /// piece 0's digest; answers its length, or `None` when the bytes are not used (and the piece
    /// is then fetched from a parent like any other). The scheduler checked them already, but
    /// nothing is stored unverified.
    pub(super) async fn take_inline(&mut self, bytes: Vec<u8>, task_id: &str) -> Result<Option<u64>, Error> {
        let (Some(layout), Some(digest)) =
            (self.layout.filter(PieceLayout::travels_inline), self.digests.get(&0).copied())
        else {
            tracing::warn!(task_id, "tiny content without a tiny layout and digest; ignored");
            return Ok(None);
        };
        if self.task.finished().contains(0) || self.in_flight.contains(&0) || self.origin_in_flight.contains(&0) {
            return Ok(None);
        }
        if bytes.len() as u64 != layout.content_length || blake3::hash(&bytes).as_bytes() != digest.as_bytes() {
            tracing::warn!(task_id, len = bytes.len(), "tiny content does not match piece 0's digest; ignored");
            return Ok(None);
        }
        let task = self.task.clone();
        tokio::task::spawn_blocking(move || task.write_piece(0, &bytes, digest))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        Ok(Some(layout.content_length))
    }

    /// The rarest wanted piece that a free parent of the given kind (seed or not) can serve, with
    /// the least-loaded such parent. For seeds, only pieces no unblocked non-seed parent holds.
    pub(super) fn pick(
        &self,
        finished: &common::bitmap::PieceBitmap,
        layout: PieceLayout,
        seeds: bool,
        rng: &mut impl Rng,
    ) -> Option<(u32, Parent)> {
        let load = |p: &Parent| self.parent_load.get(&p.peer_id).copied().unwrap_or(0);
        let per_parent = (PER_PARENT_BUDGET / self.parents.len().max(1)).max(1);
        let now = Instant::now();
        let has = |p: &Parent, n: u32| p.finished.contains(n) && !self.blocked.contains(&p.peer_id);
        // A parent that just answered `Busy` is not free, whatever this peer's own load on it.
        let free = |p: &Parent| load(p) < per_parent && self.parent_busy.get(&p.peer_id).is_none_or(|t| *t <= now);
        // (holders, window, tiebreak, piece): rarest first (up to `COMMON`); among equally rare
        // pieces, earlier windows of the content first (so the whole-content hash can follow
        // the download instead of waiting for its end), then at random (so children spread
        // their requests).
        let mut best: Option<(usize, u32, u32, u32)> = None;
        for n in 0..layout.count() {
            if finished.contains(n)
                || self.in_flight.contains(&n)
                || self.origin_in_flight.contains(&n)
                || !self.digests.contains_key(&n)
            {
                continue;
            }
            if self.retry_at.get(&n).is_some_and(|t| *t > now) {
                continue;
            }
            if seeds && self.parents.iter().any(|p| !p.seed && has(p, n)) {
                continue;
            }
            if !self.parents.iter().any(|p| p.seed == seeds && has(p, n) && free(p)) {
                continue;
            }
            let holders = self.parents.iter().filter(|p| has(p, n)).count().min(COMMON);
            let (window, tiebreak) = (n / HASH_WINDOW, rng.random::<u32>());
            if best.is_none_or(|(h, w, t, _)| (holders, window, tiebreak) < (h, w, t)) {
                best = Some((holders, window, tiebreak, n));
            }
        }
        let (_, _, _, n) = best?;
        let parent = self
            .parents
            .iter()
            .filter(|p| p.seed == seeds && has(p, n) && free(p))
            .min_by_key(|p| (load(p), rng.random::<u32>()))
            .cloned()?;
        Some((n, parent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use common::{bitmap::PieceBitmap, ids::TaskId};
    use std::time::Duration;

    fn holder_of_piece_0() -> Parent {
        let mut finished = PieceBitmap::new();
        finished.insert(0);
        Parent { peer_id: PeerId("p-1".into()), addr: "127.0.0.1:9".parse().unwrap(), finished, seed: false }
    }

    #[tokio::test]
    async fn inline_bytes_are_stored_only_when_they_hash_to_the_digest_else_a_parent_is_used()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let storage = Storage::open(dir.path())?;
        let task = storage.task(&TaskId("t".into()), "http://o/x")?;
        let bytes = b"tiny".to_vec();
        let digest = PieceDigest(*blake3::hash(&bytes).as_bytes());
        let mut state = State::new(task.clone(), None);
        state.apply(Some(4), Some(1024), vec![(0, digest)], vec![holder_of_piece_0()])?;

        // Corrupt or truncated bytes are dropped: nothing stored, and piece 0 still goes to the
        // parent the normal way.
        assert_eq!(state.take_inline(b"tinY".to_vec(), "t").await?, None);
        assert_eq!(state.take_inline(b"tin".to_vec(), "t").await?, None);
        assert!(!task.finished().contains(0));
        let layout = state.layout.unwrap();
        let picked = state.pick(&task.finished(), layout, false, &mut rand::rng());
        assert_eq!(picked.map(|(n, p)| (n, p.peer_id)), Some((0, PeerId("p-1".into()))));

        // The right bytes become piece 0 through storage, and nothing is left to fetch.
        assert_eq!(state.take_inline(bytes.clone(), "t").await?, Some(4));
        assert!(task.is_complete());
        assert_eq!(task.digest(0), Some(digest));
        let mut stored = Vec::new();
        std::io::Read::read_to_end(&mut task.reader()?, &mut stored)?;
        assert_eq!(stored, bytes);
        assert!(state.pick(&task.finished(), layout, false, &mut rand::rng()).is_none());
        Ok(())
    }

    fn holder(name: &str, pieces: impl IntoIterator<Item = u32>) -> Parent {
        let mut finished = PieceBitmap::new();
        for n in pieces {
            finished.insert(n);
        }
        Parent { peer_id: PeerId(name.into()), addr: "127.0.0.1:9".parse().unwrap(), finished, seed: false }
    }

    #[test]
    fn scarce_pieces_come_first_then_common_ones_in_content_order_and_busy_parents_wait()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let storage = Storage::open(dir.path())?;
        let task = storage.task(&TaskId("t".into()), "http://o/x")?;
        let mut state = State::new(task.clone(), None);
        let digests = (0..16).map(|n| (n, PieceDigest([n as u8; 32]))).collect();
        // Three parents hold every piece but 12, which only "a" holds; a fourth holds pieces
        // 0–7, so those have more holders than 8–15, but all of them are common.
        let common = (0..16).filter(|n| *n != 12);
        let parents = vec![holder("a", 0..16), holder("b", common.clone()), holder("c", common), holder("d", 0..8)];
        state.apply(Some(16 * 1024), Some(1024), digests, parents)?;
        let layout = state.layout.unwrap();
        let mut rng = rand::rng();
        let mut order = Vec::new();
        for _ in 0..10 {
            let (n, _) = state.pick(&task.finished(), layout, false, &mut rng).expect("a piece to fetch");
            state.in_flight.insert(n);
            order.push(n);
        }
        assert_eq!(order[0], 12, "the scarce piece first: {order:?}");
        let mut first_window = order[1..9].to_vec();
        first_window.sort_unstable();
        assert_eq!(first_window, (0..8).collect::<Vec<_>>(), "then pieces 0–7, in any order: {order:?}");
        assert!((8..16).contains(&order[9]), "{order:?}");

        // A parent that answered busy is not asked again for a while, whatever the piece.
        state.in_flight.clear();
        let later = Instant::now() + Duration::from_secs(60);
        for busy in ["b", "c", "d"] {
            state.parent_busy.insert(PeerId(busy.into()), later);
        }
        for _ in 0..5 {
            let (n, parent) = state.pick(&task.finished(), layout, false, &mut rng).expect("a's pieces");
            assert_eq!(parent.peer_id, PeerId("a".into()));
            state.in_flight.insert(n);
            state.parent_load.clear();
        }
        state.parent_busy.insert(PeerId("a".into()), later);
        assert!(state.pick(&task.finished(), layout, false, &mut rng).is_none(), "every parent is busy");
        Ok(())
    }

    #[tokio::test]
    async fn inline_bytes_for_content_that_is_not_one_tiny_piece_are_ignored() -> Result<(), Box<dyn std::error::Error>>
    {
        let dir = tempfile::tempdir()?;
        let storage = Storage::open(dir.path())?;
        let task = storage.task(&TaskId("t".into()), "http://o/x")?;
        let bytes = vec![3u8; 129];
        let mut state = State::new(task.clone(), None);
        state.apply(Some(129), Some(1024), vec![(0, PieceDigest(*blake3::hash(&bytes).as_bytes()))], vec![])?;
        assert_eq!(state.take_inline(bytes, "t").await?, None);
        assert!(!task.finished().contains(0));
        Ok(())
    }
}
