//! The data plane end to end, in-process: a real scheduler, a seed peer and several peers on
//! 127.0.0.1 with temp dirs, and a real HTTP origin that counts the bytes it serves.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, State},
    http::{StatusCode, header},
    response::Response,
    routing::get,
};
use common::{
    ids::HostId,
    task_id::{TaskSpec, task_id},
};
use peer::{
    Dfdaemon, Listeners,
    config::{DfdaemonConfig, Overrides},
};
use proto::dfdaemon::v1::{self as pb, download_response::Event};
use scheduler::{Scheduler, config::SchedulerConfig, resource::Tasks};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;

const PIECE: u64 = 64 * 1024;

fn content(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed as usize) % 251) as u8).collect()
}

/// An origin serving `/bytes/<n>/<seed>` and counting every body byte it sends.
struct Origin {
    base: String,
    sent: Arc<AtomicU64>,
}

async fn origin() -> Origin {
    let sent = Arc::new(AtomicU64::new(0));
    let app = Router::new()
        .route(
            "/bytes/{n}/{seed}",
            get(
                |method: axum::http::Method,
                 State(sent): State<Arc<AtomicU64>>,
                 UrlPath((n, seed)): UrlPath<(usize, u8)>| async move {
                    // A HEAD carries no body: only GETs send content.
                    if method == axum::http::Method::GET {
                        sent.fetch_add(n as u64, Ordering::SeqCst);
                    }
                    content(n, seed)
                },
            ),
        )
        .route(
            "/ranged/{n}/{seed}",
            get(
                |method: axum::http::Method,
                 headers: axum::http::HeaderMap,
                 State(sent): State<Arc<AtomicU64>>,
                 UrlPath((n, seed)): UrlPath<(usize, u8)>| async move {
                    // Serves byte ranges, a little slowly, so every peer has registered before
                    // the first pieces are in.
                    let all = content(n, seed);
                    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok()).and_then(|v| {
                        let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
                        Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?.min(n.saturating_sub(1))))
                    });
                    let builder = Response::builder().header(header::ACCEPT_RANGES, "bytes");
                    let Some((start, end)) = range else {
                        if method == axum::http::Method::GET {
                            sent.fetch_add(n as u64, Ordering::SeqCst);
                        }
                        return builder.header(header::CONTENT_LENGTH, n).body(Body::from(all)).unwrap();
                    };
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let body = all[start..=end].to_vec();
                    sent.fetch_add(body.len() as u64, Ordering::SeqCst);
                    builder
                        .status(StatusCode::PARTIAL_CONTENT)
                        .header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{n}"))
                        .body(Body::from(body))
                        .unwrap()
                },
            ),
        )
        .route("/status/{code}", get(|UrlPath(code): UrlPath<u16>| async move { StatusCode::from_u16(code).unwrap() }))
        .route(
            "/truncated/{n}",
            get(|UrlPath(n): UrlPath<usize>| async move {
                // Announces n bytes, sends half, then the connection dies.
                Response::builder().header(header::CONTENT_LENGTH, n).body(Body::from(content(n / 2, 0))).unwrap()
            }),
        )
        .with_state(sent.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Origin { base, sent }
}

struct Peer {
    socket: PathBuf,
    /// Base URL of its /healthy and /metrics.
    http: String,
    data: PathBuf,
    shutdown: CancellationToken,
}

struct Cluster {
    dir: tempfile::TempDir,
    scheduler_addr: String,
    scheduler_http: String,
    scheduler_stop: CancellationToken,
    tasks: Arc<Tasks>,
    seed: Peer,
    peers: Vec<Peer>,
}

async fn start_peer(
    dir: &Path,
    name: &str,
    seed: bool,
    scheduler: &str,
    tweak: impl FnOnce(&mut DfdaemonConfig),
) -> Peer {
    let data = dir.join(name);
    let mut config = DfdaemonConfig::load(
        None,
        Overrides {
            data_dir: Some(data.clone()),
            seed: Some(seed),
            hostname: Some(name.into()),
            scheduler_addr: Some(scheduler.into()),
            ..Default::default()
        },
        name,
    )
    .unwrap();
    config.scheduler.announce_interval_secs = 1;
    tweak(&mut config);
    std::fs::create_dir_all(&data).unwrap();
    let socket = config.server.socket.clone();
    let http_listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", http_listener.local_addr().unwrap());
    let listeners = Listeners {
        socket: UnixListener::bind(&socket).unwrap(),
        http: http_listener,
        upload: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        proxy: TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(Dfdaemon::new(config).serve(listeners, shutdown.clone()));
    Peer { socket, http, data, shutdown }
}

async fn cluster(peers: usize) -> Cluster {
    cluster_with(peers, |_| {}).await
}

/// A cluster whose seed peer's config is changed by `seed_tweak`.
async fn cluster_with(peers: usize, seed_tweak: impl FnOnce(&mut DfdaemonConfig)) -> Cluster {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    }
    let dir = tempfile::tempdir().unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheduler_addr = grpc.local_addr().unwrap().to_string();
    let scheduler_http = format!("http://{}", http.local_addr().unwrap());
    let scheduler = Scheduler::new(SchedulerConfig::default());
    let hosts = scheduler.hosts();
    let tasks = scheduler.tasks();
    let scheduler_stop = CancellationToken::new();
    tokio::spawn(scheduler.serve(scheduler::Listeners { grpc, http }, scheduler_stop.clone()));
    let seed = start_peer(dir.path(), "seed", true, &scheduler_addr, seed_tweak).await;
    let mut list = Vec::new();
    for i in 0..peers {
        list.push(start_peer(dir.path(), &format!("peer{i}"), false, &scheduler_addr, |_| {}).await);
    }
    for _ in 0..100 {
        if hosts.len() == peers + 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(hosts.len(), peers + 1, "every host announced itself");
    // Give the seed peer a moment to open its watch stream.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Cluster { dir, scheduler_addr, scheduler_http, scheduler_stop, tasks, seed, peers: list }
}

async fn dfget(
    peer: &Peer,
    url: &str,
    out: &Path,
    tweak: impl FnOnce(&mut pb::DownloadRequest),
) -> Result<pb::Finished, tonic::Status> {
    let channel = peer::rpc::connect_unix(peer.socket.clone()).await.unwrap();
    let mut client = pb::dfdaemon_client::DfdaemonClient::new(channel);
    let mut req = pb::DownloadRequest {
        url: url.into(),
        output_path: out.display().to_string(),
        piece_length: Some(PIECE),
        timeout_ms: 60_000,
        ..Default::default()
    };
    tweak(&mut req);
    let mut stream = client.download(req).await?.into_inner();
    while let Some(msg) = stream.message().await? {
        if let Some(Event::Finished(f)) = msg.event {
            return Ok(f);
        }
    }
    Err(tonic::Status::unknown("stream ended without Finished"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boundary_sizes_reach_every_peer_with_the_origin_read_once() {
    let origin = origin().await;
    let c = cluster(3).await;
    let p = PIECE as usize;
    let mut uploaded_before = uploaded_bytes(&c).await;
    for (i, len) in [0usize, 1, 128, 129, p - 1, p, p + 1, 9 * p + 7].into_iter().enumerate() {
        let url = format!("{}/bytes/{len}/{i}", origin.base);
        let expected = content(len, i as u8);
        let before = origin.sent.load(Ordering::SeqCst);
        let downloads = c.peers.iter().enumerate().map(|(k, peer)| {
            let out = c.dir.path().join(format!("out-{len}-{k}"));
            let url = url.clone();
            async move { (dfget(peer, &url, &out, |_| {}).await, out) }
        });
        for (result, out) in futures::future::join_all(downloads).await {
            let finished = result.unwrap_or_else(|e| panic!("size {len}: {e}"));
            assert_eq!(finished.content_length, len as u64);
            assert_eq!(std::fs::read(&out).unwrap(), expected, "size {len}");
        }
        let origin_bytes = origin.sent.load(Ordering::SeqCst) - before;
        assert_eq!(origin_bytes, len as u64, "size {len}: the origin must serve the content exactly once");

        // Tiny content rides in the scheduler's messages: no peer connects to another for it.
        let uploaded = uploaded_bytes(&c).await - uploaded_before;
        uploaded_before += uploaded;
        if len == 0 {
            continue;
        }
        let task = c.tasks.get(&id_of(&url)).expect("task known").lock().snapshot();
        let fetcher = task
            .peers
            .iter()
            .find(|p| p.host_id == HostId("seed-127.0.0.1-seed".into()))
            .unwrap_or_else(|| panic!("size {len}: seed fetched: {:?}", task.peers));
        let others: Vec<_> = task.peers.iter().filter(|p| p.host_id != fetcher.host_id).collect();
        assert_eq!(others.len(), c.peers.len(), "size {len}");
        match len {
            1 | 128 => {
                assert_eq!(uploaded, 0.0, "size {len}: no piece may travel over a piece connection");
                assert_eq!(fetcher.origin_pieces, 1, "size {len}");
                for p in &others {
                    assert_eq!((p.inline_pieces, p.origin_pieces), (1, 0), "size {len}: {}", p.id);
                    assert!(p.parent_pieces.is_empty(), "size {len}: {} used a parent", p.id);
                }
            }
            _ => {
                assert!(uploaded > 0.0, "size {len}: the normal path uploads between peers");
                assert!(others.iter().all(|p| p.inline_pieces == 0), "size {len}");
                assert!(others.iter().all(|p| !p.parent_pieces.is_empty()), "size {len}");
            }
        }
    }
    // Both sides count tiny bytes apart from origin and peer traffic.
    let peer_metrics = metric_text(&c.peers[0].http).await;
    assert_eq!(counter(&peer_metrics, r#"damselfly_dfdaemon_download_traffic_bytes_total{type="inline"}"#), 129.0);
    let sched_metrics = metric_text(&c.scheduler_http).await;
    let inline = r#"damselfly_scheduler_traffic_bytes_total{source="inline"}"#;
    assert_eq!(counter(&sched_metrics, inline), 3.0 * 129.0, "{sched_metrics}");
}

/// Bytes every daemon of the cluster served to other peers so far.
async fn uploaded_bytes(c: &Cluster) -> f64 {
    let mut total = 0.0;
    for peer in std::iter::once(&c.seed).chain(&c.peers) {
        total += counter(&metric_text(&peer.http).await, "damselfly_dfdaemon_upload_traffic_bytes_total");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_origin_serving_ranges_is_spread_over_the_peers_and_still_read_once() {
    let origin = origin().await;
    let c = cluster(4).await;
    let len = 40 * PIECE as usize + 123;
    let url = format!("{}/ranged/{len}/9", origin.base);
    let downloads = c.peers.iter().enumerate().map(|(k, peer)| {
        let out = c.dir.path().join(format!("ranged-{k}"));
        let url = url.clone();
        async move { (dfget(peer, &url, &out, |_| {}).await, out) }
    });
    for (result, out) in futures::future::join_all(downloads).await {
        result.unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), content(len, 9));
    }
    assert_eq!(origin.sent.load(Ordering::SeqCst), len as u64, "each byte leaves the origin once");
    let task = c.tasks.get(&id_of(&url)).unwrap().lock().snapshot();
    let fetchers: Vec<(&str, u32)> =
        task.peers.iter().filter(|p| p.origin_pieces > 0).map(|p| (p.id.0.as_str(), p.origin_pieces)).collect();
    assert!(fetchers.len() >= 3, "the pieces enter through several peers, not one: {fetchers:?}");
    assert_eq!(fetchers.iter().map(|(_, n)| n).sum::<u32>(), 41, "each piece is fetched from the origin once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduler_down_means_origin_unless_back_to_source_is_disabled() {
    let origin = origin().await;
    let c = cluster(1).await;
    c.scheduler_stop.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("{}/bytes/{}/7", origin.base, 3 * PIECE + 5);
    let out = c.dir.path().join("direct");
    dfget(&c.peers[0], &url, &out, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content(3 * PIECE as usize + 5, 7));

    let url = format!("{}/bytes/1000/8", origin.base);
    let err =
        dfget(&c.peers[0], &url, &c.dir.path().join("none"), |r| r.disable_back_to_source = true).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("back-to-source is disabled"), "{err}");
    assert!(!c.dir.path().join("none").exists());
    let _ = (&c.scheduler_addr, &c.tasks, &c.seed.data);
}

fn id_of(url: &str) -> common::ids::TaskId {
    task_id(&TaskSpec { url, piece_length: Some(PIECE), ..Default::default() }).unwrap()
}

/// Flips every byte of every content file under `data` (a disk that went bad, or a tampered
/// host), keeping each file's modification time, so the cache's seal does not notice.
fn corrupt_content(data: &Path) -> usize {
    let mut flipped = 0;
    let mut stack = vec![data.join("storage").join("content")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                let bytes: Vec<u8> = std::fs::read(&path).unwrap().iter().map(|b| !b).collect();
                std::fs::write(&path, bytes).unwrap();
                std::fs::File::options().write(true).open(&path).unwrap().set_modified(modified).unwrap();
                flipped += 1;
            }
        }
    }
    flipped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parent_serving_corrupt_bytes_is_excluded_and_the_file_is_still_right() {
    let origin = origin().await;
    let c = cluster(3).await;
    let len = 8 * PIECE as usize;
    let url = format!("{}/bytes/{len}/3", origin.base);
    for k in 0..2 {
        dfget(&c.peers[k], &url, &c.dir.path().join(format!("first-{k}")), |_| {}).await.unwrap();
    }
    // The seed goes away; peer0's disk goes bad; peer2 must still get the right bytes (from peer1).
    c.seed.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(corrupt_content(&c.peers[0].data), 1);
    let out = c.dir.path().join("after-corruption");
    dfget(&c.peers[2], &url, &out, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content(len, 3));

    let cell = c.tasks.get(&id_of(&url)).expect("task known");
    let snapshot = cell.lock().snapshot();
    let bad = snapshot.peers.iter().find(|p| p.host_id == HostId("peer0-127.0.0.1".into())).unwrap();
    assert!(bad.excluded, "the corrupt parent must be excluded from the task");
    assert!(bad.upload_failed > 0);
    let good = snapshot.peers.iter().find(|p| p.host_id == HostId("peer1-127.0.0.1".into())).unwrap();
    assert!(!good.excluded && good.upload_success > 0);

    // Both sides count it where operators look.
    let peer_metrics = metric_text(&c.peers[2].http).await;
    assert!(
        counter(&peer_metrics, r#"damselfly_dfdaemon_piece_failures_total{reason="corrupt"}"#) >= 1.0,
        "{peer_metrics}"
    );
    assert_eq!(
        counter(&peer_metrics, r#"damselfly_dfdaemon_download_traffic_bytes_total{type="remote_peer"}"#),
        len as f64
    );
    assert_eq!(
        counter(&peer_metrics, r#"damselfly_dfdaemon_download_traffic_bytes_total{type="back_to_source"}"#),
        0.0
    );
    let sched_metrics = metric_text(&c.scheduler_http).await;
    assert!(
        counter(&sched_metrics, r#"damselfly_scheduler_parent_failures_total{reason="corrupt"}"#) >= 1.0,
        "{sched_metrics}"
    );
}

async fn metric_text(base: &str) -> String {
    reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap()
}

/// The value of one sample line (0 when absent).
fn counter(text: &str, sample: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parent_dying_mid_transfer_costs_a_reschedule_not_the_download() {
    let origin = origin().await;
    // The seed uploads slowly, so peer0 is mid-transfer when the seed dies.
    let c = cluster_with(1, |cfg| cfg.upload.rate_limit = 512 * 1024).await;
    let len = 24 * PIECE as usize;
    let url = format!("{}/bytes/{len}/5", origin.base);
    let out = c.dir.path().join("survivor");
    let download = dfget(&c.peers[0], &url, &out, |_| {});
    let killer = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        c.seed.shutdown.cancel();
    };
    let (result, ()) = tokio::join!(download, killer);
    result.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content(len, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn origin_failures_through_the_cluster_are_clear_errors_and_leave_no_file() {
    let origin = origin().await;
    let c = cluster(1).await;
    let cases = [
        (format!("{}/status/404", origin.base), tonic::Code::NotFound),
        (format!("{}/status/500", origin.base), tonic::Code::Unavailable),
        (format!("{}/truncated/{}", origin.base, 4 * PIECE), tonic::Code::Unavailable),
    ];
    for (i, (url, code)) in cases.into_iter().enumerate() {
        let out = c.dir.path().join(format!("fail-{i}"));
        let err = dfget(&c.peers[0], &url, &out, |_| {}).await.unwrap_err();
        assert_eq!(err.code(), code, "{url}: {err}");
        assert!(!out.exists(), "{url}: no file may be left");
    }
}
