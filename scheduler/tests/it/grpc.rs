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
