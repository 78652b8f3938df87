//! One HTTP origin for every test: deterministic bytes of any length, byte ranges, errors,
//! a slow body and a truncated one, counting what it serves so a test can prove that each
//! byte left the origin once. Tests that need another origin (a registry for the proxy, a
//! static directory) build their own router and serve it with [`serve`].
//!
//! Routes (a HEAD carries no body and is never counted):
//! - `/bytes/{n}` and `/bytes/{n}/{seed}`: [`content`]`(n, seed)` (seed 0 when absent);
//! - `/ranged/{n}/{seed}`: the same, answering `Range: bytes=a-b` with 206, each range 30 ms
//!   late so every peer has registered before the first pieces are in;
//! - `/status/{code}`: an empty answer with that status;
//! - `/truncated/{n}`: announces `n` bytes, sends half, then the connection ends;
//! - `/slow`: 64 KiB every 100 ms, 4 MiB in all (a download still running when stopped);
//! - `/hostile/{mode}/{n}/{seed}`: the same content from an origin that breaks HTTP as
//!   [`hostile::Mode`] says (ignores `Range`, short bodies, unasked or wrong `206`s, slow).

pub mod hostile;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::Response,
    routing::get,
};
use tokio::net::TcpListener;

/// `len` deterministic bytes; different seeds give different contents (and tasks).
pub fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed as usize) % 251) as u8).collect()
}

/// Serves `app` on `127.0.0.1:0` for the rest of the test; answers its base URL.
pub async fn serve(app: Router) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

#[derive(Default)]
struct Counters {
    /// Body bytes sent by GETs of `/bytes` and `/ranged`.
    sent: AtomicU64,
    /// GETs of `/bytes` and `/ranged` (whole or ranged).
    gets: AtomicUsize,
    /// GETs of `/ranged` that asked for a range.
    range_gets: AtomicUsize,
}

/// A running origin and what it has served so far.
pub struct Origin {
    /// `http://127.0.0.1:<port>` (over TLS: `https://<host>:<port>`).
    pub base: String,
    counters: Arc<Counters>,
}

impl Origin {
    pub async fn start() -> Self {
        let counters = Arc::new(Counters::default());
        Self { base: serve(routes(counters.clone())).await, counters }
    }

    /// The same origin over TLS, its certificate for `host` (and 127.0.0.1) from `ca`:
    /// `base` is `https://<host>:<port>` (see [`crate::tls::loopback_name`]).
    #[cfg(feature = "tls")]
    pub async fn start_tls(ca: &crate::tls::TestCa, host: &str) -> Self {
        let counters = Arc::new(Counters::default());
        let port = crate::tls::serve_tls(routes(counters.clone()), &ca.web(host)).await;
        Self { base: format!("https://{host}:{port}"), counters }
    }

    /// Body bytes sent so far by `/bytes` and `/ranged`.
    pub fn sent(&self) -> u64 {
        self.counters.sent.load(Ordering::SeqCst)
    }

    /// GETs of `/bytes` and `/ranged` so far.
    pub fn gets(&self) -> usize {
        self.counters.gets.load(Ordering::SeqCst)
    }

    /// GETs of `/ranged` that asked for a byte range.
    pub fn range_gets(&self) -> usize {
        self.counters.range_gets.load(Ordering::SeqCst)
    }
}

fn routes(counters: Arc<Counters>) -> Router {
    Router::new()
        .route("/bytes/{n}", get(|m: Method, s: State<Arc<Counters>>, Path(n): Path<usize>| bytes(m, s, n, 0)))
        .route(
            "/bytes/{n}/{seed}",
            get(|m: Method, s: State<Arc<Counters>>, Path((n, seed)): Path<(usize, u8)>| bytes(m, s, n, seed)),
        )
        .route("/ranged/{n}/{seed}", get(ranged))
        .route("/status/{code}", get(|Path(code): Path<u16>| async move { StatusCode::from_u16(code).unwrap() }))
        .route(
            "/truncated/{n}",
            get(|Path(n): Path<usize>| async move {
                Response::builder().header(header::CONTENT_LENGTH, n).body(short_body(content(n / 2, 0))).unwrap()
            }),
        )
        .route("/slow", get(slow))
        .route("/hostile/{mode}/{n}/{seed}", get(hostile_route))
        .with_state(counters)
}

/// Its base URL, so `format!("{origin}/bytes/10")` reads like a URL.
impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base)
    }
}

async fn bytes(method: Method, State(c): State<Arc<Counters>>, n: usize, seed: u8) -> Vec<u8> {
    if method == Method::GET {
        c.gets.fetch_add(1, Ordering::SeqCst);
        c.sent.fetch_add(n as u64, Ordering::SeqCst);
    }
    content(n, seed)
}

async fn ranged(
    method: Method,
    headers: HeaderMap,
    State(c): State<Arc<Counters>>,
    Path((n, seed)): Path<(usize, u8)>,
) -> Response {
    let all = content(n, seed);
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| {
        let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
        Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?.min(n.saturating_sub(1))))
    });
    let builder = Response::builder().header(header::ACCEPT_RANGES, "bytes");
    let Some((start, end)) = range else {
        if method == Method::GET {
            c.gets.fetch_add(1, Ordering::SeqCst);
            c.sent.fetch_add(n as u64, Ordering::SeqCst);
        }
        return builder.header(header::CONTENT_LENGTH, n).body(Body::from(all)).unwrap();
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let body = all[start..=end].to_vec();
    if method == Method::GET {
        c.gets.fetch_add(1, Ordering::SeqCst);
        c.range_gets.fetch_add(1, Ordering::SeqCst);
        c.sent.fetch_add(body.len() as u64, Ordering::SeqCst);
    }
    builder
        .status(StatusCode::PARTIAL_CONTENT)
        .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{n}"))
        .body(Body::from(body))
        .unwrap()
}

async fn hostile_route(
    method: Method,
    headers: HeaderMap,
    State(c): State<Arc<Counters>>,
    Path((mode, n, seed)): Path<(String, usize, u8)>,
) -> Response {
    match hostile::Mode::parse(&mode) {
        Some(mode) => hostile::serve(method, headers, &c, mode, n, seed).await,
        None => Response::builder().status(StatusCode::NOT_FOUND).body(Body::empty()).unwrap(),
    }
}

/// A body of `bytes` that hyper cannot size in advance, so an announced `Content-Length` above
/// its length goes out as written (a sized body would make hyper refuse the mismatch itself),
/// and the connection ends after the last byte.
pub(crate) fn short_body(bytes: Vec<u8>) -> Body {
    Body::from_stream(futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(bytes))]))
}

async fn slow() -> Body {
    let chunks = futures::stream::unfold(0u32, |i| async move {
        if i >= 64 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 65_536])), i + 1))
    });
    Body::from_stream(chunks)
}
