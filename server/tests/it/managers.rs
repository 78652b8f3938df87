//! Several managers on one database and one Redis, as behind one address: a sign-in, a personal
//! access token and a sign-out made on one hold on the other; jobs created on either run once;
//! a manager killed mid-job (no graceful step: its jobs stay `RUNNING`) loses nothing, the other
//! taking its jobs over once they go stale and running them to the end; a scheduler keeping
//! alive through the front address stays active through the other.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use testkit::{db::Backend, front::Front, manager::TestManager, origin::Origin, scheduler::TestScheduler};
use tokio_util::sync::CancellationToken;

testkit::on_every_database!(
    two_managers_one_killed_mid_job,
    replicas_share_the_generated_ca,
    limits_are_one_budget_across_replicas_with_redis,
    both_managers_expire_silent_rows_each_once,
);

const HOSTS: [&str; 2] = ["seed-a", "peer-a"];

/// A counter of the scheduler's `/metrics`, 0 when not there yet.
async fn scheduler_metric(scheduler: &TestScheduler, line: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", scheduler.http)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(line).and_then(|v| v.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// A job's state and claim count as the database holds them.
#[derive(Debug, PartialEq, Eq)]
struct JobRow {
    state: String,
    attempt: i64,
}

async fn job_row(m: &TestManager, id: i64) -> JobRow {
    let sql = format!("SELECT state, attempt FROM jobs WHERE id = {id}");
    let row = m.sql.query_one(Statement::from_string(m.sql.get_database_backend(), sql)).await.unwrap().unwrap();
    JobRow { state: row.try_get("", "state").unwrap(), attempt: row.try_get("", "attempt").unwrap() }
}

/// Polls job `id` on `m` until `state`, for up to `within`.
async fn until_state(m: &TestManager, id: i64, state: &str, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let job = m.get(&format!("/api/v1/jobs/{id}"), &m.root).await.expect(200).body;
        if job["state"] == state {
            return job;
        }
        assert!(tokio::time::Instant::now() < deadline, "job {id} never became {state}: {job}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn two_managers_one_killed_mid_job(backend: Backend) {
    if backend == Backend::Sqlite {
        // One SQLite file is one machine's: replicas need a database server.
        return;
    }
    let redis = testkit::db::redis().await;
    let key = format!("damselfly:test:{}", uuid::Uuid::new_v4().simple());
    // A short stale window; A is started apart from the test's runtime so it can be killed.
    let a = TestManager::start_apart(backend, |c| {
        c.jobs.poll_interval_ms = 100;
        c.jobs.stale_after_secs = 2;
        c.redis.url = redis.into();
        c.redis.key_prefix = key.clone();
        c.jobs.redis_key = format!("{key}:jobs");
        c.grpc.keepalive_timeout_secs = 3;
    })
    .await;
    let origin = Origin::start().await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();

    // A alone at first, behind the front; the scheduler keeps alive through the front (so, A).
    let front = Front::start(vec![a.grpc.parse().unwrap()]).await;
    let (scheduler, _peers) = crate::preheat::cluster(&front.addr.to_string(), &HOSTS, dir.path(), &stop).await;
    testkit::eventually("the scheduler is active", Duration::from_secs(10), || async {
        active_scheduler(&a).await.is_some()
    })
    .await;

    // Two preheats of a slow file (about 6.4 s on each host), claimed by A, the only manager.
    let mut preheats = Vec::new();
    for tag in ["one", "two"] {
        let args = json!({"type": "file", "url": format!("{origin}/slow"), "tag": tag, "scope": "all_peers"});
        let job = a.post("/api/v1/jobs", &a.root, json!({"type": "preheat", "args": args})).await.expect(201);
        preheats.push(job.id());
    }
    for id in &preheats {
        until_state(&a, *id, "RUNNING", Duration::from_secs(10)).await;
    }
    let preheats_started = tokio::time::Instant::now();

    // B on the same database and Redis, with a data dir of its own; the front now has both.
    let b = a.replica(|_| {}).await;
    front.add(b.grpc.parse().unwrap());

    // A sign-in on A holds on B; so does a personal access token made on B, on A.
    let (alice_id, alice) = a.user("alice").await;
    let me = b.get("/api/v1/users/me", &alice).await.expect(200);
    assert_eq!(me.body["id"], alice_id);
    b.get("/api/v1/users/me", &a.root).await.expect(200);
    let pat = crate::preheat::job_token(&b, "replicas").await;
    a.get("/oapi/v1/jobs", &pat).await.expect(200);
    // Signing out on A ends the session on B.
    let (_, bob) = a.user("bob").await;
    b.get("/api/v1/users/me", &bob).await.expect(200);
    a.post("/api/v1/users/signout", &bob, json!({})).await.expect(204);
    b.get("/api/v1/users/me", &bob).await.expect(401);

    // get_task and delete_task jobs created on both, while both run jobs: each runs once.
    let mut quick = Vec::new();
    for i in 0..6u8 {
        let (m, kind) = match i % 3 {
            0 => (&a, "get_task"),
            1 => (&b, "get_task"),
            _ => (if i < 3 { &a } else { &b }, "delete_task"),
        };
        let task = format!("{:x}", i).repeat(64);
        let job = m.post("/api/v1/jobs", &m.root, json!({"type": kind, "args": {"task_id": task}})).await.expect(201);
        quick.push((job.id(), kind));
    }
    for (id, kind) in &quick {
        let done = until_state(&b, *id, "SUCCESS", Duration::from_secs(20)).await;
        assert_eq!(done["type"], *kind);
        assert_eq!(job_row(&b, *id).await.attempt, 1, "job {id} was claimed once");
    }
    let gets = quick.iter().filter(|(_, k)| *k == "get_task").count() as u64;
    let deletes = quick.len() as u64 - gets;
    assert_eq!(scheduler_metric(&scheduler, "damselfly_scheduler_task_calls_total{call=\"stat\"}").await, gets);
    assert_eq!(scheduler_metric(&scheduler, "damselfly_scheduler_task_calls_total{call=\"delete\"}").await, deletes);

    // Past the stale window, A's preheats are still A's: it stamps them, B leaves them alone.
    let stale = Duration::from_secs(a.config.jobs.stale_after_secs);
    tokio::time::sleep((stale + Duration::from_millis(800)).saturating_sub(preheats_started.elapsed())).await;
    for id in &preheats {
        let row = job_row(&b, *id).await;
        assert_eq!(row, JobRow { state: "RUNNING".into(), attempt: 1 }, "preheat {id} is still A's first run");
    }
    assert_eq!(scheduler_metric(&scheduler, "damselfly_scheduler_preheats_running").await, 2);
    let finished = "damselfly_scheduler_preheat_results_total{result=\"succeeded\"}";
    assert_eq!(
        scheduler_metric(&scheduler, finished).await,
        0,
        "no host finished the slow file before A dies ({:?} in): the test is too slow to show anything",
        preheats_started.elapsed()
    );

    // A dies mid-preheat: no hand-back, the jobs stay RUNNING with A's last stamp.
    let db = a.kill().await;
    for id in &preheats {
        assert_eq!(job_row(&b, *id).await.state, "RUNNING");
    }
    // B takes them over once stale and runs them to the end, once each.
    for id in &preheats {
        let done = until_state(&b, *id, "SUCCESS", Duration::from_secs(40)).await;
        let hosts: Vec<&str> = done["result"]["job_states"][0]["results"][0]["success_tasks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["hostname"].as_str().unwrap())
            .collect();
        assert_eq!(hosts.len(), HOSTS.len(), "every host once: {done}");
        assert_eq!(job_row(&b, *id).await.attempt, 2, "preheat {id}: A's run, then B's alone");
    }
    assert_eq!(
        scheduler_metric(&scheduler, finished).await,
        (preheats.len() * HOSTS.len()) as u64,
        "each preheat finished once on each host"
    );
    // The quick jobs were not run again.
    assert_eq!(scheduler_metric(&scheduler, "damselfly_scheduler_task_calls_total{call=\"stat\"}").await, gets);

    // Every session still works, on B.
    b.get("/api/v1/users/me", &alice).await.expect(200);
    b.get("/api/v1/users/me", &b.root).await.expect(200);
    b.get("/oapi/v1/jobs", &pat).await.expect(200);
    b.get("/api/v1/users/me", &bob).await.expect(401);

    // The scheduler, whose stream went through the front to A, keeps alive through B: it stays
    // active across two keepalive timeouts, its stamp moving on.
    let timeout = Duration::from_secs(b.config.grpc.keepalive_timeout_secs);
    let before = active_scheduler(&b).await.expect("the scheduler is active on B");
    let watch_until = tokio::time::Instant::now() + timeout * 2;
    while tokio::time::Instant::now() < watch_until {
        assert!(active_scheduler(&b).await.is_some(), "the scheduler stayed active after A died");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = active_scheduler(&b).await.unwrap();
    assert!(after > before, "keepalives reach B: {before:?} → {after:?}");

    stop.cancel();
    scheduler.stop().await;
    b.stop().await;
    db.drop_db().await;
}

/// The scheduler's last keepalive, if its row is active.
async fn active_scheduler(m: &TestManager) -> Option<chrono::NaiveDateTime> {
    let sql = "SELECT last_keep_alive_at FROM schedulers WHERE state = 'active' AND last_keep_alive_at IS NOT NULL";
    let row = m.sql.query_one(Statement::from_string(m.sql.get_database_backend(), sql)).await.unwrap()?;
    Some(row.try_get("", "last_keep_alive_at").unwrap())
}

/// Two managers with no operator CA are one CA, kept in the database: a join token made on A
/// enrols through B (enrolment pins the CA the token names), and both data dirs hold the same
/// copy. A manager whose data dir holds another CA refuses to start, saying why.
async fn replicas_share_the_generated_ca(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let generated = |c: &mut server::config::ManagerConfig| {
        (c.tls.ca_cert, c.tls.ca_key) = Default::default();
    };
    let a = TestManager::start_apart(backend, generated).await;
    let b = a.replica(|_| {}).await;
    let copy = |m: &TestManager| std::fs::read_to_string(m.config.data_dir.join("ca/ca.crt")).unwrap();
    assert_eq!(copy(&a), copy(&b));

    let cluster = default_cluster(&a).await;
    let (on_a, on_b) = (join_token(&a, cluster).await, join_token(&b, cluster).await);
    let pin = |t: &str| t.rsplit_once('.').unwrap().1.to_owned();
    assert_eq!(pin(&on_a), pin(&on_b), "one CA whichever manager made the token");
    assert_ne!(pin(&on_a), testkit::pki::ca().fingerprint(), "the generated CA, not the test's");

    let token = common::tls::JoinToken::parse(&on_a).unwrap();
    let request = common::tls::KeyRequest::generate().unwrap();
    let ip: std::net::IpAddr = [127, 0, 0, 1].into();
    let (chain, _) =
        proto::enrol::enrol(&b.grpc, token, request, "sched-b", ip).await.expect("A's token enrols through B");
    assert!(chain.contains("BEGIN CERTIFICATE"), "{chain}");

    // A third manager brings a CA of its own in its data dir: it must not start.
    let mut config = b.config.clone();
    let other = tempfile::tempdir().unwrap();
    config.data_dir = other.path().to_owned();
    common::tls::CertificateAuthority::load_or_generate(&other.path().join("ca")).unwrap();
    let (manager, _) = server::Manager::open(config, None).await.unwrap();
    let listeners = server::Listeners {
        http: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        grpc: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    };
    let refused = tokio::time::timeout(Duration::from_secs(10), manager.serve(listeners, CancellationToken::new()))
        .await
        .expect("it stops at once")
        .expect_err("another CA is refused");
    assert!(refused.to_string().contains("the database holds CA"), "{refused}");

    b.stop().await;
    a.stop().await;
}

/// A scheduler join token of `cluster`, made on `m`.
async fn join_token(m: &TestManager, cluster: i64) -> String {
    let body = json!({"role": "scheduler", "name": "replicas", "max_uses": 5});
    let made = m.post(&format!("/api/v1/clusters/{cluster}/join-tokens"), &m.root, body).await.expect(201);
    made.body["token"].as_str().unwrap().to_owned()
}

/// The id of the first cluster `m` lists (the default one on a fresh database).
async fn default_cluster(m: &TestManager) -> i64 {
    let clusters = m.get("/api/v1/clusters", &m.root).await.expect(200).body;
    clusters.as_array().map_or(&clusters["data"][0], |c| &c[0])["id"].as_i64().unwrap()
}

/// With Redis, the sign-in budget of a name (20 at once) and a cluster's job rate are one
/// budget for both managers: a flood spread over the two is refused as from one.
async fn limits_are_one_budget_across_replicas_with_redis(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    let redis = testkit::db::redis().await;
    let prefix = format!("damselfly:test:{}", uuid::Uuid::new_v4().simple());
    let a = TestManager::start_apart(backend, |c| {
        c.redis.url = redis.into();
        c.redis.key_prefix = prefix.clone();
    })
    .await;
    let b = a.replica(|_| {}).await;

    // 15 attempts on each at once: 20 pass the shared bucket (a refill or two aside), the rest
    // are told to wait. Each manager alone would have let all 15 through.
    let answers = futures::future::join_all((0..30).map(|i| {
        let m = if i % 2 == 0 { &a } else { &b };
        let body = json!({"name": "victim", "password": "guess-guess"});
        m.call(reqwest::Method::POST, "/api/v1/users/signin", None, Some(body))
    }))
    .await;
    assert!(answers.iter().all(|r| r.status == 401 || r.status == 429), "only 401s and 429s");
    // Refused for the name's budget (not for a busy hashing queue, which is each manager's own).
    let over_budget = answers
        .iter()
        .filter(|r| r.status == 429 && r.body["message"].as_str().is_some_and(|m| m.contains("for this user")))
        .count();
    assert!((8..=10).contains(&over_budget), "one budget of 20 for both: {over_budget} of 30 refused for it");

    // A cluster taking one job a second: a burst over both managers is admitted once per
    // window, not once per manager.
    let cluster = default_cluster(&a).await;
    let config = json!({"candidate_parent_limit": 6, "filter_parent_limit": 60, "job_rate_limit": 1});
    a.patch(&format!("/api/v1/clusters/{cluster}"), &a.root, json!({"scheduler_cluster_config": config}))
        .await
        .expect(200);
    let started = std::time::Instant::now();
    let job = json!({"type": "get_task", "args": {"url": "https://o/f"}, "scheduler_cluster_ids": [cluster]});
    let burst = (0..8).map(|i| {
        let m = if i % 2 == 0 { &a } else { &b };
        m.post("/api/v1/jobs", &m.root, job.clone())
    });
    let answers = futures::future::join_all(burst).await;
    let windows = started.elapsed().as_secs() as usize + 1;
    let accepted = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(accepted + answers.iter().filter(|r| r.status == 429).count(), 8, "only 201s and 429s");
    assert!((1..=windows).contains(&accepted), "{accepted} jobs admitted over {windows} window(s)");

    b.stop().await;
    a.stop().await;
}

/// A counter of a manager's `/metrics`.
async fn manager_metric(m: &TestManager, name: &str) -> u64 {
    let text = m.http.get(format!("{}/metrics", m.base)).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

/// Both managers sweep for silent components; each stale row is marked inactive once, by one
/// of them, and the counts of the two add up to the rows.
async fn both_managers_expire_silent_rows_each_once(backend: Backend) {
    if backend == Backend::Sqlite {
        return;
    }
    // A one-second timeout: each manager sweeps every half second.
    let a = TestManager::start_apart(backend, |c| c.grpc.keepalive_timeout_secs = 1).await;
    let b = a.replica(|_| {}).await;
    let cluster = default_cluster(&a).await;
    const ROWS: u64 = 60;
    let silent = "'2001-01-01 00:00:00'";
    let values: Vec<String> =
        (0..ROWS).map(|i| format!("({cluster}, 'peer-{i}', '10.0.0.{i}', 65000, 'active', {silent})")).collect();
    let insert = format!(
        "INSERT INTO peers (cluster_id, hostname, ip, port, state, last_keep_alive_at) VALUES {}",
        values.join(", ")
    );
    a.db.exec(&insert).await;
    let count_active = || async {
        let sql = "SELECT COUNT(*) AS n FROM peers WHERE state = 'active'";
        let row = a.sql.query_one(Statement::from_string(a.sql.get_database_backend(), sql)).await.unwrap().unwrap();
        row.try_get::<i64>("", "n").unwrap()
    };
    testkit::eventually("every silent peer is inactive", Duration::from_secs(10), || async {
        count_active().await == 0
    })
    .await;
    let name = "damselfly_manager_expired_components_total";
    let (by_a, by_b) = (manager_metric(&a, name).await, manager_metric(&b, name).await);
    assert_eq!(by_a + by_b, ROWS, "each row expired once: {by_a} by A, {by_b} by B");

    b.stop().await;
    a.stop().await;
}
