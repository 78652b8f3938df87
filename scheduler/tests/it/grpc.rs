//! The scheduler in-process over real gRPC: hosts announce, leave, and bad input is rejected.

use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use scheduler::config::SchedulerConfig;
use testkit::scheduler::TestScheduler;

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

    let mut client = pb::scheduler_client::SchedulerClient::connect(scheduler.endpoint()).await?;
    let resp = client.announce_host(pb::AnnounceHostRequest { host: Some(host("a")) }).await?;
    assert_eq!(resp.into_inner().host_ttl_secs, 3600);
    assert_eq!(hosts.len(), 1);

    for (bad, field) in [
        (pb_common::Host { ip: "not-an-ip".into(), ..host("b") }, "host.ip"),
        (pb_common::Host { upload_port: 70_000, ..host("b") }, "host.upload_port"),
        (pb_common::Host { r#type: 0, ..host("b") }, "host.type"),
        (pb_common::Host { id: String::new(), ..host("b") }, "host.id"),
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
async fn register(
    client: &mut pb::scheduler_client::SchedulerClient<tonic::transport::Channel>,
    task: pb::TaskSpec,
) -> Result<(), tonic::Status> {
    let register =
        pb::RegisterPeer { host_id: "a".into(), peer_id: "a-1".into(), task: Some(task), ..Default::default() };
    let first = pb::AnnouncePeerRequest { request: Some(pb::announce_peer_request::Request::Register(register)) };
    client.announce_peer(tokio_stream::iter(vec![first])).await.map(drop)
}

#[tokio::test]
async fn a_task_id_that_is_not_its_specs_is_refused_and_no_task_is_kept() -> anyhow::Result<()> {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let mut client = pb::scheduler_client::SchedulerClient::connect(scheduler.endpoint()).await?;
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
        let delete = client.delete_task(pb::DeleteTaskRequest { task_id: bad.into() }).await.unwrap_err();
        assert_eq!(delete.code(), tonic::Code::InvalidArgument);
    }

    register(&mut client, spec(id(url, None))).await?;
    scheduler.stop().await;
    Ok(())
}
