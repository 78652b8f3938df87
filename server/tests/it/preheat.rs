//! File preheats end to end: a manager, a real scheduler registered with it, a seed peer and
//! three peers, a real HTTP origin. A preheat warms the hosts its scope picks (every scope
//! rule, shown by who then holds the content), through the P2P network (the origin serves
//! each file about once), and a later download is served from the cache; a failing URL fails
//! the job with the reason per host; bad arguments are refused with the field named.
//!
//! Then an image, as Harbor preheats it: a real registry with token auth (`docker-registry`,
//! the image pushed by `skopeo`), Harbor's provider sequence against `/oapi/v1` with a personal
//! access token, every peer warmed, the registry's blob bytes counted: about one image during
//! the preheat, none during the pulls that follow.

use std::{path::Path, time::Duration};

use serde_json::{Value, json};
use server::image::{ImageRequest, resolve};
use testkit::{
    db::Backend,
    manager::TestManager,
    origin::Origin,
    peer::{PIECE, PeerBuilder, TestPeer},
    registry::{Image, Layer, Registry},
    scheduler::{TestScheduler, registering},
};
use tokio_util::sync::CancellationToken;

const HOSTS: [&str; 4] = ["seed-a", "peer-a", "peer-b", "peer-c"];

/// Whether the dfdaemon under `dir` caches `task_id`.
fn caches(dir: &Path, task_id: &str) -> bool {
    crate::jobs::files_naming(dir, task_id) > 0
}

fn task_of(url: &str) -> String {
    common::task_id::task_id(&common::task_id::TaskSpec { url, ..Default::default() }).unwrap().0
}

async fn preheat(m: &TestManager, args: Value) -> Value {
    let job = m.post("/api/v1/jobs", &m.root, json!({"type": "preheat", "args": args})).await.expect(201);
    crate::jobs::finished_job(m, job.id()).await
}

/// Hostnames in a finished preheat's `success_tasks` (or `failure_tasks`), sorted, with the URL.
fn hosts_in(job: &Value, list: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = job["result"]["job_states"][0]["results"][0][list]
        .as_array()
        .unwrap_or_else(|| panic!("{job}"))
        .iter()
        .map(|t| (t["hostname"].as_str().unwrap().to_owned(), t["url"].as_str().unwrap().to_owned()))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn file_preheats_warm_the_hosts_their_scope_picks() {
    let m = TestManager::start_with(Backend::Sqlite, |c| c.jobs.poll_interval_ms = 50).await;
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (_scheduler, peers) = cluster(&m.grpc, &HOSTS, dir.path(), &stop).await;
    let cached_on =
        |task: &str| -> Vec<&str> { HOSTS.iter().copied().filter(|h| caches(&dir.path().join(h), task)).collect() };

    // Bad arguments: 422 with the field named, nothing queued.
    let before = m.get("/api/v1/jobs?type=preheat", &m.root).await.expect(200).body;
    for (args, field) in [
        (json!({"type": "file", "url": "http://o/f", "scope": "everyone"}), "args.scope"),
        (json!({"type": "file", "url": "http://o/f", "count": 0}), "args.count"),
        (json!({"type": "file", "url": "http://o/f", "percentage": 120}), "args.percentage"),
        (json!({"type": "image", "url": "http://o/f"}), "args.url"),
        (json!({"type": "zip", "url": "http://o/f"}), "args.type"),
    ] {
        let refused = m.post("/api/v1/jobs", &m.root, json!({"type": "preheat", "args": args})).await.expect(422);
        assert_eq!(refused.body["field"], field, "{}", refused.body);
    }
    m.post(
        "/api/v1/jobs",
        &m.root,
        json!({"type": "preheat", "args": {"type": "file", "url": "http://o/f"}, "scheduler_cluster_ids": [424242]}),
    )
    .await
    .expect(422);
    assert_eq!(m.get("/api/v1/jobs?type=preheat", &m.root).await.expect(200).body, before);

    // Every host warms two files; the origin serves each about once (a peer that asks at the
    // very start may fetch a piece itself before a parent has it).
    let size = 6 * PIECE + 5;
    let urls = [format!("{origin}/bytes/{size}/1"), format!("{origin}/bytes/{size}/2")];
    let all = preheat(&m, json!({"type": "file", "urls": urls, "scope": "all_peers", "piece_length": PIECE})).await;
    assert_eq!(all["state"], "SUCCESS", "{all}");
    let succeeded = hosts_in(&all, "success_tasks");
    assert_eq!(succeeded.len(), 8, "{all}");
    for host in HOSTS {
        for url in &urls {
            assert!(succeeded.contains(&(host.to_owned(), url.clone())), "{host} {url}: {all}");
        }
    }
    let entry = &all["result"]["job_states"][0]["results"][0];
    assert_eq!(entry["success_tasks"][0]["ip"], "127.0.0.1");
    assert!(entry["scheduler_cluster_id"].as_i64().is_some(), "{entry}");
    assert_eq!(entry["progress"]["bytes"], 8 * size, "{entry}");
    let hosts = entry["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), HOSTS.len(), "{entry}");
    assert!(hosts.iter().all(|h| h["finished"] == 2 && h["bytes"] == 2 * size), "{entry}");
    let sent = origin.sent();
    assert_eq!(sent, 2 * size, "the origin served each file once");
    let with_piece = |url: &str| {
        common::task_id::task_id(&common::task_id::TaskSpec { url, piece_length: Some(PIECE), ..Default::default() })
            .unwrap()
            .0
    };
    for url in &urls {
        assert_eq!(cached_on(&with_piece(url)), HOSTS, "{url} is in every cache");
    }
    // A later download on a peer is served from its cache: the origin sends nothing more.
    let out = dir.path().join("out");
    let mut req = testkit::peer::request(urls[0].clone(), &out);
    req.piece_length = Some(PIECE);
    peers[2].download(req).await.unwrap();
    assert_eq!(std::fs::metadata(&out).unwrap().len(), size);
    assert_eq!(origin.sent(), sent, "the preheated file came from the cache");

    // Scopes: one seed peer (the default, also for "" and Harbor's legacy "single_peer"), every
    // seed peer, a count, a percentage (rounded up), and IPs.
    let url = |n: u8| format!("{origin}/bytes/{}/{n}", PIECE + 1);
    let single = preheat(&m, json!({"type": "file", "url": url(10), "scope": ""})).await;
    assert_eq!(single["state"], "SUCCESS", "{single}");
    assert_eq!(hosts_in(&single, "success_tasks"), [("seed-a".to_owned(), url(10))]);
    assert_eq!(cached_on(&task_of(&url(10))), ["seed-a"]);
    let legacy = preheat(&m, json!({"type": "file", "url": url(11), "scope": "single_peer"})).await;
    assert_eq!(hosts_in(&legacy, "success_tasks"), [("seed-a".to_owned(), url(11))]);
    let seeds = preheat(&m, json!({"type": "file", "url": url(12), "scope": "all_seed_peers"})).await;
    assert_eq!(hosts_in(&seeds, "success_tasks"), [("seed-a".to_owned(), url(12))]);
    let two = preheat(&m, json!({"type": "file", "url": url(13), "scope": "all_peers", "count": 2})).await;
    assert_eq!(hosts_in(&two, "success_tasks").len(), 2, "{two}");
    // The two hold it (and the seed peer, when the scheduler had it fetch from the origin).
    let holders = cached_on(&task_of(&url(13)));
    for (host, _) in hosts_in(&two, "success_tasks") {
        assert!(holders.contains(&host.as_str()), "{host} holds what it preheated: {holders:?}");
    }
    assert!(holders.len() <= 3, "{holders:?}");
    let half = preheat(&m, json!({"type": "file", "url": url(14), "scope": "all_peers", "percentage": 30})).await;
    assert_eq!(hosts_in(&half, "success_tasks").len(), 2, "30 % of 4 hosts, rounded up: {half}");
    let by_ip =
        preheat(&m, json!({"type": "file", "url": url(15), "scope": "all_peers", "ips": ["127.0.0.1"], "count": 1}))
            .await;
    assert_eq!(hosts_in(&by_ip, "success_tasks").len(), 4, "ips come before count: {by_ip}");
    let elsewhere =
        preheat(&m, json!({"type": "file", "url": url(16), "scope": "all_peers", "ips": ["10.9.9.9"]})).await;
    assert_eq!(elsewhere["state"], "FAILURE", "{elsewhere}");
    let error = elsewhere["result"]["job_states"][0]["error"].as_str().unwrap();
    assert!(error.contains("10.9.9.9"), "{error}");

    // A URL the origin refuses fails the job, with the reason for each host.
    let missing = format!("{origin}/status/404");
    let failed = preheat(&m, json!({"type": "file", "urls": [url(17), missing], "scope": "all_seed_peers"})).await;
    assert_eq!(failed["state"], "FAILURE", "{failed}");
    assert_eq!(hosts_in(&failed, "success_tasks"), [("seed-a".to_owned(), url(17))]);
    let failure = &failed["result"]["job_states"][0]["results"][0]["failure_tasks"][0];
    assert_eq!((failure["url"].as_str(), failure["hostname"].as_str()), (Some(missing.as_str()), Some("seed-a")));
    assert!(failure["description"].as_str().unwrap().contains("404"), "{failure}");
    assert!(failed["result"]["job_states"][0]["error"].as_str().unwrap().contains("404"), "{failed}");
    stop.cancel();
}

/// A scheduler registered with the manager at `manager_grpc` and a dfdaemon per name of `hosts`
/// announced to it (the names starting with `seed` are seed peers).
pub(crate) async fn cluster(
    manager_grpc: &str,
    hosts: &[&str],
    dir: &Path,
    stop: &CancellationToken,
) -> (TestScheduler, Vec<TestPeer>) {
    let scheduler = TestScheduler::start(registering(manager_grpc, "sched")).await;
    let mut peers = Vec::new();
    for name in hosts {
        let p = PeerBuilder::new(dir.join(name), name)
            .seed(name.starts_with("seed"))
            .scheduler(&scheduler.addr)
            .stopped_by(stop)
            .start()
            .await;
        peers.push(p);
    }
    scheduler.wait_for_hosts(hosts.len()).await;
    (scheduler, peers)
}

/// A personal access token of root's with scope `job`, named `name`.
pub(crate) async fn job_token(m: &TestManager, name: &str) -> String {
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let body = json!({"name": name, "scopes": ["job"], "expired_at": tomorrow});
    let created = m.post("/api/v1/personal-access-tokens", &m.root, body).await.expect(201);
    created.body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn harbor_preheats_an_image_from_a_token_registry_onto_every_peer() {
    let registry = Registry::with_token_auth("harbor", "s3cret").await;
    let image = Image::of(vec![
        Layer::raw(3 * PIECE as usize + 7, 1, "application/vnd.oci.image.layer.v1.tar"),
        Layer::raw(PIECE as usize, 2, "application/vnd.oci.image.layer.v1.tar"),
        Layer::tar(1000, 3),
    ]);
    let pushed = registry.push("library/app", "1.0", &image).await;
    let blobs = &pushed.for_platform("linux/amd64").blobs;
    let image_bytes: u64 = blobs.iter().map(|b| b.size).sum();
    let served_before = registry.served().blob_bytes;

    let m = TestManager::start_with(Backend::Sqlite, |c| c.jobs.poll_interval_ms = 50).await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (_scheduler, peers) = cluster(&m.grpc, &HOSTS, dir.path(), &stop).await;
    let pat = job_token(&m, "harbor").await;

    // Harbor holds a registry token of its own and sends it as the Authorization header.
    let client = reqwest::Client::new();
    let login = ImageRequest {
        url: pushed.manifest_url.clone(),
        username: Some("harbor".into()),
        password: Some("s3cret".into()),
        ..ImageRequest::default()
    };
    let registry_token = resolve(&client, &login).await.unwrap().headers["Authorization"].clone();

    // Harbor's provider: /healthy with its credential, then the job, then polls.
    let healthy = m.http.get(format!("{}/healthy", m.base)).bearer_auth(&pat).send().await.unwrap();
    assert_eq!(healthy.status(), 200);
    let body = json!({"type": "preheat", "args": {"type": "image", "url": pushed.manifest_url, "tag": "",
        "filtered_query_params": "", "headers": {"Authorization": registry_token}, "scope": "all_peers",
        "concurrent_count": 0, "timeout": 0}, "scheduler_cluster_ids": null});
    let created = m.post("/oapi/v1/jobs", &pat, body).await.expect(201);
    assert_eq!(created.body["state"], "PENDING");
    assert_eq!(created.body["args"]["headers"]["Authorization"], "******", "the registry token is never shown");
    let mut job = Value::Null;
    for _ in 0..600 {
        job = m.get(&format!("/oapi/v1/jobs/{}", created.id()), &pat).await.expect(200).body;
        let state = job["state"].as_str().unwrap().to_owned();
        assert!(["PENDING", "SUCCESS", "FAILURE"].contains(&state.as_str()), "Harbor fails a job on {state}");
        if state != "PENDING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job["state"], "SUCCESS", "{job}");
    let result = &job["result"]["job_states"][0]["results"][0];
    assert!(result["scheduler_cluster_id"].as_i64().is_some(), "{result}");
    let warmed = hosts_in(&job, "success_tasks");
    assert_eq!(warmed.len(), HOSTS.len() * blobs.len(), "{job}");
    for host in HOSTS {
        for b in blobs {
            let url = format!("{}/v2/library/app/blobs/{}", registry.base, b.digest);
            assert!(warmed.contains(&(host.to_owned(), url.clone())), "{host} warmed {url}");
        }
    }
    assert_eq!(result["success_tasks"][0]["ip"], "127.0.0.1");

    // The registry served the image about once during the preheat.
    testkit::eventually("the registry's log of the blobs served", Duration::from_secs(5), || async {
        registry.served().blob_bytes - served_before >= image_bytes
    })
    .await;
    let during = registry.served().blob_bytes - served_before;
    assert!(
        during as f64 <= 1.02 * image_bytes as f64,
        "the registry served {during} bytes for a {image_bytes}-byte image"
    );

    // Every peer then pulls every blob (as the mirror would, same task): all from its cache.
    for (i, peer) in peers.iter().enumerate() {
        for b in blobs {
            let url = format!("{}/v2/library/app/blobs/{}", registry.base, b.digest);
            let out = dir.path().join(format!("pull-{i}-{}", &b.digest[7..19]));
            let mut req = testkit::peer::request(url, &out);
            req.request_headers.insert("Authorization".into(), registry_token.clone());
            peer.download(req).await.unwrap();
            assert_eq!(std::fs::metadata(&out).unwrap().len(), b.size);
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = registry.served().blob_bytes - served_before;
    assert_eq!(after, during, "the pulls took no blob bytes from the registry");

    // A wrong password fails the job with the registry's reason.
    let bad = json!({"type": "preheat", "args": {"type": "image", "url": pushed.manifest_url,
        "username": "harbor", "password": "wrong", "scope": "all_peers"}});
    let refused = m.post("/oapi/v1/jobs", &pat, bad).await.expect(201);
    assert_eq!(refused.body["args"]["password"], "******");
    let failed = crate::jobs::finished_job(&m, refused.id()).await;
    assert_eq!(failed["state"], "FAILURE", "{failed}");
    let error = failed["result"]["job_states"][0]["error"].as_str().unwrap();
    assert!(error.contains("refused") && !error.contains("wrong"), "{error}");
    stop.cancel();
}

/// Polls job `id` until `state` (at `/api/v1`).
async fn until_state(m: &TestManager, id: i64, state: &str) -> Value {
    for _ in 0..400 {
        let job = m.get(&format!("/api/v1/jobs/{id}"), &m.root).await.expect(200).body;
        if job["state"] == state {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("job {id} never became {state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_preheat_outlives_a_manager_restart_and_fails_with_the_reason_when_its_scheduler_stops() {
    let m = TestManager::start_with(Backend::Sqlite, |c| c.jobs.poll_interval_ms = 50).await;
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let (scheduler, _peers) = cluster(&m.grpc, &HOSTS, dir.path(), &stop).await;

    // `/slow` takes about 6 s: the manager restarts while the hosts fetch it.
    let slow = format!("{origin}/slow");
    let job = m
        .post(
            "/api/v1/jobs",
            &m.root,
            json!({"type": "preheat", "args": {"type": "file", "url": slow, "scope": "all_peers"}}),
        )
        .await
        .expect(201);
    until_state(&m, job.id(), "RUNNING").await;
    // A stopping manager hands the job back (else it would wait `stale_after_secs`, 120 s).
    let m = m.restart().await;
    let handed_back = m.get(&format!("/api/v1/jobs/{}", job.id()), &m.root).await.expect(200).body;
    assert!(["PENDING", "RUNNING"].contains(&handed_back["state"].as_str().unwrap()), "{handed_back}");
    let done = crate::jobs::finished_job(&m, job.id()).await;
    assert_eq!(done["state"], "SUCCESS", "the restarted manager ran it again to the end: {done}");
    assert_eq!(hosts_in(&done, "success_tasks").len(), HOSTS.len(), "{done}");

    // Deleting a running preheat cancels it on the scheduler (and so on the hosts).
    let running = |text: String| {
        text.lines().find_map(|l| l.strip_prefix("damselfly_scheduler_preheats_running ")).map(|v| v.trim().to_owned())
    };
    let metrics = || async { reqwest::get(format!("{}/metrics", scheduler.http)).await.unwrap().text().await.unwrap() };
    let preheats_on_scheduler = |n: &'static str, what: &'static str| async move {
        testkit::eventually(what, Duration::from_secs(10), || async { running(metrics().await).as_deref() == Some(n) })
            .await;
    };
    // A preheat of the slow file, once its job runs; the job's id.
    let slow_preheat = |tag: &'static str| {
        let (m, slow) = (&m, &slow);
        async move {
            let args = json!({"type": "file", "url": slow, "tag": tag, "scope": "all_peers"});
            let job = m.post("/api/v1/jobs", &m.root, json!({"type": "preheat", "args": args})).await.expect(201);
            until_state(m, job.id(), "RUNNING").await;
            job.id()
        }
    };
    let path = format!("/api/v1/jobs/{}", slow_preheat("deleted").await);
    preheats_on_scheduler("1", "the scheduler runs the preheat").await;
    m.delete(&path, &m.root).await.expect(204);
    preheats_on_scheduler("0", "the deleted preheat ends on the scheduler").await;

    // So does setting it to FAILURE: it stays FAILURE with who cancelled it, and what it had
    // done is kept; nothing else may be set, and an ended job cannot be cancelled.
    let path = format!("/api/v1/jobs/{}", slow_preheat("patched").await);
    preheats_on_scheduler("1", "the scheduler runs the preheat").await;
    let refused = m.patch(&path, &m.root, json!({"state": "SUCCESS"})).await.expect(422);
    assert_eq!(refused.body["field"], "state");
    let cancelled = m.patch(&path, &m.root, json!({"state": "FAILURE"})).await.expect(200).body;
    assert_eq!(cancelled["state"], "FAILURE");
    preheats_on_scheduler("0", "the cancelled preheat ends on the scheduler").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = m.get(&path, &m.root).await.expect(200).body;
    assert_eq!(after["state"], "FAILURE", "the runner did not write over the cancellation: {after}");
    assert_eq!(after["result"]["job_states"][0]["error"], "cancelled by root", "{after}");
    m.patch(&path, &m.root, json!({"state": "FAILURE"})).await.expect(409);

    // The scheduler stops mid-preheat: its part fails with the reason, nothing hangs.
    let id = slow_preheat("again").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    scheduler.stop().await;
    let failed = crate::jobs::finished_job(&m, id).await;
    assert_eq!(failed["state"], "FAILURE", "{failed}");
    let error = failed["result"]["job_states"][0]["error"].as_str().unwrap();
    assert!(error.contains("shutting down"), "{error}");
    stop.cancel();
}
