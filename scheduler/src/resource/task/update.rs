//! What each peer's stream tells it next: the content's size, new digests, the parents chosen
//! for it (through `scheduling`), origin pieces handed to it, and tiny content, each sent once;
//! [`Sent`] remembers what went out so a stream sends only news.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use common::{
    bitmap::PieceBitmap,
    digest::PieceDigest,
    ids::{HostId, PeerId},
};

use super::{PeerPhase, PeerRecord, Task, source::origin_fetcher};
use crate::{
    resource::{Host, HostKind, Hosts},
    scheduling::{self, Candidate, Child, Dag, Limits, OriginPiece, origin},
};

/// A parent as sent to a child.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentInfo {
    pub peer_id: PeerId,
    pub host: Host,
    pub finished: PieceBitmap,
    /// Ask it only for pieces no other parent has: a seed peer that is the task's only way in,
    /// whose uplink must carry new pieces. In a spreading task every parent is equal.
    pub last_resort: bool,
}

/// What to tell one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct Update {
    pub content_length: Option<u64>,
    pub piece_length: Option<u64>,
    pub digests: Vec<(u32, PieceDigest)>,
    pub parents: Vec<ParentInfo>,
    /// Pieces newly handed to this peer to fetch from the origin.
    pub origin_pieces: Vec<u32>,
    /// The whole (tiny) content, verified against piece 0's digest; sent once.
    pub tiny_content: Option<Vec<u8>>,
}

/// What a stream has already sent its peer, to send only news.
#[derive(Debug, Default)]
pub struct Sent {
    digests: PieceBitmap,
    parents: Vec<(PeerId, u32)>,
    content_length: Option<u64>,
    piece_length: Option<u64>,
    tiny_content: bool,
    /// Origin pieces handed to this peer and sent to it.
    origin: HashSet<u32>,
}

impl Task {
    /// Computes what `peer` has not been told yet; `None` when there is no news.
    pub fn update_for(&mut self, peer: &PeerId, sent: &mut Sent, hosts: &Hosts, limits: &Limits) -> Option<Update> {
        self.update_and_hand_out(peer, sent, hosts, limits).0
    }

    /// [`Task::update_for`], also saying whether origin pieces were handed out on the way
    /// (`hand_out_origin`): they may be other peers', whose streams must then wake.
    pub fn update_and_hand_out(
        &mut self,
        peer: &PeerId,
        sent: &mut Sent,
        hosts: &Hosts,
        limits: &Limits,
    ) -> (Option<Update>, bool) {
        let handed_out = self.spreads() && self.hand_out_origin(limits);
        let Some(record) = self.peers.get(peer).map(ChildView::of) else { return (None, handed_out) };
        let digests: Vec<(u32, PieceDigest)> = self
            .digests
            .iter()
            .enumerate()
            .filter_map(|(n, d)| d.map(|d| (n as u32, d)))
            .filter(|(n, _)| !sent.digests.contains(*n))
            .collect();
        for (n, _) in &digests {
            sent.digests.insert(*n);
        }

        // A spreading task's origin fetchers take pieces from parents too.
        let downloading = matches!(record.phase, PeerPhase::Pending | PeerPhase::Running)
            || (self.spreads() && record.phase == PeerPhase::BackToSource);
        let parents = if downloading { self.choose_parents(&record, hosts, limits) } else { Vec::new() };
        if let Some(r) = self.peers.get_mut(peer) {
            r.offered.extend(parents.iter().map(|p| p.peer_id.clone()));
            r.parents = parents.iter().map(|p| p.peer_id.clone()).collect();
        }
        // Pieces handed to this peer (by this call or by another peer's) that it was not sent.
        let mut origin_pieces = Vec::new();
        if self.spreads() {
            let mine = |n: u32| matches!(self.origin.get(n as usize), Some(OriginPiece::Assigned(o)) if o == peer);
            // A piece taken back (its fetcher failed) may come back later: send it again then.
            sent.origin.retain(|n| mine(*n));
            for n in 0..self.origin.len() as u32 {
                if mine(n) && sent.origin.insert(n) {
                    origin_pieces.push(n);
                }
            }
        }
        // Parents are listed all the same: a peer that cannot use the bytes falls back to them.
        let tiny_content = match &self.tiny {
            Some(bytes) if downloading && !sent.tiny_content && !record.finished.contains(0) => {
                sent.tiny_content = true;
                Some(bytes.clone())
            }
            _ => None,
        };
        let summary: Vec<(PeerId, u32)> = parents.iter().map(|p| (p.peer_id.clone(), p.finished.len())).collect();
        let info_changed = sent.content_length != self.content_length || sent.piece_length != self.piece_length;
        if digests.is_empty()
            && summary == sent.parents
            && !info_changed
            && origin_pieces.is_empty()
            && tiny_content.is_none()
        {
            return (None, handed_out);
        }
        sent.parents = summary;
        sent.content_length = self.content_length;
        sent.piece_length = self.piece_length;
        let update = Update {
            content_length: self.content_length,
            piece_length: self.piece_length,
            digests,
            parents,
            origin_pieces,
            tiny_content,
        };
        (Some(update), handed_out)
    }

    /// Hands free origin pieces to the peers that may fetch them, taking turns in join order
    /// ([`origin::hand_out`]); returns whether any was handed out. A peer learns of its pieces
    /// in its next update.
    fn hand_out_origin(&mut self, limits: &Limits) -> bool {
        let candidates: Vec<origin::Fetcher> = self
            .order
            .iter()
            .filter_map(|id| self.peers.get(id))
            .filter(|p| origin_fetcher(p))
            .map(|p| origin::Fetcher { peer: p.id.clone(), turns: p.origin_pieces })
            .collect();
        let given = origin::hand_out(
            &mut self.origin,
            &candidates,
            origin::DEFAULT_ORIGIN_PIECES_PER_PEER,
            limits.back_to_source_limit.min(limits.origin_ranges_at_once),
        );
        !given.is_empty()
    }

    fn choose_parents(&mut self, child: &ChildView, hosts: &Hosts, limits: &Limits) -> Vec<ParentInfo> {
        let Some(child_host) = hosts.shared(&child.host_id) else { return Vec::new() };
        let total = self.layout().map(|l| l.count()).unwrap_or(0);
        let mut known: HashMap<&PeerId, Arc<Host>> = HashMap::new();
        // Only peers holding a piece the child lacks are offered: a useless edge would still
        // occupy the DAG and forbid the reverse edge, which is often the useful one.
        // A seed peer of a spreading task serves the swarm first: it takes pieces only once no
        // normal peer is downloading, and only from peers that are done, so no uplink carries
        // bytes to a host nobody is waiting for (its copy would cost the swarm as much upload
        // as the seed then adds). A seed peer a preheat targets is waited for like any host, so
        // its copy runs alongside the others' instead of after them.
        let seed_waits = self.spreads() && child_host.kind == HostKind::Seed && !child.wanted;
        if seed_waits && self.peers.values().any(|p| p.id != child.id && downloading_normal_peer(p, hosts)) {
            return Vec::new();
        }
        // `select_parents` scores the first `filter_parent_limit` eligible candidates only. Each
        // child starts the join order just after itself, so when a task has more peers than
        // that, every child leaves out different ones and every peer is offered to as many
        // children (starting at the front would leave the last to join out for all of them,
        // and its uplink idle).
        let start = self.order.iter().position(|id| *id == child.id).map_or(0, |i| i + 1);
        let (before, after) = self.order.split_at(start.min(self.order.len()));
        let candidates: Vec<Candidate> = after
            .iter()
            .chain(before)
            .filter_map(|id| self.peers.get(id))
            .filter(|p| p.finished.iter().any(|n| !child.finished.contains(n)))
            .filter(|p| !seed_waits || p.phase == PeerPhase::Succeeded)
            .filter_map(|p| {
                let host = hosts.shared(&p.host_id)?;
                let children = self.dag.children(&p.id).count() as u32;
                let upload_limit = limits.upload_limit(host.upload_limit, host.kind == HostKind::Seed);
                let c = Candidate {
                    peer_id: p.id.clone(),
                    host_id: p.host_id.clone(),
                    is_seed: host.kind == HostKind::Seed,
                    idc: host.idc.clone(),
                    location: host.location.clone(),
                    finished_pieces: p.finished.len(),
                    total_pieces: total,
                    upload_slots_free: upload_limit.saturating_sub(children),
                    upload_limit,
                    upload_success: p.upload_success,
                    upload_failed: p.upload_failed,
                    succeeded: p.phase == PeerPhase::Succeeded,
                    failed_or_left: p.phase == PeerPhase::Failed || p.excluded,
                };
                known.insert(&p.id, host);
                Some(c)
            })
            .collect();
        let me = Child {
            peer_id: child.id.clone(),
            host_id: child.host_id.clone(),
            idc: child_host.idc.clone(),
            location: child_host.location.clone(),
        };
        let old: Vec<PeerId> = self.dag.parents(&child.id).cloned().collect();
        for parent in old {
            self.dag.remove_edge(&parent, &child.id);
        }
        // A spreading task is a mesh, not a tree: every peer holds pieces only it got from the
        // origin, so pieces flow both ways between any two peers and the DAG's order would idle
        // its first and last peers. Nothing can cycle per piece (a peer never fetches a piece it
        // holds), so the child sees every useful peer, up to the filter limit.
        let spreads = self.spreads();
        let mesh;
        let (dag, limits) = if spreads {
            let mut d = Dag::new();
            d.add_vertex(child.id.clone());
            for c in &candidates {
                d.add_vertex(c.peer_id.clone());
            }
            mesh = d;
            (&mesh, Limits { candidate_parent_limit: limits.filter_parent_limit, ..*limits })
        } else {
            (&self.dag, *limits)
        };
        let avoided: HashSet<PeerId> = child.blocked.union(&child.slow).cloned().collect();
        let mut chosen = scheduling::select_parents(&me, &candidates, &avoided, dag, &limits);
        if chosen.is_empty() && !child.slow.is_empty() {
            // A slow parent beats none: never strand a child on a soft block.
            chosen = scheduling::select_parents(&me, &candidates, &child.blocked, dag, &limits);
        }
        // Hosts and bitmaps are copied for the few chosen only.
        let chosen: Vec<(PeerId, Arc<Host>)> =
            chosen.into_iter().filter_map(|p| known.get(&p).cloned().map(|h| (p, h))).collect();
        chosen
            .into_iter()
            .filter(|(p, _)| spreads || self.dag.add_edge(p, &child.id).is_ok())
            .filter_map(|(p, host)| {
                let finished = self.peers.get(&p)?.finished.clone();
                let last_resort = host.kind == HostKind::Seed && !spreads;
                Some(ParentInfo { peer_id: p, host: (*host).clone(), finished, last_resort })
            })
            .collect()
    }
}

/// What a decision needs of the child, copied out of its record: not its history as a parent
/// (transfer costs, credits, every parent it was offered), which a whole record would copy on
/// every update of every stream.
struct ChildView {
    id: PeerId,
    host_id: HostId,
    phase: PeerPhase,
    finished: PieceBitmap,
    blocked: HashSet<PeerId>,
    slow: HashSet<PeerId>,
    wanted: bool,
}

impl ChildView {
    fn of(r: &PeerRecord) -> Self {
        Self {
            id: r.id.clone(),
            host_id: r.host_id.clone(),
            phase: r.phase,
            finished: r.finished.clone(),
            blocked: r.blocked.clone(),
            slow: r.slow.clone(),
            wanted: r.wanted,
        }
    }
}

/// A peer on a normal host that still wants pieces.
fn downloading_normal_peer(p: &PeerRecord, hosts: &Hosts) -> bool {
    matches!(p.phase, PeerPhase::Pending | PeerPhase::Running | PeerPhase::BackToSource)
        && hosts.shared(&p.host_id).is_some_and(|h| h.kind != HostKind::Seed)
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use common::ids::{HostId, TaskId};

    use super::*;
    use crate::resource::task::{ContentInfo, PieceReport, SourceDecision, test_support::*};

    #[test]
    fn a_piece_from_a_parent_is_news_at_once_for_its_children_and_peers_without_parents() {
        let hosts = Hosts::default();
        for h in ["a", "b", "c", "d"] {
            hosts.announce(host(h), Instant::now());
        }
        let [a, b, c, d] = ["a-1", "b-1", "c-1", "d-1"].map(|p| PeerId(p.into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        fetch_all_from_origin(&mut t, &a, 4);
        let limits = Limits { candidate_parent_limit: 1, ..Limits::default() };
        // b takes a piece from a; c is given b as its parent.
        t.register(b.clone(), HostId("b".into()), false);
        t.update_for(&b, &mut Sent::default(), &hosts, &limits).unwrap();
        t.pieces_finished(&b, &[from_parent(0, &a, 100)]).unwrap();
        t.peer_succeeded(&a);
        t.peers.get_mut(&a).unwrap().excluded = true;
        t.register(c.clone(), HostId("c".into()), false);
        let uc = t.update_for(&c, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!(uc.parents.iter().map(|p| p.peer_id.clone()).collect::<Vec<_>>(), vec![b.clone()]);
        // d has registered but was given nobody yet.
        t.register(d.clone(), HostId("d".into()), false);

        let mut audience = t.progress_audience(&b);
        audience.sort();
        assert_eq!(audience, vec![c.clone(), d.clone()], "b's child and the parentless d; not b, not the finished a");
        assert!(t.progress_audience(&c).contains(&d) && !t.progress_audience(&c).contains(&b));
    }

    #[test]
    fn a_slow_only_parent_is_avoided_but_never_leaves_the_child_without_parents() {
        let hosts = Hosts::default();
        hosts.announce(host("a"), Instant::now());
        hosts.announce(host("b"), Instant::now());
        let (a, b) = (PeerId("a-1".into()), PeerId("b-1".into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        fetch_all_from_origin(&mut t, &a, 4);
        t.peer_succeeded(&a);

        t.register(b.clone(), HostId("b".into()), false);
        offer(&mut t, &b, &a);
        // Two ordinary pieces, then one 100x slower: the parent is marked slow for b.
        t.pieces_finished(&b, &[from_parent(0, &a, 100), from_parent(1, &a, 100), from_parent(2, &a, 10_000)]).unwrap();
        assert!(t.peer(&b).unwrap().slow.contains(&a));
        assert!(!t.peer(&b).unwrap().blocked.contains(&a));

        let update = t.update_for(&b, &mut Sent::default(), &hosts, &Limits::default()).unwrap();
        let parents: Vec<_> = update.parents.iter().map(|p| p.peer_id.clone()).collect();
        assert_eq!(parents, vec![a.clone()], "the only holder of piece 3 must still be offered");

        // A hard failure, by contrast, does remove it.
        t.parent_failed(&b, &a, false);
        let update = t.update_for(&b, &mut Sent::default(), &hosts, &Limits::default()).unwrap();
        assert!(update.parents.is_empty());
    }

    /// A task of 1 KiB pieces with a seed peer `s` and normal peers `a` and `b` registered.
    fn seed_and_two_peers() -> (Hosts, Task, [PeerId; 3]) {
        let hosts = Hosts::default();
        hosts.announce(Host { kind: HostKind::Seed, ..host("s") }, Instant::now());
        hosts.announce(host("a"), Instant::now());
        hosts.announce(host("b"), Instant::now());
        let (s, a, b) = (PeerId("s-1".into()), PeerId("a-1".into()), PeerId("b-1".into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        for (p, h) in [(&s, "s"), (&a, "a"), (&b, "b")] {
            t.register(p.clone(), HostId(h.into()), false);
        }
        (hosts, t, [s, a, b])
    }

    #[test]
    fn a_spreading_seed_waits_for_finished_parents_and_lost_pieces_are_fetched_again() {
        let (hosts, mut t, [s, a, b]) = seed_and_two_peers();
        assert!(matches!(t.decide_source(&s, false, true, Instant::now()), SourceDecision::BackToSource(_)));
        t.content_info(&s, ContentInfo { content_length: Some(3 * 1024), piece_length: 1024, ranges: true }).unwrap();
        let limits = Limits::default();
        let given: Vec<Vec<u32>> = [&s, &a, &b]
            .iter()
            .map(|p| t.update_for(p, &mut Sent::default(), &hosts, &limits).unwrap().origin_pieces)
            .collect();
        assert_eq!(given, vec![vec![0], vec![1], vec![2]]);
        let origin = from_origin;
        t.pieces_finished(&a, &[origin(1)]).unwrap();
        t.pieces_finished(&b, &[origin(2)]).unwrap();

        // a and b hold pieces the seed lacks, but they are still downloading: the seed waits.
        let us = t.update_for(&s, &mut Sent::default(), &hosts, &limits).unwrap();
        assert!(us.parents.is_empty(), "{:?}", us.parents);
        let ua = t.update_for(&a, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!(ua.parents.iter().map(|p| p.peer_id.clone()).collect::<Vec<_>>(), vec![b.clone()]);

        // b fails before anyone copied piece 2: it is handed out again, and must match.
        t.peer_failed(&b);
        let ua = t.update_for(&a, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!(ua.origin_pieces, vec![2]);
        let mut wrong = origin(2);
        wrong.digest = Some(PieceDigest([9; 32]));
        assert!(t.pieces_finished(&a, &[wrong]).is_err(), "the recorded digest still rules");
        t.pieces_finished(&a, &[origin(2)]).unwrap();
        t.pieces_finished(&a, &[from_parent(0, &s, 10)]).unwrap();
        t.peer_succeeded(&a);

        // a is done, but c (a late joiner) still downloads: the swarm still comes first.
        hosts.announce(host("c"), Instant::now());
        let c = PeerId("c-1".into());
        t.register(c.clone(), HostId("c".into()), false);
        let us = t.update_for(&s, &mut Sent::default(), &hosts, &limits).unwrap();
        assert!(us.parents.is_empty(), "{:?}", us.parents);
        t.pieces_finished(&c, &[0, 1, 2].map(|n| from_parent(n, &a, 10))).unwrap();
        t.peer_succeeded(&c);
        let us = t.update_for(&s, &mut Sent::default(), &hosts, &limits).unwrap();
        let mut parents: Vec<PeerId> = us.parents.iter().map(|p| p.peer_id.clone()).collect();
        parents.sort();
        assert_eq!(parents, vec![a.clone(), c.clone()]);
    }

    #[test]
    fn a_seed_a_preheat_targets_takes_pieces_while_the_others_download() {
        let (hosts, mut t, [s, a, b]) = seed_and_two_peers();
        t.want(&s);
        assert!(matches!(t.decide_source(&s, false, true, Instant::now()), SourceDecision::BackToSource(_)));
        t.content_info(&s, ContentInfo { content_length: Some(3 * 1024), piece_length: 1024, ranges: true }).unwrap();
        let limits = Limits::default();
        for p in [&s, &a, &b] {
            t.update_for(p, &mut Sent::default(), &hosts, &limits).unwrap();
        }
        t.pieces_finished(&a, &[from_origin(1)]).unwrap();
        t.pieces_finished(&b, &[from_origin(2)]).unwrap();
        // a and b still download, but the seed wants the content too: it takes their pieces now.
        let us = t.update_for(&s, &mut Sent::default(), &hosts, &limits).unwrap();
        let mut parents: Vec<PeerId> = us.parents.iter().map(|p| p.peer_id.clone()).collect();
        parents.sort();
        assert_eq!(parents, vec![a.clone(), b.clone()]);
    }

    #[test]
    fn with_more_peers_than_the_filter_limit_every_peer_is_offered_to_as_many_children() {
        let hosts = Hosts::default();
        let names: Vec<String> = (0..8).map(|i| format!("h{i}")).collect();
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        let peers: Vec<PeerId> = names.iter().map(|h| PeerId(format!("{h}-1"))).collect();
        for (p, h) in peers.iter().zip(&names) {
            hosts.announce(host(h), Instant::now());
            t.register(p.clone(), HostId(h.clone()), false);
        }
        // A spreading task, 8 pieces, each peer holding the piece it got from the origin.
        assert!(matches!(t.decide_source(&peers[0], false, true, Instant::now()), SourceDecision::BackToSource(_)));
        t.content_info(&peers[0], ContentInfo { content_length: Some(8 * 1024), piece_length: 1024, ranges: true })
            .unwrap();
        let limits = Limits { filter_parent_limit: 5, ..Limits::default() };
        for p in &peers {
            let given = t.update_for(p, &mut Sent::default(), &hosts, &limits).unwrap().origin_pieces;
            let reports: Vec<PieceReport> = given.iter().copied().map(from_origin).collect();
            t.pieces_finished(p, &reports).unwrap();
        }
        let mut offered: HashMap<PeerId, usize> = HashMap::new();
        for p in &peers {
            let update = t.update_for(p, &mut Sent::default(), &hosts, &limits).unwrap();
            assert_eq!(update.parents.len(), 5, "{p}: {:?}", update.parents);
            for parent in update.parents {
                assert_ne!(&parent.peer_id, p);
                *offered.entry(parent.peer_id).or_default() += 1;
            }
        }
        // 8 children × 5 parents spread evenly: each peer is a parent of 5 children.
        assert_eq!(offered.len(), 8, "{offered:?}");
        assert!(offered.values().all(|&n| n == 5), "{offered:?}");
    }
}
