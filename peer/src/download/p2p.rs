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
//!
//! Shape: [`Download::drive`] is one loop (start fetches, then take the next message, finished
//! fetch or tick) over methods of the download; every piece is counted and reported by
//! [`Download::piece_done`], and every way out goes through [`Download::close`]. [`State`]
//! (`state`) holds what is known and picks the next piece; `fetch` runs one piece's fetch. The
//! scheduler's stream speaks the peer's own types and [`Error`]s (`crate::rpc::scheduler`): no
//! gRPC status reaches this module.

mod fetch;
mod state;

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use common::ids::PeerId;
use rand::Rng;
use tokio::task::JoinSet;

use self::{
    fetch::{Failure, Fetched, FromOrigin, Pool},
    state::State,
};
use super::{Event, EventSink, Inner, TaskRequest, origin};
use crate::{
    Error,
    metrics::{PieceFailure, PieceFailureLabels, TrafficType},
    rpc::{
        scheduler::{
            FromScheduler, ParentProblem, PeerStream, PieceReport, PieceSource, Registration, Reporter, ToScheduler,
        },
        scheduler_set::SchedulerSet,
    },
    storage::TaskStore,
};

/// How long a piece still held by a local writer waits before it is tried again.
const BUSY_RETRY: Duration = Duration::from_millis(40);

/// How long a parent that answered `Busy` is left alone. Its queue is full, and it sends one
/// piece at a time, so it stays full for about a piece's transfer; asking sooner only costs
/// both sides a round trip (with 16 children, thousands a second).
const PARENT_BUSY_RETRY: Duration = Duration::from_millis(150);

/// How often the loop wakes without news, so pieces and parents whose wait
/// ([`BUSY_RETRY`], [`PARENT_BUSY_RETRY`]) is over are scheduled again.
const TICK: Duration = Duration::from_millis(50);

/// Runs the download through the scheduler at `addr`. `Err(SchedulerLost)` tells the caller to
/// fall back.
pub(super) async fn run(
    inner: &Inner,
    task: &Arc<TaskStore>,
    req: &TaskRequest,
    schedulers: &SchedulerSet,
    addr: SocketAddr,
    events: &EventSink,
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
        filtered_query_params: req.filtered_query_params.clone(),
        blob_digest: req.blob_digest,
    };
    let mut stream = PeerStream::open(schedulers, addr, registration).await?;
    let mut download = Download {
        inner,
        task,
        req,
        events,
        reporter: stream.reporter(),
        state: State::new(task.clone(), task.layout()),
        pool: Pool::new(inner.config.dialer.clone()),
        jobs: JoinSet::new(),
        origin_jobs: JoinSet::new(),
        announced_start: false,
    };
    tracing::info!(task_id = %req.task_id, peer_id = %peer_id, "registered with the scheduler");
    let end = download.drive(&mut stream).await;
    download.close(stream, end).await
}

/// One download through the scheduler: what it knows ([`State`]) and what it has running.
struct Download<'a> {
    inner: &'a Inner,
    task: &'a Arc<TaskStore>,
    req: &'a TaskRequest,
    events: &'a EventSink,
    /// Reports to the scheduler; dropped before the last report so the stream can close.
    reporter: Reporter,
    state: State,
    /// Idle piece connections, per parent.
    pool: Pool,
    /// Pieces being fetched from parents.
    jobs: JoinSet<Fetched>,
    /// Pieces being fetched from the origin, as the scheduler handed them out.
    origin_jobs: JoinSet<FromOrigin>,
    /// `Started` was sent.
    announced_start: bool,
}

/// How a download ends when it does not end with an error the scheduler need not hear about.
enum End {
    /// Every piece is in place and reported.
    Complete { content_length: u64 },
    /// Fetching from the origin failed: the scheduler hears why, then the error is returned.
    Failed(Error),
}

impl Download<'_> {
    /// Schedules fetches and handles whatever comes next (a message, a finished fetch, a tick)
    /// until the download ends. An `Err` ends it at once: the stream is gone or the task's
    /// state cannot be kept.
    async fn drive(&mut self, stream: &mut PeerStream) -> Result<End, Error> {
        let mut tick = tokio::time::interval(TICK);
        loop {
            if let Some(end) = self.check_complete().await {
                return Ok(end);
            }
            self.schedule();
            self.schedule_origin();
            let end = tokio::select! {
                msg = stream.next() => self.on_message(msg?).await?,
                Some(done) = self.jobs.join_next(), if !self.jobs.is_empty() => match done {
                    Ok(done) => self.on_piece(done).await?,
                    Err(_) => None,
                },
                Some(done) = self.origin_jobs.join_next(), if !self.origin_jobs.is_empty() => match done {
                    Ok(done) => self.on_origin_piece(done).await?,
                    Err(_) => None,
                },
                _ = tick.tick() => None,
            };
            if let Some(end) = end {
                return Ok(end);
            }
        }
    }

    /// Sends `Started` once the layout is known, and ends the download once every piece is in
    /// place and every fetch has been joined and reported: the scheduler must know each piece
    /// this peer holds, or children will never ask for it.
    async fn check_complete(&mut self) -> Option<End> {
        let layout = self.state.layout?;
        if !self.announced_start {
            self.announced_start = true;
            self.events.started(self.req, layout).await;
        }
        (self.task.is_complete() && self.jobs.is_empty() && self.origin_jobs.is_empty())
            .then_some(End::Complete { content_length: layout.content_length })
    }

    /// The one way out: the last report (when there is one to make), then the result.
    async fn close(self, stream: PeerStream, end: Result<End, Error>) -> Result<(), Error> {
        let Self { reporter, mut jobs, mut origin_jobs, req, .. } = self;
        match end {
            Ok(End::Complete { content_length }) => {
                drop(reporter);
                let closing = Instant::now();
                stream.finish(ToScheduler::Finished { content_length }).await?;
                tracing::info!(task_id = %req.task_id, close_ms = closing.elapsed().as_millis() as u64, "all pieces in place");
                Ok(())
            }
            Ok(End::Failed(e)) => {
                jobs.shutdown().await;
                origin_jobs.shutdown().await;
                drop(reporter);
                let _ = stream.finish(ToScheduler::Failed(e.to_string())).await;
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    /// Starts fetches until the concurrency limit: rarest piece first, least-loaded parent.
    /// Pieces other peers can serve come first; a seed peer is asked only for pieces no other
    /// parent has, so its upload goes to new pieces instead of copies the swarm already holds.
    fn schedule(&mut self) {
        let state = &mut self.state;
        let Some(layout) = state.layout else { return };
        let finished = state.task.finished();
        let mut rng = rand::rng();
        while state.in_flight.len() < self.inner.config.concurrency {
            let choice = state
                .pick(&finished, layout, false, &mut rng)
                .or_else(|| state.pick(&finished, layout, true, &mut rng));
            let Some((n, parent)) = choice else { return };
            let (Some(expected_len), Some(digest)) = (layout.len_of(n), state.digests.get(&n).copied()) else { return };
            state.in_flight.insert(n);
            *state.parent_load.entry(parent.peer_id.clone()).or_default() += 1;
            let (pool, task, task_id) = (self.pool.clone(), state.task.clone(), self.req.task_id.0.clone());
            let limiter = self.inner.download_limiter.clone();
            self.jobs.spawn(fetch::fetch_piece(pool, limiter, task, task_id, parent, n, expected_len, digest));
        }
    }

    /// Starts the origin fetches the scheduler handed out, up to the back-to-source concurrency.
    fn schedule_origin(&mut self) {
        let state = &mut self.state;
        let Some(layout) = state.layout else { return };
        let finished = state.task.finished();
        while state.origin_in_flight.len() < self.inner.config.back_to_source_concurrency {
            let Some(n) = state.origin_queue.pop_front() else { return };
            if finished.contains(n) || state.in_flight.contains(&n) || state.origin_in_flight.contains(&n) {
                continue;
            }
            state.origin_in_flight.insert(n);
            let (http, limits, task, req) =
                (self.inner.http.clone(), origin::inner_limits(self.inner), state.task.clone(), self.req.clone());
            self.origin_jobs.spawn(fetch::from_origin(http, limits, task, req, layout, n));
        }
    }

    /// A message from the scheduler.
    async fn on_message(&mut self, msg: FromScheduler) -> Result<Option<End>, Error> {
        match msg {
            FromScheduler::BackToSource(reason) => self.back_to_source(reason).await,
            FromScheduler::Update { content_length, piece_length, digests, parents, origin_pieces, tiny_content } => {
                self.state.apply(content_length, piece_length, digests, parents)?;
                self.state.origin_queue.extend(origin_pieces);
                // Taken before any fetch is scheduled, so no parent is connected for it.
                if let Some(bytes) = tiny_content
                    && let Some(len) = self.state.take_inline(bytes, &self.req.task_id.0).await?
                {
                    let done = PieceReport { number: 0, digest: None, source: PieceSource::Inline, cost_micros: 0 };
                    self.piece_done(done, len).await?;
                }
                Ok(None)
            }
        }
    }

    /// Told to go to the origin. An origin serving ranges: report its size and let the
    /// scheduler hand the pieces out (to this peer among others). Otherwise this peer streams
    /// the whole content, and the download ends with it.
    async fn back_to_source(&mut self, reason: String) -> Result<Option<End>, Error> {
        tracing::info!(task_id = %self.req.task_id, %reason, "fetching from the origin as told");
        if let Some(layout) = origin::probe_ranges(self.inner, self.task, self.req).await {
            if self.state.layout.is_none() {
                self.task.set_layout(layout)?;
                self.state.layout = Some(layout);
            }
            let info = ToScheduler::ContentInfo {
                content_length: Some(layout.content_length),
                piece_length: layout.piece_length,
                ranges: true,
            };
            self.reporter.send(info).await?;
            return Ok(None);
        }
        self.jobs.shutdown().await;
        self.origin_jobs.shutdown().await;
        Ok(Some(match origin::fetch(self.inner, self.task, self.req, Some(&self.reporter), self.events).await {
            Ok(()) => End::Complete { content_length: self.task.layout().map(|l| l.content_length).unwrap_or(0) },
            Err(e) => End::Failed(e),
        }))
    }

    /// A fetch from a parent ended.
    async fn on_piece(&mut self, done: Fetched) -> Result<Option<End>, Error> {
        self.state.in_flight.remove(&done.number);
        if let Some(n) = self.state.parent_load.get_mut(&done.parent) {
            *n = n.saturating_sub(1);
        }
        match done.result {
            Ok(cost) => {
                tracing::debug!(piece = done.number, parent = %done.parent, ms = cost.as_millis() as u64, "piece from a parent");
                let len = self.state.layout.and_then(|l| l.len_of(done.number)).unwrap_or(0);
                let source = PieceSource::Parent(done.parent);
                let done =
                    PieceReport { number: done.number, digest: None, source, cost_micros: cost.as_micros() as u64 };
                self.piece_done(done, len).await?;
            }
            Err(Failure::Busy) => {
                self.state.parent_busy.insert(done.parent, Instant::now() + PARENT_BUSY_RETRY);
            }
            Err(Failure::Local) => {
                self.state.retry_at.insert(done.number, Instant::now() + BUSY_RETRY);
            }
            Err(Failure::Parent(problem)) => {
                tracing::warn!(task_id = %self.req.task_id, parent = %done.parent, piece = done.number, ?problem, "piece fetch failed");
                let reason = match problem {
                    ParentProblem::Unreachable => PieceFailure::Unreachable,
                    ParentProblem::Corrupt => PieceFailure::Corrupt,
                    ParentProblem::Missing => PieceFailure::Missing,
                };
                self.inner.metrics.piece_failures.get_or_create(&PieceFailureLabels { reason }).inc();
                if problem != ParentProblem::Missing {
                    self.state.blocked.insert(done.parent.clone());
                }
                let failed = ToScheduler::ParentFailed { parent: done.parent, piece: done.number, problem };
                self.reporter.send(failed).await?;
            }
        }
        Ok(None)
    }

    /// A fetch from the origin ended; a failure ends the download.
    async fn on_origin_piece(&mut self, done: FromOrigin) -> Result<Option<End>, Error> {
        self.state.origin_in_flight.remove(&done.number);
        match done.result {
            Ok((digest, cost)) => {
                let len = self.state.layout.and_then(|l| l.len_of(done.number)).unwrap_or(0);
                self.state.digests.insert(done.number, digest);
                let source = PieceSource::Origin { content: None };
                let cost_micros = cost.as_micros() as u64;
                self.piece_done(PieceReport { number: done.number, digest: Some(digest), source, cost_micros }, len)
                    .await?;
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(task_id = %self.req.task_id, piece = done.number, error = %e, "piece from the origin failed");
                Ok(Some(End::Failed(e)))
            }
        }
    }

    /// A piece of `len` bytes is in place: counted (origin bytes were counted as they
    /// arrived), reported to the scheduler, and shown as progress.
    async fn piece_done(&mut self, done: PieceReport, len: u64) -> Result<(), Error> {
        match done.source {
            PieceSource::Parent(_) => self.inner.metrics.downloaded(TrafficType::RemotePeer, len),
            PieceSource::Inline => self.inner.metrics.downloaded(TrafficType::Inline, len),
            PieceSource::Origin { .. } => {}
        }
        self.state.finished_bytes += len;
        self.reporter.send(ToScheduler::Pieces(vec![done])).await?;
        self.events.try_send(Event::Progress {
            finished_bytes: self.state.finished_bytes,
            finished_pieces: self.task.finished().len(),
        });
        Ok(())
    }
}

fn uuid_like() -> String {
    let mut rng = rand::rng();
    format!("{:016x}", rng.random::<u64>())
}
