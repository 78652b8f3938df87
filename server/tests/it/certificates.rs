//! Certificate revocation: the manager records every certificate its CA issues; an operator who
//! may change the cluster lists them and revokes a host's, and from then on the manager refuses
//! them at once (new connections, calls on connections already open, keepalive streams already
//! open), a scheduler of the cluster within one settings refresh (its streams to the host end),
//! while the host may enrol again and is welcome with its new certificate.

use std::time::Duration;

use common::tls::{Credentials, Expect, JoinToken, KeyRequest, serial_of};
use proto::{manager::v1 as pb, scheduler::v1 as sched};
use serde_json::json;
use testkit::{db::Backend, manager::TestManager, scheduler::TestScheduler};
use tonic::Code;

type Client = pb::manager_client::ManagerClient<tonic::transport::Channel>;

testkit::on_every_database!(revoked_certificates_are_refused_by_the_manager_at_once);

/// Enrols `hostname` at `ip` as a peer of cluster 1 with `token`; answers its credentials.
async fn enrol(m: &TestManager, token: &str, hostname: &str, ip: &str) -> Credentials {
    let request = KeyRequest::generate().unwrap();
    let key = request.key_pem().to_owned();
    let join = JoinToken::parse(token).unwrap();
    let (chain, ca) = proto::enrol::enrol(&m.grpc, join, request, hostname, ip.parse().unwrap()).await.unwrap();
    Credentials::from_pem(&chain, &key, &ca).unwrap()
}

/// A manager client presenting `c`, on a connection of its own.
fn client(m: &TestManager, c: &Credentials) -> Client {
    let tls = c.client_config(Expect::MANAGER).unwrap();
    Client::new(common::tls::channel(&m.grpc, tls, Duration::from_secs(3)).unwrap())
}

fn listing(hostname: &str, ip: &str) -> pb::ListSchedulersRequest {
    pb::ListSchedulersRequest { hostname: hostname.into(), ip: ip.into(), ..Default::default() }
}

fn serial(c: &Credentials) -> String {
    serial_of(&c.chain[0]).unwrap()
}

async fn peer_token(m: &TestManager) -> String {
    let made = m.post("/api/v1/clusters/1/join-tokens", &m.root, json!({"role": "peer", "name": "peers"})).await;
    made.expect(201).body["token"].as_str().unwrap().to_owned()
}

async fn revoked_certificates_are_refused_by_the_manager_at_once(backend: Backend) {
    let m = TestManager::start(backend).await;
    let token = peer_token(&m).await;
    let (web1, web2) = (enrol(&m, &token, "web-1", "127.0.0.1").await, enrol(&m, &token, "web-2", "127.0.0.1").await);
    let (mut one, mut two) = (client(&m, &web1), client(&m, &web2));
    one.list_schedulers(listing("web-1", "127.0.0.1")).await.expect("a fresh certificate works");
    two.list_schedulers(listing("web-2", "127.0.0.1")).await.unwrap();

    // Every certificate issued is on record, newest first.
    let listed = m.get("/api/v1/clusters/1/certificates", &m.root).await.expect(200);
    let items = listed.body.as_array().unwrap();
    assert_eq!(items.len(), 2, "{}", listed.body);
    assert_eq!(items[0]["serial"], serial(&web2));
    assert_eq!(items[0]["host_id"], "web-2-127.0.0.1");
    assert_eq!(items[0]["component"], "peer");
    assert_eq!(items[0]["hostname"], "web-2");
    assert_eq!(items[0]["ip"], "127.0.0.1");
    assert_eq!(items[0]["state"], "valid");
    let one_host = m.get("/api/v1/clusters/1/certificates?host_id=web-1-127.0.0.1", &m.root).await.expect(200);
    assert_eq!(one_host.body.as_array().unwrap().len(), 1);

    // A keepalive stream held open from before the revocation.
    let (alive_tx, alive_rx) = tokio::sync::mpsc::channel(4);
    let alive = pb::KeepAliveRequest {
        source_type: pb::SourceType::Peer as i32,
        hostname: "web-1".into(),
        ip: "127.0.0.1".into(),
        cluster_id: 1,
        ..Default::default()
    };
    alive_tx.send(alive.clone()).await.unwrap();
    let mut held = client(&m, &web1);
    let keepalive =
        tokio::spawn(async move { held.keep_alive(tokio_stream::wrappers::ReceiverStream::new(alive_rx)).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!keepalive.is_finished(), "the keepalive stream is open");

    // Bad requests change nothing.
    let bad = [
        json!({}),
        json!({"host_id": "web-1-127.0.0.1", "serial": serial(&web1)}),
        json!({"serial": "not-hex"}),
        json!({"serial": "a".repeat(41)}),
        json!({"host_id": "../etc/passwd"}),
        json!({"host_id": "web-1-127.0.0.1", "reason": "x".repeat(1025)}),
        json!({"host_id": "web-1-127.0.0.1", "unknown": 1}),
    ];
    for body in bad {
        let answer = m.post("/api/v1/clusters/1/certificates/revocations", &m.root, body.clone()).await;
        assert_eq!(answer.status.as_u16(), 400, "{body}: {} {}", answer.status, answer.body);
        assert!(answer.body["message"].is_string(), "{}", answer.body);
    }
    let unknown = m.post("/api/v1/clusters/1/certificates/revocations", &m.root, json!({"host_id": "nobody-10.9.9.9"}));
    unknown.await.expect(404);
    // Someone with no role in the cluster's tenant neither sees nor revokes.
    let (_, stranger) = m.user("stranger").await;
    let answer = m.get("/api/v1/clusters/1/certificates", &stranger).await;
    assert!(matches!(answer.status.as_u16(), 403 | 404), "{} {}", answer.status, answer.body);
    let answer =
        m.post("/api/v1/clusters/1/certificates/revocations", &stranger, json!({"host_id": "web-1-127.0.0.1"})).await;
    assert!(matches!(answer.status.as_u16(), 403 | 404), "{} {}", answer.status, answer.body);
    one.list_schedulers(listing("web-1", "127.0.0.1")).await.expect("nothing was revoked yet");

    // Revoking the host's certificates.
    let revoked = m
        .post(
            "/api/v1/clusters/1/certificates/revocations",
            &m.root,
            json!({"host_id": "web-1-127.0.0.1", "reason": "laptop stolen"}),
        )
        .await
        .expect(200);
    let revoked = revoked.body["revoked"].as_array().unwrap().clone();
    assert_eq!(revoked.len(), 1);
    assert_eq!(revoked[0]["serial"], serial(&web1));
    assert_eq!(revoked[0]["state"], "revoked");
    assert_eq!(revoked[0]["reason"], "laptop stolen");
    assert!(revoked[0]["revoked_at"].is_string() && revoked[0]["revoked_by"].is_i64());

    // The connection opened before is refused at its next call, saying why...
    let err = one.list_schedulers(listing("web-1", "127.0.0.1")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("revoked"), "{err:?}");
    // ...a new connection does not get past its handshake...
    let err = client(&m, &web1).list_schedulers(listing("web-1", "127.0.0.1")).await.unwrap_err();
    assert_ne!(err.code(), Code::Ok);
    // ...the keepalive stream ends at its next message...
    let _ = alive_tx.send(alive).await;
    let ended = tokio::time::timeout(Duration::from_secs(5), keepalive).await.expect("the stream ends").unwrap();
    assert_eq!(ended.unwrap_err().code(), Code::Unauthenticated);
    // ...and no renewal: the handshake is refused before the request is read.
    let renewal = client(&m, &web1)
        .renew(pb::RenewRequest { certificate_request: KeyRequest::generate().unwrap().csr_der })
        .await;
    assert!(renewal.is_err(), "a revoked certificate renewed itself");

    // The other host goes on, and learns the serial to refuse as a parent or child.
    let listed = two.list_schedulers(listing("web-2", "127.0.0.1")).await.unwrap().into_inner();
    assert_eq!(listed.revoked_serials, vec![serial(&web1)]);

    // Revoking again changes nothing and names nothing new; the record stays.
    let again = m.post("/api/v1/clusters/1/certificates/revocations", &m.root, json!({"serial": serial(&web1)})).await;
    assert_eq!(again.expect(200).body["revoked"], json!([]));

    // The host, re-imaged, enrols again: its new certificate works.
    let renewed = enrol(&m, &token, "web-1", "127.0.0.1").await;
    assert_ne!(serial(&renewed), serial(&web1));
    client(&m, &renewed).list_schedulers(listing("web-1", "127.0.0.1")).await.expect("the new certificate works");
    let listed = m.get("/api/v1/clusters/1/certificates?host_id=web-1-127.0.0.1", &m.root).await.expect(200);
    let states: Vec<&str> = listed.body.as_array().unwrap().iter().map(|c| c["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["valid", "revoked"]);

    // The revocation is in the audit log.
    let audits = m.get("/api/v1/audits?per_page=100", &m.root).await.expect(200);
    let logged =
        audits.body.as_array().unwrap().iter().any(|e| {
            e["event"].as_str().is_some_and(|event| event.contains("certificates")) && e["state"] == "success"
        });
    assert!(logged, "the revocation is not audited: {}", audits.body);
    m.stop().await;
}

/// A scheduler learns the cluster's revoked serials with its settings: the host's open order
/// stream ends, and its calls are refused, while other hosts go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_refuses_a_revoked_host_within_one_settings_refresh() {
    let m = TestManager::start(Backend::Sqlite).await;
    let mut config = testkit::scheduler::registering(&m.grpc, "sched");
    config.manager.cluster_id = 1;
    config.manager.config_refresh_secs = 1;
    let scheduler = TestScheduler::start(config).await;
    let token = peer_token(&m).await;
    let (web1, web2) = (enrol(&m, &token, "web-1", "127.0.0.1").await, enrol(&m, &token, "web-2", "127.0.0.1").await);
    let to_scheduler = |c: &Credentials| {
        let tls = c.client_config(Expect::scheduler(Some(1))).unwrap();
        sched::scheduler_client::SchedulerClient::new(
            common::tls::channel(&scheduler.addr, tls, Duration::from_secs(3)).unwrap(),
        )
    };
    let announce = |hostname: &str, ip: &str| sched::AnnounceHostRequest {
        host: Some(proto::common::v1::Host {
            id: format!("{hostname}-{ip}"),
            hostname: hostname.into(),
            ip: ip.into(),
            upload_port: 4000,
            r#type: proto::common::v1::HostType::Normal as i32,
            ..Default::default()
        }),
    };
    let (mut one, mut two) = (to_scheduler(&web1), to_scheduler(&web2));
    one.announce_host(announce("web-1", "127.0.0.1")).await.expect("a fresh certificate announces");
    two.announce_host(announce("web-2", "127.0.0.1")).await.unwrap();
    let mut orders = one
        .watch_host_orders(sched::WatchHostOrdersRequest { host_id: "web-1-127.0.0.1".into() })
        .await
        .expect("the order stream opens")
        .into_inner();

    m.post("/api/v1/clusters/1/certificates/revocations", &m.root, json!({"host_id": "web-1-127.0.0.1"}))
        .await
        .expect(200);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match orders.message().await {
                Ok(Some(_)) => continue,
                other => return other,
            }
        }
    })
    .await
    .expect("the order stream ends within a refresh");
    assert_eq!(ended.unwrap_err().code(), Code::Unauthenticated);
    let err = one.announce_host(announce("web-1", "127.0.0.1")).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    let err = to_scheduler(&web1).announce_host(announce("web-1", "127.0.0.1")).await.unwrap_err();
    assert_ne!(err.code(), Code::Ok, "a new connection with the revoked certificate");
    two.announce_host(announce("web-2", "127.0.0.1")).await.expect("another host goes on");
    scheduler.stop().await;
    m.stop().await;
}
