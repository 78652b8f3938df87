//! Parent selection: which peers of a task a child should download pieces from.
//!
//! This module decides; it does not look anything up. Callers snapshot what they know about the
//! task's peers into [`Candidate`]s and hand over the task's [`Dag`], so every rule here is a pure
//! function over plain data, testable without a runtime, protobuf types or a network. It must
//! stay that way: no I/O, no async, no `proto`.
//!
//! Selection is filter, then rank: [`exclusion`] removes peers that cannot serve the child at all
//! (itself, its own host, blocklisted, gone, empty-handed, saturated, or closing a cycle);
//! [`evaluator::score`] orders the rest; [`select_parents`] caps both steps with [`Limits`].

pub mod block_list;
pub mod dag;
pub mod evaluator;
pub mod origin;
pub mod preheat_targets;

use std::{cmp::Ordering, collections::HashSet};

use common::ids::{HostId, PeerId};

pub use block_list::{BlockList, LiveBlockList};
pub use dag::{Dag, DagError};
pub use evaluator::{is_bad_parent, score};
pub use origin::OriginPiece;

/// Default of [`Limits::candidate_parent_limit`].
pub const DEFAULT_CANDIDATE_PARENT_LIMIT: usize = 4;
/// Default of [`Limits::filter_parent_limit`].
pub const DEFAULT_FILTER_PARENT_LIMIT: usize = 15;
/// Default of [`Limits::back_to_source_limit`] (Dragonfly's `backToSourceCount`).
pub const DEFAULT_BACK_TO_SOURCE_LIMIT: usize = 200;

/// Default of the pieces of one task fetched at once from an origin that serves ranges. A few
/// transfers keep the origin busy; more would share it so thinly that every piece is whole (and
/// can be passed on) only late: with 17 peers each fetching one 4 MiB piece at once from a
/// 40 MiB/s origin, the first piece reaches the swarm after 1.7 s instead of 0.3 s.
pub const DEFAULT_ORIGIN_RANGES_AT_ONCE: usize = 3;

/// A snapshot of one peer of the task, as a possible parent.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub peer_id: PeerId,
    pub host_id: HostId,
    /// Seed peers fetch from the origin and are preferred as parents.
    pub is_seed: bool,
    /// Data-centre label of its host ("" when unknown).
    pub idc: String,
    /// `region|zone|rack`-style location of its host ("" when unknown).
    pub location: String,
    /// Pieces it holds.
    pub finished_pieces: u32,
    /// Pieces in the task (0 while the content length is unknown).
    pub total_pieces: u32,
    /// Uploads its host can start right now.
    pub upload_slots_free: u32,
    /// Concurrent uploads its host accepts at most.
    pub upload_limit: u32,
    /// Uploads its host has completed.
    pub upload_success: u32,
    /// Uploads its host has failed.
    pub upload_failed: u32,
    /// It holds the whole content.
    pub succeeded: bool,
    /// It failed or left the task, so it will serve nothing more.
    pub failed_or_left: bool,
}

/// The peer asking for parents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub peer_id: PeerId,
    pub host_id: HostId,
    /// Data-centre label of its host ("" when unknown).
    pub idc: String,
    /// `region|zone|rack`-style location of its host ("" when unknown).
    pub location: String,
}

/// Caps on parent selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Parents returned to the child at most.
    pub candidate_parent_limit: usize,
    /// Eligible candidates scored at most, so a huge task does not make each request score every
    /// peer. Taken in input order, which the caller may shuffle.
    pub filter_parent_limit: usize,
    /// The cluster's cap on concurrent uploads of a normal peer, over what the host announces.
    pub peer_load_limit: Option<u32>,
    /// The same for seed peers.
    pub seed_load_limit: Option<u32>,
    /// Peers of one task that fetch from the origin at once, seed peers included: the
    /// single-source election and the spreading of origin pieces ([`origin::hand_out`]) both obey it.
    pub back_to_source_limit: usize,
    /// Pieces of one spreading task fetched from the origin at once (each by another peer).
    pub origin_ranges_at_once: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            candidate_parent_limit: DEFAULT_CANDIDATE_PARENT_LIMIT,
            filter_parent_limit: DEFAULT_FILTER_PARENT_LIMIT,
            peer_load_limit: None,
            seed_load_limit: None,
            back_to_source_limit: DEFAULT_BACK_TO_SOURCE_LIMIT,
            origin_ranges_at_once: DEFAULT_ORIGIN_RANGES_AT_ONCE,
        }
    }
}

impl Limits {
    /// How many children a host may upload to at once: what it announced, capped by the
    /// cluster's load limit for its kind.
    pub fn upload_limit(&self, announced: u32, is_seed: bool) -> u32 {
        let cap = if is_seed { self.seed_load_limit } else { self.peer_load_limit };
        cap.map_or(announced, |c| announced.min(c))
    }
}

/// The [`Limits`] in force, shared by every stream and replaced at runtime when the manager
/// sends its cluster's settings. Readers copy them out; no lock is held beyond that copy.
#[derive(Debug, Clone, Default)]
pub struct LiveLimits(std::sync::Arc<std::sync::RwLock<Limits>>);

impl LiveLimits {
    /// Starts with `limits`.
    pub fn new(limits: Limits) -> Self {
        Self(std::sync::Arc::new(std::sync::RwLock::new(limits)))
    }

    /// The limits now.
    pub fn get(&self) -> Limits {
        *self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the limits for every later decision.
    pub fn set(&self, limits: Limits) {
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = limits;
    }
}

/// Why a candidate cannot be a parent of the child, in the order the rules are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// It is the child itself.
    IsChild,
    /// It runs on the child's host; the child's daemon would download from itself.
    SameHost,
    /// The caller blocklisted it (e.g. it failed this child before).
    Blocklisted,
    /// It failed or left the task.
    FailedOrLeft,
    /// It has no pieces yet and has not succeeded (empty content succeeds with none).
    NoPieces,
    /// Its host has no free upload slot.
    NoFreeUploadSlots,
    /// The task's DAG refuses the edge: a cycle, or a peer not in the graph.
    DagRefused,
}

/// The first rule that rules `c` out as a parent of `child`, or `None` if it is eligible.
pub fn exclusion(child: &Child, c: &Candidate, blocklist: &HashSet<PeerId>, dag: &Dag) -> Option<Exclusion> {
    first_rule(child, c, blocklist, || dag.can_add_edge(&c.peer_id, &child.peer_id))
}

/// [`exclusion`] with the DAG's verdict asked last and only when every other rule passed.
fn first_rule(
    child: &Child,
    c: &Candidate,
    blocklist: &HashSet<PeerId>,
    edge_allowed: impl FnOnce() -> bool,
) -> Option<Exclusion> {
    if c.peer_id == child.peer_id {
        Some(Exclusion::IsChild)
    } else if c.host_id == child.host_id {
        Some(Exclusion::SameHost)
    } else if blocklist.contains(&c.peer_id) {
        Some(Exclusion::Blocklisted)
    } else if c.failed_or_left {
        Some(Exclusion::FailedOrLeft)
    } else if c.finished_pieces == 0 && !c.succeeded {
        Some(Exclusion::NoPieces)
    } else if c.upload_slots_free == 0 {
        Some(Exclusion::NoFreeUploadSlots)
    } else if !edge_allowed() {
        Some(Exclusion::DagRefused)
    } else {
        None
    }
}

/// The best parents for `child`, best first.
///
/// Drops every candidate with an [`exclusion`], scores the first
/// [`Limits::filter_parent_limit`] remaining ones (input order), sorts them by
/// [`score`] descending with ties broken by ascending peer id, and returns at most
/// [`Limits::candidate_parent_limit`]. Both the child and the candidates must be vertices of
/// `dag`, or they are refused.
pub fn select_parents(
    child: &Child,
    candidates: &[Candidate],
    blocklist: &HashSet<PeerId>,
    dag: &Dag,
    limits: &Limits,
) -> Vec<PeerId> {
    // The child's descendants, walked once: an edge from any of them would close a cycle
    // (what `Dag::can_add_edge` walks again for every candidate).
    let below = dag.descendants(&child.peer_id);
    let edge_allowed =
        |c: &Candidate| below.as_ref().is_some_and(|b| dag.contains(&c.peer_id) && !b.contains(&c.peer_id));
    let mut ranked: Vec<(f64, &PeerId)> = candidates
        .iter()
        .filter(|c| first_rule(child, c, blocklist, || edge_allowed(c)).is_none())
        .take(limits.filter_parent_limit)
        .map(|c| (score(child, c), &c.peer_id))
        .collect();
    ranked.sort_by(|(sa, a), (sb, b)| match sb.total_cmp(sa) {
        Ordering::Equal => a.cmp(b),
        by_score => by_score,
    });
    ranked.into_iter().take(limits.candidate_parent_limit).map(|(_, peer)| peer.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child on host `host`.
    pub(super) fn child(peer: &str, host: &str, idc: &str, location: &str) -> Child {
        Child { peer_id: PeerId(peer.into()), host_id: HostId(host.into()), idc: idc.into(), location: location.into() }
    }

    /// An eligible, middling normal peer: half its pieces, half its slots, 3 of 4 uploads ok,
    /// no idc or location.
    pub(super) fn candidate(peer: &str, host: &str) -> Candidate {
        Candidate {
            peer_id: PeerId(peer.into()),
            host_id: HostId(host.into()),
            is_seed: false,
            idc: String::new(),
            location: String::new(),
            finished_pieces: 5,
            total_pieces: 10,
            upload_slots_free: 2,
            upload_limit: 4,
            upload_success: 3,
            upload_failed: 1,
            succeeded: false,
            failed_or_left: false,
        }
    }

    fn ids(peers: &[PeerId]) -> Vec<&str> {
        peers.iter().map(|p| p.0.as_str()).collect()
    }

    /// A DAG holding the child and every candidate, no edges.
    fn dag_of(kid: &Child, candidates: &[Candidate]) -> Dag {
        let mut dag = Dag::new();
        dag.add_vertex(kid.peer_id.clone());
        for c in candidates {
            dag.add_vertex(c.peer_id.clone());
        }
        dag
    }

    fn select(kid: &Child, candidates: &[Candidate], limits: Limits) -> Vec<PeerId> {
        let dag = dag_of(kid, candidates);
        select_parents(kid, candidates, &HashSet::new(), &dag, &limits)
    }

    #[test]
    fn cluster_load_limits_cap_what_hosts_announce() {
        let l = Limits { peer_load_limit: Some(3), seed_load_limit: Some(100), ..Limits::default() };
        assert_eq!(l.upload_limit(50, false), 3);
        assert_eq!(l.upload_limit(2, false), 2);
        assert_eq!(l.upload_limit(50, true), 50);
        assert_eq!(Limits::default().upload_limit(50, false), 50);
    }

    #[test]
    fn default_limits() {
        let limits = Limits::default();
        assert_eq!(limits.candidate_parent_limit, 4);
        assert_eq!(limits.filter_parent_limit, 15);
    }

    #[test]
    fn each_rule_excludes_on_its_own() {
        let kid = child("kid", "kid-host", "", "");
        let ok = candidate("ok", "h-ok");
        type Tweak = fn(&mut Candidate);
        let cases: [(Tweak, Exclusion); 6] = [
            (|c| c.peer_id = PeerId("kid".into()), Exclusion::IsChild),
            (|c| c.host_id = HostId("kid-host".into()), Exclusion::SameHost),
            (|c| c.peer_id = PeerId("blocked".into()), Exclusion::Blocklisted),
            (|c| c.failed_or_left = true, Exclusion::FailedOrLeft),
            (|c| c.finished_pieces = 0, Exclusion::NoPieces),
            (|c| c.upload_slots_free = 0, Exclusion::NoFreeUploadSlots),
        ];
        let blocklist = HashSet::from([PeerId("blocked".into())]);
        for (tweak, expected) in cases {
            let mut bad = candidate("bad", "h-bad");
            tweak(&mut bad);
            let candidates = [bad.clone(), ok.clone()];
            let dag = dag_of(&kid, &candidates);
            assert_eq!(exclusion(&kid, &bad, &blocklist, &dag), Some(expected));
            assert_eq!(exclusion(&kid, &ok, &blocklist, &dag), None);
            let got = select_parents(&kid, &candidates, &blocklist, &dag, &Limits::default());
            assert_eq!(ids(&got), ["ok"], "{expected:?}");
        }
    }

    #[test]
    fn succeeded_peer_with_no_pieces_is_eligible() {
        // Empty content: a peer can succeed without holding a piece.
        let kid = child("kid", "h0", "", "");
        let mut c = candidate("p", "h1");
        c.finished_pieces = 0;
        c.total_pieces = 0;
        c.succeeded = true;
        assert_eq!(ids(&select(&kid, &[c], Limits::default())), ["p"]);
    }

    #[test]
    fn a_descendant_of_the_child_is_refused() {
        let kid = child("kid", "h0", "", "");
        let grandchild = candidate("gc", "h1");
        let middle = candidate("mid", "h2");
        let other = candidate("other", "h3");
        let candidates = [grandchild.clone(), middle.clone(), other];
        let mut dag = dag_of(&kid, &candidates);
        dag.add_edge(&kid.peer_id, &middle.peer_id).unwrap();
        dag.add_edge(&middle.peer_id, &grandchild.peer_id).unwrap();
        let none = HashSet::new();
        assert_eq!(exclusion(&kid, &grandchild, &none, &dag), Some(Exclusion::DagRefused));
        assert_eq!(exclusion(&kid, &middle, &none, &dag), Some(Exclusion::DagRefused));
        let got = select_parents(&kid, &candidates, &none, &dag, &Limits::default());
        assert_eq!(ids(&got), ["other"]);
    }

    #[test]
    fn peers_missing_from_the_dag_are_refused() {
        let kid = child("kid", "h0", "", "");
        let c = candidate("p", "h1");
        let mut dag = Dag::new();
        dag.add_vertex(c.peer_id.clone());
        let none = HashSet::new();
        assert_eq!(exclusion(&kid, &c, &none, &dag), Some(Exclusion::DagRefused));
        assert!(select_parents(&kid, &[c], &none, &dag, &Limits::default()).is_empty());
    }

    #[test]
    fn seed_outranks_an_otherwise_equal_normal_peer() {
        let kid = child("kid", "h0", "", "");
        let normal = candidate("a-normal", "h1");
        let mut seed = candidate("z-seed", "h2");
        seed.is_seed = true;
        // Ids sort the other way, so only the score can put the seed first.
        let got = select(&kid, &[normal, seed], Limits::default());
        assert_eq!(ids(&got), ["z-seed", "a-normal"]);
    }

    #[test]
    fn idc_and_location_affinity_rank_nearer_peers_first() {
        let kid = child("kid", "h0", "idc1", "r1|z1|rack1");
        let mut far = candidate("a-far", "h1");
        far.idc = "idc2".into();
        far.location = "r2|z1|rack1".into();
        let mut same_zone = candidate("b-zone", "h2");
        same_zone.idc = "idc2".into();
        same_zone.location = "r1|z1|rack2".into();
        let mut same_idc = candidate("c-idc", "h3");
        same_idc.idc = "idc1".into();
        same_idc.location = "r1|z1|rack2".into();
        let mut same_rack = candidate("d-rack", "h4");
        same_rack.idc = "idc1".into();
        same_rack.location = "r1|z1|rack1".into();
        let got = select(&kid, &[far, same_zone, same_idc, same_rack], Limits::default());
        assert_eq!(ids(&got), ["d-rack", "c-idc", "b-zone", "a-far"]);
    }

    #[test]
    fn load_outweighs_locality() {
        let kid = child("kid", "h0", "idc1", "r1|z1|rack1");
        let mut near_busy = candidate("near", "h1");
        near_busy.idc = "idc1".into();
        near_busy.location = "r1|z1|rack1".into();
        near_busy.upload_slots_free = 1;
        let mut far_idle = candidate("far", "h2");
        far_idle.upload_slots_free = 4;
        // near gains 0.2 from idc + location; far gains 0.35 * (4/4 - 1/4) = 0.2625 from load.
        let got = select(&kid, &[near_busy, far_idle], Limits::default());
        assert_eq!(ids(&got), ["far", "near"]);
    }

    #[test]
    fn ties_break_by_peer_id() {
        let kid = child("kid", "h0", "", "");
        let candidates = [candidate("c", "h3"), candidate("a", "h1"), candidate("b", "h2")];
        assert_eq!(ids(&select(&kid, &candidates, Limits::default())), ["a", "b", "c"]);
    }

    #[test]
    fn candidate_parent_limit_caps_the_answer_after_ranking() {
        let kid = child("kid", "h0", "", "");
        let mut candidates: Vec<_> = (0..6).map(|i| candidate(&format!("p{i}"), &format!("host{i}"))).collect();
        candidates[5].is_seed = true;
        let limits = Limits { candidate_parent_limit: 2, ..Limits::default() };
        assert_eq!(ids(&select(&kid, &candidates, limits)), ["p5", "p0"]);
        let limits = Limits { candidate_parent_limit: 0, ..Limits::default() };
        assert!(select(&kid, &candidates, limits).is_empty());
    }

    #[test]
    fn filter_parent_limit_counts_only_eligible_candidates_in_input_order() {
        let kid = child("kid", "h0", "", "");
        let mut gone = candidate("gone", "h9");
        gone.failed_or_left = true;
        let mut late_seed = candidate("late-seed", "h8");
        late_seed.is_seed = true;
        let candidates = [gone, candidate("p1", "h1"), candidate("p2", "h2"), late_seed];
        let limits = Limits { candidate_parent_limit: 10, filter_parent_limit: 2, ..Limits::default() };
        // The excluded peer does not use up the budget; the seed past it is never scored.
        assert_eq!(ids(&select(&kid, &candidates, limits)), ["p1", "p2"]);
        let limits = Limits { candidate_parent_limit: 10, filter_parent_limit: 3, ..Limits::default() };
        assert_eq!(ids(&select(&kid, &candidates, limits)), ["late-seed", "p1", "p2"]);
    }

    #[test]
    fn no_candidates_no_parents() {
        let kid = child("kid", "h0", "", "");
        assert!(select(&kid, &[], Limits::default()).is_empty());
    }
}
