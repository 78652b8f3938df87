//! One piece's fetch, run as its own task: from a parent over a pooled piece connection
//! ([`fetch_piece`], verified against the scheduler's digest as it arrives), or from the origin
//! by range ([`from_origin`]). Each answers what happened; the download (`super`) acts on it.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{digest::PieceDigest, ids::PeerId, piece::PieceLayout};

use crate::{
    Error,
    download::{TaskRequest, origin},
    limiter::RateLimiter,
    rpc::scheduler::{Parent, ParentProblem},
    storage::TaskStore,
    transport::client::{Dialer, FetchError, PieceConnection},
};

/// Connections to parents: made with the host's dialer, kept idle per parent between pieces.
#[derive(Debug, Clone)]
pub(super) struct Pool {
    dialer: Dialer,
    idle: Arc<Mutex<HashMap<PeerId, Vec<PieceConnection>>>>,
}

impl Pool {
    pub(super) fn new(dialer: Dialer) -> Self {
        Self { dialer, idle: Arc::default() }
    }

    /// An idle connection to `parent`, or a new one (blocking).
    fn take(&self, parent: &Parent) -> Result<PieceConnection, FetchError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&parent.peer_id).and_then(Vec::pop);
        idle.map_or_else(|| self.dialer.connect(parent.addr), Ok)
    }

    /// Keeps `conn` for the next piece from `parent`.
    fn put(&self, parent: &Parent, conn: PieceConnection) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).entry(parent.peer_id.clone()).or_default().push(conn);
    }
}

/// A fetch from a parent that ended: how long it took, or why it failed.
pub(super) struct Fetched {
    pub(super) number: u32,
    pub(super) parent: PeerId,
    pub(super) result: Result<Duration, Failure>,
}

/// A piece this peer fetched from the origin (its BLAKE3), or why it could not.
pub(super) struct FromOrigin {
    pub(super) number: u32,
    pub(super) result: Result<(PieceDigest, Duration), Error>,
}

/// Why a fetch did not produce a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// The parent's upload slots are full (or it is busy with this piece): ask the others for a
    /// while, and try the piece again at once from anyone else.
    Busy,
    /// This host still has a writer on the piece (a download of the task that was given up);
    /// try the piece again shortly.
    Local,
    /// The parent failed; report it and use another.
    Parent(ParentProblem),
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn fetch_piece(
    pool: Pool,
    limiter: Arc<RateLimiter>,
    task: Arc<TaskStore>,
    task_id: String,
    parent: Parent,
    number: u32,
    expected_len: u64,
    digest: PieceDigest,
) -> Fetched {
    let started = Instant::now();
    limiter.acquire(expected_len).await;
    let from = parent.peer_id.clone();
    let result = tokio::task::spawn_blocking(move || {
        receive_piece(&pool, &task, &task_id, &parent, number, expected_len, digest).map(|()| started.elapsed())
    })
    .await
    .unwrap_or(Err(Failure::Parent(ParentProblem::Unreachable)));
    Fetched { number, parent: from, result }
}

/// Receives piece `number` from `parent` (blocking): each chunk is hashed and written as it
/// arrives (see [`crate::storage::PieceWriter`]), and the piece counts only if its BLAKE3 is the
/// scheduler's `digest`.
fn receive_piece(
    pool: &Pool,
    task: &Arc<TaskStore>,
    task_id: &str,
    parent: &Parent,
    number: u32,
    expected_len: u64,
    digest: PieceDigest,
) -> Result<(), Failure> {
    // Another writer (a download of this task that was given up) still holds the piece, or it
    // just finished: try again shortly. A content file that cannot be opened fails like a
    // write would.
    let mut writer = match task.piece_writer(number) {
        Ok(Some(writer)) => writer,
        Ok(None) => return Err(Failure::Local),
        Err(_) => return Err(Failure::Parent(ParentProblem::Unreachable)),
    };
    let mut conn = pool.take(parent).map_err(|_| Failure::Parent(ParentProblem::Unreachable))?;
    let mut hasher = blake3::Hasher::new();
    let fetched = conn.fetch_piece(task_id, number, expected_len, |chunk| {
        hasher.update(chunk);
        writer.write(chunk)
    });
    if matches!(fetched, Ok(()) | Err(FetchError::Busy | FetchError::NotFound)) {
        pool.put(parent, conn);
    }
    fetched.map_err(|e| match e {
        FetchError::Busy => Failure::Busy,
        FetchError::NotFound => Failure::Parent(ParentProblem::Missing),
        FetchError::Unreachable(_) | FetchError::Remote(_) | FetchError::Local(_) => {
            Failure::Parent(ParentProblem::Unreachable)
        }
    })?;
    if hasher.finalize().as_bytes() != digest.as_bytes() {
        return Err(Failure::Parent(ParentProblem::Corrupt));
    }
    writer.finish(digest).map_err(|_| Failure::Parent(ParentProblem::Unreachable))
}

/// Fetches piece `n` of `layout` from the origin by range, storing it; answers its BLAKE3.
pub(super) async fn from_origin(
    http: origin::OriginClients,
    limits: origin::Limits,
    task: Arc<TaskStore>,
    req: TaskRequest,
    layout: PieceLayout,
    n: u32,
) -> FromOrigin {
    let started = Instant::now();
    let result = origin::fetch_range(&http, &limits, &task, &req, layout, n).await;
    FromOrigin { number: n, result: result.map(|d| (d, started.elapsed())) }
}
