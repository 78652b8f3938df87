//! Who fetches the content from the origin. The first source (the seed peer when one is
//! connected) learns the content's size. When the origin serves byte ranges, the task then
//! *spreads*: every piece is handed to one peer that may go back to source
//! ([`scheduling::origin`](crate::scheduling::origin)), which fetches it by range and alone may record its digest. Otherwise
//! the first source streams the whole content.

use std::{
    collections::HashSet,
    time::{Duration, Instant},
};

use common::ids::PeerId;

use super::{PeerPhase, PeerRecord, Task};
use crate::scheduling::OriginPiece;

/// What a registering or waiting peer should do about the origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceDecision {
    /// Someone is (or will be) the source; wait for updates.
    Wait,
    /// Ask a seed peer to fetch the task, then wait.
    OrderSeed,
    /// This peer must fetch from the origin.
    BackToSource(String),
    /// Nobody can provide the content.
    Fail(String),
}

/// How long to wait for an ordered seed peer before electing a normal peer as the source.
pub const SEED_GRACE: Duration = Duration::from_secs(5);

impl Task {
    /// Whether the content is being fetched from the origin, is already whole in the swarm, or
    /// is tiny and held here. A spreading task has a source while any peer may still be handed
    /// origin pieces.
    fn has_source(&self) -> bool {
        let fetching = self.peers.values().any(|p| p.phase == PeerPhase::BackToSource);
        let spreading = self.spreads() && self.peers.values().any(origin_fetcher);
        fetching || spreading || self.tiny.is_some() || self.whole_in_swarm()
    }

    fn whole_in_swarm(&self) -> bool {
        let Some(layout) = self.layout() else { return false };
        (0..layout.count()).all(|n| {
            self.digests.get(n as usize).is_some_and(Option::is_some)
                && self.peers.values().any(|p| !p.excluded && p.phase != PeerPhase::Failed && p.finished.contains(n))
        })
    }

    /// How many peers fetch from the origin now: the elected source, and in a spreading task
    /// every peer that owns an unfinished origin piece.
    pub fn origin_fetching(&self) -> usize {
        let mut fetching: HashSet<&PeerId> =
            self.peers.values().filter(|p| p.phase == PeerPhase::BackToSource).map(|p| &p.id).collect();
        fetching.extend(self.origin.iter().filter_map(|p| match p {
            OriginPiece::Assigned(o) => Some(o),
            _ => None,
        }));
        fetching.len()
    }

    /// Decides whether `peer` must fetch from the origin, given whether a seed peer is connected
    /// and whether `peer` itself runs on a seed host. Marks it `BackToSource` when it must. One
    /// source at a time, so `back_to_source_limit` (at least 1) never bites here; it caps the
    /// spreading of origin pieces (`scheduling::origin`).
    pub fn decide_source(
        &mut self,
        peer: &PeerId,
        seeds_available: bool,
        peer_is_seed: bool,
        now: Instant,
    ) -> SourceDecision {
        if self.has_source() {
            return SourceDecision::Wait;
        }
        let Some(record) = self.peers.get(peer) else {
            return SourceDecision::Fail("peer is not registered".into());
        };
        if matches!(record.phase, PeerPhase::Succeeded | PeerPhase::Failed) {
            return SourceDecision::Wait;
        }
        let disabled = record.disable_back_to_source;
        if !peer_is_seed && seeds_available {
            match self.seed_ordered_at {
                None => {
                    self.seed_ordered_at = Some(now);
                    return SourceDecision::OrderSeed;
                }
                Some(at) if now.saturating_duration_since(at) < SEED_GRACE => return SourceDecision::Wait,
                Some(_) => {}
            }
        }
        if disabled {
            let someone_else = self.peers.values().any(|p| {
                &p.id != peer && !p.disable_back_to_source && matches!(p.phase, PeerPhase::Pending | PeerPhase::Running)
            });
            return if someone_else {
                SourceDecision::Wait
            } else {
                SourceDecision::Fail(format!("no peer holds {} and back-to-source is disabled", self.url))
            };
        }
        if let Some(r) = self.peers.get_mut(peer) {
            r.phase = PeerPhase::BackToSource;
        }
        self.touch(peer, now);
        let why =
            if peer_is_seed { "seed peer fetches new tasks from the origin" } else { "no peer holds the content" };
        SourceDecision::BackToSource(why.into())
    }
}

/// Whether `p` may be handed pieces to fetch from the origin: still downloading, allowed to go
/// back to source, and trusted.
pub(super) fn origin_fetcher(p: &PeerRecord) -> bool {
    matches!(p.phase, PeerPhase::Pending | PeerPhase::Running | PeerPhase::BackToSource)
        && !p.disable_back_to_source
        && !p.excluded
}

#[cfg(test)]
mod tests {
    use common::ids::{HostId, TaskId};

    use super::*;
    use crate::{
        resource::Hosts,
        resource::task::{ContentInfo, Sent, test_support::*},
        scheduling::Limits,
    };

    #[test]
    fn a_ranged_origin_spreads_pieces_and_only_their_fetcher_sets_a_digest() {
        let hosts = Hosts::default();
        hosts.announce(host("a"), Instant::now());
        hosts.announce(host("b"), Instant::now());
        let (a, b) = (PeerId("a-1".into()), PeerId("b-1".into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        t.register(a.clone(), HostId("a".into()), false);
        t.register(b.clone(), HostId("b".into()), false);
        assert!(matches!(t.decide_source(&a, false, false, Instant::now()), SourceDecision::BackToSource(_)));
        t.content_info(&a, ContentInfo { content_length: Some(4 * 1024), piece_length: 1024, ranges: true }).unwrap();
        assert!(t.spreads());
        assert_eq!(t.decide_source(&b, false, false, Instant::now()), SourceDecision::Wait, "no second source");

        let limits = Limits::default();
        let ua = t.update_for(&a, &mut Sent::default(), &hosts, &limits).unwrap();
        let ub = t.update_for(&b, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!((ua.origin_pieces, ub.origin_pieces), (vec![0], vec![1]), "one piece each at a time");

        let origin = from_origin;
        assert!(t.pieces_finished(&b, &[origin(0)]).is_err(), "piece 0 is a's to fetch");
        t.pieces_finished(&b, &[origin(1)]).unwrap();
        // b now serves piece 1 to a, and a (the source that learnt the size) takes parents too.
        let ua = t.update_for(&a, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!(ua.parents.iter().map(|p| p.peer_id.clone()).collect::<Vec<_>>(), vec![b.clone()]);
        assert!(ua.parents.iter().all(|p| !p.last_resort));

        // b's next piece was handed out while a asked (b learns of it in its next update).
        let mut sent_b = Sent::default();
        let ub = t.update_for(&b, &mut sent_b, &hosts, &limits).unwrap();
        assert_eq!(ub.origin_pieces, vec![2]);
        // a leaves: its unfinished piece goes to b once b is free again.
        t.peer_left(&a);
        assert!(t.update_for(&b, &mut sent_b, &hosts, &limits).is_none_or(|u| u.origin_pieces.is_empty()));
        t.pieces_finished(&b, &[origin(2)]).unwrap();
        let ub = t.update_for(&b, &mut sent_b, &hosts, &limits).unwrap();
        assert_eq!(ub.origin_pieces, vec![0]);
    }

    #[test]
    fn no_more_peers_than_the_cap_fetch_from_the_origin() {
        let hosts = Hosts::default();
        for h in ["a", "b", "c"] {
            hosts.announce(host(h), Instant::now());
        }
        let (a, b, c) = (PeerId("a-1".into()), PeerId("b-1".into()), PeerId("c-1".into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        for (p, h) in [(&a, "a"), (&b, "b"), (&c, "c")] {
            t.register(p.clone(), HostId(h.into()), false);
        }
        assert!(matches!(t.decide_source(&a, false, false, Instant::now()), SourceDecision::BackToSource(_)));
        assert_eq!(t.origin_fetching(), 1);
        t.content_info(&a, ContentInfo { content_length: Some(6 * 1024), piece_length: 1024, ranges: true }).unwrap();
        let limits = Limits { back_to_source_limit: 2, ..Limits::default() };
        let given: Vec<Vec<u32>> = [&a, &b, &c]
            .iter()
            .map(|p| t.update_for(p, &mut Sent::default(), &hosts, &limits).unwrap().origin_pieces)
            .collect();
        assert_eq!(given, vec![vec![0], vec![1], vec![]], "c waits: two peers fetch already");
        assert_eq!(t.origin_fetching(), 2);

        // b's piece is in: its slot goes to c, who has had no turn yet.
        let origin = from_origin;
        t.pieces_finished(&b, &[origin(1)]).unwrap();
        let uc = t.update_for(&c, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!(uc.origin_pieces, vec![2]);
        let ub = t.update_for(&b, &mut Sent::default(), &hosts, &limits).unwrap();
        assert!(ub.origin_pieces.is_empty(), "a and c fetch now");
    }

    #[test]
    fn a_source_that_leaves_before_learning_anything_is_replaced() {
        let (a, b) = (PeerId("a-1".into()), PeerId("b-1".into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        t.register(a.clone(), HostId("a".into()), false);
        t.register(b.clone(), HostId("b".into()), false);
        assert!(matches!(t.decide_source(&a, false, false, Instant::now()), SourceDecision::BackToSource(_)));
        assert_eq!(t.decide_source(&b, false, false, Instant::now()), SourceDecision::Wait);
        // The source leaves before learning anything: the next peer is elected.
        t.peer_left(&a);
        assert_eq!(t.origin_fetching(), 0);
        assert!(matches!(t.decide_source(&b, false, false, Instant::now()), SourceDecision::BackToSource(_)));
    }
}
