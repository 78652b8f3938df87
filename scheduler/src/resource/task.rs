//! Tasks and their peers: who holds which pieces, the digest of every piece (as reported by the
//! peer that fetched it from the origin), who is blocked as whose parent, and who fetches what
//! from the origin.
//!
//! This module owns the [`Task`] itself and its peers' lifecycle; the rest lives beside it so that
//! each concern reads on its own:
//! - `peer`: a peer's record and phase;
//! - `source`: who fetches from the origin (the elected source, or a spreading task's fetchers);
//! - `pieces`: what peers report (content info, finished pieces, digests, tiny content);
//! - `update`: what each peer's stream is told next, and the parents chosen for it;
//! - `cell`: every task behind a mutex with the version that wakes its streams.
//!
//! A peer moves `Pending → Running | BackToSource → Succeeded | Failed`; a peer that leaves
//! unfinished is removed, and any peer silent for the peer TTL (neither reporting nor serving)
//! is forgotten, so a finished peer on a live host is not offered forever. Every change bumps the task's version so the peers' streams push
//! updates without polling.

mod cell;
mod peer;
mod pieces;
mod source;
#[cfg(test)]
mod test_support;
mod update;

use std::{
    collections::{HashMap, HashSet},
    time::{Duration, Instant},
};

use common::{
    bitmap::PieceBitmap,
    digest::PieceDigest,
    ids::{HostId, PeerId, TaskId},
    piece::PieceLayout,
};

pub use cell::{Census, TaskCell, Tasks};
pub use peer::{PeerPhase, PeerRecord};
pub use pieces::{ContentInfo, PieceReport, PieceSource};
pub use source::{SEED_GRACE, SourceDecision};
pub use update::{ParentInfo, Sent, Update};

use crate::scheduling::{Dag, OriginPiece, origin};

/// One task's state.
#[derive(Debug)]
pub struct Task {
    pub id: TaskId,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub requested_piece_length: Option<u64>,
    /// The rest of what the id was derived from, passed on in seed orders so the seed peer can
    /// derive it again.
    pub tag: String,
    pub application: String,
    pub filtered_query_params: Vec<String>,
    /// The id of a blob URL is its digest's (the same blob from any registry is this task).
    pub blob_digest: bool,
    pub content_length: Option<u64>,
    pub piece_length: Option<u64>,
    digests: Vec<Option<PieceDigest>>,
    /// The whole content when it is tiny and one piece ([`PieceLayout::travels_inline`]), as the
    /// origin fetcher of piece 0 sent it, checked against that piece's digest. At most
    /// [`TINY_LIMIT`](common::piece::TINY_LIMIT) bytes per task, so holding it costs no more than a digest or two.
    tiny: Option<Vec<u8>>,
    /// Who fetches each piece from the origin; empty unless the task spreads.
    origin: Vec<OriginPiece>,
    peers: HashMap<PeerId, PeerRecord>,
    /// Join order, so candidate lists are stable.
    order: Vec<PeerId>,
    dag: Dag,
    seed_ordered_at: Option<Instant>,
    pub updated: Instant,
}

/// A read-only view for `StatTask`.
#[derive(Debug, Clone)]
pub struct TaskSnapshot {
    pub id: TaskId,
    pub url: String,
    pub content_length: Option<u64>,
    pub piece_length: Option<u64>,
    pub total_pieces: u32,
    pub peers: Vec<PeerRecord>,
}

impl Task {
    fn new(id: TaskId, url: String, headers: Vec<(String, String)>, piece_length: Option<u64>) -> Self {
        Self {
            id,
            url,
            headers,
            requested_piece_length: piece_length,
            tag: String::new(),
            application: String::new(),
            filtered_query_params: Vec::new(),
            blob_digest: false,
            content_length: None,
            piece_length,
            digests: Vec::new(),
            tiny: None,
            origin: Vec::new(),
            peers: HashMap::new(),
            order: Vec::new(),
            dag: Dag::default(),
            seed_ordered_at: None,
            updated: Instant::now(),
        }
    }

    /// The layout, once the source reported the content length.
    pub fn layout(&self) -> Option<PieceLayout> {
        PieceLayout::new(self.content_length?, self.piece_length?).ok()
    }

    /// A peer of this task.
    pub fn peer(&self, id: &PeerId) -> Option<&PeerRecord> {
        self.peers.get(id)
    }

    /// Adds a peer (or resets one that registers again).
    pub fn register(&mut self, id: PeerId, host_id: HostId, disable_back_to_source: bool) {
        if !self.peers.contains_key(&id) {
            self.order.push(id.clone());
        }
        self.dag.add_vertex(id.clone());
        self.peers.insert(
            id.clone(),
            PeerRecord {
                id,
                host_id,
                phase: PeerPhase::Pending,
                finished: PieceBitmap::new(),
                blocked: HashSet::new(),
                offered: HashSet::new(),
                slow: HashSet::new(),
                costs: Vec::new(),
                upload_success: 0,
                upload_failed: 0,
                disable_back_to_source,
                excluded: false,
                wanted: false,
                origin_pieces: 0,
                parent_pieces: HashMap::new(),
                inline_pieces: 0,
                parents: Vec::new(),
                updated: Instant::now(),
            },
        );
        self.updated = Instant::now();
    }

    /// Marks a peer whose host wants the content for itself (a preheat target).
    pub fn want(&mut self, id: &PeerId) {
        if let Some(p) = self.peers.get_mut(id) {
            p.wanted = true;
        }
    }

    /// Whether the task's pieces are handed to several origin fetchers.
    pub fn spreads(&self) -> bool {
        !self.origin.is_empty()
    }

    /// A child could not use `parent`. A corrupt parent is excluded from the whole task.
    pub fn parent_failed(&mut self, child: &PeerId, parent: &PeerId, corrupt: bool) {
        let Some(c) = self.peers.get_mut(child) else { return };
        if !c.offered.contains(parent) {
            tracing::info!(task_id = %self.id, %parent, reported_by = %child, "failure of a parent never offered to the reporter ignored");
            return;
        }
        c.blocked.insert(parent.clone());
        if let Some(p) = self.peers.get_mut(parent) {
            p.upload_failed += 1;
            if corrupt {
                tracing::warn!(task_id = %self.id, parent = %parent, reported_by = %child, "parent served corrupt bytes; excluded from the task");
                p.excluded = true;
            }
        }
        if corrupt {
            self.refetch_lost_pieces();
        }
        self.dag.remove_edge(parent, child);
        self.touch(child, Instant::now());
    }

    /// The peer has everything.
    pub fn peer_succeeded(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.phase = PeerPhase::Succeeded;
        }
        let parents: Vec<PeerId> = self.dag.parents(peer).cloned().collect();
        for parent in parents {
            self.dag.remove_edge(&parent, peer);
        }
        self.touch(peer, Instant::now());
    }

    /// The peer gave up.
    pub fn peer_failed(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.phase = PeerPhase::Failed;
        }
        self.dag.remove_vertex(peer);
        self.dag.add_vertex(peer.clone());
        origin::release(&mut self.origin, peer);
        self.refetch_lost_pieces();
        self.touch(peer, Instant::now());
    }

    /// The peer's stream ended: an unfinished peer is forgotten; a finished one stays as a parent.
    pub fn peer_left(&mut self, peer: &PeerId) {
        let keep = self.peers.get(peer).is_some_and(|p| p.phase == PeerPhase::Succeeded);
        if !keep {
            self.remove_peer(peer);
        }
    }

    /// Notes that `peer` (and so the task) changed at `now`.
    fn touch(&mut self, peer: &PeerId, now: Instant) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.updated = now;
        }
        self.updated = now;
    }

    /// Forgets every peer that neither reported anything nor served a piece for `ttl`: a
    /// finished peer is no longer offered as a parent, and a stream that went silent without
    /// ending stops counting as a download. Returns how many.
    pub fn expire_peers(&mut self, ttl: Duration, now: Instant) -> usize {
        let stale: Vec<PeerId> = self
            .peers
            .values()
            .filter(|p| now.saturating_duration_since(p.updated) > ttl)
            .map(|p| p.id.clone())
            .collect();
        for p in &stale {
            self.remove_peer(p);
        }
        stale.len()
    }

    fn remove_peer(&mut self, peer: &PeerId) {
        origin::release(&mut self.origin, peer);
        self.peers.remove(peer);
        self.order.retain(|p| p != peer);
        self.dag.remove_vertex(peer);
        self.refetch_lost_pieces();
        self.updated = Instant::now();
    }

    /// A spreading task hands a piece out again when every peer that held it is gone, failed or
    /// excluded. Its digest stays: the next fetcher must report the same one. Tiny content held
    /// here is never lost.
    fn refetch_lost_pieces(&mut self) {
        if self.tiny.is_some() {
            return;
        }
        for (n, piece) in self.origin.iter_mut().enumerate() {
            let held = || {
                self.peers
                    .values()
                    .any(|p| !p.excluded && p.phase != PeerPhase::Failed && p.finished.contains(n as u32))
            };
            if *piece == OriginPiece::Done && !held() {
                *piece = OriginPiece::Free;
            }
        }
    }

    /// Forgets every peer on `host`; returns how many.
    pub fn remove_host(&mut self, host: &HostId) -> usize {
        let gone: Vec<PeerId> = self.peers.values().filter(|p| &p.host_id == host).map(|p| p.id.clone()).collect();
        for p in &gone {
            self.remove_peer(p);
        }
        gone.len()
    }

    /// Whose stream must hear at once that `reporter` finished pieces from its parents: its
    /// children (peers it is a parent of) and downloading peers without parents. Anyone else's
    /// choice may change too (a better-stocked candidate), and is made again at its own next
    /// report or its stream's tick; waking every stream of the task for every piece made each
    /// report cost a parent computation per peer of the task.
    pub fn progress_audience(&self, reporter: &PeerId) -> Vec<PeerId> {
        self.peers
            .values()
            .filter(|p| &p.id != reporter && matches!(p.phase, PeerPhase::Pending | PeerPhase::Running))
            .filter(|p| p.parents.is_empty() || p.parents.contains(reporter))
            .map(|p| p.id.clone())
            .collect()
    }

    /// Whether no peer is left.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// A view for `StatTask`.
    pub fn snapshot(&self) -> TaskSnapshot {
        TaskSnapshot {
            id: self.id.clone(),
            url: self.url.clone(),
            content_length: self.content_length,
            piece_length: self.piece_length,
            total_pieces: self.layout().map(|l| l.count()).unwrap_or(0),
            peers: self.order.iter().filter_map(|p| self.peers.get(p).cloned()).collect(),
        }
    }
}
