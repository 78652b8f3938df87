//! Answering a `Range` request from the P2P network without waiting for the whole task: the
//! task is fetched in the background (on through its last piece, for the next reader), and the
//! answer starts as soon as the first piece covering the range is verified, each later piece
//! streamed as it lands. Lazy loaders (a snapshotter reading a layer's index, a model reader
//! after one tensor) get their bytes after a piece's time, not a blob's.
//!
//! What a client gets, by RFC 9110 §14: one `bytes=` range is answered `206` with exactly it;
//! several are answered with one `206` of the range covering all the satisfiable ones (a
//! single-part answer whose `Content-Range` says what it holds; no multipart bodies); none
//! satisfiable is `416` with `Content-Range: bytes */<length>`; a header in another unit or
//! that does not parse is ignored (the whole content, `200`, by the caller).
//!
//! A download that fails before the first piece is the usual error answer; one that fails later
//! aborts the connection, so the client sees a body shorter than its `Content-Length` (an error),
//! never short data as a success. A blob URL's digest is checked over the whole content when the
//! task completes; content that does not match leaves the cache (bytes already sent were each
//! verified against the piece digests of the origin fetcher, which the digest check cannot undo).

use std::{ops::RangeInclusive, os::unix::fs::FileExt, sync::Arc};

use axum::{
    body::{Body, Bytes},
    http::{StatusCode, header},
    response::Response,
};
use common::digest::Digest;
use tokio::sync::{mpsc, oneshot, watch};

use super::{ErrorType, download_error, error, header_value};
use crate::{
    Error,
    download::{Downloader, EventSink, TaskRequest, verify_whole},
    storage::TaskStore,
};

/// Bytes read from the content file per chunk of the answer.
const CHUNK: u64 = 256 * 1024;

/// The `bytes=` ranges of a `Range` header, before the content length is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ByteRanges(Vec<Spec>);

/// One range as written: `a-b`, `a-`, or `-n` (the last `n` bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spec {
    From { start: u64, end: Option<u64> },
    Suffix(u64),
}

impl ByteRanges {
    /// The ranges of `header`; `None` when it is not a `bytes=` list that parses (the header
    /// is then ignored, as RFC 9110 lets a server do).
    pub(super) fn parse(header: &str) -> Option<Self> {
        let list = header.trim().strip_prefix("bytes=")?;
        let specs = list
            .split(',')
            .map(|spec| {
                let (a, b) = spec.trim().split_once('-')?;
                let number = |s: &str| s.trim().parse::<u64>().ok();
                match (a.trim(), b.trim()) {
                    ("", n) => Some(Spec::Suffix(number(n)?)),
                    (a, "") => Some(Spec::From { start: number(a)?, end: None }),
                    (a, b) => {
                        let (start, end) = (number(a)?, number(b)?);
                        (start <= end).then_some(Spec::From { start, end: Some(end) })
                    }
                }
            })
            .collect::<Option<Vec<_>>>()?;
        (!specs.is_empty()).then_some(Self(specs))
    }

    /// The one range answered for a content of `total` bytes: the span covering every
    /// satisfiable range; `None` when none is (a `416`).
    pub(super) fn covering(&self, total: u64) -> Option<RangeInclusive<u64>> {
        let last = total.checked_sub(1)?;
        self.0
            .iter()
            .filter_map(|spec| match *spec {
                Spec::From { start, end } if start <= last => Some((start, end.map_or(last, |e| e.min(last)))),
                Spec::From { .. } | Spec::Suffix(0) => None,
                Spec::Suffix(n) => Some((total.saturating_sub(n), last)),
            })
            .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
            .map(|(a, b)| a..=b)
    }
}

/// Answers `ranges` of the task `req` names, starting it in the background if it is not here.
pub(super) async fn serve(downloader: &Downloader, req: TaskRequest, ranges: ByteRanges) -> Response {
    let task = match downloader.storage().task(&req.task_id, req.url.as_str()) {
        Ok(task) => task,
        Err(e) => return download_error(e),
    };
    let mut progress = Progress::start(downloader, req.clone(), task.clone());
    if let Err(e) = progress.until(|t| t.layout().is_some()).await {
        return download_error(e);
    }
    let Some(layout) = task.layout() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, "task has no layout".into());
    };
    let total = layout.content_length;
    let Some(range) = ranges.covering(total) else {
        return Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{total}"))
            .body(Body::empty())
            .unwrap_or_default();
    };
    let (start, end) = (*range.start(), *range.end());
    let piece_of = |at: u64| (at / layout.piece_length) as u32;
    let pieces = piece_of(start)..=piece_of(end);
    let first = *pieces.start();
    if let Err(e) = progress.until(|t| t.finished_range(first).is_some()).await {
        return download_error(e);
    }
    let finished = task.is_complete();
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(send_range(progress, range, pieces, tx));
    Response::builder()
        .status(StatusCode::PARTIAL_CONTENT)
        .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{total}"))
        .header(header::CONTENT_LENGTH, end - start + 1)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("x-dragonfly-task-id", header_value(&req.task_id.0))
        .header("x-dragonfly-task-download-finished", if finished { "true" } else { "false" })
        .body(Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, e.to_string()))
}

/// Sends bytes `range` of the task, piece by piece as each is verified; an error ends the body
/// early, which aborts the connection.
async fn send_range(
    mut progress: Progress,
    range: RangeInclusive<u64>,
    pieces: RangeInclusive<u32>,
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
) {
    let reader = match progress.task.reader() {
        Ok(f) => Arc::new(f),
        Err(e) => {
            let _ = tx.send(Err(std::io::Error::other(e))).await;
            return;
        }
    };
    for n in pieces {
        let piece = match progress.until(|t| t.finished_range(n).is_some()).await {
            Ok(()) => progress.task.finished_range(n).unwrap_or_default(),
            Err(e) => {
                tracing::warn!(task_id = %progress.task.id(), piece = n, error = %e, "range answer cut short");
                let _ = tx.send(Err(std::io::Error::other(e))).await;
                return;
            }
        };
        let mut at = piece.start.max(*range.start());
        let stop = piece.end.min(range.end() + 1);
        while at < stop {
            let len = (stop - at).min(CHUNK);
            let file = reader.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0; len as usize];
                file.read_exact_at(&mut buf, at).map(|()| Bytes::from(buf))
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            let failed = read.is_err();
            if tx.send(read).await.is_err() || failed {
                return; // the client left, or the file could not be read
            }
            at += len;
        }
    }
}

/// A task being fetched in the background, and how to wait for parts of it.
struct Progress {
    task: Arc<TaskStore>,
    changes: watch::Receiver<u64>,
    /// The background fetch's outcome, until it has come.
    done: Option<oneshot::Receiver<Result<(), Error>>>,
    /// Why the background fetch failed, until a wait reports it.
    failed: Option<Error>,
}

impl Progress {
    /// Fetches the task in the background (a task already complete returns at once); a blob
    /// URL's digest is checked over the content when a fetch this answer started completes.
    fn start(downloader: &Downloader, req: TaskRequest, task: Arc<TaskStore>) -> Self {
        let changes = task.watch();
        let (tx, done) = oneshot::channel();
        let downloader = downloader.clone();
        let cold = !task.is_complete();
        tokio::spawn(async move {
            let result = match downloader.fetch_task(&req, &EventSink::none()).await {
                Ok(task) => match Digest::from_oci_blob_path(req.url.path()).filter(|_| cold) {
                    Some(expected) => match verify_whole(&task, Some(&expected)).await {
                        Ok(_) => Ok(()),
                        Err(e) => {
                            tracing::warn!(task_id = %req.task_id, error = %e, "blob does not match its digest; removed");
                            let _ = downloader.storage().remove(&req.task_id);
                            Err(e)
                        }
                    },
                    None => Ok(()),
                },
                Err(e) => Err(e),
            };
            let _ = tx.send(result);
        });
        Self { task, changes, done: Some(done), failed: None }
    }

    /// Waits until `ready` holds of the task; the fetch's error if it failed first. What was
    /// in place before a failure is still handed out.
    async fn until(&mut self, ready: impl Fn(&TaskStore) -> bool) -> Result<(), Error> {
        loop {
            self.changes.borrow_and_update();
            if ready(&self.task) {
                return Ok(());
            }
            if let Some(e) = self.failed.take() {
                return Err(e);
            }
            let Some(done) = self.done.as_mut() else {
                return Err(Error::Integrity(format!("task {} ended without the bytes asked for", self.task.id())));
            };
            tokio::select! {
                outcome = done => {
                    self.done = None;
                    self.failed = match outcome {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e),
                        Err(_) => Some(Error::Io(std::io::Error::other("the background fetch stopped"))),
                    };
                }
                _ = self.changes.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn covering(header: &str, total: u64) -> Option<Option<(u64, u64)>> {
        ByteRanges::parse(header).map(|r| r.covering(total).map(|r| (*r.start(), *r.end())))
    }

    #[test]
    fn ranges_are_answered_by_the_span_covering_the_satisfiable_ones() {
        assert_eq!(covering("bytes=0-9", 100), Some(Some((0, 9))));
        assert_eq!(covering("bytes=90-", 100), Some(Some((90, 99))));
        assert_eq!(covering("bytes=-10", 100), Some(Some((90, 99))));
        assert_eq!(covering("bytes=-1000", 100), Some(Some((0, 99))));
        assert_eq!(covering("bytes=50-500", 100), Some(Some((50, 99))));
        assert_eq!(covering("bytes=0-1, 50-60", 100), Some(Some((0, 60))));
        assert_eq!(covering("bytes=200-300,10-19", 100), Some(Some((10, 19))), "the unsatisfiable one is dropped");
        for unsatisfiable in ["bytes=100-", "bytes=-0", "bytes=100-200,300-"] {
            assert_eq!(covering(unsatisfiable, 100), Some(None), "{unsatisfiable}");
        }
        assert_eq!(covering("bytes=0-0", 0), Some(None), "an empty content has no byte to give");
        for ignored in ["items=0-1", "bytes=5-1", "bytes=x-1", "bytes=", "bytes=0-1,", "0-1"] {
            assert_eq!(covering(ignored, 100), None, "{ignored}");
        }
    }
}

/// Whoever reaches the proxy writes its `Range`: any value is a range within the content, a
/// `416`, or ignored; never a panic.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn a_range_is_within_the_content_or_refused_or_ignored(
            header in prop_oneof![
                ("[ ]?", "bytes=|items=|", proptest::collection::vec(
                    (proptest::option::of(any::<u64>()), "[ ]?-[ ]?", proptest::option::of(any::<u64>())), 1..4))
                    .prop_map(|(a, unit, specs)| {
                        let n = |v: Option<u64>| v.map(|v| (v % 300).to_string()).unwrap_or_default();
                        let specs: Vec<String> = specs.into_iter().map(|(s, d, e)| format!("{}{d}{}", n(s), n(e))).collect();
                        format!("{a}{unit}{}", specs.join(","))
                    }),
                any::<String>(),
            ],
            total in prop_oneof![0..300u64, any::<u64>()],
        ) {
            if let Some(ranges) = ByteRanges::parse(&header)
                && let Some(r) = ranges.covering(total)
            {
                prop_assert!(r.start() <= r.end() && *r.end() < total, "{header:?} of {total}: {r:?}");
            }
        }
    }
}
