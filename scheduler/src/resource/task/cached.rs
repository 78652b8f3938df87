//! What a host's cache holds, told to a scheduler that does not know it: one that restarted (its
//! task table starts empty) or one that took over the tasks of a scheduler that died. A copy
//! becomes a finished peer record of its host, so children are offered it as a parent; the
//! digests of its pieces are taken only when the caller is trusted with them (a seed peer, which
//! fetched them from the origin: the `rpc` edge decides from the certificate). A copy without
//! trusted digests still counts as a holder, but its pieces are served only once an origin
//! fetcher has reported their digests, since children verify every piece against them.
//!
//! A re-registering download's own held pieces ([`Task::register_holding`]) are the same word
//! of a peer about itself, as any `PiecesFinished` report is.

use std::time::Instant;

use common::{
    bitmap::PieceBitmap,
    digest::PieceDigest,
    ids::{HostId, PeerId},
    piece::PieceLayout,
};

use super::{PeerPhase, Task};
use crate::scheduling::OriginPiece;

/// One cached copy as the scheduler takes it.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedCopy {
    pub host_id: HostId,
    pub layout: PieceLayout,
    pub finished: PieceBitmap,
    /// Digests of held pieces, from a caller trusted with them; empty otherwise.
    pub digests: Vec<(u32, PieceDigest)>,
}

impl CachedCopy {
    /// The peer id a host's cached copy goes by: one per host and task, so announcing again
    /// refreshes it instead of adding another.
    pub fn peer_id(host: &HostId) -> PeerId {
        PeerId(format!("{host}-cached"))
    }
}

impl Task {
    /// Records `copy`: the task's layout when it had none (one that contradicts the known one,
    /// or the piece length the task's id was derived with, is refused), the trusted digests (one
    /// that contradicts a recorded digest refuses the whole copy), and the host's copy as a
    /// finished peer. Checked in full before anything changes.
    pub fn restore(&mut self, copy: CachedCopy) -> Result<(), String> {
        let CachedCopy { host_id, layout, finished, digests } = copy;
        if let Some(known) = self.layout()
            && known != layout
        {
            return Err(format!(
                "layout {}/{} contradicts the task's {}/{}",
                layout.content_length, layout.piece_length, known.content_length, known.piece_length
            ));
        }
        if let Some(p) = self.requested_piece_length.filter(|p| *p != layout.piece_length) {
            return Err(format!("piece length {} is not the {p} the task was asked with", layout.piece_length));
        }
        let count = layout.count();
        if let Some(n) = finished.iter().find(|n| *n >= count) {
            return Err(format!("piece {n} is beyond the content ({count} pieces)"));
        }
        for (n, d) in &digests {
            if !finished.contains(*n) {
                return Err(format!("a digest for piece {n}, which the copy does not hold"));
            }
            if let Some(Some(recorded)) = self.digests.get(*n as usize)
                && recorded != d
            {
                return Err(format!("piece {n} digest contradicts the recorded one"));
            }
        }
        if finished.is_empty() {
            return Err("the copy holds no piece".into());
        }

        self.content_length = Some(layout.content_length);
        self.piece_length = Some(layout.piece_length);
        self.digests.resize(count as usize, None);
        for (n, d) in digests {
            self.digests[n as usize] = Some(d);
            // A spreading task hands out no piece whose digest is known and held.
            if let Some(o) = self.origin.get_mut(n as usize) {
                *o = OriginPiece::Done;
            }
        }
        let id = CachedCopy::peer_id(&host_id);
        let mut held = self.peers.get(&id).map(|p| p.finished.clone()).unwrap_or_default();
        for n in finished.iter() {
            held.insert(n);
        }
        self.register(id.clone(), host_id, true);
        if let Some(p) = self.peers.get_mut(&id) {
            p.finished = held;
            p.phase = PeerPhase::Succeeded;
        }
        self.touch(&id, Instant::now());
        Ok(())
    }

    /// Registers a download that already holds `held` (it lost its scheduler and carries on
    /// here): its pieces count as its own, from neither a parent nor the origin. Bits the known
    /// layout has no piece for are refused.
    pub fn register_holding(
        &mut self,
        id: PeerId,
        host_id: HostId,
        disable_back_to_source: bool,
        held: PieceBitmap,
    ) -> Result<(), String> {
        if let Some(count) = self.layout().map(|l| l.count())
            && let Some(n) = held.iter().find(|n| *n >= count)
        {
            return Err(format!("held piece {n} is beyond the content ({count} pieces)"));
        }
        self.register(id.clone(), host_id, disable_back_to_source);
        if !held.is_empty()
            && let Some(p) = self.peers.get_mut(&id)
        {
            p.finished = held;
            p.phase = PeerPhase::Running;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use common::ids::TaskId;

    use super::*;
    use crate::{
        resource::{
            Hosts,
            task::{Sent, SourceDecision, test_support::*},
        },
        scheduling::Limits,
    };

    fn copy(host: &str, pieces: u32, digests: Vec<(u32, PieceDigest)>) -> CachedCopy {
        CachedCopy {
            host_id: HostId(host.into()),
            layout: PieceLayout::new(u64::from(pieces) * 1024, 1024).unwrap(),
            finished: (0..pieces).collect(),
            digests,
        }
    }

    fn digest(n: u32) -> PieceDigest {
        PieceDigest([n as u8 + 1; 32])
    }

    #[test]
    fn a_seeds_copy_with_digests_is_a_source_and_a_parent_at_once() {
        let hosts = Hosts::default();
        for h in ["s", "c"] {
            hosts.announce(host(h), Instant::now());
        }
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        t.restore(copy("s", 3, (0..3).map(|n| (n, digest(n))).collect())).unwrap();
        let c = PeerId("c-1".into());
        t.register(c.clone(), HostId("c".into()), false);
        assert_eq!(t.decide_source(&c, true, false, Instant::now()), SourceDecision::Wait, "nobody goes to the origin");
        let u = t.update_for(&c, &mut Sent::default(), &hosts, &Limits::default()).unwrap();
        assert_eq!((u.content_length, u.piece_length), (Some(3 * 1024), Some(1024)));
        assert_eq!(u.digests, (0..3).map(|n| (n, digest(n))).collect::<Vec<_>>());
        assert_eq!(
            u.parents.iter().map(|p| p.peer_id.clone()).collect::<Vec<_>>(),
            vec![CachedCopy::peer_id(&HostId("s".into()))]
        );

        // Announced again (a second boot id): the same record, not a second one.
        t.restore(copy("s", 3, vec![])).unwrap();
        assert_eq!(t.snapshot().peers.len(), 2);
    }

    #[test]
    fn a_copy_without_digests_is_a_holder_but_the_task_still_needs_its_origin_fetcher() {
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        t.restore(copy("p", 3, vec![])).unwrap();
        let c = PeerId("c-1".into());
        t.register(c.clone(), HostId("c".into()), false);
        assert!(matches!(t.decide_source(&c, false, false, Instant::now()), SourceDecision::BackToSource(_)));
    }

    #[test]
    fn copies_that_contradict_the_task_or_overreach_are_refused_and_change_nothing() {
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        t.restore(copy("s", 3, vec![(0, digest(0))])).unwrap();
        let refused = [
            // Another layout.
            copy("s", 4, vec![]),
            // Another piece length than the id was derived with.
            CachedCopy { layout: PieceLayout::new(3 * 2048, 2048).unwrap(), ..copy("s", 3, vec![]) },
            // A bit past the layout.
            CachedCopy { finished: [0, 3].into_iter().collect(), ..copy("s", 3, vec![]) },
            // A digest for a piece it does not hold, and one that contradicts piece 0's.
            CachedCopy { finished: [1].into_iter().collect(), ..copy("s", 3, vec![(2, digest(2))]) },
            copy("s", 3, vec![(0, digest(9))]),
            // Nothing held.
            CachedCopy { finished: PieceBitmap::new(), ..copy("x", 3, vec![]) },
        ];
        for c in refused {
            assert!(t.restore(c.clone()).is_err(), "{c:?}");
        }
        assert_eq!(t.digests, vec![Some(digest(0)), None, None]);
        assert_eq!(t.snapshot().peers.len(), 1);

        // A re-registering download may not hold pieces past the layout either.
        let far: PieceBitmap = [5].into_iter().collect();
        assert!(t.register_holding(PeerId("c-1".into()), HostId("c".into()), false, far).is_err());
        assert!(t.peer(&PeerId("c-1".into())).is_none());
    }
}
