//! Answering a proxied GET from the P2P network: bring the task into the cache, then stream the
//! requested bytes (whole, or one `Range`) from the content file.

use axum::{
    body::Body,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use common::digest::Digest;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::{ErrorType, error, header_str, header_value, origin_headers, task_shaping};
use crate::{
    Error,
    download::{Downloader, EventSink, TaskRequest, verify_whole},
};

pub(super) async fn serve(downloader: &Downloader, target: url::Url, headers: &HeaderMap) -> Response {
    let shape = match task_shaping(headers) {
        Ok(shape) => shape,
        Err(why) => return error(StatusCode::BAD_REQUEST, ErrorType::Proxy, why),
    };
    let req = match TaskRequest::new(target, shape, origin_headers(headers)) {
        Ok(req) => req,
        Err(Error::InvalidRequest(why)) => return error(StatusCode::BAD_REQUEST, ErrorType::Proxy, why),
        Err(e) => return error(StatusCode::BAD_REQUEST, ErrorType::Proxy, e.to_string()),
    };
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
    let total = layout.content_length;
    let range = match header_str(headers, header::RANGE.as_str()).map(|r| parse_range(r, total)) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(())) => {
            return Response::builder()
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{total}"))
                .body(Body::empty())
                .unwrap_or_default();
        }
    };
    let (start, end) = range.unwrap_or((0, total.saturating_sub(1)));
    let len = if total == 0 { 0 } else { end - start + 1 };
    let mut file = match task.reader() {
        Ok(f) => tokio::fs::File::from_std(f),
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, e.to_string()),
    };
    if let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await {
        return error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, e.to_string());
    }
    let mut response = Response::builder()
        .header(header::CONTENT_LENGTH, len)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header("x-dragonfly-task-id", header_value(&id.0))
        .header("x-dragonfly-task-download-finished", "true");
    response = match range {
        Some(_) => response
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{total}")),
        None => response.status(StatusCode::OK),
    };
    response
        .body(Body::from_stream(ReaderStream::with_capacity(file.take(len), 256 * 1024)))
        .unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, e.to_string()))
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

/// One `bytes=` range (`a-b`, `a-`, `-n`) against a content of `total` bytes, inclusive.
fn parse_range(header: &str, total: u64) -> Result<(u64, u64), ()> {
    let spec = header.trim().strip_prefix("bytes=").ok_or(())?;
    if spec.contains(',') || total == 0 {
        return Err(());
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().map_err(|_| ())?;
            if n == 0 {
                return Err(());
            }
            (total.saturating_sub(n), total - 1)
        }
        (a, "") => (a.parse().map_err(|_| ())?, total - 1),
        (a, b) => (a.parse().map_err(|_| ())?, b.parse::<u64>().map_err(|_| ())?.min(total - 1)),
    };
    if start > end || start >= total {
        return Err(());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Ok((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Ok((90, 99)));
        assert_eq!(parse_range("bytes=50-500", 100), Ok((50, 99)));
        for bad in ["bytes=100-", "bytes=5-1", "bytes=0-1,3-4", "items=0-1", "bytes=-0", "bytes=x-1"] {
            assert_eq!(parse_range(bad, 100), Err(()), "{bad}");
        }
        assert_eq!(parse_range("bytes=0-0", 0), Err(()));
    }
}
