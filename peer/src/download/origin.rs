//! Back-to-source: pieces from the origin, each hashed (BLAKE3), stored and, when a scheduler
//! stream is open, reported with its digest at once, so other peers can fetch it from here while
//! the rest still arrives.
//!
//! When the origin announces its length and byte ranges (a HEAD answers `Accept-Ranges: bytes`),
//! several workers fetch pieces with `Range` requests at once ([`ranged`]): one slow TCP stream no
//! longer bounds the whole task. Otherwise one GET is cut into pieces as its body streams in.
//!
//! Origins misbehave, and no misbehaviour may become a piece ([`answer`] checks each answer
//! before its body is read): a `206` to a GET without `Range` is refused; an origin that ignores
//! `Range` (a `200`) is read whole once and the pieces are cut from that body; one that answers
//! another range than asked is read whole with one GET; a body shorter than its
//! `Content-Length` fails the download, keeping only the whole pieces before the cut (a piece
//! counts only at its full length, see `storage::PieceWriter::finish`).
//!
//! Content that is one tiny piece (at most 128 bytes) is reported with its bytes: the scheduler
//! hands them to the other peers in its own messages, so none of them opens a piece connection
//! for so few bytes.
//!
//! Every request goes through [`send_with_retries`], with the client [`OriginClients`] picks for
//! the request's [`Requester`]: a fetch on someone else's behalf is held to the
//! [`TargetPolicy`] ([`guard`]), and a refusal is final.

mod answer;
mod guard;
mod ranged;

pub use guard::{
    AddressClass, HostPatterns, OriginClients, Refusal, Requester, ResolveError, TargetPolicy, classify, refusal_in,
};

pub(super) use ranged::{Limits, fetch_piece as fetch_range, inner_limits, plan as probe_ranges};

use std::{sync::Arc, time::Duration};

use common::{
    digest::PieceDigest,
    piece::{MIN_PIECE_LENGTH, PieceLayout, default_piece_length},
};
use futures::StreamExt;

use super::{Event, EventSink, Inner, TaskRequest};
use crate::{
    Error,
    rpc::scheduler::{PieceReport, PieceSource, Reporter, ToScheduler},
    storage::TaskStore,
};

/// How often the origin is tried before the download fails.
const ORIGIN_ATTEMPTS: u32 = 3;

/// Fetches the whole content from the origin into `task`.
pub(super) async fn fetch(
    inner: &Inner,
    task: &Arc<TaskStore>,
    req: &TaskRequest,
    reporter: Option<&Reporter>,
    events: &EventSink,
) -> Result<(), Error> {
    if inner.config.back_to_source_concurrency > 1
        && let Some(layout) = ranged::plan(inner, task, req).await
    {
        return ranged::fetch(inner, task, req, layout, reporter, events).await;
    }
    whole(inner, task, req, reporter, events, false).await
}

/// Fetches the content with one GET without `Range` and cuts it into pieces ([`stream`]); an
/// answer that is not the whole content (a `206` for part of it) is refused before anything is
/// stored.
async fn whole(
    inner: &Inner,
    task: &Arc<TaskStore>,
    req: &TaskRequest,
    reporter: Option<&Reporter>,
    events: &EventSink,
    announced: bool,
) -> Result<(), Error> {
    let response = fetch_with_retries(&inner.http, req).await?;
    answer::check_whole(response.status(), response.headers())
        .map_err(|why| Error::OriginUnavailable { url: req.url.to_string(), reason: why.0 })?;
    stream(inner, task, req, response, reporter, events, announced).await
}

/// Cuts a whole-content answer into pieces as its body streams in, storing and reporting each;
/// pieces already in place (fetched by range before the origin showed its ranges could not be
/// used) are not stored again, but must hash as before. `announced`: the size was already told
/// to the scheduler and the listener.
async fn stream(
    inner: &Inner,
    task: &Arc<TaskStore>,
    req: &TaskRequest,
    response: reqwest::Response,
    reporter: Option<&Reporter>,
    events: &EventSink,
    announced: bool,
) -> Result<(), Error> {
    let content_length = response.content_length();
    let piece_length = req
        .piece_length
        .or(task.layout().map(|l| l.piece_length))
        .unwrap_or_else(|| content_length.map(default_piece_length).unwrap_or(MIN_PIECE_LENGTH));
    if let Some(len) = content_length {
        let layout = PieceLayout::new(len, piece_length).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        task.set_layout(layout)?;
    }
    if !announced {
        if let Some(r) = reporter {
            r.send(ToScheduler::ContentInfo { content_length, piece_length, ranges: false }).await?;
        }
        events.send(Event::Started { task_id: req.task_id.clone(), content_length, piece_length }).await;
    }

    let mut body = response.bytes_stream();
    // Grows as bytes arrive: an origin may send fewer than the piece length.
    let mut buf: Vec<u8> = Vec::with_capacity(piece_length.min(4 << 20) as usize);
    let mut number = 0u32;
    let mut written = 0u64;
    let mut unsized_digests = Vec::new();
    let mut started = tokio::time::Instant::now();
    loop {
        let chunk = match body.next().await {
            Some(Ok(chunk)) => Some(chunk),
            Some(Err(e)) => {
                return Err(Error::OriginUnavailable {
                    url: req.url.to_string(),
                    reason: format!("body interrupted after {} bytes: {e}", written + buf.len() as u64),
                });
            }
            None => None,
        };
        let end = chunk.is_none();
        if let Some(chunk) = chunk {
            inner.source_limiter.acquire(chunk.len() as u64).await;
            inner.metrics.downloaded(crate::metrics::TrafficType::BackToSource, chunk.len() as u64);
            let mut rest: &[u8] = &chunk;
            while !rest.is_empty() {
                let take = rest.len().min(piece_length as usize - buf.len());
                buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buf.len() as u64 == piece_length {
                    let known = content_length.and(task.digest(number));
                    let digest = store_piece(task, number, written, &buf, content_length.is_some()).await?;
                    if let Some(known) = known {
                        same_piece(number, known, digest)?;
                        written += buf.len() as u64;
                        buf.clear();
                        number += 1;
                        continue;
                    }
                    let tiny = tiny_bytes(task, &buf);
                    written += buf.len() as u64;
                    buf.clear();
                    let done = Done { number, digest, tiny, written };
                    report(reporter, events, task, done, &mut started, &mut unsized_digests).await?;
                    number += 1;
                }
            }
        }
        if end {
            break;
        }
    }
    if !buf.is_empty() {
        let known = content_length.and(task.digest(number));
        let digest = store_piece(task, number, written, &buf, content_length.is_some()).await?;
        let tiny = tiny_bytes(task, &buf);
        written += buf.len() as u64;
        match known {
            Some(known) => same_piece(number, known, digest)?,
            None => {
                let done = Done { number, digest, tiny, written };
                report(reporter, events, task, done, &mut started, &mut unsized_digests).await?;
            }
        }
    }
    match content_length {
        Some(expected) if expected != written => {
            return Err(Error::Integrity(format!("origin announced {expected} bytes but sent {written}")));
        }
        Some(_) => {}
        None => {
            // Now the size is known: fix the layout, mark the pieces, tell the scheduler.
            let layout = PieceLayout::new(written, piece_length).map_err(|e| Error::InvalidRequest(e.to_string()))?;
            task.set_layout(layout)?;
            for (n, digest) in &unsized_digests {
                task.mark_finished(*n, *digest);
            }
            if let Some(r) = reporter {
                r.send(ToScheduler::ContentInfo { content_length: Some(written), piece_length, ranges: false }).await?;
                // Only now is the content known to be tiny; its one piece is still in `buf`.
                let tiny = tiny_bytes(task, &buf);
                let pieces = unsized_digests
                    .iter()
                    .map(|(n, d)| PieceReport {
                        number: *n,
                        digest: Some(*d),
                        source: PieceSource::Origin { content: tiny.clone() },
                        cost_micros: 0,
                    })
                    .collect();
                r.send(ToScheduler::Pieces(pieces)).await?;
            }
        }
    }
    Ok(())
}

/// A piece already in place must be what the origin sends now.
fn same_piece(n: u32, known: PieceDigest, now: PieceDigest) -> Result<(), Error> {
    if known == now {
        Ok(())
    } else {
        Err(Error::Integrity(format!("piece {n} changed at the origin while it was fetched")))
    }
}

async fn store_piece(
    task: &Arc<TaskStore>,
    n: u32,
    offset: u64,
    bytes: &[u8],
    sized: bool,
) -> Result<PieceDigest, Error> {
    let digest = PieceDigest(*blake3::hash(bytes).as_bytes());
    let (task, bytes) = (task.clone(), bytes.to_vec());
    tokio::task::spawn_blocking(move || {
        if sized { task.write_piece(n, &bytes, digest) } else { task.write_raw(offset, &bytes) }
    })
    .await
    .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    Ok(digest)
}

/// The piece's bytes, when the layout is known and they are the whole (tiny) content.
fn tiny_bytes(task: &TaskStore, piece: &[u8]) -> Option<Vec<u8>> {
    task.layout().filter(|l| l.travels_inline() && l.content_length == piece.len() as u64).map(|_| piece.to_vec())
}

/// A piece just stored: its number, BLAKE3, tiny bytes, and the bytes stored so far.
struct Done {
    number: u32,
    digest: PieceDigest,
    tiny: Option<Vec<u8>>,
    written: u64,
}

async fn report(
    reporter: Option<&Reporter>,
    events: &EventSink,
    task: &TaskStore,
    done: Done,
    started: &mut tokio::time::Instant,
    unsized_digests: &mut Vec<(u32, PieceDigest)>,
) -> Result<(), Error> {
    let Done { number, digest, tiny, written } = done;
    let cost_micros = started.elapsed().as_micros() as u64;
    *started = tokio::time::Instant::now();
    if task.layout().is_none() {
        unsized_digests.push((number, digest));
    } else if let Some(r) = reporter {
        let source = PieceSource::Origin { content: tiny };
        r.send(ToScheduler::Pieces(vec![PieceReport { number, digest: Some(digest), source, cost_micros }])).await?;
    }
    events.try_send(Event::Progress { finished_bytes: written, finished_pieces: number + 1 });
    Ok(())
}

async fn fetch_with_retries(client: &OriginClients, req: &TaskRequest) -> Result<reqwest::Response, Error> {
    send_with_retries(client, req, reqwest::Method::GET, None).await
}

/// Sends a request for the task's URL with its headers (and a byte range, inclusive), retrying
/// 5xx answers and connection errors; other failures, and a target the policy refuses, are final.
pub(super) async fn send_with_retries(
    clients: &OriginClients,
    req: &TaskRequest,
    method: reqwest::Method,
    range: Option<(u64, u64)>,
) -> Result<reqwest::Response, Error> {
    let refused = |r: &Refusal| {
        tracing::warn!(url = %req.url, task_id = %req.task_id, refusal = %r, "origin target refused");
        Error::TargetRefused(r.to_string())
    };
    let client = clients.for_request(req.requester, &req.url).map_err(|r| refused(&r))?;
    let mut last = String::new();
    for attempt in 1..=ORIGIN_ATTEMPTS {
        let mut builder = client.request(method.clone(), req.url.clone());
        for (name, value) in &req.headers {
            builder = builder.header(name, value);
        }
        if let Some((start, end)) = range {
            builder = builder.header(reqwest::header::RANGE, format!("bytes={start}-{end}"));
        }
        match builder.send().await {
            Ok(resp) if resp.status().is_success() => return Ok(resp),
            Ok(resp) if resp.status().is_server_error() => last = format!("answered {}", resp.status()),
            Ok(resp) => {
                return Err(Error::OriginRejected { status: resp.status().as_u16(), url: req.url.to_string() });
            }
            Err(e) => match refusal_in(&e) {
                Some(r) => return Err(refused(r)),
                None => last = e.to_string(),
            },
        }
        tracing::warn!(url = %req.url, attempt, reason = %last, "origin attempt failed");
        if attempt < ORIGIN_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }
    Err(Error::OriginUnavailable {
        url: req.url.to_string(),
        reason: format!("{last} (after {ORIGIN_ATTEMPTS} attempts)"),
    })
}
