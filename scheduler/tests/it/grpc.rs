//! The scheduler in-process over real gRPC and mutual TLS: hosts announce, leave, bad input is
//! rejected, and a caller may act only as what its certificate names.

use common::tls::{Component, Expect};
use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use scheduler::config::SchedulerConfig;
use testkit::scheduler::TestScheduler;
use tonic::{Code, transport::Channel};

type Client = pb::scheduler_client::SchedulerClient<Channel>;

/// A client of `scheduler` with a certificate for `component` `host` of `cluster`.
fn client_as(scheduler: &TestScheduler, component: Component, cluster: i64, host: &str) -> Client {
    Client::new(testkit::pki::channel(&scheduler.addr, component, cluster, host, Expect::scheduler(Some(1))))
}

/// A peer of cluster 1 on host `host`.
fn peer(scheduler: &TestScheduler, host: &str) -> Client {
    client_as(scheduler, Component::Peer, 1, host)
}

fn host(id: &str) -> pb_common::Host {
    pb_common::Host {
        id: id.into(),
        hostname: "h".into(),
        ip: "127.0.0.1".into(),
        upload_port: 4000,
        r#type: pb_common::HostType::Normal as i32,
        ..Default::default()
    }
}

#[tokio::test]
async fn hosts_announce_leave_and_bad_hosts_are_rejected() -> anyhow::Result<()> {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let hosts = scheduler.hosts.clone();

    let mut client = peer(&scheduler, "a");
    let resp = client.announce_host(pb::AnnounceHostRequest { host: Some(host("a")) }).await?;
    assert_eq!(resp.into_inner().host_ttl_secs, 3600);
    assert_eq!(hosts.len(), 1);

    for (bad, field) in [
        (pb_common::Host { ip: "not-an-ip".into(), ..host("b") }, "host.ip"),
        (pb_common::Host { upload_port: 70_000, ..host("b") }, "host.upload_port"),
        (pb_common::Host { r#type: 0, ..host("b") }, "host.type"),
        (pb_common::Host { id: String::new(), ..host("b") }, "host.id"),
        (pb_common::Host { id: "../etc".into(), ..host("b") }, "host.id"),
    ] {
        let err = client.announce_host(pb::AnnounceHostRequest { host: Some(bad) }).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(err.message().contains(field), "{}", err.message());
    }
    let err = client.announce_host(pb::AnnounceHostRequest { host: None }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(hosts.len(), 1);

    client.leave_host(pb::LeaveHostRequest { host_id: "a".into() }).await?;
    assert!(hosts.is_empty());
    let err = client.leave_host(pb::LeaveHostRequest { host_id: "a".into() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound);

    scheduler.stop().await;
    Ok(())
}

/// Opens an `AnnouncePeer` stream whose first message registers `task`; the scheduler's answer.
async fn register(client: &mut Client, task: pb::TaskSpec) -> Result<(), tonic::Status> {
    let register =
        pb::RegisterPeer { host_id: "a".into(), peer_id: "a-1".into(), task: Some(task), ..Default::default() };
    let first = pb::AnnouncePeerRequest { request: Some(pb::announce_peer_request::Request::Register(register)) };
    client.announce_peer(tokio_stream::iter(vec![first])).await.map(drop)
}

#[tokio::test]
async fn a_task_id_that_is_not_its_specs_is_refused_and_no_task_is_kept() -> anyhow::Result<()> {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let mut client = peer(&scheduler, "a");
    let mut manager = client_as(&scheduler, Component::Manager, 0, "manager");
    client.announce_host(pb::AnnounceHostRequest { host: Some(host("a")) }).await?;
    let url = "http://origin.test/file";
    let id = |url: &str, piece_length| {
        common::task_id::task_id(&common::task_id::TaskSpec { url, piece_length, ..Default::default() }).unwrap().0
    };
    let spec = |task_id: String| pb::TaskSpec { task_id, url: url.into(), ..Default::default() };

    for (bad, what) in [
        (spec("../../etc/cron.d/x".into()), "a path"),
        (spec(id("http://origin.test/other", None)), "another URL's id"),
        (pb::TaskSpec { piece_length: Some(100_000_000_000), ..spec(id(url, None)) }, "a huge piece"),
        (pb::TaskSpec { piece_length: Some(1), ..spec(id(url, None)) }, "a 1-byte piece"),
    ] {
        let err = register(&mut client, bad).await.unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{what}: {err:?}");
    }
    assert!(scheduler.tasks.is_empty(), "a refused registration keeps no task");
    for bad in ["../x", ""] {
        let stat = client.stat_task(pb::StatTaskRequest { task_id: bad.into() }).await.unwrap_err();
        assert_eq!(stat.code(), tonic::Code::InvalidArgument);
        let delete = manager.delete_task(pb::DeleteTaskRequest { task_id: bad.into() }).await.unwrap_err();
        assert_eq!(delete.code(), tonic::Code::InvalidArgument);
    }

    register(&mut client, spec(id(url, None))).await?;
    scheduler.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_caller_acts_only_as_what_its_certificate_names() -> anyhow::Result<()> {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let mut a = peer(&scheduler, "a");
    a.announce_host(pb::AnnounceHostRequest { host: Some(host("a")) }).await?;

    // Another host's announcement, departure, downloads and orders.
    let denied = |r: Result<(), tonic::Status>, what: &str| {
        let err = r.expect_err(what);
        assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
    };
    denied(a.announce_host(pb::AnnounceHostRequest { host: Some(host("b")) }).await.map(drop), "announce b");
    denied(a.leave_host(pb::LeaveHostRequest { host_id: "b".into() }).await.map(drop), "leave b");
    let register = pb::RegisterPeer {
        host_id: "b".into(),
        peer_id: "b-1".into(),
        task: Some(pb::TaskSpec { task_id: "0".repeat(64), url: "http://o/f".into(), ..Default::default() }),
        ..Default::default()
    };
    let first = pb::AnnouncePeerRequest { request: Some(pb::announce_peer_request::Request::Register(register)) };
    denied(a.announce_peer(tokio_stream::iter(vec![first])).await.map(drop), "register a download as b");
    denied(a.watch_host_orders(pb::WatchHostOrdersRequest { host_id: "b".into() }).await.map(drop), "b's orders");
    // Seed-only and manager-only calls.
    let seed_host = pb_common::Host { r#type: pb_common::HostType::Seed as i32, ..host("a") };
    denied(a.announce_host(pb::AnnounceHostRequest { host: Some(seed_host) }).await.map(drop), "a peer as a seed");
    denied(a.watch_seed_tasks(pb::WatchSeedTasksRequest { host_id: "a".into() }).await.map(drop), "seed orders");
    denied(a.delete_task(pb::DeleteTaskRequest { task_id: "0".repeat(64) }).await.map(drop), "delete a task");
    // The same host name in another cluster, and a scheduler's certificate calling as a peer.
    let mut elsewhere = client_as(&scheduler, Component::Peer, 2, "a");
    denied(elsewhere.announce_host(pb::AnnounceHostRequest { host: Some(host("a")) }).await.map(drop), "cluster 2");
    let mut sched = client_as(&scheduler, Component::Scheduler, 1, "a");
    denied(sched.announce_host(pb::AnnounceHostRequest { host: Some(host("a")) }).await.map(drop), "a scheduler");
    assert_eq!(scheduler.hosts.len(), 1, "only a's own announcement counted");
    scheduler.stop().await;
    Ok(())
}

#[tokio::test]
async fn a_client_without_a_certificate_of_the_cluster_ca_is_refused() -> anyhow::Result<()> {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    // Plain text, as an old or hostile client would speak.
    let mut plain = Client::connect(scheduler.endpoint()).await.map(Some).unwrap_or(None);
    if let Some(plain) = plain.as_mut() {
        let err = plain.announce_host(pb::AnnounceHostRequest { host: Some(host("a")) }).await.unwrap_err();
        assert_ne!(err.code(), Code::Ok);
    }
    // TLS with a certificate from another CA, naming a perfectly good identity.
    let (stranger_ca, _) = common::tls::CertificateAuthority::generate("stranger").unwrap();
    let identity =
        common::tls::Identity { component: Component::Peer, cluster_id: 1, host_id: common::ids::HostId("a".into()) };
    let creds = stranger_ca.issue(&identity, &Default::default(), std::time::Duration::from_secs(3600)).unwrap();
    // It trusts the cluster's CA for the server, so only the server's check can refuse it.
    let mut config = (*creds.client_config(Expect::scheduler(Some(1))).unwrap()).clone();
    config.dangerous().set_certificate_verifier(std::sync::Arc::new(
        common::tls::verify::ComponentVerifier::new(&[testkit::pki::ca().cert().clone()], Expect::scheduler(Some(1)))
            .unwrap(),
    ));
    let channel =
        common::tls::channel(&scheduler.addr, std::sync::Arc::new(config), std::time::Duration::from_secs(3)).unwrap();
    let err = Client::new(channel).announce_host(pb::AnnounceHostRequest { host: Some(host("a")) }).await.unwrap_err();
    assert!(format!("{err:?}").contains("UnknownCA"), "the handshake refuses it: {err:?}");
    assert!(scheduler.hosts.is_empty(), "nothing announced without a certificate of the cluster");
    scheduler.stop().await;
    Ok(())
}

/// An operator's certificate (`damselfly cert --component operator`, for a site without a
/// manager) starts preheats on its own cluster's scheduler and does nothing else: not another
/// cluster's, no task deletion, no reads, no announcing as a host.
#[tokio::test]
async fn an_operator_certificate_preheats_in_its_own_cluster_only() -> anyhow::Result<()> {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let mut a = peer(&scheduler, "a");
    a.announce_host(pb::AnnounceHostRequest { host: Some(host("a")) }).await?;
    let _orders = a.watch_host_orders(pb::WatchHostOrdersRequest { host_id: "a".into() }).await?;
    let preheat = || pb::PreheatRequest {
        tasks: vec![pb::TaskSpec { url: "http://origin.example/f".into(), ..Default::default() }],
        scope: pb::PreheatScope::AllPeers as i32,
        ..Default::default()
    };
    let mut operator = client_as(&scheduler, Component::Operator, 1, "alice");
    let mut events = operator.preheat(preheat()).await?.into_inner();
    match events.message().await? {
        Some(pb::PreheatEvent { event: Some(pb::preheat_event::Event::Hosts(h)) }) => {
            assert_eq!(h.hosts.iter().map(|h| h.host_id.as_str()).collect::<Vec<_>>(), ["a"]);
        }
        other => panic!("the hosts picked first, not {other:?}"),
    }
    drop(events);

    let denied = |r: Result<(), tonic::Status>, what: &str| {
        let err = r.expect_err(what);
        assert_eq!(err.code(), Code::PermissionDenied, "{what}: {err:?}");
    };
    let mut elsewhere = client_as(&scheduler, Component::Operator, 2, "alice");
    denied(elsewhere.preheat(preheat()).await.map(drop), "an operator of cluster 2");
    denied(operator.delete_task(pb::DeleteTaskRequest { task_id: "0".repeat(64) }).await.map(drop), "delete");
    denied(operator.stat_task(pb::StatTaskRequest { task_id: "0".repeat(64) }).await.map(drop), "stat");
    denied(operator.announce_host(pb::AnnounceHostRequest { host: Some(host("alice")) }).await.map(drop), "announce");
    denied(a.preheat(preheat()).await.map(drop), "a peer's certificate");
    scheduler.stop().await;
    Ok(())
}
