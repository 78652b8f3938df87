//! Registration over real gRPC, in-process on every database: a manager, schedulers that
//! register and keep alive, peers that ask which schedulers serve them.

mod support;

use std::{future::Future, time::Duration};

use proto::manager::v1 as pb;
use scheduler::{Scheduler, config::SchedulerConfig};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use server::{
    Listeners, Manager,
    config::{ManagerConfig, Overrides},
};
use support::{Backend, TestDb};
use tokio::{net::TcpListener, sync::mpsc, task::JoinHandle};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Code, transport::Channel};

type Client = pb::manager_client::ManagerClient<Channel>;

/// One `#[tokio::test]` per backend for an `async fn(Backend) -> anyhow::Result<()>`.
macro_rules! on_every_database {
    ($($name:ident),* $(,)?) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread")] async fn $name() -> anyhow::Result<()> { super::$name(super::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread")] async fn $name() -> anyhow::Result<()> { super::$name(super::Backend::Postgres).await } )* }
        mod mysql { $( #[tokio::test(flavor = "multi_thread")] async fn $name() -> anyhow::Result<()> { super::$name(super::Backend::Mysql).await } )* }
    };
}

on_every_database!(
    a_scheduler_registers_keeps_alive_follows_its_cluster_and_goes_inactive_when_stopped,
    silence_and_stale_rows_become_inactive,
    peers_get_the_active_schedulers_of_the_best_matching_cluster,
    bad_input_is_rejected_with_the_field_named,
);

/// A manager serving gRPC on loopback, and a second connection to its database for checks.
struct TestManager {
    grpc: String,
    db: DatabaseConnection,
    test_db: TestDb,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), server::Error>>,
}

impl TestManager {
    async fn start(backend: Backend, dir: &std::path::Path, keepalive_timeout_secs: u64) -> anyhow::Result<Self> {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt().with_env_filter("info").with_test_writer().try_init();
        }
        let test_db = TestDb::new(backend).await;
        let mut config = ManagerConfig::load(
            None,
            Overrides {
                data_dir: Some(dir.to_owned()),
                site_root: Some(dir.join("no-site")),
                database_url: Some(test_db.url.clone()),
                ..Default::default()
            },
        )?;
        config.grpc.keepalive_timeout_secs = keepalive_timeout_secs;
        let url = config.database.url.clone();
        let (manager, _) = Manager::open(config, Some("pw")).await?;
        let http = TcpListener::bind("127.0.0.1:0").await?;
        let grpc = TcpListener::bind("127.0.0.1:0").await?;
        let addr = grpc.local_addr()?.to_string();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(manager.serve(Listeners { http, grpc }, shutdown.clone()));
        Ok(Self { grpc: addr, db: Database::connect(url).await?, test_db, shutdown, task })
    }

    async fn client(&self) -> anyhow::Result<Client> {
        Ok(pb::manager_client::ManagerClient::connect(format!("http://{}", self.grpc)).await?)
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), self.task).await???;
        self.db.close().await?;
        self.test_db.drop_db().await;
        Ok(())
    }

    /// `state` of the scheduler row with `hostname`, if any.
    async fn scheduler_state(&self, hostname: &str) -> anyhow::Result<Option<String>> {
        let row = self
            .db
            .query_one(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT state FROM schedulers WHERE hostname = '{hostname}'"),
            ))
            .await?;
        Ok(row.map(|r| r.try_get::<String>("", "state")).transpose()?)
    }

    async fn sql(&self, sql: &str) -> anyhow::Result<()> {
        self.db.execute_unprepared(sql).await?;
        Ok(())
    }
}

/// Polls `check` until it holds, failing after `within`.
async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<bool>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await? {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn scheduler_config(manager: &str, hostname: &str) -> SchedulerConfig {
    let mut c = SchedulerConfig::default();
    c.manager.addr = manager.into();
    c.manager.keepalive_interval_secs = 1;
    c.host.hostname = hostname.into();
    c
}

struct RunningScheduler {
    addr: String,
    limits: scheduler::scheduling::LiveLimits,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), scheduler::Error>>,
}

async fn start_scheduler(config: SchedulerConfig) -> anyhow::Result<RunningScheduler> {
    let grpc = TcpListener::bind("127.0.0.1:0").await?;
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let addr = grpc.local_addr()?.to_string();
    let scheduler = Scheduler::new(config);
    let limits = scheduler.limits();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(scheduler.serve(scheduler::Listeners { grpc, http }, shutdown.clone()));
    Ok(RunningScheduler { addr, limits, shutdown, task })
}

fn peer_request(hostname: &str, ip: &str) -> pb::ListSchedulersRequest {
    pb::ListSchedulersRequest {
        hostname: hostname.into(),
        ip: ip.into(),
        os: "linux".into(),
        platform: "x86_64".into(),
        download_port: 4000,
        ..Default::default()
    }
}

async fn listed(client: &mut Client, hostname: &str, ip: &str) -> anyhow::Result<Vec<String>> {
    let resp = client.list_schedulers(peer_request(hostname, ip)).await?.into_inner();
    Ok(resp.schedulers.into_iter().map(|s| s.hostname).collect())
}

async fn a_scheduler_registers_keeps_alive_follows_its_cluster_and_goes_inactive_when_stopped(
    backend: Backend,
) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    // A long timeout: going inactive below comes from the stream ending, not from silence.
    let manager = TestManager::start(backend, dir.path(), 60).await?;
    manager.sql(r#"UPDATE clusters SET scheduler_cluster_config = '{"candidate_parent_limit": 7}'"#).await?;
    manager.sql(r#"UPDATE clusters SET peer_cluster_config = '{"load_limit": 3}'"#).await?;
    let sched = start_scheduler(scheduler_config(&manager.grpc, "sched-a")).await?;
    assert_eq!(sched.limits.get().filter_parent_limit, 15, "its own configuration until the manager answers");

    let mut client = manager.client().await?;
    eventually("the scheduler to be listed", Duration::from_secs(20), || {
        let mut client = client.clone();
        async move { Ok(listed(&mut client, "peer-1", "10.0.0.1").await? == ["sched-a"]) }
    })
    .await?;
    assert_eq!(manager.scheduler_state("sched-a").await?.as_deref(), Some("active"));
    let resp = client.list_schedulers(peer_request("peer-1", "10.0.0.1")).await?.into_inner();
    let s = &resp.schedulers[0];
    assert_eq!(
        (s.ip.as_str(), s.port.to_string(), s.cluster_id),
        ("127.0.0.1", sched.addr.rsplit(':').next().unwrap_or("").to_owned(), 1)
    );
    assert_eq!(s.features, ["schedule"]);

    // The cluster's limits replace the configuration's; unset fields take the manager's defaults.
    let limits = sched.limits.get();
    assert_eq!((limits.candidate_parent_limit, limits.filter_parent_limit), (7, 40));
    // Load limits cap what hosts announce: 3 for peers here, the default 2000 for seed peers.
    assert_eq!((limits.peer_load_limit, limits.seed_load_limit), (Some(3), Some(2000)));

    sched.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), sched.task).await???;
    eventually("the stopped scheduler to be inactive", Duration::from_secs(20), || async {
        Ok(manager.scheduler_state("sched-a").await?.as_deref() == Some("inactive"))
    })
    .await?;
    assert!(listed(&mut client, "peer-1", "10.0.0.1").await?.is_empty());
    manager.stop().await
}

async fn silence_and_stale_rows_become_inactive(backend: Backend) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manager = TestManager::start(backend, dir.path(), 1).await?;
    let mut client = manager.client().await?;
    let register = |hostname: &str| pb::UpdateSchedulerRequest {
        hostname: hostname.into(),
        ip: "10.1.0.1".into(),
        port: 8002,
        cluster_id: 1,
        ..Default::default()
    };
    let row = client.update_scheduler(register("quiet")).await?.into_inner();
    assert_eq!(row.state, "inactive", "registered but not yet kept alive");
    assert_eq!(row.cluster_config.map(|c| c.candidate_parent_limit), Some(4));

    // One message, then silence on an open stream.
    let (tx, rx) = mpsc::channel(1);
    tx.send(pb::KeepAliveRequest {
        source_type: pb::SourceType::Scheduler as i32,
        hostname: "quiet".into(),
        ip: "10.1.0.1".into(),
        cluster_id: 1,
        ..Default::default()
    })
    .await?;
    let mut stream_client = client.clone();
    let call = tokio::spawn(async move { stream_client.keep_alive(ReceiverStream::new(rx)).await });
    // Watching for "active" could miss the one-second window on a busy machine; the stamp stays.
    eventually("the keepalive to stamp it", Duration::from_secs(10), || async {
        let row = manager
            .db
            .query_one(Statement::from_string(
                manager.db.get_database_backend(),
                "SELECT last_keep_alive_at FROM schedulers WHERE hostname = 'quiet'",
            ))
            .await?;
        Ok(row
            .map(|r| r.try_get::<Option<chrono::NaiveDateTime>>("", "last_keep_alive_at"))
            .transpose()?
            .flatten()
            .is_some())
    })
    .await?;
    // The manager ends the silent stream itself and marks the scheduler inactive.
    tokio::time::timeout(Duration::from_secs(10), call).await???;
    assert_eq!(manager.scheduler_state("quiet").await?.as_deref(), Some("inactive"));
    drop(tx);

    // A row another (dead) replica left active with an old stamp is expired by the sweep.
    client.update_scheduler(register("orphan")).await?;
    manager
        .sql("UPDATE schedulers SET state = 'active', last_keep_alive_at = '2000-01-01 00:00:00' WHERE hostname = 'orphan'")
        .await?;
    eventually("the sweep to expire the orphan", Duration::from_secs(10), || async {
        Ok(manager.scheduler_state("orphan").await?.as_deref() == Some("inactive"))
    })
    .await?;
    manager.stop().await
}

async fn peers_get_the_active_schedulers_of_the_best_matching_cluster(backend: Backend) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manager = TestManager::start(backend, dir.path(), 60).await?;
    manager
        .sql(
            r#"INSERT INTO clusters (tenant_id, name, scopes, scheduler_cluster_config, seed_peer_cluster_config, peer_cluster_config, is_default)
               VALUES (1, 'web', '{"hostnames": ["^web-"]}', '{}', '{}', '{}', false),
                      (1, 'lab', '{"cidrs": ["192.168.0.0/16"], "idc": "lab"}', '{}', '{}', '{}', false)"#,
        )
        .await?;
    let in_cluster = |hostname: &str, cluster_id: u64| {
        let mut c = scheduler_config(&manager.grpc, hostname);
        c.manager.cluster_id = cluster_id;
        c
    };
    let default_sched = start_scheduler(in_cluster("sched-default", 1)).await?;
    let web_sched = start_scheduler(in_cluster("sched-web", 2)).await?;
    let mut client = manager.client().await?;
    // Registered in the web cluster but never kept alive: never listed.
    client
        .update_scheduler(pb::UpdateSchedulerRequest {
            hostname: "sched-web-idle".into(),
            ip: "127.0.0.1".into(),
            port: 1,
            cluster_id: 2,
            ..Default::default()
        })
        .await?;

    eventually("both schedulers to be listed", Duration::from_secs(20), || {
        let mut client = client.clone();
        async move {
            Ok(listed(&mut client, "web-1", "10.0.0.1").await? == ["sched-web"]
                && listed(&mut client, "db-1", "10.0.0.2").await? == ["sched-default"])
        }
    })
    .await?;
    // The lab cluster matches by CIDR and IDC but has no scheduler alive.
    let mut lab = peer_request("web-2", "192.168.1.1");
    lab.idc = "lab".into();
    assert!(client.list_schedulers(lab).await?.into_inner().schedulers.is_empty());

    // Asking recorded the peers, each in the cluster chosen for it.
    let rows = manager
        .db
        .query_all(Statement::from_string(
            manager.db.get_database_backend(),
            "SELECT hostname, cluster_id, state, os FROM peers ORDER BY hostname",
        ))
        .await?;
    let rows: Vec<(String, i64, String, String)> = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get("", "hostname")?,
                r.try_get("", "cluster_id")?,
                r.try_get("", "state")?,
                r.try_get("", "os")?,
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()?;
    assert_eq!(
        rows,
        [
            ("db-1".into(), 1, "active".into(), "linux".into()),
            ("web-1".into(), 2, "active".into(), "linux".into()),
            ("web-2".into(), 3, "active".into(), "linux".into()),
        ]
    );

    for s in [default_sched, web_sched] {
        s.shutdown.cancel();
        s.task.await??;
    }
    manager.stop().await
}

async fn bad_input_is_rejected_with_the_field_named(backend: Backend) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manager = TestManager::start(backend, dir.path(), 60).await?;
    let mut client = manager.client().await?;
    let good = pb::UpdateSchedulerRequest {
        hostname: "s".into(),
        ip: "10.0.0.1".into(),
        port: 8002,
        cluster_id: 1,
        ..Default::default()
    };
    for (bad, field) in [
        (pb::UpdateSchedulerRequest { hostname: String::new(), ..good.clone() }, "hostname"),
        (pb::UpdateSchedulerRequest { ip: "ten".into(), ..good.clone() }, "ip"),
        (pb::UpdateSchedulerRequest { port: 0, ..good.clone() }, "port"),
        (pb::UpdateSchedulerRequest { port: 70_000, ..good.clone() }, "port"),
        (pb::UpdateSchedulerRequest { cluster_id: 0, ..good.clone() }, "cluster_id"),
    ] {
        let err = client.update_scheduler(bad).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    let err = client.update_scheduler(pb::UpdateSchedulerRequest { cluster_id: 99, ..good.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = client
        .update_seed_peer(pb::UpdateSeedPeerRequest {
            hostname: "seed".into(),
            ip: "10.0.0.2".into(),
            port: 4000,
            r#type: "mega".into(),
            cluster_id: 1,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().contains("type"), "{}", err.message());
    let err = client.get_cluster_config(pb::GetClusterConfigRequest { cluster_id: 99 }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client.list_schedulers(peer_request("p", "nowhere")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Keepalive: an unspecified source is invalid; an unregistered component is not found.
    for (source_type, hostname, code) in
        [(0, "s", Code::InvalidArgument), (pb::SourceType::SeedPeer as i32, "unknown", Code::NotFound)]
    {
        let msg = pb::KeepAliveRequest {
            source_type,
            hostname: hostname.into(),
            ip: "10.0.0.1".into(),
            cluster_id: 1,
            ..Default::default()
        };
        let err = client.keep_alive(tokio_stream::iter([msg])).await.unwrap_err();
        assert_eq!(err.code(), code, "{err:?}");
    }

    // A seed peer's keepalive records its upload rate: its load on the topology.
    client
        .update_seed_peer(pb::UpdateSeedPeerRequest {
            hostname: "busy-seed".into(),
            ip: "10.0.0.3".into(),
            port: 4000,
            r#type: "super".into(),
            cluster_id: 1,
            ..Default::default()
        })
        .await?;
    let msg = pb::KeepAliveRequest {
        source_type: pb::SourceType::SeedPeer as i32,
        hostname: "busy-seed".into(),
        ip: "10.0.0.3".into(),
        cluster_id: 1,
        upload_rate: 12_345_678,
        ..Default::default()
    };
    client.keep_alive(tokio_stream::iter([msg])).await?;
    let rate = manager
        .db
        .query_one(Statement::from_string(
            manager.db.get_database_backend(),
            "SELECT upload_rate FROM seed_peers WHERE hostname = 'busy-seed'",
        ))
        .await?
        .expect("the seed peer's row")
        .try_get::<i64>("", "upload_rate")?;
    assert_eq!(rate, 12_345_678);

    let config = client.get_cluster_config(pb::GetClusterConfigRequest { cluster_id: 1 }).await?.into_inner();
    assert_eq!((config.candidate_parent_limit, config.filter_parent_limit, config.job_rate_limit), (4, 40, 10));
    assert_eq!((config.seed_peer_load_limit, config.peer_load_limit), (2000, 200));
    manager.stop().await
}

/// An origin serving `/bytes/<n>` and counting the body bytes it sends.
async fn origin() -> anyhow::Result<(String, std::sync::Arc<std::sync::atomic::AtomicU64>)> {
    use std::sync::{Arc, atomic::AtomicU64};
    let sent = Arc::new(AtomicU64::new(0));
    let counter = sent.clone();
    let app = axum::Router::new().route(
        "/bytes/{n}",
        axum::routing::get(move |method: axum::http::Method, axum::extract::Path(n): axum::extract::Path<usize>| {
            let counter = counter.clone();
            async move {
                if method == axum::http::Method::GET {
                    counter.fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
                }
                (0..n).map(|i| (i % 251) as u8).collect::<Vec<u8>>()
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((base, sent))
}

struct RunningPeer {
    socket: std::path::PathBuf,
    shutdown: CancellationToken,
}

/// A dfdaemon that knows only the manager, not the scheduler.
async fn start_peer(dir: &std::path::Path, name: &str, seed: bool, manager: &str) -> anyhow::Result<RunningPeer> {
    use peer::config::{DfdaemonConfig, Overrides};
    let data = dir.join(name);
    let mut config = DfdaemonConfig::load(
        None,
        Overrides {
            data_dir: Some(data.clone()),
            hostname: Some(name.into()),
            seed: Some(seed),
            manager_addr: Some(manager.into()),
            ..Default::default()
        },
        name,
    )?;
    config.manager.keepalive_interval_secs = 1;
    std::fs::create_dir_all(&data)?;
    let socket = config.server.socket.clone();
    let listeners = peer::Listeners {
        socket: tokio::net::UnixListener::bind(&socket)?,
        http: TcpListener::bind("127.0.0.1:0").await?,
        upload: TcpListener::bind("127.0.0.1:0").await?,
        proxy: TcpListener::bind("127.0.0.1:0").await?,
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(peer::Dfdaemon::new(config).serve(listeners, shutdown.clone()));
    Ok(RunningPeer { socket, shutdown })
}

async fn download(peer: &RunningPeer, url: &str, out: &std::path::Path) -> anyhow::Result<()> {
    use proto::dfdaemon::v1 as dfpb;
    let channel = peer::rpc::connect_unix(peer.socket.clone()).await?;
    let mut client = dfpb::dfdaemon_client::DfdaemonClient::new(channel);
    let req = dfpb::DownloadRequest {
        url: url.into(),
        output_path: out.display().to_string(),
        piece_length: Some(64 * 1024),
        timeout_ms: 60_000,
        ..Default::default()
    };
    let mut stream = client.download(req).await?.into_inner();
    while let Some(msg) = stream.message().await? {
        if let Some(dfpb::download_response::Event::Finished(_)) = msg.event {
            return Ok(());
        }
    }
    anyhow::bail!("download stream ended without Finished")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peers_find_the_scheduler_through_the_manager_and_keep_downloading_without_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manager = TestManager::start(Backend::Sqlite, dir.path(), 60).await?;
    let grpc = TcpListener::bind("127.0.0.1:0").await?;
    let http = TcpListener::bind("127.0.0.1:0").await?;
    let scheduler = Scheduler::new(scheduler_config(&manager.grpc, "sched"));
    let hosts = scheduler.hosts();
    let scheduler_stop = CancellationToken::new();
    let scheduler_task = tokio::spawn(scheduler.serve(scheduler::Listeners { grpc, http }, scheduler_stop.clone()));
    let (base, sent) = origin().await?;

    let seed = start_peer(dir.path(), "seed", true, &manager.grpc).await?;
    let first = start_peer(dir.path(), "peer-1", false, &manager.grpc).await?;
    let second = start_peer(dir.path(), "peer-2", false, &manager.grpc).await?;
    // They announce to the scheduler only once the manager has named it.
    eventually("every peer to reach the scheduler", Duration::from_secs(30), || {
        let n = hosts.len();
        async move { Ok(n == 3) }
    })
    .await?;
    // The seed peer registered itself as one and keeps alive.
    eventually("the seed peer to be active", Duration::from_secs(20), || async {
        let row = manager
            .db
            .query_one(Statement::from_string(
                manager.db.get_database_backend(),
                "SELECT state, type FROM seed_peers WHERE hostname = 'seed'",
            ))
            .await?;
        Ok(match row {
            Some(r) => r.try_get::<String>("", "state")? == "active" && r.try_get::<String>("", "type")? == "super",
            None => false,
        })
    })
    .await?;
    // Listing stamps each peer once; later stamps come from its keepalive stream.
    let stamps = || async {
        let rows = manager
            .db
            .query_all(Statement::from_string(
                manager.db.get_database_backend(),
                "SELECT last_keep_alive_at FROM peers WHERE state = 'active' ORDER BY hostname",
            ))
            .await?;
        rows.iter()
            .map(|r| r.try_get::<chrono::NaiveDateTime>("", "last_keep_alive_at"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(anyhow::Error::from)
    };
    let listed_at = stamps().await?;
    assert_eq!(listed_at.len(), 2);
    eventually("both peers to keep alive at the manager", Duration::from_secs(20), || async {
        let now = stamps().await?;
        Ok(now.len() == 2 && now.iter().zip(&listed_at).all(|(now, then)| now > then))
    })
    .await?;

    let len = 300 * 1024;
    let url = format!("{base}/bytes/{len}");
    download(&first, &url, &dir.path().join("one")).await?;
    assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), len as u64);

    // Without the manager, the peers keep their scheduler and the scheduler keeps scheduling:
    // the second peer gets every piece from the seed peer or the first peer.
    manager.stop().await?;
    download(&second, &url, &dir.path().join("two")).await?;
    assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), len as u64, "the origin was read once");
    assert_eq!(std::fs::read(dir.path().join("two"))?, std::fs::read(dir.path().join("one"))?);

    for p in [seed, first, second] {
        p.shutdown.cancel();
    }
    scheduler_stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), scheduler_task).await???;
    Ok(())
}
