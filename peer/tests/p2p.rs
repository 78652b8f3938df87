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

use axum::{Router, extract::Path as UrlPath, extract::State, routing::get};
use peer::{
    Dfdaemon, Listeners,
    config::{DfdaemonConfig, Overrides},
};
use proto::dfdaemon::v1::{self as pb, download_response::Event};
use scheduler::{Scheduler, config::SchedulerConfig, resource::Hosts};
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
            get(|State(sent): State<Arc<AtomicU64>>, UrlPath((n, seed)): UrlPath<(usize, u8)>| async move {
                sent.fetch_add(n as u64, Ordering::SeqCst);
                content(n, seed)
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
    data: PathBuf,
    shutdown: CancellationToken,
}

struct Cluster {
    dir: tempfile::TempDir,
    scheduler_addr: String,
    scheduler_stop: CancellationToken,
    hosts: Arc<Hosts>,
    seed: Peer,
    peers: Vec<Peer>,
}

async fn start_peer(dir: &Path, name: &str, seed: bool, scheduler: &str) -> Peer {
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
    std::fs::create_dir_all(&data).unwrap();
    let socket = config.server.socket.clone();
    let listeners = Listeners {
        socket: UnixListener::bind(&socket).unwrap(),
        http: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        upload: TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(Dfdaemon::new(config).serve(listeners, shutdown.clone()));
    Peer { socket, data, shutdown }
}

async fn cluster(peers: usize) -> Cluster {
    if std::env::var_os("TEST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
    }
    let dir = tempfile::tempdir().unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheduler_addr = grpc.local_addr().unwrap().to_string();
    let scheduler = Scheduler::new(SchedulerConfig::default());
    let hosts = scheduler.hosts();
    let scheduler_stop = CancellationToken::new();
    tokio::spawn(scheduler.serve(scheduler::Listeners { grpc, http }, scheduler_stop.clone()));
    let seed = start_peer(dir.path(), "seed", true, &scheduler_addr).await;
    let mut list = Vec::new();
    for i in 0..peers {
        list.push(start_peer(dir.path(), &format!("peer{i}"), false, &scheduler_addr).await);
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
    Cluster { dir, scheduler_addr, scheduler_stop, hosts, seed, peers: list }
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
    }
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
    let _ = (&c.scheduler_addr, &c.hosts, &c.seed.data, &c.seed.shutdown);
}
