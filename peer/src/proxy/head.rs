//! A `HEAD` of a registry blob: what a runtime asks before a GET (size, digest), answered from
//! the cache when the registry cannot answer.
//!
//! The `HEAD` goes to the registry with the requester's headers, as any forwarded request; its
//! answer is relayed, and a 2xx is the registry's acceptance of this requester for the blob, so
//! `authz` keeps it as a probe's verdict (the GET that follows asks nothing more within the
//! TTL). When the registry is down (no connection, or a 502/503/504) and this host holds the
//! whole blob, the answer is a `200` with `Content-Length` and `Docker-Content-Digest` — but only
//! for a requester `authz` allows without asking: a verdict of the registry kept within
//! `[proxy] auth_cache_secs`, or a blob the registry was seen serving to anonymous requesters.
//! A blob of a registry that demanded credentials is otherwise described to no one while the
//! registry is down (fail closed, a 502 saying so): its size and existence are the registry's
//! to tell.

use axum::{
    body::Body,
    extract::Request,
    http::{HeaderMap, StatusCode, header},
    response::Response,
};
use common::digest::Digest;

use super::{ErrorType, ProxyState, error, forward, header_value, p2p};

/// Forwards the `HEAD` of the blob at `target`; answers from the cache when the registry is down.
pub(super) async fn serve(state: &ProxyState, target: url::Url, request: Request) -> Response {
    let headers = request.headers().clone();
    let answer = forward(state.origins.guarded(), target.clone(), request).await;
    let status = answer.status();
    if !matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT) {
        state.authz.note(&target, &headers, status);
        return answer;
    }
    from_cache(state, target, &headers).unwrap_or(answer)
}

/// The cached blob's description, or `None` when this host lacks the whole blob (the
/// registry's failure then stands); a requester `authz` does not allow offline gets a 502.
fn from_cache(state: &ProxyState, target: url::Url, headers: &HeaderMap) -> Option<Response> {
    let digest = Digest::from_oci_blob_path(target.path())?;
    let req = p2p::task_request(target.clone(), headers, state.rules.blob_digest_task_id).ok()?;
    let task = state.downloader.storage().get(&req.task_id).filter(|t| t.is_complete())?;
    let length = task.layout()?.content_length;
    if !state.authz.allows_offline(&target, headers) {
        tracing::info!(url = %target, "registry down: a cached blob is not described to a requester it has not accepted");
        return Some(error(
            StatusCode::BAD_GATEWAY,
            ErrorType::Backend,
            "the registry cannot be reached to accept this requester, and it was not seen serving the blob \
             to anonymous requesters: nothing is said about it until it answers"
                .into(),
        ));
    }
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, length)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header("docker-content-digest", header_value(&digest.to_string()))
        .header("docker-distribution-api-version", "registry/2.0")
        .header("x-dragonfly-task-id", header_value(&req.task_id.0))
        .header("x-dragonfly-task-download-finished", "true")
        .body(Body::empty());
    Some(response.unwrap_or_else(|e| error(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, e.to_string())))
}
