//! The dfdaemon's HTTP proxy and registry mirror: how container runtimes and HTTP clients reach
//! the P2P network without knowing about it.
//!
//! - Forward proxy: `GET http://host/path` (absolute URI) goes to that URL.
//! - Mirror: `GET /v2/...` (no host) goes to the upstream named by `X-Dragonfly-Registry`, else
//!   the `ns` query parameter containerd appends, else a `[[proxy.registries]]` path prefix,
//!   else `proxy.registry_mirror` from the config (`route`); with prefixed upstreams the
//!   dfdaemon answers `/v2/` and brokers tokens (`token`).
//!
//! A GET whose URL matches a rule (default: blobs by digest), or that carries
//! `X-Dragonfly-Use-P2P: true`, is fetched through the downloader (cache, parents, origin) and
//! answered from the cache, with `Range` support, only once the origin accepts the requester
//! (`authz`). A `HEAD` of a registry blob is forwarded, and answered from the cache when the
//! registry is down (`head`). Everything else is forwarded as is. Request headers except hop-by-hop
//! ones reach the origin; `X-Dragonfly-Tag`, `-Application`, `-Filtered-Query-Params`,
//! `-Piece-Length` and `-Enable-Task-ID-Based-Blob-Digest` shape the task id like dfget's flags do.
//!
//! Whoever reaches the proxy is not this host's user: every target is held to the
//! [`TargetPolicy`](crate::download::TargetPolicy) (`[proxy] allowed_hosts`, `allowed_private_networks`; the configured
//! `registry_mirror` trusted). The target is checked, its name resolved, before the cache or
//! the origin is touched, and a refusal is a 403 naming the rule; the fetch itself, forwarded or
//! through P2P, goes through the guarded client, whose resolver and redirect policy check each
//! connection and each hop again (see `download::origin::guard`).

mod authz;
pub mod connect;
mod head;
mod p2p;
mod route;
mod token;

use route::Route;
pub use route::{Prefixed, Upstreams};

use std::sync::Arc;

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use regex::Regex;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::download::{Downloader, OriginClients, TaskShape, refusal_in};

/// Which requests go through P2P, and where a mirror request goes by default.
#[derive(Debug, Clone)]
pub struct ProxyRules {
    /// URLs matching any of these go through P2P (GET only).
    pub p2p: Vec<Regex>,
    /// The configured upstream registries of mirror requests (see `route`).
    pub upstreams: Upstreams,
    /// How long a registry's acceptance of a requester for a blob is reused (see `authz`).
    pub auth_cache_ttl: std::time::Duration,
    /// OCI blob URLs get their digest's task id unless the request says otherwise.
    pub blob_digest_task_id: bool,
}

#[derive(Debug, Clone)]
struct ProxyState {
    downloader: Downloader,
    /// Its guarded client forwards; its policy checks every target first.
    origins: OriginClients,
    rules: Arc<ProxyRules>,
    /// CONNECT: tunnels and interception.
    connect: Arc<connect::Connect>,
    /// The registry's verdicts on who may have a blob served through P2P.
    authz: Arc<authz::Authorizer>,
}

/// Serves the proxy on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    downloader: Downloader,
    origins: OriginClients,
    rules: ProxyRules,
    connect: connect::Connect,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let authz = Arc::new(authz::Authorizer::new(rules.auth_cache_ttl));
    let state = ProxyState { downloader, origins, rules: Arc::new(rules), connect: Arc::new(connect), authz };
    let app = Router::new().fallback(handle).with_state(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await
}

/// Where a proxy failure came from, for `X-Dragonfly-Error-Type`.
#[derive(Debug, Clone, Copy)]
enum ErrorType {
    /// The origin answered with an error or could not be reached.
    Backend,
    /// The request itself could not be proxied.
    Proxy,
    /// The dfdaemon failed (storage, integrity).
    Dfdaemon,
}

fn error(status: StatusCode, kind: ErrorType, message: String) -> Response {
    let kind = match kind {
        ErrorType::Backend => "backend",
        ErrorType::Proxy => "proxy",
        ErrorType::Dfdaemon => "dfdaemon",
    };
    let body = serde_json::json!({ "code": kind, "message": message }).to_string();
    (status, [("x-dragonfly-error-type", kind), ("content-type", "application/json")], body).into_response()
}

async fn handle(State(state): State<ProxyState>, request: Request) -> Response {
    if request.method() == Method::CONNECT {
        return connect::handle(&state, request).await;
    }
    fetch(state, request).await
}

/// A proxy or mirror request (anything but CONNECT; intercepted requests come here too).
async fn fetch(state: ProxyState, request: Request) -> Response {
    let (target, brokered) = match route::route(request.uri(), request.headers(), &state.rules.upstreams) {
        Ok(Route::Upstream { target, brokered }) => (target, brokered),
        Ok(Route::Ping) => return token::ping(request.headers()),
        Ok(Route::Token) => return token::serve(&state, request.uri(), request.headers()).await,
        Err(message) => return error(StatusCode::BAD_REQUEST, ErrorType::Proxy, message),
    };
    if let Err(refusal) = state.origins.policy().check_target(&target).await {
        tracing::warn!(url = %target, %refusal, "proxy target refused");
        return error(StatusCode::FORBIDDEN, ErrorType::Proxy, refusal.to_string());
    }
    let use_p2p = request.method() == Method::GET
        && (header_str(request.headers(), "x-dragonfly-use-p2p").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || state.rules.p2p.iter().any(|r| r.is_match(target.as_str())));
    let host = request.headers().get(header::HOST).cloned();
    let response = if use_p2p {
        serve_p2p(&state, target, request.headers()).await
    } else if request.method() == Method::HEAD && common::digest::Digest::from_oci_blob_path(target.path()).is_some() {
        head::serve(&state, target, request).await
    } else {
        forward(state.origins.guarded(), target, request).await
    };
    match brokered {
        Some(brokered) => token::rewrite_challenges(response, host.as_ref(), &brokered),
        None => response,
    }
}

/// A GET through P2P, only for a requester the origin accepts (`authz`), checked again, and its
/// refusal relayed, when the origin refuses the download itself. A request the dfdaemon cannot
/// take (its `X-Dragonfly-*` headers) is refused before the origin is asked anything.
async fn serve_p2p(state: &ProxyState, target: url::Url, headers: &HeaderMap) -> Response {
    let req = match p2p::task_request(target.clone(), headers, state.rules.blob_digest_task_id) {
        Ok(req) => req,
        Err(why) => return error(StatusCode::BAD_REQUEST, ErrorType::Proxy, why),
    };
    let client = state.origins.guarded_unredirected();
    if let Err(refused) = state.authz.check(client, &target, headers, false).await {
        return refused;
    }
    let response = p2p::serve(&state.downloader, req, headers).await;
    if matches!(response.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND)
        && let Err(refused) = state.authz.check(client, &target, headers, true).await
    {
        return refused;
    }
    response
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An `X-Dragonfly-*` header that decides what is fetched: its UTF-8 text, and a value that is
/// not UTF-8 refused rather than taken for no header (which would fetch another task, or from
/// another upstream).
fn control_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, String> {
    headers
        .get(name)
        .map(|v| std::str::from_utf8(v.as_bytes()).map_err(|_| format!("{name} is not UTF-8 text")))
        .transpose()
}

/// Headers that describe one hop and must not be forwarded, plus our own control headers.
fn forwardable(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "host"
            | "connection"
            | "proxy-connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    ) && !name.as_str().starts_with("x-dragonfly-")
}

/// A request header that reaches the origin: forwardable, and not the placeholder token the
/// dfdaemon hands out for an upstream that needs none.
fn forwarded(name: &HeaderName, value: &HeaderValue) -> bool {
    forwardable(name) && !(name == header::AUTHORIZATION && value.as_bytes() == token::ANONYMOUS.as_bytes())
}

/// Request headers for the origin.
fn origin_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .filter(|(n, v)| forwarded(n, v) && *n != header::RANGE)
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect()
}

/// Sends the request to `target` as it is and streams the answer back.
async fn forward(client: &reqwest::Client, target: url::Url, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut builder = client.request(parts.method.clone(), target.clone());
    for (name, value) in parts.headers.iter().filter(|(n, v)| forwarded(n, v)) {
        builder = builder.header(name, value);
    }
    if !matches!(parts.method, Method::GET | Method::HEAD) {
        builder = builder.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    match builder.send().await {
        Ok(upstream) => {
            let mut response = Response::builder().status(upstream.status());
            for (name, value) in upstream.headers().iter().filter(|(n, _)| forwardable(n)) {
                response = response.header(name, value);
            }
            response
                .body(Body::from_stream(upstream.bytes_stream()))
                .unwrap_or_else(|e| error(StatusCode::BAD_GATEWAY, ErrorType::Proxy, e.to_string()))
        }
        Err(e) => match refusal_in(&e) {
            Some(refusal) => {
                tracing::warn!(url = %target, %refusal, "proxy target refused");
                error(StatusCode::FORBIDDEN, ErrorType::Proxy, refusal.to_string())
            }
            None => error(StatusCode::BAD_GATEWAY, ErrorType::Backend, format!("{target}: {e}")),
        },
    }
}

/// The task-id inputs carried in `X-Dragonfly-*` headers; a header that is not UTF-8, or a piece
/// length that is not a number, is an error (its range is checked where the task id is derived).
fn task_shaping(headers: &HeaderMap, blob_digest_default: bool) -> Result<TaskShape, String> {
    let tag = control_header(headers, "x-dragonfly-tag")?.unwrap_or("").to_owned();
    let application = control_header(headers, "x-dragonfly-application")?.unwrap_or("").to_owned();
    let filtered_query_params = control_header(headers, "x-dragonfly-filtered-query-params")?
        .map(|v| v.split('&').map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    let piece_length = match control_header(headers, "x-dragonfly-piece-length")? {
        None => None,
        Some(v) => {
            Some(v.trim().parse().map_err(|_| format!("X-Dragonfly-Piece-Length {v:?} is not a number of bytes"))?)
        }
    };
    let blob_digest = match control_header(headers, "x-dragonfly-enable-task-id-based-blob-digest")? {
        None => blob_digest_default,
        Some(v) if v.trim().eq_ignore_ascii_case("true") => true,
        Some(v) if v.trim().eq_ignore_ascii_case("false") => false,
        Some(v) => return Err(format!("X-Dragonfly-Enable-Task-ID-Based-Blob-Digest {v:?} is not true or false")),
    };
    Ok(TaskShape { tag, application, filtered_query_params, piece_length, blob_digest })
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn hop_by_hop_and_control_headers_stay_here() {
        let h = headers(&[
            ("authorization", "Bearer t"),
            ("connection", "close"),
            ("x-dragonfly-tag", "t1"),
            ("range", "bytes=0-1"),
            ("accept", "*/*"),
        ]);
        let mut kept = origin_headers(&h);
        kept.sort();
        assert_eq!(kept, vec![("accept".into(), "*/*".into()), ("authorization".into(), "Bearer t".into())]);
        let shape = task_shaping(
            &headers(&[
                ("x-dragonfly-tag", "t1"),
                ("x-dragonfly-filtered-query-params", "X-Amz-Date&Expires"),
                ("x-dragonfly-piece-length", "4194304"),
            ]),
            false,
        )
        .unwrap();
        assert_eq!((shape.tag.as_str(), shape.application.as_str(), shape.piece_length), ("t1", "", Some(4_194_304)));
        assert_eq!(shape.filtered_query_params, vec!["X-Amz-Date".to_string(), "Expires".to_string()]);
        let err = task_shaping(&headers(&[("x-dragonfly-piece-length", "lots")]), false).unwrap_err();
        assert!(err.contains("X-Dragonfly-Piece-Length"), "{err}");
        let digest_mode = |value: &'static str, default: bool| {
            task_shaping(&headers(&[("x-dragonfly-enable-task-id-based-blob-digest", value)]), default)
                .map(|s| s.blob_digest)
        };
        assert_eq!((digest_mode("true", false), digest_mode("False", true)), (Ok(true), Ok(false)));
        assert_eq!(task_shaping(&HeaderMap::new(), true).map(|s| s.blob_digest), Ok(true), "the config's default");
        let err = digest_mode("yes", false).unwrap_err();
        assert!(err.contains("Blob-Digest"), "{err}");
    }
}
