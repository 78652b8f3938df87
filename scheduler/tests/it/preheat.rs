//! Preheats through the scheduler's real gRPC edge, with hosts played by test clients holding
//! their own certificates: each host is handed its tasks a few at a time, results come only
//! from the host ordered, a host that leaves fails what it owes, the deadline ends a preheat,
//! and a manager that goes away cancels it on the hosts.

use std::time::Duration;

use common::tls::{Component, Expect};
use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use scheduler::config::SchedulerConfig;
use testkit::scheduler::TestScheduler;
use tokio_stream::StreamExt;
use tonic::{Code, Streaming, transport::Channel};

type Client = pb::scheduler_client::SchedulerClient<Channel>;

fn client_as(scheduler: &TestScheduler, component: Component, host: &str) -> Client {
    Client::new(testkit::pki::channel(&scheduler.addr, component, 1, host, Expect::scheduler(Some(1))))
}

/// Host `id` announced, with its order stream open.
async fn host(scheduler: &TestScheduler, id: &str) -> (Client, Streaming<pb::HostOrder>) {
    let mut c = client_as(scheduler, Component::Peer, id);
    let host = pb_common::Host {
        id: id.into(),
        hostname: format!("{id}-name"),
        ip: "127.0.0.1".into(),
        upload_port: 4000,
        r#type: pb_common::HostType::Normal as i32,
        ..Default::default()
    };
    c.announce_host(pb::AnnounceHostRequest { host: Some(host) }).await.unwrap();
    let orders = c.watch_host_orders(pb::WatchHostOrdersRequest { host_id: id.into() }).await.unwrap().into_inner();
    (c, orders)
}

fn tasks(n: usize) -> Vec<pb::TaskSpec> {
    (0..n).map(|i| pb::TaskSpec { url: format!("http://origin.example/f{i}"), ..Default::default() }).collect()
}

/// The next order within a second, or `None`.
async fn next_order(orders: &mut Streaming<pb::HostOrder>) -> Option<pb::host_order::Order> {
    tokio::time::timeout(Duration::from_secs(1), orders.next()).await.ok().flatten().map(|o| o.unwrap().order.unwrap())
}

fn preheat_of(order: Option<pb::host_order::Order>) -> pb::PreheatOrder {
    match order {
        Some(pb::host_order::Order::Preheat(p)) => p,
        other => panic!("expected a preheat order, got {other:?}"),
    }
}

async fn next_result(events: &mut Streaming<pb::PreheatEvent>) -> pb::PreheatResult {
    let event = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("an event").unwrap().unwrap();
    match event.event {
        Some(pb::preheat_event::Event::Result(r)) => r,
        other => panic!("expected a result, got {other:?}"),
    }
}

fn report(host: &str, order: &pb::PreheatOrder, success: bool) -> pb::PreheatReport {
    pb::PreheatReport {
        host_id: host.into(),
        preheat_id: order.preheat_id.clone(),
        task_id: order.task.as_ref().unwrap().task_id.clone(),
        success,
        description: if success { String::new() } else { "origin answered 404".into() },
        content_length: if success { 10 } else { 0 },
    }
}

#[tokio::test]
async fn a_preheat_paces_each_host_and_ends_when_a_host_leaves() {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let (mut a, mut a_orders) = host(&scheduler, "a").await;
    let (mut b, mut b_orders) = host(&scheduler, "b").await;
    let mut manager = client_as(&scheduler, Component::Manager, "manager");
    let request = pb::PreheatRequest {
        tasks: tasks(3),
        scope: pb::PreheatScope::AllPeers as i32,
        concurrent_count: 2,
        ..Default::default()
    };

    // Only the manager starts a preheat.
    let err = a.preheat(request.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);

    let mut events = manager.preheat(request).await.unwrap().into_inner();
    let first = events.next().await.unwrap().unwrap();
    let Some(pb::preheat_event::Event::Hosts(picked)) = first.event else { panic!("{first:?}") };
    let mut names: Vec<String> = picked.hosts.iter().map(|h| h.hostname.clone()).collect();
    names.sort();
    assert_eq!(names, ["a-name", "b-name"]);

    // Two tasks in flight per host, the third waits.
    let a1 = preheat_of(next_order(&mut a_orders).await);
    let a2 = preheat_of(next_order(&mut a_orders).await);
    assert!(next_order(&mut a_orders).await.is_none(), "a third task before a result");
    let b1 = preheat_of(next_order(&mut b_orders).await);
    assert_eq!(a1.concurrent_count, 2);

    // Results come only from the host ordered, once.
    let err = a.report_preheat(report("b", &b1, true)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "a reports as b");
    let err =
        b.report_preheat(pb::PreheatReport { preheat_id: "nope".into(), ..report("b", &b1, true) }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "an unknown preheat");
    let err =
        a.report_preheat(pb::PreheatReport { task_id: "0".repeat(64), ..report("a", &a1, true) }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "a task a was not ordered");

    a.report_preheat(report("a", &a1, true)).await.unwrap();
    let r = next_result(&mut events).await;
    assert_eq!((r.host_id.as_str(), r.success, r.content_length), ("a", true, 10));
    let err = a.report_preheat(report("a", &a1, true)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "twice");
    // A result frees a slot: the third task goes out.
    let a3 = preheat_of(next_order(&mut a_orders).await);
    a.report_preheat(report("a", &a2, false)).await.unwrap();
    let r = next_result(&mut events).await;
    assert_eq!((r.success, r.description.as_str()), (false, "origin answered 404"));

    // b leaves: everything it owes fails with the reason, and its late report is refused.
    b.leave_host(pb::LeaveHostRequest { host_id: "b".into() }).await.unwrap();
    for _ in 0..3 {
        let r = next_result(&mut events).await;
        assert_eq!((r.host_id.as_str(), r.success), ("b", false));
        assert!(r.description.contains("left"), "{}", r.description);
    }
    assert_eq!(b.report_preheat(report("b", &b1, true)).await.unwrap_err().code(), Code::FailedPrecondition);

    // The last result ends the stream.
    a.report_preheat(report("a", &a3, true)).await.unwrap();
    assert!(next_result(&mut events).await.success);
    let end = tokio::time::timeout(Duration::from_secs(5), events.next()).await.expect("the stream ends");
    assert!(end.is_none(), "{end:?}");
    // Open order streams would hold up the graceful stop.
    drop((a_orders, b_orders));
    scheduler.stop().await;
}

#[tokio::test]
async fn the_deadline_fails_what_is_left_and_a_manager_that_goes_away_cancels() {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let (_a, mut a_orders) = host(&scheduler, "a").await;
    let mut manager = client_as(&scheduler, Component::Manager, "manager");

    let request = pb::PreheatRequest {
        tasks: tasks(2),
        scope: pb::PreheatScope::AllPeers as i32,
        timeout_secs: 1,
        ..Default::default()
    };
    let mut events = manager.preheat(request.clone()).await.unwrap().into_inner();
    events.next().await.unwrap().unwrap();
    let order = preheat_of(next_order(&mut a_orders).await);
    preheat_of(next_order(&mut a_orders).await);
    for _ in 0..2 {
        let r = next_result(&mut events).await;
        assert!(!r.success && r.description.contains("timed out"), "{r:?}");
    }
    match next_order(&mut a_orders).await {
        Some(pb::host_order::Order::CancelPreheat(c)) => assert_eq!(c.preheat_id, order.preheat_id),
        other => panic!("expected a cancellation, got {other:?}"),
    }

    // The manager drops its stream: the host is told to drop the rest.
    let mut events = manager.preheat(pb::PreheatRequest { timeout_secs: 0, ..request }).await.unwrap().into_inner();
    events.next().await.unwrap().unwrap();
    let order = preheat_of(next_order(&mut a_orders).await);
    drop(events);
    let mut cancelled = false;
    for _ in 0..5 {
        match next_order(&mut a_orders).await {
            Some(pb::host_order::Order::CancelPreheat(c)) if c.preheat_id == order.preheat_id => {
                cancelled = true;
                break;
            }
            _ => {}
        }
    }
    assert!(cancelled, "the host was told to cancel");

    // No host of the scope: refused at once.
    let seeds =
        pb::PreheatRequest { tasks: tasks(1), scope: pb::PreheatScope::AllSeedPeers as i32, ..Default::default() };
    let err = manager.preheat(seeds).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().contains("seed peer"), "{}", err.message());
    drop(a_orders);
    scheduler.stop().await;
}

#[tokio::test]
async fn a_host_behind_on_its_orders_gets_the_rest_later_rather_than_failing_them() {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let (mut a, mut a_orders) = host(&scheduler, "a").await;
    let mut manager = client_as(&scheduler, Component::Manager, "manager");
    // Sixteen preheats of 64 big orders each, all in flight at once: more than the host's order
    // queue (256) and the stream's flow-control window (2 MiB, about 250 orders) hold while the host
    // reads nothing.
    const PREHEATS: usize = 16;
    let padding: std::collections::HashMap<String, String> = [("x-padding".to_owned(), "p".repeat(8000))].into();
    let mut streams = Vec::new();
    for p in 0..PREHEATS {
        let tasks = (0..64)
            .map(|i| pb::TaskSpec {
                url: format!("http://origin.example/p{p}/f{i}"),
                request_headers: padding.clone(),
                ..Default::default()
            })
            .collect();
        let request = pb::PreheatRequest {
            tasks,
            scope: pb::PreheatScope::AllPeers as i32,
            concurrent_count: 64,
            ..Default::default()
        };
        let mut events = manager.preheat(request).await.unwrap().into_inner();
        events.next().await.unwrap().unwrap();
        streams.push(events);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The manager gives up on the last preheat while the host's queue is full: the host is
    // still told to cancel, once it has room.
    drop(streams.pop());

    // The host catches up: every order of the others arrives and every task succeeds; the last
    // one's queued orders are dropped by the host, as the cancellation says.
    let (mut ordered, mut others, mut cancelled) = (0, std::collections::HashSet::new(), None);
    while ordered < (PREHEATS - 1) * 64 || cancelled.is_none() {
        let order = tokio::time::timeout(Duration::from_secs(5), a_orders.next())
            .await
            .unwrap_or_else(|_| panic!("only {ordered} orders arrived, cancellation: {cancelled:?}"))
            .unwrap()
            .unwrap();
        if let Some(pb::host_order::Order::CancelPreheat(c)) = &order.order {
            cancelled = Some(c.preheat_id.clone());
            continue;
        }
        let order = preheat_of(order.order);
        if order.task.as_ref().unwrap().url.contains(&format!("/p{}/", PREHEATS - 1)) {
            continue;
        }
        others.insert(order.preheat_id.clone());
        a.report_preheat(report("a", &order, true)).await.unwrap();
        ordered += 1;
    }
    assert!(!others.contains(cancelled.as_ref().unwrap()), "only the abandoned preheat is cancelled");
    for events in &mut streams {
        for _ in 0..64 {
            let r = next_result(events).await;
            assert!(r.success, "{r:?}");
        }
    }
    drop(a_orders);
    scheduler.stop().await;
}
