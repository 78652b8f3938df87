//! Downloading a task through the scheduler: register, then fetch pieces from several parents at
//! once while reporting each finished piece, until the content is whole.
//!
//! When the origin serves byte ranges, the scheduler also hands this peer some pieces to fetch from
//! the origin itself ([`origin::fetch_range`]); their digests are reported with them, and they are
//! served to the others at once. The peer told to go back to source first only learns the size
//! (a HEAD) and reports it, then works like every other peer; an origin without ranges is
//! streamed whole by that one peer.
//!
//! Every piece is checked against the BLAKE3 digest the scheduler holds (recorded by the peer that
//! fetched it from the origin), never against anything the parent says. A mismatch drops the
//! bytes, reports the parent as corrupt, and the piece is fetched elsewhere. A parent that cannot
//! be reached costs a retry with another parent, not the download.
//!
//! Tiny content (one piece of at most 128 bytes) usually arrives in the scheduler's update itself
//! ([`State::take_inline`]): checked against piece 0's digest like any piece, stored through the
//! same storage path, reported as inline, and no parent is ever connected. Bytes that do not match
//! are dropped and the piece is fetched from a parent as usual.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use common::{ids::PeerId, piece::PieceLayout};
use rand::Rng;
use tokio::{sync::mpsc, task::JoinSet};
use tonic::transport::Channel;

use super::{Event, Inner, TaskRequest, origin};
use crate::{
    Error,
    limiter::RateLimiter,
    metrics::{PieceFailure, PieceFailureLabels, TrafficType},
    rpc::scheduler::{
        FromScheduler, Parent, ParentProblem, PeerStream, PieceDone, PieceSource, Registration, ToScheduler,
    },
    storage::TaskStore,
    transport::client::{FetchError, PieceConnection},
};

/// Most pieces fetched from one parent at the same time, shared out over the parents: with one
/// parent, four at once keep its stream busy; with several, one each, so every parent's uplink
/// is split among few transfers and each piece completes (and can be passed on) quickly.
const PER_PARENT_BUDGET: usize = 4;

/// Idle connections kept per parent.
type Pool = Arc<Mutex<HashMap<PeerId, Vec<PieceConnection>>>>;

struct Fetched {
    number: u32,
    parent: PeerId,
    result: Result<Duration, Failure>,
}

/// A piece this peer fetched from the origin (its BLAKE3), or why it could not.
struct FromOrigin {
    number: u32,
    result: Result<([u8; 32], Duration), Error>,
}

/// Why a fetch did not produce a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// The parent's upload slots are full (or it is busy with this piece): ask the others for a
    /// while, and try the piece again at once from anyone else.
    Busy,
    /// This host still has a writer on the piece (a download of the task that was given up);
    /// try the piece again shortly.
    Local,
    /// The parent failed; report it and use another.
    Parent(ParentProblem),
}

/// Pieces per window of the preferred order among equally rare pieces.
const HASH_WINDOW: u32 = 8;

/// Parents holding a piece from which it counts as common: common pieces are fetched in
/// content order (by window) instead of rarest first, so the whole-content hash, which must
/// take the pieces in order, keeps up with the download instead of waiting at its end for an
/// early piece fetched last. Rarer pieces still come first, so none stays scarce.
const COMMON: usize = 3;

/// How long a piece still held by a local writer waits before it is tried again.
const BUSY_RETRY: Duration = Duration::from_millis(40);

/// How long a parent that answered `Busy` is left alone. Its queue is full, and it sends one
/// piece at a time, so it stays full for about a piece's transfer; asking sooner only costs
/// both sides a round trip (with 16 children, thousands a second).
const PARENT_BUSY_RETRY: Duration = Duration::from_millis(150);

/// Runs the download through the scheduler. `Err(SchedulerLost)` tells the caller to fall back.
pub(super) async fn run(
    inner: &Inner,
    task: &Arc<TaskStore>,
    req: &TaskRequest,
    channel: Channel,
    events: &mpsc::Sender<Event>,
) -> Result<(), Error> {
    let peer_id = PeerId(format!("{}-{}", inner.config.host_id, uuid_like()));
    let registration = Registration {
        host_id: inner.config.host_id.0.clone(),
        peer_id: peer_id.clone(),
        task_id: req.task_id.0.clone(),
        url: req.url.to_string(),
        headers: req.headers.clone(),
        piece_length: req.piece_length,
        disable_back_to_source: req.disable_back_to_source,
        tag: req.tag.clone(),
        application: req.application.clone(),
    };
    let mut stream = match PeerStream::open(channel, registration).await {
        Ok(s) => s,
        // The operator chose not to distribute this; going to the origin instead would defeat it.
        Err(status) if status.code() == tonic::Code::PermissionDenied => {
            return Err(Error::Refused(status.message().to_owned()));
        }
        Err(status)
            if status.code() == tonic::Code::FailedPrecondition || status.code() == tonic::Code::InvalidArgument =>
        {
            return Err(Error::SchedulerLost(status.message().to_owned()));
        }
        Err(status) => return Err(Error::SchedulerLost(status.to_string())),
    };
    let reporter = stream.reporter();
    let mut state = State::new(task.clone(), task.layout());
    let pool: Pool = Arc::default();
    let mut jobs: JoinSet<Fetched> = JoinSet::new();
    let mut origin_jobs: JoinSet<FromOrigin> = JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut announced_start = false;
    tracing::info!(task_id = %req.task_id, peer_id = %peer_id, "registered with the scheduler");

    loop {
        if let Some(layout) = state.layout {
            if !announced_start {
                announced_start = true;
                Event::started(events, req, layout).await;
            }
            // Finish only once every fetch has been joined and reported: the scheduler must
            // know each piece this peer holds, or children will never ask for it.
            if task.is_complete() && jobs.is_empty() && origin_jobs.is_empty() {
                drop(reporter);
                let closing = Instant::now();
                stream.finish(ToScheduler::Finished { content_length: layout.content_length }).await?;
                tracing::info!(task_id = %req.task_id, close_ms = closing.elapsed().as_millis() as u64, "all pieces in place");
                return Ok(());
            }
        }
        state.schedule(inner, &mut jobs, &pool, &req.task_id.0);
        state.schedule_origin(inner, &mut origin_jobs, req);

        tokio::select! {
            msg = stream.next() => match msg {
                Ok(Some(FromScheduler::BackToSource(reason))) => {
                    tracing::info!(task_id = %req.task_id, %reason, "fetching from the origin as told");
                    // An origin serving ranges: report its size and let the scheduler hand the
                    // pieces out (to this peer among others).
                    if let Some(layout) = origin::probe_ranges(inner, task, req).await {
                        if state.layout.is_none() {
                            task.set_layout(layout)?;
                            state.layout = Some(layout);
                        }
                        reporter.send(ToScheduler::ContentInfo {
                            content_length: Some(layout.content_length),
                            piece_length: layout.piece_length,
                            ranges: true,
                        }).await?;
                        continue;
                    }
                    jobs.shutdown().await;
                    origin_jobs.shutdown().await;
                    let result = origin::fetch(inner, task, req, Some(&reporter), events).await;
                    match result {
                        Ok(()) => {
                            let len = task.layout().map(|l| l.content_length).unwrap_or(0);
                            drop(reporter);
                            stream.finish(ToScheduler::Finished { content_length: len }).await?;
                            return Ok(());
                        }
                        Err(e) => {
                            drop(reporter);
                            let _ = stream.finish(ToScheduler::Failed(e.to_string())).await;
                            return Err(e);
                        }
                    }
                }
                Ok(Some(FromScheduler::Update { content_length, piece_length, digests, parents, origin_pieces, tiny_content })) => {
                    state.apply(content_length, piece_length, digests, parents)?;
                    state.origin_queue.extend(origin_pieces);
                    // Taken before any fetch is scheduled, so no parent is connected for it.
                    if let Some(bytes) = tiny_content
                        && let Some(len) = state.take_inline(bytes, &req.task_id.0).await?
                    {
                        inner.metrics.downloaded(TrafficType::Inline, len);
                        reporter.send(ToScheduler::Pieces(vec![PieceDone {
                            number: 0,
                            digest: None,
                            source: PieceSource::Inline,
                            cost_micros: 0,
                        }])).await?;
                        let _ = events.try_send(Event::Progress {
                            finished_bytes: state.finished_bytes,
                            finished_pieces: task.finished().len(),
                        });
                    }
                }
                Ok(None) => return Err(Error::SchedulerLost("the scheduler closed the stream".into())),
                Err(status) if status.code() == tonic::Code::FailedPrecondition => {
                    return Err(Error::NoSource(status.message().to_owned()));
                }
                Err(status) => return Err(Error::SchedulerLost(status.to_string())),
            },
            Some(done) = jobs.join_next(), if !jobs.is_empty() => {
                let Ok(done) = done else { continue };
                state.in_flight.remove(&done.number);
                if let Some(n) = state.parent_load.get_mut(&done.parent) { *n = n.saturating_sub(1); }
                match done.result {
                    Ok(cost) => {
                        tracing::debug!(piece = done.number, parent = %done.parent, ms = cost.as_millis() as u64, "piece from a parent");
                        let len = state.layout.and_then(|l| l.len_of(done.number)).unwrap_or(0);
                        inner.metrics.downloaded(TrafficType::RemotePeer, len);
                        state.finished_bytes += len;
                        reporter.send(ToScheduler::Pieces(vec![PieceDone {
                            number: done.number,
                            digest: None,
                            source: PieceSource::Parent(done.parent),
                            cost_micros: cost.as_micros() as u64,
                        }])).await?;
                        let _ = events.try_send(Event::Progress {
                            finished_bytes: state.finished_bytes,
                            finished_pieces: task.finished().len(),
                        });
                    }
                    Err(Failure::Busy) => {
                        state.parent_busy.insert(done.parent, Instant::now() + PARENT_BUSY_RETRY);
                    }
                    Err(Failure::Local) => {
                        state.retry_at.insert(done.number, Instant::now() + BUSY_RETRY);
                    }
                    Err(Failure::Parent(problem)) => {
                        tracing::warn!(task_id = %req.task_id, parent = %done.parent, piece = done.number, ?problem, "piece fetch failed");
                        let reason = match problem {
                            ParentProblem::Unreachable => PieceFailure::Unreachable,
                            ParentProblem::Corrupt => PieceFailure::Corrupt,
                            ParentProblem::Missing => PieceFailure::Missing,
                        };
                        inner.metrics.piece_failures.get_or_create(&PieceFailureLabels { reason }).inc();
                        if problem != ParentProblem::Missing {
                            state.blocked.insert(done.parent.clone());
                        }
                        reporter.send(ToScheduler::ParentFailed { parent: done.parent, piece: done.number, problem }).await?;
                    }
                }
            }
            Some(done) = origin_jobs.join_next(), if !origin_jobs.is_empty() => {
                let Ok(done) = done else { continue };
                state.origin_in_flight.remove(&done.number);
                match done.result {
                    Ok((digest, cost)) => {
                        let len = state.layout.and_then(|l| l.len_of(done.number)).unwrap_or(0);
                        state.finished_bytes += len;
                        state.digests.insert(done.number, digest);
                        reporter.send(ToScheduler::Pieces(vec![PieceDone {
                            number: done.number,
                            digest: Some(digest),
                            source: PieceSource::Origin { content: None },
                            cost_micros: cost.as_micros() as u64,
                        }])).await?;
                        let _ = events.try_send(Event::Progress {
                            finished_bytes: state.finished_bytes,
                            finished_pieces: task.finished().len(),
                        });
                    }
                    Err(e) => {
                        tracing::warn!(task_id = %req.task_id, piece = done.number, error = %e, "piece from the origin failed");
                        jobs.shutdown().await;
                        origin_jobs.shutdown().await;
                        drop(reporter);
                        let _ = stream.finish(ToScheduler::Failed(e.to_string())).await;
                        return Err(e);
                    }
                }
            }
            _ = tick.tick() => {}
        }
    }
}

/// What the loop knows about the task and its parents.
struct State {
    task: Arc<TaskStore>,
    layout: Option<PieceLayout>,
    digests: HashMap<u32, [u8; 32]>,
    parents: Vec<Parent>,
    blocked: HashSet<PeerId>,
    in_flight: HashSet<u32>,
    parent_load: HashMap<PeerId, usize>,
    /// Pieces held by a local writer, and when to try again.
    retry_at: HashMap<u32, Instant>,
    /// Parents that answered `Busy`, and when to ask them again.
    parent_busy: HashMap<PeerId, Instant>,
    /// Pieces the scheduler handed to this peer to fetch from the origin, not started yet.
    origin_queue: std::collections::VecDeque<u32>,
    /// Pieces being fetched from the origin now.
    origin_in_flight: HashSet<u32>,
    finished_bytes: u64,
}

impl State {
    fn new(task: Arc<TaskStore>, layout: Option<PieceLayout>) -> Self {
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
            origin_queue: std::collections::VecDeque::new(),
            origin_in_flight: HashSet::new(),
            finished_bytes: 0,
        }
    }

    fn apply(
        &mut self,
        content_length: Option<u64>,
        piece_length: Option<u64>,
        digests: Vec<(u32, [u8; 32])>,
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
    async fn take_inline(&mut self, bytes: Vec<u8>, task_id: &str) -> Result<Option<u64>, Error> {
        let (Some(layout), Some(digest)) =
            (self.layout.filter(PieceLayout::travels_inline), self.digests.get(&0).copied())
        else {
            tracing::warn!(task_id, "tiny content without a tiny layout and digest; ignored");
            return Ok(None);
        };
        if self.task.finished().contains(0) || self.in_flight.contains(&0) || self.origin_in_flight.contains(&0) {
            return Ok(None);
        }
        if bytes.len() as u64 != layout.content_length || blake3::hash(&bytes).as_bytes() != &digest {
            tracing::warn!(task_id, len = bytes.len(), "tiny content does not match piece 0's digest; ignored");
            return Ok(None);
        }
        let task = self.task.clone();
        tokio::task::spawn_blocking(move || task.write_piece(0, &bytes, &hex::encode(digest)))
            .await
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
        self.finished_bytes += layout.content_length;
        Ok(Some(layout.content_length))
    }

    /// Starts fetches until the concurrency limit: rarest piece first, least-loaded parent.
    /// Pieces other peers can serve come first; a seed peer is asked only for pieces no other
    /// parent has, so its upload goes to new pieces instead of copies the swarm already holds.
    fn schedule(&mut self, inner: &Inner, jobs: &mut JoinSet<Fetched>, pool: &Pool, task_id: &str) {
        let Some(layout) = self.layout else { return };
        let finished = self.task.finished();
        let mut rng = rand::rng();
        while self.in_flight.len() < inner.config.concurrency {
            let choice =
                self.pick(&finished, layout, false, &mut rng).or_else(|| self.pick(&finished, layout, true, &mut rng));
            let Some((n, parent)) = choice else { return };
            let (Some(expected_len), Some(digest)) = (layout.len_of(n), self.digests.get(&n).copied()) else { return };
            self.in_flight.insert(n);
            *self.parent_load.entry(parent.peer_id.clone()).or_default() += 1;
            let (pool, task, task_id) = (pool.clone(), self.task.clone(), task_id.to_owned());
            let limiter = inner.download_limiter.clone();
            jobs.spawn(fetch_piece(pool, limiter, task, task_id, parent, n, expected_len, digest));
        }
    }

    /// Starts the origin fetches the scheduler handed out, up to the back-to-source concurrency.
    fn schedule_origin(&mut self, inner: &Inner, jobs: &mut JoinSet<FromOrigin>, req: &TaskRequest) {
        let Some(layout) = self.layout else { return };
        let finished = self.task.finished();
        while self.origin_in_flight.len() < inner.config.back_to_source_concurrency {
            let Some(n) = self.origin_queue.pop_front() else { return };
            if finished.contains(n) || self.in_flight.contains(&n) || self.origin_in_flight.contains(&n) {
                continue;
            }
            self.origin_in_flight.insert(n);
            let (http, limits, task, req) =
                (inner.http.clone(), origin::inner_limits(inner), self.task.clone(), req.clone());
            jobs.spawn(async move {
                let started = Instant::now();
                let result = origin::fetch_range(&http, &limits, &task, &req, layout, n).await;
                FromOrigin { number: n, result: result.map(|d| (d, started.elapsed())) }
            });
        }
    }

    /// The rarest wanted piece that a free parent of the given kind (seed or not) can serve, with
    /// the least-loaded such parent. For seeds, only pieces no unblocked non-seed parent holds.
    fn pick(
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

#[allow(clippy::too_many_arguments)]
async fn fetch_piece(
    pool: Pool,
    limiter: Arc<RateLimiter>,
    task: Arc<TaskStore>,
    task_id: String,
    parent: Parent,
    number: u32,
    expected_len: u64,
    digest: [u8; 32],
) -> Fetched {
    let started = Instant::now();
    limiter.acquire(expected_len).await;
    let from = parent.peer_id.clone();
    let result = tokio::task::spawn_blocking(move || {
        receive_piece(&pool, &task, &task_id, &parent, number, expected_len, &digest).map(|()| started.elapsed())
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
    digest: &[u8; 32],
) -> Result<(), Failure> {
    // Another writer (a download of this task that was given up) still holds the piece, or it
    // just finished: try again shortly. A content file that cannot be opened fails like a
    // write would.
    let mut writer = match task.piece_writer(number) {
        Ok(Some(writer)) => writer,
        Ok(None) => return Err(Failure::Local),
        Err(_) => return Err(Failure::Parent(ParentProblem::Unreachable)),
    };
    let conn = pool.lock().unwrap_or_else(|p| p.into_inner()).get_mut(&parent.peer_id).and_then(Vec::pop);
    let mut conn = match conn {
        Some(c) => c,
        None => PieceConnection::connect(parent.addr).map_err(|_| Failure::Parent(ParentProblem::Unreachable))?,
    };
    let mut hasher = blake3::Hasher::new();
    let fetched = conn.fetch_piece(task_id, number, expected_len, |chunk| {
        hasher.update(chunk);
        writer.write(chunk)
    });
    if matches!(fetched, Ok(()) | Err(FetchError::Busy | FetchError::NotFound)) {
        pool.lock().unwrap_or_else(|p| p.into_inner()).entry(parent.peer_id.clone()).or_default().push(conn);
    }
    fetched.map_err(|e| match e {
        FetchError::Busy => Failure::Busy,
        FetchError::NotFound => Failure::Parent(ParentProblem::Missing),
        FetchError::Unreachable(_) | FetchError::Remote(_) | FetchError::Local(_) => {
            Failure::Parent(ParentProblem::Unreachable)
        }
    })?;
    if hasher.finalize().as_bytes() != digest {
        return Err(Failure::Parent(ParentProblem::Corrupt));
    }
    writer.finish(&hex::encode(digest)).map_err(|_| Failure::Parent(ParentProblem::Unreachable))
}

fn uuid_like() -> String {
    let mut rng = rand::rng();
    format!("{:016x}", rng.random::<u64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::Storage;
    use common::{bitmap::PieceBitmap, ids::TaskId};

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
        let digest = *blake3::hash(&bytes).as_bytes();
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
        assert_eq!(task.digest(0), Some(hex::encode(digest)));
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
        let digests = (0..16).map(|n| (n, [n as u8; 32])).collect();
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
        state.apply(Some(129), Some(1024), vec![(0, *blake3::hash(&bytes).as_bytes())], vec![])?;
        assert_eq!(state.take_inline(bytes, "t").await?, None);
        assert!(!task.finished().contains(0));
        Ok(())
    }
}
