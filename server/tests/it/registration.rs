//! Registration over real gRPC and mutual TLS, in-process on every database: a manager,
//! schedulers that register and keep alive, peers that ask which schedulers serve them, each
//! only as what its certificate names.

use std::{future::Future, time::Duration};

use common::tls::{Component, Expect};
use proto::manager::v1 as pb;
use sea_orm::{ConnectionTrait, Statement};
use testkit::{
    db::Backend,
    manager::TestManager,
    origin::Origin,
    peer::PeerBuilder,
    scheduler::{TestScheduler, registering},
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, transport::Channel};

type Client = pb::manager_client::ManagerClient<Channel>;

testkit::on_every_database!(
    a_scheduler_registers_keeps_alive_follows_its_cluster_and_goes_inactive_when_stopped,
    silence_and_stale_rows_become_inactive,
    peers_get_the_active_schedulers_of_the_best_matching_cluster,
    bad_input_is_rejected_with_the_field_named,
);

/// A manager whose registration streams end after `keepalive_timeout_secs` of silence.
async fn start(backend: Backend, keepalive_timeout_secs: u64) -> TestManager {
    TestManager::start_with(backend, |c| c.grpc.keepalive_timeout_secs = keepalive_timeout_secs).await
}

/// A client of the manager with a certificate of the test CA for `component` `host_id` of `cluster`.
fn client_as(manager: &TestManager, component: Component, cluster: i64, host_id: &str) -> Client {
    Client::new(testkit::pki::channel(&manager.grpc, component, cluster, host_id, Expect::MANAGER))
}

/// A peer of cluster 1 named as `hostname` at `ip` would be.
fn peer_client(manager: &TestManager, hostname: &str, ip: &str) -> Client {
    client_as(manager, Component::Peer, 1, &format!("{hostname}-{ip}"))
}

/// A scheduler of `cluster` named as `hostname` at `ip` would be.
fn scheduler_client(manager: &TestManager, cluster: i64, hostname: &str, ip: &str) -> Client {
    client_as(manager, Component::Scheduler, cluster, &format!("{hostname}-{ip}"))
}

/// `state` of the scheduler row with `hostname`, if any.
async fn scheduler_state(manager: &TestManager, hostname: &str) -> anyhow::Result<Option<String>> {
    let row = manager
        .sql
        .query_one(Statement::from_string(
            manager.sql.get_database_backend(),
            format!("SELECT state FROM schedulers WHERE hostname = '{hostname}'"),
        ))
        .await?;
    Ok(row.map(|r| r.try_get::<String>("", "state")).transpose()?)
}

async fn sql(manager: &TestManager, sql: &str) -> anyhow::Result<()> {
    manager.sql.execute_unprepared(sql).await?;
    Ok(())
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
    // A long timeout: going inactive below comes from the stream ending, not from silence.
    let manager = start(backend, 60).await;
    sql(&manager, r#"UPDATE clusters SET scheduler_cluster_config = '{"candidate_parent_limit": 7}'"#).await?;
    sql(&manager, r#"UPDATE clusters SET peer_cluster_config = '{"load_limit": 3}'"#).await?;
    let sched = TestScheduler::start(registering(&manager.grpc, "sched-a")).await;
    assert_eq!(sched.limits.get().filter_parent_limit, 15, "its own configuration until the manager answers");

    let mut client = peer_client(&manager, "peer-1", "10.0.0.1");
    eventually("the scheduler to be listed", Duration::from_secs(20), || {
        let mut client = client.clone();
        async move { Ok(listed(&mut client, "peer-1", "10.0.0.1").await? == ["sched-a"]) }
    })
    .await?;
    assert_eq!(scheduler_state(&manager, "sched-a").await?.as_deref(), Some("active"));
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

    sched.stop().await;
    eventually("the stopped scheduler to be inactive", Duration::from_secs(20), || async {
        Ok(scheduler_state(&manager, "sched-a").await?.as_deref() == Some("inactive"))
    })
    .await?;
    assert!(listed(&mut client, "peer-1", "10.0.0.1").await?.is_empty());
    manager.stop().await;
    Ok(())
}

async fn silence_and_stale_rows_become_inactive(backend: Backend) -> anyhow::Result<()> {
    let manager = start(backend, 1).await;
    let mut client = scheduler_client(&manager, 1, "quiet", "10.1.0.1");
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
            .sql
            .query_one(Statement::from_string(
                manager.sql.get_database_backend(),
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
    assert_eq!(scheduler_state(&manager, "quiet").await?.as_deref(), Some("inactive"));
    drop(tx);

    // A row another (dead) replica left active with an old stamp is expired by the sweep.
    scheduler_client(&manager, 1, "orphan", "10.1.0.1").update_scheduler(register("orphan")).await?;
    sql(
        &manager,
        "UPDATE schedulers SET state = 'active', last_keep_alive_at = '2000-01-01 00:00:00' WHERE hostname = 'orphan'",
    )
    .await?;
    eventually("the sweep to expire the orphan", Duration::from_secs(10), || async {
        Ok(scheduler_state(&manager, "orphan").await?.as_deref() == Some("inactive"))
    })
    .await?;
    manager.stop().await;
    Ok(())
}

/// Scopes rank clusters for a peer whose certificate does not bind it to one: only without TLS,
/// since a join token names its cluster (see `a_peer_is_placed_only_in_the_cluster_its_certificate_names`).
async fn peers_get_the_active_schedulers_of_the_best_matching_cluster(backend: Backend) -> anyhow::Result<()> {
    let manager = TestManager::start_with(backend, |c| c.tls.mode = common::tls::Mode::Plaintext).await;
    sql(
        &manager,
        r#"INSERT INTO clusters (tenant_id, name, scopes, scheduler_cluster_config, seed_peer_cluster_config, peer_cluster_config, is_default)
               VALUES (1, 'web', '{"hostnames": ["^web-"]}', '{}', '{}', '{}', false),
                      (1, 'lab', '{"cidrs": ["192.168.0.0/16"], "idc": "lab"}', '{}', '{}', '{}', false)"#,
    )
    .await?;
    let in_cluster = |hostname: &str, cluster_id: u64| {
        let mut c = registering(&manager.grpc, hostname);
        c.manager.cluster_id = cluster_id;
        c.tls.mode = common::tls::Mode::Plaintext;
        c
    };
    let default_sched = TestScheduler::start(in_cluster("sched-default", 1)).await;
    let web_sched = TestScheduler::start(in_cluster("sched-web", 2)).await;
    let mut client = Client::connect(format!("http://{}", manager.grpc)).await?;
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
        .sql
        .query_all(Statement::from_string(
            manager.sql.get_database_backend(),
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
        s.stop().await;
    }
    manager.stop().await;
    Ok(())
}

async fn bad_input_is_rejected_with_the_field_named(backend: Backend) -> anyhow::Result<()> {
    let manager = start(backend, 60).await;
    let mut client = scheduler_client(&manager, 1, "s", "10.0.0.1");
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
    let mut of_99 = scheduler_client(&manager, 99, "s", "10.0.0.1");
    let err = of_99.update_scheduler(pb::UpdateSchedulerRequest { cluster_id: 99, ..good.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    let err = client_as(&manager, Component::SeedPeer, 1, "seed-10.0.0.2-seed")
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
    let err = of_99.get_cluster_config(pb::GetClusterConfigRequest { cluster_id: 99 }).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = peer_client(&manager, "p", "10.0.0.9").list_schedulers(peer_request("p", "nowhere")).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);

    // Keepalive: an unspecified source is invalid; an unregistered component is not found.
    let mut unknown_seed = client_as(&manager, Component::SeedPeer, 1, "unknown-10.0.0.1-seed");
    for (client, source_type, hostname, code) in [
        (&mut client, 0, "s", Code::InvalidArgument),
        (&mut unknown_seed, pb::SourceType::SeedPeer as i32, "unknown", Code::NotFound),
    ] {
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
    let mut busy = client_as(&manager, Component::SeedPeer, 1, "busy-seed-10.0.0.3-seed");
    busy.update_seed_peer(pb::UpdateSeedPeerRequest {
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
    busy.keep_alive(tokio_stream::iter([msg])).await?;
    let rate = manager
        .sql
        .query_one(Statement::from_string(
            manager.sql.get_database_backend(),
            "SELECT upload_rate FROM seed_peers WHERE hostname = 'busy-seed'",
        ))
        .await?
        .expect("the seed peer's row")
        .try_get::<i64>("", "upload_rate")?;
    assert_eq!(rate, 12_345_678);

    let config = client.get_cluster_config(pb::GetClusterConfigRequest { cluster_id: 1 }).await?.into_inner();
    assert_eq!((config.candidate_parent_limit, config.filter_parent_limit, config.job_rate_limit), (4, 40, 10));
    assert_eq!((config.seed_peer_load_limit, config.peer_load_limit), (2000, 200));
    manager.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peers_find_the_scheduler_through_the_manager_and_keep_downloading_without_it() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let manager = start(Backend::Sqlite, 60).await;
    let scheduler = TestScheduler::start(registering(&manager.grpc, "sched")).await;
    let hosts = scheduler.hosts.clone();
    let origin = Origin::start().await;
    let base = &origin.base;

    // A dfdaemon that knows only the manager, not the scheduler.
    let peer = |name: &str, seed: bool| {
        PeerBuilder::new(dir.path().join(name), name).seed(seed).manager(&manager.grpc).start()
    };
    let seed = peer("seed", true).await;
    let first = peer("peer-1", false).await;
    let second = peer("peer-2", false).await;
    // They announce to the scheduler only once the manager has named it.
    eventually("every peer to reach the scheduler", Duration::from_secs(30), || {
        let n = hosts.len();
        async move { Ok(n == 3) }
    })
    .await?;
    // The seed peer registered itself as one and keeps alive.
    eventually("the seed peer to be active", Duration::from_secs(20), || async {
        let row = manager
            .sql
            .query_one(Statement::from_string(
                manager.sql.get_database_backend(),
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
            .sql
            .query_all(Statement::from_string(
                manager.sql.get_database_backend(),
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
    first.dfget(&url, &dir.path().join("one"), |_| {}).await?;
    assert_eq!(origin.sent(), len as u64);

    // Without the manager, the peers keep their scheduler and the scheduler keeps scheduling:
    // the second peer gets every piece from the seed peer or the first peer.
    manager.stop().await;
    second.dfget(&url, &dir.path().join("two"), |_| {}).await?;
    assert_eq!(origin.sent(), len as u64, "the origin was read once");
    assert_eq!(std::fs::read(dir.path().join("two"))?, std::fs::read(dir.path().join("one"))?);

    for p in [seed, first, second] {
        p.shutdown.cancel();
    }
    scheduler.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_component_registers_and_keeps_alive_only_as_itself() -> anyhow::Result<()> {
    let manager = start(Backend::Sqlite, 60).await;
    let good = pb::UpdateSchedulerRequest {
        hostname: "s".into(),
        ip: "10.0.0.1".into(),
        port: 8002,
        cluster_id: 1,
        ..Default::default()
    };
    for (mut client, what) in [
        (scheduler_client(&manager, 1, "t", "10.0.0.1"), "another host's certificate"),
        (scheduler_client(&manager, 2, "s", "10.0.0.1"), "another cluster's certificate"),
        (peer_client(&manager, "s", "10.0.0.1"), "a peer's certificate"),
    ] {
        let err = client.update_scheduler(good.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
        let alive = pb::KeepAliveRequest {
            source_type: pb::SourceType::Scheduler as i32,
            hostname: "s".into(),
            ip: "10.0.0.1".into(),
            cluster_id: 1,
            ..Default::default()
        };
        let err = client.keep_alive(tokio_stream::iter([alive])).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
    }
    // TLS without a certificate: only enrolment answers.
    let anonymous = common::tls::verify::PinnedManager::new(&testkit::pki::ca().fingerprint())?.client_config()?;
    let mut anonymous = Client::new(common::tls::channel(&manager.grpc, anonymous, Duration::from_secs(3))?);
    let err = anonymous.update_scheduler(good.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = anonymous.list_schedulers(peer_request("p", "10.0.0.2")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    // Plain text gets no answer at all.
    if let Ok(mut plain) = Client::connect(format!("http://{}", manager.grpc)).await {
        assert!(plain.update_scheduler(good.clone()).await.is_err());
    }
    let rows = manager
        .sql
        .query_all(Statement::from_string(manager.sql.get_database_backend(), "SELECT id FROM schedulers"))
        .await?;
    assert!(rows.is_empty(), "nothing was registered");
    // Its own certificate registers it.
    scheduler_client(&manager, 1, "s", "10.0.0.1").update_scheduler(good).await?;
    manager.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_peer_is_placed_only_in_the_cluster_its_certificate_names() -> anyhow::Result<()> {
    let manager = start(Backend::Sqlite, 60).await;
    // A cluster whose scopes claim every host, as a greedy tenant would write them.
    sql(
        &manager,
        r#"INSERT INTO clusters (tenant_id, name, scopes, scheduler_cluster_config, seed_peer_cluster_config, peer_cluster_config, is_default)
               VALUES (1, 'greedy', '{"hostnames": [".*"], "cidrs": ["0.0.0.0/0"], "idc": "dc"}', '{}', '{}', '{}', false)"#,
    )
    .await?;
    let mut request = peer_request("web-1", "10.0.0.1");
    request.idc = "dc".into();
    let placed = peer_client(&manager, "web-1", "10.0.0.1").list_schedulers(request.clone()).await?.into_inner();
    assert_eq!(placed.cluster_id, 1, "the greedy cluster captured a peer enrolled in cluster 1");
    let greedy = client_as(&manager, Component::Peer, 2, "web-1-10.0.0.1");
    assert_eq!(greedy.clone().list_schedulers(request).await?.into_inner().cluster_id, 2);
    // A peer's certificate lists only as its own host.
    let err = greedy.clone().list_schedulers(peer_request("web-2", "10.0.0.2")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // And reads only its own cluster's settings.
    let err = greedy.clone().get_cluster_config(pb::GetClusterConfigRequest { cluster_id: 1 }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    manager.stop().await;
    Ok(())
}

#[tokio::test]
async fn enrolment_turns_a_join_token_into_a_certificate_naming_what_the_token_says() -> anyhow::Result<()> {
    use common::tls::{Credentials, Identity, JoinToken, KeyRequest};
    let manager = start(Backend::Sqlite, 60).await;
    let created = manager
        .post(
            "/api/v1/clusters/1/join-tokens",
            &manager.root,
            serde_json::json!({"role": "seed_peer", "name": "seeds", "max_uses": 1}),
        )
        .await
        .expect(201);
    let token = created.body["token"].as_str().expect("the token, shown once").to_owned();
    let join = JoinToken::parse(&token)?;
    assert_eq!(join.ca_sha256(), testkit::pki::ca().fingerprint(), "the token pins the manager's CA");

    let request = KeyRequest::generate()?;
    let key = request.key_pem().to_owned();
    let ip: std::net::IpAddr = "127.0.0.1".parse()?;
    let (chain, ca) = proto::enrol::enrol(&manager.grpc, join.clone(), request, "seed", ip).await?;
    let credentials = Credentials::from_pem(&chain, &key, &ca)?;
    let expected = Identity {
        component: Component::SeedPeer,
        cluster_id: 1,
        host_id: common::ids::HostId("seed-127.0.0.1-seed".into()),
    };
    assert_eq!(credentials.identity, expected);
    // The certificate works, as what it names.
    let tls = credentials.client_config(Expect::MANAGER)?;
    let mut client = Client::new(common::tls::channel(&manager.grpc, tls, Duration::from_secs(3))?);
    let seed = pb::UpdateSeedPeerRequest {
        hostname: "seed".into(),
        ip: "127.0.0.1".into(),
        port: 4000,
        cluster_id: 1,
        ..Default::default()
    };
    client.update_seed_peer(seed.clone()).await?;
    let err = client.update_scheduler(pb::UpdateSchedulerRequest {
        hostname: "seed".into(),
        ip: "127.0.0.1".into(),
        port: 8002,
        cluster_id: 1,
        ..Default::default()
    });
    assert_eq!(err.await.unwrap_err().code(), Code::PermissionDenied, "a seed peer's token makes no scheduler");

    // Used up, made up, or pinning another CA: no certificate.
    let again = proto::enrol::enrol(&manager.grpc, join, KeyRequest::generate()?, "seed", ip).await;
    assert!(again.unwrap_err().to_string().contains("refused"), "a single-use token served twice");
    let (prefix, _) = token.rsplit_once('.').unwrap();
    let (head, _) = prefix.rsplit_once('.').unwrap();
    let made_up = JoinToken::parse(&format!("{head}.{}.{}", "A".repeat(43), join_pin(&token)))?;
    let err = proto::enrol::enrol(&manager.grpc, made_up, KeyRequest::generate()?, "seed", ip).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    let other_ca = JoinToken::parse(&format!("{prefix}.{}", "0".repeat(64)))?;
    let err = proto::enrol::enrol(&manager.grpc, other_ca, KeyRequest::generate()?, "seed", ip).await.unwrap_err();
    assert!(!err.to_string().contains("refused"), "the client refuses the manager before sending the token: {err}");
    manager.stop().await;
    Ok(())
}

fn join_pin(token: &str) -> &str {
    token.rsplit_once('.').map_or("", |(_, pin)| pin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_component_renews_its_certificate_before_it_expires() -> anyhow::Result<()> {
    use common::tls::{Identity, ca::AltNames};
    let manager = start(Backend::Sqlite, 60).await;
    let dir = tempfile::tempdir()?;
    // A certificate that lasts 6 s: renewed at 4 s, expired at 6 s.
    let identity =
        Identity { component: Component::Peer, cluster_id: 1, host_id: common::ids::HostId("short-10.0.0.5".into()) };
    let lasting = Duration::from_secs(6);
    let current = testkit::pki::ca().issue(&identity, &AltNames::default(), lasting)?;
    let expires = current.not_after;
    // A channel made now, first used after the old certificate expired.
    let tls = current.client_config(Expect::MANAGER)?;
    let mut later = Client::new(common::tls::channel(&manager.grpc, tls, Duration::from_secs(3))?);
    let shutdown = tokio_util::sync::CancellationToken::new();
    let renewing = tokio::spawn(proto::enrol::keep_renewed(
        manager.grpc.clone(),
        current.clone(),
        dir.path().into(),
        shutdown.clone(),
    ));

    eventually("the renewed certificate to be kept", Duration::from_secs(15), || async {
        Ok(common::tls::Credentials::load(dir.path())?.is_some_and(|c| c.not_after > expires))
    })
    .await?;
    let kept = common::tls::Credentials::load(dir.path())?.unwrap();
    assert_eq!(kept.identity, identity, "a renewal names what the old certificate named");
    let wait = expires.duration_since(std::time::SystemTime::now()).unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_secs(1)).await;
    later.list_schedulers(peer_request("short", "10.0.0.5")).await?;

    // The call above could only have used the renewed certificate: the old one has expired.
    let old = common::tls::Credentials::from_pem(current.cert_pem(), current.key_pem(), current.ca_pem());
    assert!(old.is_err(), "the first certificate has expired");
    shutdown.cancel();
    renewing.await?;
    manager.stop().await;
    Ok(())
}

#[tokio::test]
async fn enrolment_waits_for_a_manager_that_is_not_up_yet() -> anyhow::Result<()> {
    // A port nobody listens on: the component keeps trying instead of giving up at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let token = common::tls::JoinToken::parse(&format!("dfj1.1.secret.{}", testkit::pki::ca().fingerprint()))?;
    let request = common::tls::KeyRequest::generate()?;
    let addr = closed.to_string();
    let enrolling = proto::enrol::enrol(&addr, token, request, "early", "10.0.0.8".parse()?);
    assert!(
        tokio::time::timeout(Duration::from_secs(2), enrolling).await.is_err(),
        "enrolment gave up on an unreachable manager at once"
    );
    Ok(())
}

#[tokio::test]
async fn a_refused_enrolment_does_not_use_up_its_token() -> anyhow::Result<()> {
    use common::tls::{JoinToken, KeyRequest};
    let manager = start(Backend::Sqlite, 60).await;
    let created = manager
        .post(
            "/api/v1/clusters/1/join-tokens",
            &manager.root,
            serde_json::json!({"role": "peer", "name": "once", "max_uses": 1}),
        )
        .await
        .expect(201);
    let join = JoinToken::parse(created.body["token"].as_str().unwrap())?;
    let ip: std::net::IpAddr = "127.0.0.1".parse()?;
    // Another host's address than the one the request comes from: no certificate for it.
    let elsewhere: std::net::IpAddr = "10.0.0.9".parse()?;
    let err =
        proto::enrol::enrol(&manager.grpc, join.clone(), KeyRequest::generate()?, "ok", elsewhere).await.unwrap_err();
    assert!(err.to_string().contains("comes from 127.0.0.1"), "{err}");
    // A host name no host id can hold, and a request whose signature does not hold.
    let err = proto::enrol::enrol(&manager.grpc, join.clone(), KeyRequest::generate()?, "a/b", ip).await.unwrap_err();
    assert!(err.to_string().contains("host id"), "{err}");
    let mut broken = KeyRequest::generate()?;
    let last = broken.csr_der.len() - 1;
    broken.csr_der[last] ^= 1;
    let err = proto::enrol::enrol(&manager.grpc, join.clone(), broken, "ok", ip).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
    // The single use is still there.
    proto::enrol::enrol(&manager.grpc, join, KeyRequest::generate()?, "ok", ip).await?;
    manager.stop().await;

    // Behind a NAT the operator turns the address check off.
    let behind_nat = TestManager::start_with(Backend::Sqlite, |c| c.tls.enrolment_address_check = false).await;
    let created = behind_nat
        .post("/api/v1/clusters/1/join-tokens", &behind_nat.root, serde_json::json!({"role": "peer", "name": "nat"}))
        .await
        .expect(201);
    let join = JoinToken::parse(created.body["token"].as_str().unwrap())?;
    proto::enrol::enrol(&behind_nat.grpc, join, KeyRequest::generate()?, "ok", elsewhere).await?;
    behind_nat.stop().await;
    Ok(())
}
