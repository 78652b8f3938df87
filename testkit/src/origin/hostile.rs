//! Origins that break HTTP the ways real ones have (Dragonfly's 2026 conformance list), so the
//! peer's back-to-source fetcher and proxy can be held to never caching a corrupt piece and never
//! answering a complete-looking response with short data.
//!
//! `/hostile/{mode}/{n}/{seed}` serves [`content`](super::content)`(n, seed)` misbehaving as
//! [`Mode`] says; GETs are counted like `/bytes`.

use std::{sync::atomic::Ordering, time::Duration};

use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, Method, StatusCode, header},
    response::Response,
};

use futures::StreamExt as _;

use super::{Counters, content};

/// How a hostile origin misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Advertises `Accept-Ranges: bytes`, then answers every GET `200` with the whole body.
    IgnoresRange,
    /// Advertises ranges and answers each request honestly in its headers, but every body stops
    /// at half its `Content-Length` and the connection ends.
    Short,
    /// Advertises no ranges, and answers a GET without `Range` `206` with the first half.
    PartialUnasked,
    /// Advertises ranges; a range request gets `206` with as many bytes as asked, but from the
    /// start of the content, and a `Content-Range` saying so.
    WrongRange,
    /// Honest and ranged, but each range answer comes 100 ms late and a whole body streams at
    /// 64 KiB per 100 ms: a download that visibly takes time.
    Slow,
}

impl Mode {
    /// The mode a path segment names.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ignores-range" => Self::IgnoresRange,
            "short" => Self::Short,
            "partial-unasked" => Self::PartialUnasked,
            "wrong-range" => Self::WrongRange,
            "slow" => Self::Slow,
            _ => return None,
        })
    }

    fn ranges(self) -> bool {
        self != Self::PartialUnasked
    }
}

fn requested_range(headers: &HeaderMap, n: usize) -> Option<(usize, usize)> {
    let v = headers.get(header::RANGE)?.to_str().ok()?;
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    let start = a.parse::<usize>().ok()?;
    let end = b.parse::<usize>().ok()?.min(n.checked_sub(1)?);
    (start <= end).then_some((start, end))
}

pub(super) async fn serve(
    method: Method,
    headers: HeaderMap,
    counters: &Counters,
    mode: Mode,
    n: usize,
    seed: u8,
) -> Response {
    let all = content(n, seed);
    let range = if mode.ranges() { requested_range(&headers, n) } else { None };
    let mut builder = Response::builder().header(header::ACCEPT_RANGES, if mode.ranges() { "bytes" } else { "none" });
    // (status, Content-Range, announced length, body)
    let (status, content_range, announced, body) = match (mode, range) {
        (Mode::IgnoresRange, _) | (Mode::WrongRange | Mode::Slow | Mode::Short, None) => {
            (StatusCode::OK, None, n, all.clone())
        }
        (Mode::PartialUnasked, _) => {
            let half = n / 2;
            let range = (half > 0).then(|| format!("bytes 0-{}/{n}", half - 1));
            (StatusCode::PARTIAL_CONTENT, range, half, all[..half].to_vec())
        }
        (Mode::WrongRange, Some((a, b))) => {
            let len = b - a + 1;
            (StatusCode::PARTIAL_CONTENT, Some(format!("bytes 0-{}/{n}", len - 1)), len, all[..len].to_vec())
        }
        (Mode::Short | Mode::Slow, Some((a, b))) => {
            (StatusCode::PARTIAL_CONTENT, Some(format!("bytes {a}-{b}/{n}")), b - a + 1, all[a..=b].to_vec())
        }
    };
    let body = if mode == Mode::Short { body[..announced / 2].to_vec() } else { body };
    if method == Method::GET {
        counters.gets.fetch_add(1, Ordering::SeqCst);
        if range.is_some() {
            counters.range_gets.fetch_add(1, Ordering::SeqCst);
        }
        counters.sent.fetch_add(body.len() as u64, Ordering::SeqCst);
    }
    builder = builder.status(status).header(header::CONTENT_LENGTH, announced);
    if let Some(r) = content_range {
        builder = builder.header(header::CONTENT_RANGE, r);
    }
    let body = match (mode, range) {
        (Mode::Slow, Some(_)) => {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Body::from(body)
        }
        (Mode::Slow, None) => {
            let chunks: Vec<Bytes> = body.chunks(65_536).map(Bytes::copy_from_slice).collect();
            Body::from_stream(futures::stream::iter(chunks).then(|c| async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, std::io::Error>(c)
            }))
        }
        _ if mode == Mode::Short => super::short_body(body),
        _ => Body::from(body),
    };
    builder.body(body).unwrap()
}
