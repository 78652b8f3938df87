//! Concurrent back-to-source by piece ranges. Every answer is checked ([`super::answer`])
//! before its bytes become a piece; an origin whose ranges cannot be used is read whole once.

use std::sync::{
    Arc,
    atomic::{AtomicU32, AtomicU64, Ordering},
};

use common::{
    digest::PieceDigest,
    piece::{PieceLayout, default_piece_length},
};
use futures::StreamExt;
use tokio::task::JoinSet;

use super::{
    Event, EventSink, Inner, OriginClients, TaskRequest,
    answer::{Misbehaved, RangeAnswer, check_range},
    send_with_retries,
};
use crate::{
    Error,
    metrics::TrafficType,
    rpc::scheduler::{PieceReport, PieceSource, Reporter, ToScheduler},
    storage::TaskStore,
};

/// The layout to fetch by ranges, when a HEAD shows the origin can serve them and there is more
/// than one piece; `None` means: use one streaming GET.
pub(crate) async fn plan(inner: &Inner, task: &TaskStore, req: &TaskRequest) -> Option<PieceLayout> {
    let head = send_with_retries(&inner.http, req, reqwest::Method::HEAD, None).await.ok()?;
    let ranges = head
        .headers()
        .get(reqwest::header::ACCEPT_RANGES)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|u| u.trim().eq_ignore_ascii_case("bytes")));
    let length: u64 = head.headers().get(reqwest::header::CONTENT_LENGTH)?.to_str().ok()?.parse().ok()?;
    if !ranges {
        return None;
    }
    let piece_length =
        req.piece_length.or(task.layout().map(|l| l.piece_length)).unwrap_or(default_piece_length(length));
    PieceLayout::new(length, piece_length).ok().filter(|l| l.count() > 1)
}

/// Fetches every missing piece of `layout` with range requests, several at once. An origin that
/// answers a range request with anything but the range (see [`answer`](super::answer)) is read
/// whole instead, once: a `200` it already sent is streamed into the pieces still missing, and
/// after a wrong `206` one GET without `Range` is made.
pub(super) async fn fetch(
    inner: &Inner,
    task: &Arc<TaskStore>,
    req: &TaskRequest,
    layout: PieceLayout,
    reporter: Option<&Reporter>,
    events: &EventSink,
) -> Result<(), Error> {
    task.set_layout(layout)?;
    if let Some(r) = reporter {
        r.send(ToScheduler::ContentInfo {
            content_length: Some(layout.content_length),
            piece_length: layout.piece_length,
            ranges: false,
        })
        .await?;
    }
    events.started(req, layout).await;

    let next = Arc::new(AtomicU32::new(0));
    let done_bytes = Arc::new(AtomicU64::new(0));
    let workers = inner.config.back_to_source_concurrency.min(layout.count() as usize);
    let mut set = JoinSet::new();
    for _ in 0..workers {
        let ctx = Worker {
            http: inner.http.clone(),
            task: task.clone(),
            req: req.clone(),
            layout,
            reporter: reporter.cloned(),
            events: events.clone(),
            next: next.clone(),
            done_bytes: done_bytes.clone(),
        };
        set.spawn(ctx.run_with(inner_limits(inner)));
    }
    let mut fallback = None;
    while let Some(joined) = set.join_next().await {
        match joined.map_err(|e| Error::Io(std::io::Error::other(e)))? {
            Ok(None) => {}
            Ok(Some(f)) => {
                fallback = Some(f);
                break;
            }
            Err(e) => {
                set.shutdown().await;
                return Err(e);
            }
        }
    }
    set.shutdown().await;
    match fallback {
        None => Ok(()),
        Some(Fallback::Whole(response)) => {
            tracing::warn!(url = %req.url, task_id = %req.task_id, "origin ignores Range; cutting the pieces from its whole body");
            super::stream(inner, task, req, response, reporter, events, true).await
        }
        Some(Fallback::Refetch(why)) => {
            tracing::warn!(url = %req.url, task_id = %req.task_id, %why, "origin's ranges are wrong; fetching it whole");
            super::whole(inner, task, req, reporter, events, true).await
        }
    }
}

/// What a range request brought.
enum Piece {
    /// The piece, stored; its BLAKE3.
    Stored(PieceDigest),
    /// The origin ignored `Range`: its answer carries the whole content.
    Whole(reqwest::Response),
    /// The origin answered with another range, or none it would say.
    Misbehaved(Misbehaved),
}

/// Why a ranged fetch gives up on ranges for this task.
enum Fallback {
    /// Stream this `200` into the missing pieces.
    Whole(reqwest::Response),
    /// Make one GET without `Range`.
    Refetch(String),
}

/// Fetches piece `n` with one range request, stores it and answers its BLAKE3. An origin that
/// answers with its whole body has the piece cut from it (reading up to the piece's end); any
/// other answer than the range is an error and nothing is stored.
pub(crate) async fn fetch_piece(
    http: &OriginClients,
    limits: &Limits,
    task: &Arc<TaskStore>,
    req: &TaskRequest,
    layout: PieceLayout,
    n: u32,
) -> Result<PieceDigest, Error> {
    match request_piece(http, limits, task, req, layout, n).await? {
        Piece::Stored(digest) => Ok(digest),
        Piece::Whole(response) => {
            let range = piece_range(layout, n)?;
            tracing::warn!(url = %req.url, piece = n, "origin ignores Range; cutting the piece from its whole body");
            let bytes = read_slice(limits, req, response, range.start, range.end - range.start, n).await?;
            store(task, n, bytes).await
        }
        Piece::Misbehaved(why) => Err(misbehaved(req, why)),
    }
}

fn misbehaved(req: &TaskRequest, why: Misbehaved) -> Error {
    Error::OriginUnavailable { url: req.url.to_string(), reason: why.0 }
}

fn piece_range(layout: PieceLayout, n: u32) -> Result<std::ops::Range<u64>, Error> {
    layout
        .range(n)
        .ok_or_else(|| Error::Integrity(format!("piece {n} is beyond the content ({} pieces)", layout.count())))
}

/// Asks for piece `n` by range; stores it when the answer is the range (or covers it).
async fn request_piece(
    http: &OriginClients,
    limits: &Limits,
    task: &Arc<TaskStore>,
    req: &TaskRequest,
    layout: PieceLayout,
    n: u32,
) -> Result<Piece, Error> {
    let range = piece_range(layout, n)?;
    let len = range.end - range.start;
    limits.source.acquire(len).await;
    let resp = send_with_retries(http, req, reqwest::Method::GET, Some((range.start, range.end - 1))).await?;
    let body_start = match check_range(resp.status(), resp.headers(), &range, layout.content_length) {
        Ok(RangeAnswer::Covering { body_start }) => body_start,
        Ok(RangeAnswer::Whole) => return Ok(Piece::Whole(resp)),
        Err(why) => return Ok(Piece::Misbehaved(why)),
    };
    let bytes = read_slice(limits, req, resp, range.start - body_start, len, n).await?;
    Ok(Piece::Stored(store(task, n, bytes).await?))
}

/// Reads `len` bytes of `resp`'s body after skipping `skip`, then lets the rest go; a body that
/// ends first is an error.
async fn read_slice(
    limits: &Limits,
    req: &TaskRequest,
    resp: reqwest::Response,
    mut skip: u64,
    len: u64,
    n: u32,
) -> Result<Vec<u8>, Error> {
    let mut body = resp.bytes_stream();
    let mut bytes = Vec::with_capacity(len.min(64 << 20) as usize);
    while (bytes.len() as u64) < len {
        let chunk = match body.next().await {
            Some(Ok(chunk)) => chunk,
            Some(Err(e)) => {
                return Err(Error::OriginUnavailable {
                    url: req.url.to_string(),
                    reason: format!("piece {n} interrupted after {} of {len} bytes: {e}", bytes.len()),
                });
            }
            None => {
                return Err(Error::Integrity(format!("piece {n}: origin sent {} bytes of {len}", bytes.len())));
            }
        };
        limits.metrics.downloaded(TrafficType::BackToSource, chunk.len() as u64);
        let mut rest: &[u8] = &chunk;
        let skipped = skip.min(rest.len() as u64);
        rest = &rest[skipped as usize..];
        skip -= skipped;
        let take = rest.len().min((len - bytes.len() as u64) as usize);
        bytes.extend_from_slice(&rest[..take]);
    }
    Ok(bytes)
}

/// Hashes and stores piece `n`.
async fn store(task: &Arc<TaskStore>, n: u32, bytes: Vec<u8>) -> Result<PieceDigest, Error> {
    let digest = PieceDigest(*blake3::hash(&bytes).as_bytes());
    let task = task.clone();
    tokio::task::spawn_blocking(move || task.write_piece(n, &bytes, digest))
        .await
        .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    Ok(digest)
}

/// What a worker needs from the downloader, detached from its lifetime.
#[derive(Clone)]
pub(crate) struct Limits {
    source: Arc<crate::limiter::RateLimiter>,
    metrics: Arc<crate::metrics::Metrics>,
}

pub(crate) fn inner_limits(inner: &Inner) -> Limits {
    Limits { source: inner.source_limiter.clone(), metrics: inner.metrics.clone() }
}

struct Worker {
    http: OriginClients,
    task: Arc<TaskStore>,
    req: TaskRequest,
    layout: PieceLayout,
    reporter: Option<Reporter>,
    events: EventSink,
    next: Arc<AtomicU32>,
    done_bytes: Arc<AtomicU64>,
}

impl Worker {
    /// Takes the next unfetched piece until none is left, or until the origin shows that its
    /// ranges cannot be used.
    async fn run_with(self, limits: Limits) -> Result<Option<Fallback>, Error> {
        loop {
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            if n >= self.layout.count() {
                return Ok(None);
            }
            if self.task.finished().contains(n) {
                continue;
            }
            let Some(len) = self.layout.len_of(n) else { return Ok(None) };
            let started = std::time::Instant::now();
            let digest = match request_piece(&self.http, &limits, &self.task, &self.req, self.layout, n).await? {
                Piece::Stored(digest) => digest,
                Piece::Whole(response) => return Ok(Some(Fallback::Whole(response))),
                Piece::Misbehaved(why) => return Ok(Some(Fallback::Refetch(why.0))),
            };
            if let Some(r) = &self.reporter {
                let cost_micros = started.elapsed().as_micros() as u64;
                r.send(ToScheduler::Pieces(vec![PieceReport {
                    number: n,
                    digest: Some(digest),
                    // One-piece content never goes by ranges ([`plan`]), so never tiny bytes.
                    source: PieceSource::Origin { content: None },
                    cost_micros,
                }]))
                .await?;
            }
            let finished_bytes = self.done_bytes.fetch_add(len, Ordering::SeqCst) + len;
            self.events.try_send(Event::Progress { finished_bytes, finished_pieces: self.task.finished().len() });
        }
    }
}
