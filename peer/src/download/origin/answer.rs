//! What an origin's answer means, decided from its status and headers before a byte of its body
//! is stored. Origins get HTTP wrong in ways that would otherwise put wrong bytes under a right
//! piece number (Dragonfly's 2026 bugs): a `206` to a request without `Range` (the first half
//! taken for the whole), a `206` for a range other than the one asked for, a `200` with the whole
//! body for a range request. Nothing here does I/O; the callers act on the verdict.

use std::ops::Range;

use reqwest::{StatusCode, header::HeaderMap};

/// How an origin answered a range request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RangeAnswer {
    /// A `206` whose body starts at this offset of the content and covers the range asked for
    /// (usually exactly it).
    Covering { body_start: u64 },
    /// A `200`: the origin ignored `Range` and sends the whole content.
    Whole,
}

/// An answer that must not be cut into pieces; the text says what the origin did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Misbehaved(pub(super) String);

/// `bytes a-b/total` (`total` may be `*`), as a byte range and the complete length if given.
fn content_range(headers: &HeaderMap) -> Option<(Range<u64>, Option<u64>)> {
    let value = headers.get(reqwest::header::CONTENT_RANGE)?.to_str().ok()?;
    let (span, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (a <= b && total.is_none_or(|t| b < t)).then(|| (a..b + 1, total))
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(reqwest::header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn shown(headers: &HeaderMap) -> String {
    headers.get(reqwest::header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned()
}

/// Checks the answer to a GET without `Range`: a `206` is the whole content only when its
/// `Content-Range` says so.
pub(super) fn check_whole(status: StatusCode, headers: &HeaderMap) -> Result<(), Misbehaved> {
    if status != StatusCode::PARTIAL_CONTENT {
        return Ok(());
    }
    match content_range(headers) {
        Some((span, Some(total))) if span.start == 0 && span.end == total => Ok(()),
        _ => Err(Misbehaved(format!(
            "answered 206 Partial Content (Content-Range: {}) to a request for the whole content",
            shown(headers)
        ))),
    }
}

/// Checks the answer to a GET for bytes `asked` of a content of `total` bytes.
pub(super) fn check_range(
    status: StatusCode,
    headers: &HeaderMap,
    asked: &Range<u64>,
    total: u64,
) -> Result<RangeAnswer, Misbehaved> {
    let asked_text = format!("bytes {}-{}", asked.start, asked.end.saturating_sub(1));
    match status {
        StatusCode::OK => match content_length(headers) {
            Some(len) if len != total => {
                Err(Misbehaved(format!("ignored the range and sent {len} bytes of a {total}-byte content")))
            }
            _ => Ok(RangeAnswer::Whole),
        },
        StatusCode::PARTIAL_CONTENT => match content_range(headers) {
            Some((_, Some(t))) if t != total => {
                Err(Misbehaved(format!("now says the content is {t} bytes, not {total}")))
            }
            Some((span, _)) if span.start <= asked.start && asked.end <= span.end => {
                Ok(RangeAnswer::Covering { body_start: span.start })
            }
            _ => Err(Misbehaved(format!(
                "answered {asked_text} with 206 Partial Content (Content-Range: {})",
                shown(headers)
            ))),
        },
        other => Err(Misbehaved(format!("answered {asked_text} with {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, HeaderValue};

    use super::*;

    fn headers(range: Option<&'static str>, len: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(r) = range {
            h.insert(CONTENT_RANGE, HeaderValue::from_static(r));
        }
        if let Some(l) = len {
            h.insert(CONTENT_LENGTH, HeaderValue::from_static(l));
        }
        h
    }

    #[test]
    fn a_206_is_the_whole_content_only_when_it_says_so() {
        assert!(check_whole(StatusCode::OK, &headers(None, Some("10"))).is_ok());
        assert!(check_whole(StatusCode::PARTIAL_CONTENT, &headers(Some("bytes 0-9/10"), Some("10"))).is_ok());
        for bad in [None, Some("bytes 0-4/10"), Some("bytes 0-9/*"), Some("bytes 1-9/10"), Some("junk")] {
            let e = check_whole(StatusCode::PARTIAL_CONTENT, &headers(bad, None)).unwrap_err();
            assert!(e.0.contains("206"), "{bad:?}: {}", e.0);
        }
    }

    #[test]
    fn a_range_answer_counts_only_when_it_covers_what_was_asked() {
        let asked = 10..20;
        let ok = |r: &'static str| check_range(StatusCode::PARTIAL_CONTENT, &headers(Some(r), None), &asked, 100);
        assert_eq!(ok("bytes 10-19/100"), Ok(RangeAnswer::Covering { body_start: 10 }));
        assert_eq!(ok("bytes 10-19/*"), Ok(RangeAnswer::Covering { body_start: 10 }));
        assert_eq!(ok("bytes 0-99/100"), Ok(RangeAnswer::Covering { body_start: 0 }));
        for bad in ["bytes 0-9/100", "bytes 11-19/100", "bytes 10-18/100", "bytes 10-19/200", "bytes 19-10/100", "x"] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        let none = check_range(StatusCode::PARTIAL_CONTENT, &headers(None, Some("10")), &asked, 100);
        assert!(none.is_err(), "a 206 without Content-Range");
        assert_eq!(check_range(StatusCode::OK, &headers(None, Some("100")), &asked, 100), Ok(RangeAnswer::Whole));
        assert_eq!(check_range(StatusCode::OK, &headers(None, None), &asked, 100), Ok(RangeAnswer::Whole));
        assert!(check_range(StatusCode::OK, &headers(None, Some("99")), &asked, 100).is_err());
        assert!(check_range(StatusCode::NO_CONTENT, &headers(None, None), &asked, 100).is_err());
    }
}
