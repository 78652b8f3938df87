//! Tasks and their peers: who holds which pieces, the digest of every piece (as reported by the
//! peer that fetched it from the origin), who is blocked as whose parent, and who fetches what
//! from the origin.
//!
//! The first source (the seed peer when one is connected) learns the content's size. When the
//! origin serves byte ranges, the task then *spreads*: every piece is handed to one peer that may
//! go back to source ([`scheduling::origin`]), which fetches it by range and alone may record its
//! digest. Otherwise the first source streams the whole content.
//!
//! Tiny content (one piece of at most [`TINY_LIMIT`] bytes) is the one exception to "piece bytes
//! never travel in gRPC messages": a piece connection would cost more than the bytes. The peer
//! that fetched it from the origin, and alone may set its digest, sends the bytes with it; the task
//! keeps them only when their length is the content's and their BLAKE3 is that digest, then hands
//! them to every downloading peer ([`Update::tiny_content`]), which reports the piece as
//! [`PieceSource::Inline`]: counted neither as origin nor as parent traffic. Held bytes also make
//! the task a source of its own, so no peer goes back to source for them again.
//!
//! A peer moves `Pending → Running | BackToSource → Succeeded | Failed`; a peer that leaves
//! unfinished is removed, and any peer silent for the peer TTL (neither reporting nor serving)
//! is forgotten, so a finished peer on a live host is not offered forever. Every change bumps the task's version so the peers' streams push
//! updates without polling.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use common::{
    bitmap::PieceBitmap,
    ids::{HostId, PeerId, TaskId},
    piece::{PieceLayout, TINY_LIMIT},
};
use tokio::sync::watch;

use crate::{
    resource::{Host, HostKind, Hosts},
    scheduling::{self, Candidate, Child, Dag, Limits, OriginPiece, origin},
};

/// Where a peer is in its download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerPhase {
    /// Registered, nothing downloaded yet.
    Pending,
    /// Downloading pieces from parents.
    Running,
    /// Fetching from the origin (the task's source).
    BackToSource,
    /// Has the whole content.
    Succeeded,
    /// Gave up.
    Failed,
}

impl PeerPhase {
    /// Lower-case name for APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::BackToSource => "back_to_source",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// One peer of a task.
#[derive(Debug, Clone)]
pub struct PeerRecord {
    pub id: PeerId,
    pub host_id: HostId,
    pub phase: PeerPhase,
    pub finished: PieceBitmap,
    /// Parents this peer must not use again (failed, corrupt or slow for it).
    pub blocked: HashSet<PeerId>,
    /// Parents that were far slower than usual for this peer: avoided while another parent can
    /// serve it, never so that it is left with none.
    pub slow: HashSet<PeerId>,
    /// Transfer costs of pieces children fetched from this peer, in microseconds.
    pub costs: Vec<u64>,
    pub upload_success: u32,
    pub upload_failed: u32,
    pub disable_back_to_source: bool,
    /// Served corrupt bytes: never a parent again in this task.
    pub excluded: bool,
    /// Where this peer's pieces came from: the origin, each parent, and the scheduler itself
    /// (tiny content) (for the task graph).
    pub origin_pieces: u32,
    pub parent_pieces: HashMap<PeerId, u32>,
    pub inline_pieces: u32,
    /// When the peer last reported anything or served a piece to a child: the peer TTL
    /// (`gc.peer_ttl_secs`) counts from here.
    pub updated: Instant,
}

/// A piece a peer reports finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceReport {
    pub number: u32,
    /// BLAKE3, when the peer fetched it from the origin.
    pub digest: Option<[u8; 32]>,
    pub source: PieceSource,
    pub cost_micros: u64,
}

/// Where a reported piece came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PieceSource {
    /// The reporter fetched it from the origin. `content`: the piece's bytes, sent only when
    /// the piece is the whole content and tiny, for the scheduler to hand out inline.
    Origin { content: Option<Vec<u8>> },
    /// From this parent peer.
    Parent(PeerId),
    /// Handed over by the scheduler in a [`Update::tiny_content`].
    Inline,
}

/// What the source learnt from the origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentInfo {
    /// `None` while unknown (a chunked body).
    pub content_length: Option<u64>,
    pub piece_length: u64,
    /// The origin serves byte ranges: the task may spread its pieces over several fetchers.
    pub ranges: bool,
}

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
    pub digests: Vec<(u32, [u8; 32])>,
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
}

/// How long to wait for an ordered seed peer before electing a normal peer as the source.
pub const SEED_GRACE: Duration = Duration::from_secs(5);

/// One task's state.
#[derive(Debug)]
pub struct Task {
    pub id: TaskId,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub requested_piece_length: Option<u64>,
    pub content_length: Option<u64>,
    pub piece_length: Option<u64>,
    digests: Vec<Option<[u8; 32]>>,
    /// The whole content when it is tiny and one piece ([`PieceLayout::travels_inline`]), as the
    /// origin fetcher of piece 0 sent it, checked against that piece's digest. At most
    /// [`TINY_LIMIT`] bytes per task, so holding it costs no more than a digest or two.
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
                slow: HashSet::new(),
                costs: Vec::new(),
                upload_success: 0,
                upload_failed: 0,
                disable_back_to_source,
                excluded: false,
                origin_pieces: 0,
                parent_pieces: HashMap::new(),
                inline_pieces: 0,
                updated: Instant::now(),
            },
        );
        self.updated = Instant::now();
    }

    /// Whether the content is being fetched from the origin, is already whole in the swarm, or
    /// is tiny and held here. A spreading task has a source while any peer may still be handed
    /// origin pieces.
    fn has_source(&self) -> bool {
        let fetching = self.peers.values().any(|p| p.phase == PeerPhase::BackToSource);
        let spreading = self.spreads() && self.peers.values().any(origin_fetcher);
        fetching || spreading || self.tiny.is_some() || self.whole_in_swarm()
    }

    /// The tiny content held for peers, if any.
    pub fn tiny_content(&self) -> Option<&[u8]> {
        self.tiny.as_deref()
    }

    /// Checks the bytes the origin fetcher of piece `number` sent with its `digest`: the piece
    /// must be the whole content, known to be tiny, and the bytes must be that long and hash to
    /// that digest. Refused bytes are a broken peer's report, refused like a contradicting digest.
    fn check_tiny(&self, number: u32, digest: &[u8; 32], content: &[u8]) -> Result<(), String> {
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
        if blake3::hash(content).as_bytes() != digest {
            return Err(format!("piece {number} bytes do not match its digest"));
        }
        Ok(())
    }

    /// Whether the task's pieces are handed to several origin fetchers.
    pub fn spreads(&self) -> bool {
        !self.origin.is_empty()
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

    /// The source reports the content's size. Only a peer fetching from the origin may.
    pub fn content_info(&mut self, peer: &PeerId, info: ContentInfo) -> Result<(), String> {
        let ContentInfo { content_length, piece_length, ranges } = info;
        let record = self.peers.get(peer).ok_or("peer is not registered")?;
        if record.phase != PeerPhase::BackToSource {
            return Err("only the peer fetching from the origin reports content info".into());
        }
        if piece_length == 0 {
            return Err("piece_length must be positive".into());
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
                    if let Some(p) = self.peers.get_mut(parent) {
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
                        PieceSource::Parent(parent) => *c.parent_pieces.entry(parent.clone()).or_default() += 1,
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

    /// A child could not use `parent`. A corrupt parent is excluded from the whole task.
    pub fn parent_failed(&mut self, child: &PeerId, parent: &PeerId, corrupt: bool) {
        if let Some(c) = self.peers.get_mut(child) {
            c.blocked.insert(parent.clone());
        }
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

    /// Whether no peer is left.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// Computes what `peer` has not been told yet; `None` when there is no news.
    pub fn update_for(&mut self, peer: &PeerId, sent: &mut Sent, hosts: &Hosts, limits: &Limits) -> Option<Update> {
        let record = self.peers.get(peer)?.clone();
        let digests: Vec<(u32, [u8; 32])> = self
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
        let origin_pieces = if self.spreads() && origin_fetcher(&record) {
            origin::assign(&mut self.origin, peer, origin::DEFAULT_ORIGIN_PIECES_PER_PEER, limits.back_to_source_limit)
        } else {
            Vec::new()
        };
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
            return None;
        }
        sent.parents = summary;
        sent.content_length = self.content_length;
        sent.piece_length = self.piece_length;
        Some(Update {
            content_length: self.content_length,
            piece_length: self.piece_length,
            digests,
            parents,
            origin_pieces,
            tiny_content,
        })
    }

    fn choose_parents(&mut self, child: &PeerRecord, hosts: &Hosts, limits: &Limits) -> Vec<ParentInfo> {
        let Some(child_host) = hosts.get(&child.host_id) else { return Vec::new() };
        let total = self.layout().map(|l| l.count()).unwrap_or(0);
        let mut known = HashMap::new();
        // Only peers holding a piece the child lacks are offered: a useless edge would still
        // occupy the DAG and forbid the reverse edge, which is often the useful one.
        // A seed peer of a spreading task serves the swarm first: it takes pieces only from
        // peers that are done, so no uplink carries bytes to a host nobody is waiting for.
        let seed_waits = self.spreads() && child_host.kind == HostKind::Seed;
        let candidates: Vec<Candidate> = self
            .order
            .iter()
            .filter_map(|id| self.peers.get(id))
            .filter(|p| p.finished.iter().any(|n| !child.finished.contains(n)))
            .filter(|p| !seed_waits || p.phase == PeerPhase::Succeeded)
            .filter_map(|p| {
                let host = hosts.get(&p.host_id)?;
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
                known.insert(p.id.clone(), (host, p.finished.clone()));
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
        chosen
            .into_iter()
            .filter(|p| spreads || self.dag.add_edge(p, &child.id).is_ok())
            .filter_map(|p| {
                let (host, finished) = known.remove(&p)?;
                let last_resort = host.kind == HostKind::Seed && !spreads;
                Some(ParentInfo { peer_id: p, host, finished, last_resort })
            })
            .collect()
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

/// Whether `p` may be handed pieces to fetch from the origin: still downloading, allowed to go
/// back to source, and trusted.
fn origin_fetcher(p: &PeerRecord) -> bool {
    matches!(p.phase, PeerPhase::Pending | PeerPhase::Running | PeerPhase::BackToSource)
        && !p.disable_back_to_source
        && !p.excluded
}

/// A task and the channel that announces its changes.
#[derive(Debug)]
pub struct TaskCell {
    task: Mutex<Task>,
    version: watch::Sender<u64>,
}

impl TaskCell {
    /// Locks the task.
    pub fn lock(&self) -> MutexGuard<'_, Task> {
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Tells every stream of this task that something changed.
    pub fn changed(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    /// A receiver that wakes on [`changed`](Self::changed).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

/// All tasks.
#[derive(Debug, Default)]
pub struct Tasks {
    inner: Mutex<HashMap<TaskId, Arc<TaskCell>>>,
}

impl Tasks {
    /// The task, created when new.
    pub fn get_or_create(
        &self,
        id: &TaskId,
        url: &str,
        headers: Vec<(String, String)>,
        piece_length: Option<u64>,
    ) -> Arc<TaskCell> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.clone())
            .or_insert_with(|| {
                Arc::new(TaskCell {
                    task: Mutex::new(Task::new(id.clone(), url.to_owned(), headers, piece_length)),
                    version: watch::channel(0).0,
                })
            })
            .clone()
    }

    /// The task if known.
    pub fn get(&self, id: &TaskId) -> Option<Arc<TaskCell>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).get(id).cloned()
    }

    /// Forgets a task (a manager's `delete_task` job); answers it if it was known. Streams of
    /// peers still downloading keep their copy of the cell and end on their own.
    pub fn remove(&self, id: &TaskId) -> Option<Arc<TaskCell>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).remove(id)
    }

    /// Forgets every peer of `host` in every task (the host left or expired).
    pub fn remove_host(&self, host: &HostId) {
        let cells: Vec<Arc<TaskCell>> =
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        for cell in cells {
            if cell.lock().remove_host(host) > 0 {
                cell.changed();
            }
        }
    }

    /// Forgets, in every task, the peers silent for `ttl` ([`Task::expire_peers`]); returns how
    /// many.
    pub fn expire_peers(&self, ttl: Duration, now: Instant) -> usize {
        let cells: Vec<Arc<TaskCell>> =
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        let mut expired = 0;
        for cell in cells {
            let n = cell.lock().expire_peers(ttl, now);
            if n > 0 {
                cell.changed();
                expired += n;
            }
        }
        expired
    }

    /// Drops tasks without peers that have not changed for `ttl`; returns how many.
    pub fn collect_garbage(&self, ttl: Duration, now: Instant) -> usize {
        let mut map = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let before = map.len();
        map.retain(|_, cell| {
            let t = cell.lock();
            !(t.is_empty() && now.saturating_duration_since(t.updated) > ttl)
        });
        before - map.len()
    }

    /// How many tasks are known.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no task is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every task with its cell, for reports that walk them all.
    pub fn cells(&self) -> Vec<(TaskId, Arc<TaskCell>)> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(id, c)| (id.clone(), c.clone())).collect()
    }

    /// Tasks, peers, and peers downloading now (running or fetching from the origin).
    pub fn census(&self) -> Census {
        let cells: Vec<Arc<TaskCell>> =
            self.inner.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect();
        let mut census = Census { tasks: cells.len() as u64, ..Census::default() };
        for cell in cells {
            let task = cell.lock();
            census.peers += task.peers.len() as u64;
            census.running_peers +=
                task.peers.values().filter(|p| matches!(p.phase, PeerPhase::Running | PeerPhase::BackToSource)).count()
                    as u64;
        }
        census
    }
}

/// How much a scheduler holds, for its keepalive report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Census {
    pub tasks: u64,
    pub peers: u64,
    pub running_peers: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{Host, HostKind};

    fn host(name: &str) -> Host {
        Host {
            id: HostId(name.into()),
            hostname: name.into(),
            ip: "127.0.0.1".into(),
            upload_port: 4000,
            kind: HostKind::Normal,
            idc: String::new(),
            location: String::new(),
            upload_limit: 64,
            version: "0".into(),
        }
    }

    /// `a` (on host "a") registers, is elected the source, and reports all `pieces` pieces of
    /// 1 KiB from the origin with their digests.
    fn fetch_all_from_origin(t: &mut Task, a: &PeerId, pieces: u32) {
        t.register(a.clone(), HostId("a".into()), false);
        assert!(matches!(t.decide_source(a, false, false, Instant::now()), SourceDecision::BackToSource(_)));
        let content_length = Some(u64::from(pieces) * 1024);
        t.content_info(a, ContentInfo { content_length, piece_length: 1024, ranges: false }).unwrap();
        let origin: Vec<PieceReport> = (0..pieces)
            .map(|n| PieceReport {
                number: n,
                digest: Some([n as u8; 32]),
                source: PieceSource::Origin { content: None },
                cost_micros: 1,
            })
            .collect();
        t.pieces_finished(a, &origin).unwrap();
    }

    fn from_parent(n: u32, parent: &PeerId, cost_micros: u64) -> PieceReport {
        PieceReport { number: n, digest: None, source: PieceSource::Parent(parent.clone()), cost_micros }
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

        let origin = |n: u32| PieceReport {
            number: n,
            digest: Some([n as u8; 32]),
            source: PieceSource::Origin { content: None },
            cost_micros: 1,
        };
        assert!(t.pieces_finished(&b, &[origin(0)]).is_err(), "piece 0 is a's to fetch");
        t.pieces_finished(&b, &[origin(1)]).unwrap();
        // b now serves piece 1 to a, and a (the source that learnt the size) takes parents too.
        let ua = t.update_for(&a, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!(ua.parents.iter().map(|p| p.peer_id.clone()).collect::<Vec<_>>(), vec![b.clone()]);
        assert!(ua.parents.iter().all(|p| !p.last_resort));

        // a leaves: its unfinished piece goes to b, then the rest.
        t.peer_left(&a);
        let ub = t.update_for(&b, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!(ub.origin_pieces, vec![0]);
        t.pieces_finished(&b, &[origin(0)]).unwrap();
        let ub = t.update_for(&b, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!(ub.origin_pieces, vec![2]);
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

        // b's piece is in: its slot goes to the next peer that asks.
        let origin = |n: u32| PieceReport {
            number: n,
            digest: Some([n as u8; 32]),
            source: PieceSource::Origin { content: None },
            cost_micros: 1,
        };
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

    #[test]
    fn a_spreading_seed_waits_for_finished_parents_and_lost_pieces_are_fetched_again() {
        let hosts = Hosts::default();
        hosts.announce(Host { kind: HostKind::Seed, ..host("s") }, Instant::now());
        hosts.announce(host("a"), Instant::now());
        hosts.announce(host("b"), Instant::now());
        let (s, a, b) = (PeerId("s-1".into()), PeerId("a-1".into()), PeerId("b-1".into()));
        let mut t = Task::new(TaskId("t".into()), "http://o/x".into(), vec![], Some(1024));
        for (p, h) in [(&s, "s"), (&a, "a"), (&b, "b")] {
            t.register(p.clone(), HostId(h.into()), false);
        }
        assert!(matches!(t.decide_source(&s, false, true, Instant::now()), SourceDecision::BackToSource(_)));
        t.content_info(&s, ContentInfo { content_length: Some(3 * 1024), piece_length: 1024, ranges: true }).unwrap();
        let limits = Limits::default();
        let given: Vec<Vec<u32>> = [&s, &a, &b]
            .iter()
            .map(|p| t.update_for(p, &mut Sent::default(), &hosts, &limits).unwrap().origin_pieces)
            .collect();
        assert_eq!(given, vec![vec![0], vec![1], vec![2]]);
        let origin = |n: u32| PieceReport {
            number: n,
            digest: Some([n as u8; 32]),
            source: PieceSource::Origin { content: None },
            cost_micros: 1,
        };
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
        wrong.digest = Some([9; 32]);
        assert!(t.pieces_finished(&a, &[wrong]).is_err(), "the recorded digest still rules");
        t.pieces_finished(&a, &[origin(2)]).unwrap();
        t.pieces_finished(&a, &[from_parent(0, &s, 10)]).unwrap();
        t.peer_succeeded(&a);
        let us = t.update_for(&s, &mut Sent::default(), &hosts, &limits).unwrap();
        assert_eq!(us.parents.iter().map(|p| p.peer_id.clone()).collect::<Vec<_>>(), vec![a.clone()]);
    }

    #[test]
    fn a_silent_peer_expires_and_is_no_longer_offered_as_a_parent() {
        let hosts = Hosts::default();
        for h in ["a", "b", "c"] {
            hosts.announce(host(h), Instant::now());
        }
        let (a, b, c) = (PeerId("a-1".into()), PeerId("b-1".into()), PeerId("c-1".into()));
        let tasks = Tasks::default();
        let cell = tasks.get_or_create(&TaskId("t".into()), "http://o/x", vec![], Some(1024));
        let mut t = cell.lock();
        fetch_all_from_origin(&mut t, &a, 2);
        t.peer_succeeded(&a);
        t.peer_left(&a);
        t.register(b.clone(), HostId("b".into()), false);
        t.pieces_finished(&b, &[from_parent(0, &a, 100), from_parent(1, &a, 100)]).unwrap();
        t.peer_succeeded(&b);
        t.peer_left(&b);
        drop(t);

        // b serves c later, so it stays when a, silent since, expires.
        std::thread::sleep(Duration::from_millis(200));
        let ttl = Duration::from_millis(100);
        cell.lock().register(c.clone(), HostId("c".into()), false);
        cell.lock().pieces_finished(&c, &[from_parent(0, &b, 100)]).unwrap();
        assert_eq!(tasks.expire_peers(ttl, Instant::now()), 1);
        let mut t = cell.lock();
        assert!(t.peer(&a).is_none() && t.peer(&b).is_some());
        let uc = t.update_for(&c, &mut Sent::default(), &hosts, &Limits::default()).unwrap();
        assert_eq!(uc.parents.iter().map(|p| p.peer_id.clone()).collect::<Vec<_>>(), vec![b.clone()]);
        drop(t);

        // Everyone goes silent: the task empties, then the task TTL forgets it.
        let later = Instant::now() + Duration::from_secs(1);
        assert_eq!(tasks.expire_peers(ttl, later), 2);
        assert!(cell.lock().is_empty());
        let task_ttl = Duration::from_secs(1800);
        assert_eq!(tasks.collect_garbage(task_ttl, later), 0, "the task TTL counts from the last peer's removal");
        assert_eq!(tasks.collect_garbage(task_ttl, later + task_ttl), 1);
    }

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
    fn origin_with_bytes(content: &[u8], digest: [u8; 32]) -> PieceReport {
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
    fn tiny_content_from_its_origin_fetcher_is_held_and_handed_out_once_inline() {
        let hosts = Hosts::default();
        for h in ["a", "b", "c"] {
            hosts.announce(host(h), Instant::now());
        }
        let limits = Limits::default();
        for len in [1usize, 128] {
            let bytes = vec![7u8; len];
            let digest = *blake3::hash(&bytes).as_bytes();
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
        let digest = *blake3::hash(&hello).as_bytes();
        let big = vec![1u8; 129];
        let big_digest = *blake3::hash(&big).as_bytes();

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
        // Piece 0 reported twice (a retried report) counts once.
        t.pieces_finished(&b, &[from_parent(0, &a, 100), from_parent(1, &a, 100), from_parent(0, &a, 100)]).unwrap();
        let snapshot = t.snapshot();
        let (pa, pb) = (&snapshot.peers[0], &snapshot.peers[1]);
        assert_eq!((pa.origin_pieces, pa.parent_pieces.len()), (3, 0));
        assert_eq!((pb.origin_pieces, pb.parent_pieces.get(&a).copied()), (0, Some(2)));
    }
}
