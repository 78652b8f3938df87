//! Concurrent back-to-source by piece ranges.

use std::sync::{
    Arc,
    atomic::{AtomicU32, AtomicU64, Ordering},
};

use common::{
    digest::PieceDigest,
    piece::{PieceLayout, default_piece_length},
};
use tokio::task::JoinSet;

use super::{Event, EventSink, Inner, OriginClients, TaskRequest, send_with_retries};
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

/// Fetches every missing piece of `layout` with range requests, several at once.
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
    while let Some(joined) = set.join_next().await {
        let result = joined.map_err(|e| Error::Io(std::io::Error::other(e)))?;
        if let Err(e) = result {
            set.shutdown().await;
            return Err(e);
        }
    }
    Ok(())
}

/// Fetches piece `n` with one range request, stores it and answers its BLAKE3.
pub(crate) async fn fetch_piece(
    http: &OriginClients,
    limits: &Limits,
    task: &Arc<TaskStore>,
    req: &TaskRequest,
    layout: PieceLayout,
    n: u32,
) -> Result<PieceDigest, Error> {
    let range = layout
        .range(n)
        .ok_or_else(|| Error::Integrity(format!("piece {n} is beyond the content ({} pieces)", layout.count())))?;
    let len = range.end - range.start;
    limits.source.acquire(len).await;
    let resp = send_with_retries(http, req, reqwest::Method::GET, Some((range.start, range.end - 1))).await?;
    if resp.status() != reqwest::StatusCode::PARTIAL_CONTENT {
        return Err(Error::OriginUnavailable {
            url: req.url.to_string(),
            reason: format!("asked for a byte range, got {}", resp.status()),
        });
    }
    let bytes = resp.bytes().await.map_err(|e| Error::OriginUnavailable {
        url: req.url.to_string(),
        reason: format!("piece {n} interrupted: {e}"),
    })?;
    if bytes.len() as u64 != len {
        return Err(Error::Integrity(format!("piece {n}: origin sent {} bytes of {len}", bytes.len())));
    }
    limits.metrics.downloaded(TrafficType::BackToSource, len);
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
    /// Takes the next unfetched piece until none is left.
    async fn run_with(self, limits: Limits) -> Result<(), Error> {
        loop {
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            if n >= self.layout.count() {
                return Ok(());
            }
            if self.task.finished().contains(n) {
                continue;
            }
            let Some(len) = self.layout.len_of(n) else { return Ok(()) };
            let started = std::time::Instant::now();
            let digest = fetch_piece(&self.http, &limits, &self.task, &self.req, self.layout, n).await?;
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
