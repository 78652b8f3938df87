//! Answering a proxied GET from the P2P network: bring the task into the cache, then stream the
//! whole content from the content file. A `Range` request does not wait for the whole task
//! ([`partial`]).

mod partial;

use axum::{
    body::Body,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use common::digest::Digest;
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use super::{ErrorType, error, header_str, header_value, origin_headers, task_shaping};
use crate::{
    Error,
    download::{Downloader, EventSink, TaskRequest, verify_whole},
};

/// Serves `req`, the download of a proxied GET (see [`task_request`]) with its `headers`.
pub(super) async fn serve(downloader: &Downloader, req: TaskRequest, headers: &HeaderMap) -> Response {
    if let Some(ranges) = header_str(headers, header::RANGE.as_str()).and_then(partial::ByteRanges::parse) {
        return partial::serve(downloader, req, ranges).await;
    }
    let id = &req.task_id;
    let task = match downloader.fetch_task(&req, &EventSink::none()).await {
        Ok(t) => t,
        Err(e) => return download_error(e),
    };
    // A blob URL names its digest: content that does not match is neither served nor kept.
    if let Some(expected) = Digest::from_oci_blob_path(req.url.path())
        && let Err(e) = verify_whole(&task, Some(&expected)).await
    {
        let _ = downloader.storage().remove(id);
        return error(StatusCode::BAD_GATEWAY, ErrorType::Backend, e.to_string());
    }
    let Some(layout) = task.layout() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, "task has no layout".into());
    };
    let len = layout.content_length;
    let file = match task.reader() {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, e.to_string()),
    };
    let response = Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("x-dragonfly-task-id", header_value(&id.0))
        .header("x-dragonfly-task-download-finished", "true");
    response
        .status(StatusCode::OK)
        .body(Body::from_stream(ReaderStream::with_capacity(file.take(len), 256 * 1024)))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, e.to_string()))
}

/// The download a proxied GET asks for, shaped by its `X-Dragonfly-*` headers; a refusal is
/// the 400's message.
pub(super) fn task_request(target: url::Url, headers: &HeaderMap, blob_digest: bool) -> Result<TaskRequest, String> {
    let shape = task_shaping(headers, blob_digest)?;
    TaskRequest::new(target, shape, origin_headers(headers)).map_err(|e| match e {
        Error::InvalidRequest(why) => why,
        e => e.to_string(),
    })
}

fn download_error(e: Error) -> Response {
    match e {
        Error::OriginRejected { status, url } => error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
            ErrorType::Backend,
            format!("origin answered {status} for {url}"),
        ),
        Error::OriginUnavailable { .. } | Error::NoSource(_) | Error::SchedulerLost(_) => {
            error(StatusCode::BAD_GATEWAY, ErrorType::Backend, e.to_string())
        }
        Error::Timeout(_) => error(StatusCode::GATEWAY_TIMEOUT, ErrorType::Backend, e.to_string()),
        Error::Refused(_) => error(StatusCode::FORBIDDEN, ErrorType::Dfdaemon, e.to_string()),
        Error::TargetRefused(_) => error(StatusCode::FORBIDDEN, ErrorType::Proxy, e.to_string()),
        Error::ShuttingDown => error(StatusCode::SERVICE_UNAVAILABLE, ErrorType::Dfdaemon, e.to_string()),
        other => error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, other.to_string()),
    }
}

/// Whoever reaches the proxy writes its headers: any `X-Dragonfly-*` value is taken
/// as it says or refused (a 400), never ignored and never a panic.
#[cfg(test)]
mod properties {
    use axum::http::HeaderValue;
    use common::{ids::TaskId, piece::REQUESTABLE_PIECE_LENGTHS};
    use proptest::prelude::*;

    use super::*;

    /// A header value: any bytes a header may hold (a tab, or no control byte), or text.
    fn value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            "[ -~]{0,30}".prop_map(String::into_bytes),
            any::<String>().prop_map(String::into_bytes),
        ]
        .prop_map(|b| b.into_iter().filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)).collect())
    }

    /// A piece length as a client may write it, in range or near it, or anything at all.
    fn piece_length() -> impl Strategy<Value = Vec<u8>> {
        let number = prop_oneof![any::<u64>(), 0..4096u64, (1u64 << 30) - 2..(1u64 << 30) + 2, Just(4 << 20),];
        prop_oneof![
            3 => ("[ \t]{0,2}", "\\+?0{0,2}", number, "[ \t]{0,2}")
                .prop_map(|(a, sign, n, b)| format!("{a}{sign}{n}{b}").into_bytes()),
            1 => value(),
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn control_headers_shape_the_task_or_are_refused(
            tag in proptest::option::of(value()),
            application in proptest::option::of(value()),
            filtered in proptest::option::of(value()),
            length in proptest::option::of(piece_length()),
        ) {
            let mut headers = HeaderMap::new();
            let named = [
                ("x-dragonfly-tag", &tag),
                ("x-dragonfly-application", &application),
                ("x-dragonfly-filtered-query-params", &filtered),
                ("x-dragonfly-piece-length", &length),
            ];
            for (name, value) in named {
                if let Some(value) = value {
                    headers.insert(name, HeaderValue::from_bytes(value).unwrap());
                }
            }
            fn text(v: &Option<Vec<u8>>) -> Option<Result<&str, std::str::Utf8Error>> {
                v.as_deref().map(std::str::from_utf8)
            }
            let readable = named.iter().all(|(_, v)| text(v).is_none_or(|t| t.is_ok()));
            let requested = text(&length).and_then(Result::ok).map(|t| {
                let t = t.trim();
                let digits = t.strip_prefix('+').unwrap_or(t);
                (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| digits.parse::<u64>().ok())
                    .flatten()
                    .filter(|n| REQUESTABLE_PIECE_LENGTHS.contains(n))
            });
            let target = url::Url::parse("http://o.example/v2/blobs/x").unwrap();
            match task_request(target, &headers, false) {
                Ok(req) => {
                    prop_assert!(readable, "an unreadable header was ignored");
                    prop_assert_eq!(req.piece_length, requested.flatten());
                    prop_assert!(requested.is_none_or(|r| r.is_some()), "piece length {:?} taken", length);
                    let text = |v: &Option<Vec<u8>>| text(v).and_then(Result::ok).unwrap_or("").to_owned();
                    prop_assert_eq!(req.tag, text(&tag));
                    prop_assert_eq!(req.application, text(&application));
                    let params: Vec<String> =
                        text(&filtered).split('&').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect();
                    prop_assert_eq!(req.filtered_query_params, params);
                    prop_assert_eq!(TaskId::parse(&req.task_id.0), Ok(req.task_id.clone()));
                }
                Err(why) => {
                    prop_assert!(!readable || requested.is_some_and(|r| r.is_none()), "refused: {}", why);
                }
            }
        }
    }
}
