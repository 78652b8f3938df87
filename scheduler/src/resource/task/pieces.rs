//! What peers report about the content: its size (from the source), the pieces they finished,
//! and each piece's digest, taken only from the peer that fetched it from the origin.
//!
//! Tiny content (one piece of at most [`TINY_LIMIT`] bytes) is the one exception to "piece bytes
//! never travel in gRPC messages": a piece connection would cost more than the bytes. The peer
//! that fetched it from the origin, and alone may set its digest, sends the bytes with it; the task
//! keeps them only when their length is the content's and their BLAKE3 is that digest, then hands
//! them to every downloading peer ([`Update::tiny_content`](super::Update::tiny_content)), which reports the piece as
//! [`PieceSource::Inline`]: counted neither as origin nor as parent traffic. Held bytes also make
//! the task a source of its own, so no peer goes back to source for them again.

use std::time::Instant;

pub use common::piece::{PieceReport, PieceSource};
use common::{
    digest::PieceDigest,
    ids::PeerId,
    piece::{MAX_PIECES, PieceLayout, TINY_LIMIT, requested_piece_length},
};

use super::{PeerPhase, Task};
use crate::scheduling::{self, OriginPiece, origin};

/// What the source learnt from the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentInfo {
    /// `None` while unknown (a chunked body).
    pub content_length: Option<u64>,
    pub piece_length: u64,
    /// The origin serves byte ranges: the task may spread its pieces over several fetchers.
    pub ranges: bool,
}

impl Task {
    /// The tiny content held for peers, if any.
    pub fn tiny_content(&self) -> Option<&[u8]> {
        self.tiny.as_deref()
    }

    /// Checks the bytes the origin fetcher of piece `number` sent with its `digest`: the piece
    /// must be the whole content, known to be tiny, and the bytes must be that long and hash to
    /// that digest. Refused bytes are a broken peer's report, refused like a contradicting digest.
    fn check_tiny(&self, number: u32, digest: &PieceDigest, content: &[u8]) -> Result<(), String> {
        let Some(layout) = self.layout().filter(PieceLayout::travels_inline) else {
            return Err(format!(
                "piece {number} carries its bytes, but the content is not known to be one piece of at most {TINY_LIMIT} bytes"
            ));
        };
        if number != 0 || content.len() as u64 != layout.content_length {
            return Err(format!(
                "piece {number} carries {} bytes, not the whole content of {}",
                content.len(),
                layout.content_length
            ));
        }
        if blake3::hash(content).as_bytes() != digest.as_bytes() {
            return Err(format!("piece {number} bytes do not match its digest"));
        }
        Ok(())
    }

    /// The source reports the content's size. Only a peer fetching from the origin may.
    pub fn content_info(&mut self, peer: &PeerId, info: ContentInfo) -> Result<(), String> {
        let ContentInfo { content_length, piece_length, ranges } = info;
        let record = self.peers.get(peer).ok_or("peer is not registered")?;
        if record.phase != PeerPhase::BackToSource {
            return Err("only the peer fetching from the origin reports content info".into());
        }
        requested_piece_length(piece_length).map_err(|e| e.to_string())?;
        if let Some(length) = content_length {
            PieceLayout::new(length, piece_length).map_err(|e| e.to_string())?;
        }
        if let Some(p) = self.piece_length.filter(|p| *p != piece_length)
            && (self.requested_piece_length.is_some() || self.content_length.is_some())
        {
            return Err(format!("piece length {piece_length} contradicts {p}"));
        }
        if let (Some(old), Some(new)) = (self.content_length, content_length)
            && old != new
        {
            return Err(format!("content length {new} contradicts {old}"));
        }
        self.piece_length = Some(piece_length);
        if content_length.is_some() {
            self.content_length = content_length;
        }
        if let Some(layout) = self.layout() {
            self.digests.resize(layout.count() as usize, None);
            if ranges && self.origin.is_empty() {
                self.origin = self
                    .digests
                    .iter()
                    .map(|d| if d.is_some() { OriginPiece::Done } else { OriginPiece::Free })
                    .collect();
            }
        }
        self.touch(peer, Instant::now());
        Ok(())
    }

    /// Records finished pieces. Digests are taken only from a peer that fetched from the origin;
    /// a digest that contradicts an earlier one is refused.
    pub fn pieces_finished(&mut self, peer: &PeerId, reports: &[PieceReport]) -> Result<(), String> {
        let phase = self.peers.get(peer).ok_or("peer is not registered")?.phase;
        // Piece numbers size the digest table and every peer's bitmap: bounded before any use.
        let pieces = self.layout().map_or(MAX_PIECES, |l| l.count());
        if let Some(r) = reports.iter().find(|r| r.number >= pieces) {
            return Err(format!("piece {} is beyond the content ({pieces} pieces at most)", r.number));
        }
        for r in reports {
            match &r.source {
                PieceSource::Origin { content } => {
                    let digest = r.digest.ok_or_else(|| format!("piece {} from the origin has no digest", r.number))?;
                    let n = r.number as usize;
                    let allowed = if self.spreads() {
                        origin::may_report(&self.origin, peer, r.number)
                            || self.digests.get(n).copied().flatten() == Some(digest)
                    } else {
                        phase == PeerPhase::BackToSource
                    };
                    if !allowed {
                        return Err(format!(
                            "piece {} reported from the origin by a peer not fetching it from there",
                            r.number
                        ));
                    }
                    if self.digests.len() <= n {
                        if self.layout().is_some() {
                            return Err(format!("piece {} is beyond the content", r.number));
                        }
                        self.digests.resize(n + 1, None);
                    }
                    if let Some(content) = content {
                        self.check_tiny(r.number, &digest, content)?;
                    }
                    match self.digests[n] {
                        Some(d) if d != digest => {
                            return Err(format!("piece {} digest contradicts the recorded one", r.number));
                        }
                        _ => self.digests[n] = Some(digest),
                    }
                    if let Some(o) = self.origin.get_mut(n) {
                        *o = OriginPiece::Done;
                    }
                    if let Some(content) = content {
                        self.tiny = Some(content.clone());
                    }
                }
                PieceSource::Inline => {
                    if self.tiny.is_none() || r.number != 0 {
                        return Err(format!("piece {} reported inline, but no tiny content is held", r.number));
                    }
                }
                PieceSource::Parent(parent) => {
                    let offered = self.peers.get(peer).is_some_and(|c| c.offered.contains(parent));
                    if let Some(p) = self.peers.get_mut(parent).filter(|_| offered) {
                        p.upload_success += 1;
                        p.updated = Instant::now();
                        let bad = scheduling::is_bad_parent(&p.costs, r.cost_micros);
                        p.costs.push(r.cost_micros);
                        if p.costs.len() > 4096 {
                            p.costs.drain(..2048);
                        }
                        if bad {
                            tracing::info!(task_id = %self.id, parent = %parent, child = %peer, cost_us = r.cost_micros, "slow parent avoided for this child");
                            if let Some(c) = self.peers.get_mut(peer) {
                                c.slow.insert(parent.clone());
                            }
                            self.dag.remove_edge(parent, peer);
                        }
                    }
                }
            }
            if let Some(c) = self.peers.get_mut(peer) {
                if !c.finished.contains(r.number) {
                    match &r.source {
                        PieceSource::Origin { .. } => c.origin_pieces += 1,
                        PieceSource::Parent(parent) if c.offered.contains(parent) => {
                            *c.parent_pieces.entry(parent.clone()).or_default() += 1
                        }
                        // A stranger is credited nothing (the piece still counts as the peer's).
                        PieceSource::Parent(_) => {}
                        PieceSource::Inline => c.inline_pieces += 1,
                    }
                }
                c.finished.insert(r.number);
                if c.phase == PeerPhase::Pending {
                    c.phase = PeerPhase::Running;
                }
            }
        }
        self.touch(peer, Instant::now());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use common::ids::{HostId, TaskId};

    use super::*;
    use crate::{
        resource::Hosts,
        resource::task::{Sent, SourceDecision, test_support::*},
        scheduling::Limits,
    };

    /// A task whose source `a` learnt a content of `len` bytes (in 1 KiB pieces, `None`: not yet
    /// known), and a second peer `b` waiting for it.
    fn tiny_source(len: Option<u64>) -> (Task, PeerId, PeerId) {
        let (a, b) = (PeerId("a-1".into()), PeerId("b-1".into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        t.register(a.clone(), HostId("a".into()), false);
        t.register(b.clone(), HostId("b".into()), false);
        assert!(matches!(t.decide_source(&a, false, false, Instant::now()), SourceDecision::BackToSource(_)));
        t.content_info(&a, ContentInfo { content_length: len, piece_length: 1024, ranges: false }).unwrap();
        (t, a, b)
    }

    /// Piece 0 from the origin with `content` attached and `digest` claimed for it.
    fn origin_with_bytes(content: &[u8], digest: PieceDigest) -> PieceReport {
        PieceReport {
            number: 0,
            digest: Some(digest),
            source: PieceSource::Origin { content: Some(content.to_vec()) },
            cost_micros: 1,
        }
    }

    fn inline(n: u32) -> PieceReport {
        PieceReport { number: n, digest: None, source: PieceSource::Inline, cost_micros: 0 }
    }

    #[test]
    fn sizes_from_the_source_are_bounded_before_anything_is_allocated() {
        let (mut t, a, b) = tiny_source(None);
        // A piece length no download may ask for, or a layout of more than MAX_PIECES pieces.
        for (content_length, piece_length) in [(None, 1), (None, 100_000_000_000), (Some(u64::MAX), 1024)] {
            let info = ContentInfo { content_length, piece_length, ranges: false };
            assert!(t.content_info(&a, info).is_err(), "{content_length:?} {piece_length}");
        }
        // While the size is unknown, a piece number still may not exceed MAX_PIECES, from any source.
        let far = PieceReport { number: u32::MAX, ..from_origin(0) };
        assert!(t.pieces_finished(&a, &[far]).unwrap_err().contains("beyond the content"));
        assert!(t.pieces_finished(&b, &[inline(MAX_PIECES)]).is_err());
        assert!(t.digests.len() <= 1, "no table was grown: {}", t.digests.len());
        assert!(t.peer(&b).unwrap().finished.is_empty());
    }

    #[test]
    fn tiny_content_from_its_origin_fetcher_is_held_and_handed_out_once_inline() {
        let hosts = Hosts::default();
        for h in ["a", "b", "c"] {
            hosts.announce(host(h), Instant::now());
        }
        let limits = Limits::default();
        for len in [1usize, 128] {
            let bytes = vec![7u8; len];
            let digest = PieceDigest(*blake3::hash(&bytes).as_bytes());
            let (mut t, a, b) = tiny_source(Some(len as u64));
            t.pieces_finished(&a, &[origin_with_bytes(&bytes, digest)]).unwrap();
            assert_eq!(t.tiny_content(), Some(&bytes[..]), "size {len}");

            let mut sent = Sent::default();
            let u = t.update_for(&b, &mut sent, &hosts, &limits).unwrap();
            assert_eq!(u.tiny_content.as_deref(), Some(&bytes[..]), "size {len}");
            assert_eq!(
                (u.content_length, u.piece_length, u.digests),
                (Some(len as u64), Some(1024), vec![(0, digest)])
            );
            let again = t.update_for(&b, &mut sent, &hosts, &limits);
            assert!(again.is_none_or(|u| u.tiny_content.is_none()), "sent once");

            // Reported inline: neither origin nor parent traffic in the task's graph.
            t.pieces_finished(&b, &[inline(0)]).unwrap();
            let rb = t.peer(&b).unwrap();
            assert_eq!((rb.inline_pieces, rb.origin_pieces, rb.parent_pieces.len()), (1, 0, 0));
            let ra = t.peer(&a).unwrap();
            assert_eq!((ra.origin_pieces, ra.upload_success), (1, 0), "a served nobody");

            // Every holder gone: the scheduler still holds the bytes, so nobody goes to the origin.
            t.remove_host(&HostId("a".into()));
            t.remove_host(&HostId("b".into()));
            let c = PeerId("c-1".into());
            t.register(c.clone(), HostId("c".into()), false);
            assert_eq!(t.decide_source(&c, false, false, Instant::now()), SourceDecision::Wait);
            let uc = t.update_for(&c, &mut Sent::default(), &hosts, &limits).unwrap();
            assert_eq!(uc.tiny_content.as_deref(), Some(&bytes[..]));
        }
    }

    #[test]
    fn content_only_small_enough_matching_and_from_its_fetcher_is_held() {
        let hello = b"hello".to_vec();
        let digest = PieceDigest(*blake3::hash(&hello).as_bytes());
        let big = vec![1u8; 129];
        let big_digest = PieceDigest(*blake3::hash(&big).as_bytes());

        // Not the origin fetcher: the whole report is refused.
        let (mut t, _, b) = tiny_source(Some(5));
        assert!(t.pieces_finished(&b, &[origin_with_bytes(&hello, digest)]).is_err());
        assert_eq!(t.tiny_content(), None, "wrong sender");
        // The fetcher, but its bytes are not the content's length (their own digest or not).
        let (mut t, a, _) = tiny_source(Some(6));
        assert!(t.pieces_finished(&a, &[origin_with_bytes(&hello, digest)]).is_err());
        assert_eq!(t.tiny_content(), None, "wrong length");
        // The fetcher, the right length, but the bytes do not hash to the digest it reports.
        let (mut t, a, _) = tiny_source(Some(5));
        assert!(t.pieces_finished(&a, &[origin_with_bytes(b"hellO", digest)]).is_err());
        assert_eq!(t.tiny_content(), None, "wrong digest");
        assert_eq!(t.digests.first().copied().flatten(), None, "nor is the digest recorded");
        // More than 128 bytes (one piece, matching digest): not tiny, never held.
        let (mut t, a, _) = tiny_source(Some(129));
        assert!(t.pieces_finished(&a, &[origin_with_bytes(&big, big_digest)]).is_err());
        assert_eq!(t.tiny_content(), None, "129 bytes");
        // A length not known yet (a chunked origin): nothing to check the bytes against.
        let (mut t, a, _) = tiny_source(None);
        assert!(t.pieces_finished(&a, &[origin_with_bytes(&hello, digest)]).is_err());
        assert_eq!(t.tiny_content(), None, "unknown length");
        // The normal path for the same piece without bytes still works, and inline reports need
        // held bytes.
        let (mut t, a, b) = tiny_source(Some(5));
        let plain = PieceReport {
            number: 0,
            digest: Some(digest),
            source: PieceSource::Origin { content: None },
            cost_micros: 1,
        };
        t.pieces_finished(&a, &[plain]).unwrap();
        assert_eq!(t.tiny_content(), None);
        assert!(t.pieces_finished(&b, &[inline(0)]).is_err(), "nothing was handed out inline");
    }

    #[test]
    fn each_peer_counts_its_pieces_by_source_once() {
        let (a, b) = (PeerId("a-1".into()), PeerId("b-1".into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        fetch_all_from_origin(&mut t, &a, 3);
        t.register(b.clone(), HostId("b".into()), false);
        offer(&mut t, &b, &a);
        // Piece 0 reported twice (a retried report) counts once.
        t.pieces_finished(&b, &[from_parent(0, &a, 100), from_parent(1, &a, 100), from_parent(0, &a, 100)]).unwrap();
        let snapshot = t.snapshot();
        let (pa, pb) = (&snapshot.peers[0], &snapshot.peers[1]);
        assert_eq!((pa.origin_pieces, pa.parent_pieces.len()), (3, 0));
        assert_eq!((pb.origin_pieces, pb.parent_pieces.get(&a).copied()), (0, Some(2)));
    }

    #[test]
    fn what_a_peer_says_about_a_parent_it_was_never_offered_changes_nothing() {
        let (a, b, c) = (PeerId("a-1".into()), PeerId("b-1".into()), PeerId("c-1".into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        fetch_all_from_origin(&mut t, &a, 3);
        t.register(b.clone(), HostId("b".into()), false);
        t.register(c.clone(), HostId("c".into()), false);
        offer(&mut t, &c, &a);

        // b was never handed a: its "corrupt" report excludes no one and blocks nothing.
        t.parent_failed(&b, &a, true);
        assert!(!t.peer(&a).unwrap().excluded);
        assert_eq!(t.peer(&a).unwrap().upload_failed, 0);
        assert!(t.peer(&b).unwrap().blocked.is_empty());
        // Nor does a piece "from" a credit a: no success, no cost, no edge in the graph.
        t.pieces_finished(&b, &[from_parent(0, &a, 1)]).unwrap();
        assert_eq!(t.peer(&a).unwrap().upload_success, 0);
        assert!(t.peer(&b).unwrap().parent_pieces.is_empty());

        // c was handed a: its report counts.
        t.parent_failed(&c, &a, true);
        assert!(t.peer(&a).unwrap().excluded);
    }
}
