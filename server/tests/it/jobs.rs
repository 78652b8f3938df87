//! `get_task` and `delete_task` jobs end to end: a manager, a real scheduler, a seed peer and a
//! peer that downloaded a file from a real HTTP origin. The job finds the peers holding the
//! task, then deletes it from them (their caches no longer hold the content).

use std::{path::Path, time::Duration};

use serde_json::{Value, json};
use testkit::{
    db::Backend,
    manager::TestManager,
    origin::Origin,
    peer::{PIECE, PeerBuilder, TestPeer},
    scheduler::{TestScheduler, registering},
};
use tokio_util::sync::CancellationToken;

testkit::on_every_database!(get_and_delete_task_jobs);

async fn download(peer: &TestPeer, url: &str, out: &Path) {
    try_download(peer, url, out).await.unwrap_or_else(|e| panic!("download of {url}: {e}"));
}

async fn try_download(peer: &TestPeer, url: &str, out: &Path) -> Result<(), tonic::Status> {
    peer.dfget(url, out, |_| {}).await.map(drop)
}

/// Files under `dir` whose path mentions `needle`.
pub(crate) fn files_naming(dir: &Path, needle: &str) -> usize {
    let mut found = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.display().to_string().contains(needle) {
                found += 1;
            }
        }
    }
    found
}

/// Polls job `id` until it is done (up to 30 s).
pub(crate) async fn finished_job(m: &TestManager, id: i64) -> Value {
    for _ in 0..600 {
        let job = m.get(&format!("/api/v1/jobs/{id}"), &m.root).await.expect(200);
        if job.body["state"] == "SUCCESS" || job.body["state"] == "FAILURE" {
            return job.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

async fn get_and_delete_task_jobs(backend: Backend) {
    let m = TestManager::start_with(backend, |c| {
        c.jobs.poll_interval_ms = 50;
        c.grpc.sample_interval_secs = 1;
    })
    .await;
    let origin = Origin::start().await;
    let origin = &origin.base;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    // The scheduler registers with the manager and keeps alive, as in production.
    let mut scheduler_config = registering(&m.grpc, "sched");
    scheduler_config.manager.config_refresh_secs = 1;
    let scheduler = TestScheduler::start(scheduler_config).await;
    let peer = |name: &str, seed: bool| {
        PeerBuilder::new(dir.path().join(name), name).seed(seed).scheduler(&scheduler.addr).stopped_by(&stop).start()
    };
    let _seed = peer("seed-a", true).await;
    let peer_socket = peer("peer-a", false).await;
    scheduler.wait_for_hosts(2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let cluster = m.get("/api/v1/clusters?name=default", &m.root).await.expect(200).body[0]["id"].as_i64().unwrap();
    let mut registered = false;
    for _ in 0..200 {
        let listed = m.get("/api/v1/schedulers?state=active", &m.root).await.expect(200);
        if listed
            .body
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["hostname"] == "sched" && s["last_keep_alive_at"].is_string()))
        {
            registered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(registered, "the scheduler registered and keeps alive");

    let url = format!("{origin}/bytes/{}", 5 * PIECE + 3);
    download(&peer_socket, &url, &dir.path().join("out")).await;
    let args = json!({"url": url, "piece_length": PIECE});
    let task_id = common::task_id::task_id(&common::task_id::TaskSpec {
        url: &url,
        piece_length: Some(PIECE),
        ..Default::default()
    })
    .unwrap()
    .0;
    assert!(files_naming(&dir.path().join("peer-a"), &task_id) > 0, "the peer caches the task");

    // get_task: both hosts hold it.
    let job = m.post("/api/v1/jobs", &m.root, json!({"type": "get_task", "args": args})).await.expect(201);
    let done = finished_job(&m, job.id()).await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let result = &done["result"]["job_states"][0]["results"][0];
    assert_eq!(result["scheduler_cluster_id"], cluster);
    assert_eq!(result["task_id"], task_id);
    let mut holders: Vec<&str> =
        result["peers"].as_array().unwrap().iter().map(|p| p["hostname"].as_str().unwrap()).collect();
    holders.sort();
    assert_eq!(holders, ["peer-a", "seed-a"], "{result}");

    // The task's graph, read at once: the seed fetched every piece from the origin, the peer
    // fetched its pieces from the seed (and none from the origin).
    let graph = m.get(&format!("/api/v1/clusters/{cluster}/tasks/{task_id}"), &m.root).await.expect(200).body;
    assert_eq!(graph["total_pieces"], 6, "{graph}");
    let peer = |name: &str| graph["peers"].as_array().unwrap().iter().find(|p| p["hostname"] == name).unwrap().clone();
    let (seed, child) = (peer("seed-a"), peer("peer-a"));
    assert_eq!(seed["origin_pieces"], 6, "{graph}");
    assert_eq!(child["origin_pieces"], 0, "{graph}");
    assert_eq!((seed["inline_pieces"].as_u64(), child["inline_pieces"].as_u64()), (Some(0), Some(0)), "{graph}");
    assert_eq!(child["sources"], json!([{"parent_id": seed["peer_id"], "pieces": 6}]), "{graph}");
    m.get(&format!("/api/v1/clusters/{cluster}/tasks/{}", "0".repeat(64)), &m.root).await.expect(404);
    let other = m.post("/api/v1/clusters", &m.root, json!({"name": "no-scheduler"})).await.expect(201).id();
    m.get(&format!("/api/v1/clusters/{other}/tasks/{task_id}"), &m.root).await.expect(404);

    // Jobs by cluster: the get_task job ran on the default cluster only.
    let on_default = m.get(&format!("/api/v1/jobs?scheduler_cluster_id={cluster}"), &m.root).await.expect(200).body;
    assert!(on_default.as_array().unwrap().iter().any(|j| j["id"] == job.id()), "{on_default}");
    let on_other = m.get(&format!("/api/v1/jobs?scheduler_cluster_id={other}"), &m.root).await.expect(200).body;
    assert_eq!(on_other, json!([]));

    // Traffic over time: the scheduler's keepalive figures, kept once a second here, show the
    // content fetched once from the origin (by the seed) and once from a peer (by the peer).
    let size = 5 * PIECE + 3;
    let mut totals = (0, 0);
    for _ in 0..100 {
        let stats = m.get("/api/v1/stats?window=1h", &m.root).await.expect(200).body;
        assert_eq!(stats["points"].as_array().unwrap().len(), 60, "{stats}");
        let sum = |k: &str| stats["points"].as_array().unwrap().iter().map(|p| p[k].as_u64().unwrap()).sum::<u64>();
        totals = (sum("back_to_source_bytes"), sum("peer_bytes"));
        if totals == (size, size) {
            let last = stats["points"].as_array().unwrap().last().unwrap().clone();
            assert!(last["tasks"].as_u64().is_some_and(|t| t >= 1), "{last}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(totals, (size, size), "traffic by source over the last hour");
    let one = m.get(&format!("/api/v1/stats?scheduler_cluster_id={cluster}&window=7d"), &m.root).await.expect(200);
    assert_eq!(one.body["bucket_secs"], 7 * 24 * 60);
    let none = m.get(&format!("/api/v1/stats?scheduler_cluster_id={other}"), &m.root).await.expect(200).body;
    assert!(none["points"].as_array().unwrap().iter().all(|p| p["peer_bytes"] == 0 && p["tasks"].is_null()), "{none}");
    m.get("/api/v1/stats?window=2h", &m.root).await.expect(400);

    // The task's record: the schedulers' keepalives keep its last state, listed as a recent task.
    let mut record = Value::Null;
    for _ in 0..100 {
        let listed = m.get(&format!("/api/v1/clusters/{cluster}/tasks?state=succeeded"), &m.root).await.expect(200);
        if let Some(r) = listed.body.as_array().unwrap().iter().find(|r| r["task_id"] == task_id)
            && r["finished_peers"] == 2
        {
            record = r.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(record["url"], url, "{record}");
    assert_eq!((record["peers"].as_u64(), record["total_pieces"].as_u64()), (Some(2), Some(6)), "{record}");
    let by_url = m.get(&format!("/api/v1/clusters/{cluster}/tasks?url=bytes/{size}"), &m.root).await.expect(200);
    assert_eq!(by_url.body.as_array().unwrap().len(), 1, "{}", by_url.body);
    m.get(&format!("/api/v1/clusters/{cluster}/tasks?state=done"), &m.root).await.expect(400);
    m.get(&format!("/api/v1/clusters/{other}/tasks"), &m.root).await.expect(200);
    m.get("/api/v1/clusters/999999/tasks", &m.root).await.expect(404);
    m.get("/api/v1/stats?scheduler_cluster_id=999999", &m.root).await.expect(404);
    m.delete(&format!("/api/v1/clusters/{other}"), &m.root).await.expect(204);

    // delete_task: both are told, and the content leaves their caches.
    let job =
        m.post("/api/v1/jobs", &m.root, json!({"type": "delete_task", "args": {"task_id": task_id}})).await.expect(201);
    let done = finished_job(&m, job.id()).await;
    assert_eq!(done["state"], "SUCCESS", "{done}");
    let result = &done["result"]["job_states"][0]["results"][0];
    assert_eq!(result["success_tasks"].as_array().unwrap().len(), 2, "{result}");
    for _ in 0..100 {
        if files_naming(&dir.path().join("peer-a"), &task_id) == 0
            && files_naming(&dir.path().join("seed-a"), &task_id) == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(files_naming(&dir.path().join("peer-a"), &task_id), 0, "the peer deleted its copy");
    assert_eq!(files_naming(&dir.path().join("seed-a"), &task_id), 0, "the seed peer deleted its copy");
    // The output file the user asked for is theirs, and stays.
    assert!(dir.path().join("out").exists());
    // The task's record says it was deleted.
    let deleted = m.get(&format!("/api/v1/clusters/{cluster}/tasks?state=deleted"), &m.root).await.expect(200).body;
    assert!(deleted.as_array().unwrap().iter().any(|r| r["task_id"] == task_id), "{deleted}");

    // Now nobody holds it.
    let job =
        m.post("/api/v1/jobs", &m.root, json!({"type": "get_task", "args": {"task_id": task_id}})).await.expect(201);
    let done = finished_job(&m, job.id()).await;
    assert_eq!(done["result"]["job_states"][0]["results"][0]["peers"], json!([]));

    // The cluster's block list reaches the scheduler, which refuses matching downloads; the peer
    // does not go around it to the origin, and other downloads go on.
    m.patch(
        &format!("/api/v1/clusters/{cluster}"),
        &m.root,
        json!({"peer_cluster_config": {"block_list": {"urls": ["/bytes/77"]}}}),
    )
    .await
    .expect(200);
    let blocked_out = dir.path().join("blocked");
    let mut refused = None;
    for attempt in 0..100 {
        // A fresh URL each time: a cached task would be served locally without asking.
        match try_download(&peer_socket, &format!("{origin}/bytes/77?attempt={attempt}"), &blocked_out).await {
            Err(status) if status.code() == tonic::Code::PermissionDenied => {
                refused = Some(status);
                break;
            }
            Ok(()) => std::fs::remove_file(&blocked_out).unwrap(),
            Err(other) => panic!("unexpected error: {other}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = refused.expect("the block list took effect");
    assert!(refused.message().contains("block list"), "{refused}");
    assert!(!blocked_out.exists(), "nothing is written for a refused download");
    download(&peer_socket, &format!("{origin}/bytes/78"), &dir.path().join("allowed")).await;

    // A cluster without an active scheduler fails the job with a reason.
    scheduler.shutdown.cancel();
    let mut inactive = false;
    for _ in 0..200 {
        let listed = m.get("/api/v1/schedulers?state=inactive", &m.root).await.expect(200);
        if listed.body.as_array().is_some_and(|a| a.iter().any(|s| s["hostname"] == "sched")) {
            inactive = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(inactive, "a stopped scheduler turns inactive");
    let job =
        m.post("/api/v1/jobs", &m.root, json!({"type": "get_task", "args": {"task_id": task_id}})).await.expect(201);
    let done = finished_job(&m, job.id()).await;
    assert_eq!(done["state"], "FAILURE");
    assert!(done["result"]["job_states"][0]["error"].as_str().unwrap().contains("no active scheduler"), "{done}");
    // With no scheduler to ask, the task's graph comes from its record, marked as such.
    let recorded = m.get(&format!("/api/v1/clusters/{cluster}/tasks/{task_id}"), &m.root).await.expect(200).body;
    assert!(recorded["recorded_at"].is_string(), "{recorded}");
    assert_eq!(recorded["total_pieces"], 6, "{recorded}");
    assert_eq!(recorded["peers"].as_array().unwrap().len(), 2, "{recorded}");
    m.get(&format!("/api/v1/clusters/{cluster}/tasks/{}", "0".repeat(64)), &m.root).await.expect(404);
    stop.cancel();
    m.stop().await;
}

mod redis_queue {
    use super::*;

    /// With Redis configured, a new job starts at once although the database poll is a minute
    /// away; a Redis that is down only falls back to that poll, never loses the job.
    #[tokio::test(flavor = "multi_thread")]
    async fn redis_wakes_an_idle_runner() {
        let url = testkit::db::redis().await;
        let key = format!("damselfly:test:{}", uuid::Uuid::new_v4().simple());
        let m = TestManager::start_with(Backend::Sqlite, |c| {
            c.jobs.poll_interval_ms = 60_000;
            c.jobs.redis_url = url.into();
            c.jobs.redis_key = key.clone();
        })
        .await;
        // Let the runner do its first database poll and block on Redis.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let started = std::time::Instant::now();
        let job =
            m.post("/api/v1/jobs", &m.root, json!({"type": "get_task", "args": {"task_id": "d".repeat(64)}})).await;
        let done = finished_job(&m, job.expect(201).id()).await;
        // No scheduler is active, so it fails, but it ran: the poll alone would take a minute.
        assert_eq!(done["state"], "FAILURE", "{done}");
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        m.stop().await;

        // Redis unreachable: creating a job still works, and the database poll runs it.
        let m = TestManager::start_with(Backend::Sqlite, |c| {
            c.jobs.poll_interval_ms = 100;
            c.jobs.redis_url = "redis://127.0.0.1:1/".into();
        })
        .await;
        let job =
            m.post("/api/v1/jobs", &m.root, json!({"type": "get_task", "args": {"task_id": "d".repeat(64)}})).await;
        let done = finished_job(&m, job.expect(201).id()).await;
        assert_eq!(done["state"], "FAILURE", "{done}");
        m.stop().await;
    }
}
