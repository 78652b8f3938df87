//! A peer as its task sees it: its phase, the pieces it holds, and how it has fared as a parent.
//! Plain data; the [`Task`](super::Task) moves it through its phases.

use std::{
    collections::{HashMap, HashSet},
    time::Instant,
};

use common::{
    bitmap::PieceBitmap,
    ids::{HostId, PeerId},
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
    /// Every parent this peer was handed: what it says about a parent (a failure, a piece) counts
    /// only for these, so it cannot exclude or credit a stranger.
    pub offered: HashSet<PeerId>,
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
    /// Its host wants the content for itself (a preheat ordered it there), so a seed peer does
    /// not hold back its own copy for the swarm's sake.
    pub wanted: bool,
    /// Where this peer's pieces came from: the origin, each parent, and the scheduler itself
    /// (tiny content) (for the task graph).
    pub origin_pieces: u32,
    pub parent_pieces: HashMap<PeerId, u32>,
    pub inline_pieces: u32,
    /// The parents it was given last: a new piece of one of them is news for it at once
    /// ([`Task::progress_audience`](super::Task::progress_audience)).
    pub parents: Vec<PeerId>,
    /// When the peer last reported anything or served a piece to a child: the peer TTL
    /// (`gc.peer_ttl_secs`) counts from here.
    pub updated: Instant,
}
