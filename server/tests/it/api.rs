//! The REST API end to end, on SQLite, PostgreSQL and MariaDB alike: sign-in sessions,
//! accounts, clusters and the other resources, pagination and errors, personal access tokens
//! on `/oapi/v1` (Harbor's preheat call included), the audit log, OpenAPI and metrics.

use reqwest::Method;
use serde_json::json;
use testkit::{
    db::Backend,
    manager::{ROOT_PASSWORD, TestManager},
};

testkit::on_every_database!(sessions_and_accounts, resources_pagination_and_errors, tokens_oapi_and_audit);

async fn sessions_and_accounts(backend: Backend) {
    let m = TestManager::start(backend).await;
    // Wrong password and unknown user answer alike.
    let bad = m
        .call(Method::POST, "/api/v1/users/signin", None, Some(json!({"name": "root", "password": "nope-nope"})))
        .await
        .expect(401);
    assert_eq!(bad.body["code"], "unauthorized");
    m.call(Method::POST, "/api/v1/users/signin", None, Some(json!({"name": "ghost", "password": "nope-nope"})))
        .await
        .expect(401);
    m.call(Method::GET, "/api/v1/users/me", None, None).await.expect(401);
    m.call(Method::GET, "/api/v1/users/me", Some("not.a.jwt"), None).await.expect(401);

    let me = m.get("/api/v1/users/me", &m.root).await.expect(200);
    assert!(me.headers.contains_key("x-request-id"), "every answer carries a request id");
    let roles = m.get("/api/v1/roles", &m.root).await.expect(200);
    let names: Vec<&str> = roles.body.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["root", "admin", "member", "guest", "user"]);
    let member = &roles.body[2]["permissions"];
    assert!(member.as_array().unwrap().iter().any(|p| p["object"] == "jobs" && p["action"] == "create"));
    assert_eq!(me.body["name"], "root");
    assert_eq!(me.body["platform_role"], "root");
    assert_eq!(me.body["tenants"][0]["tenant_name"], "default");
    assert_eq!(me.body["tenants"][0]["role"], "admin");
    assert!(me.body.get("encrypted_password").is_none());

    // Refresh gives a working token; sign-out ends the session for every token of it.
    let refreshed = m.post("/api/v1/users/refresh_token", &m.root, json!({})).await.expect(200);
    let second = refreshed.body["token"].as_str().unwrap().to_owned();
    m.get("/api/v1/users/me", &second).await.expect(200);
    m.post("/api/v1/users/signout", &second, json!({})).await.expect(204);
    m.get("/api/v1/users/me", &second).await.expect(401);
    m.get("/api/v1/users/me", &m.root).await.expect(401);
    let root = m.signin("root", ROOT_PASSWORD).await;

    // Sign-up is closed unless configured: nobody makes an account for themselves.
    let signup = |body| m.call(Method::POST, "/api/v1/users/signup", None, Some(body));
    let closed = signup(json!({"name": "mallory", "password": "long-enough"})).await.expect(403);
    assert!(closed.body["message"].as_str().unwrap().contains("closed"), "{}", closed.body);
    // A platform administrator makes accounts, validated, names unique; nobody else may.
    let create = |body| m.call(Method::POST, "/api/v1/users", Some(&root), Some(body));
    assert_eq!(create(json!({"name": "x y", "password": "long-enough"})).await.expect(400).body["field"], "name");
    assert_eq!(create(json!({"name": "alice", "password": "short"})).await.expect(400).body["field"], "password");
    assert_eq!(
        create(json!({"name": "alice", "password": "long-enough", "email": "nope"})).await.expect(400).body["field"],
        "email"
    );
    create(json!({"name": "alice"})).await.expect(400);
    m.call(Method::POST, "/api/v1/users", None, Some(json!({"name": "eve", "password": "long-enough"})))
        .await
        .expect(401);
    // (m.user would ask with the root token signed out above.)
    let alice_id = create(json!({"name": "alice", "password": "alice-password"})).await.expect(201).id();
    let alice = m.signin("alice", "alice-password").await;
    create(json!({"name": "alice", "password": "long-enough"})).await.expect(409);
    let by_alice = json!({"name": "bob", "password": "long-enough"});
    m.call(Method::POST, "/api/v1/users", Some(&alice), Some(by_alice)).await.expect(403);
    // A new user belongs to no tenant and sees nothing.
    assert_eq!(m.get("/api/v1/clusters", &alice).await.expect(200).body, json!([]));
    m.get("/api/v1/users", &alice).await.expect(403);
    m.get(&format!("/api/v1/users/{}", 1), &alice).await.expect(404);
    m.get(&format!("/api/v1/users/{alice_id}"), &alice).await.expect(200);
    assert_eq!(m.get("/api/v1/users?name=alice", &root).await.expect(200).body[0]["id"], alice_id);

    // Changing the password needs the old one and ends every session.
    let reset = format!("/api/v1/users/{alice_id}/reset_password");
    let wrong = m.post(&reset, &alice, json!({"old_password": "wrong-one", "new_password": "brand-new-pw"})).await;
    assert_eq!(wrong.expect(400).body["field"], "old_password");
    m.post(&reset, &alice, json!({"old_password": "alice-password", "new_password": "brand-new-pw"})).await.expect(204);
    m.get("/api/v1/users/me", &alice).await.expect(401);
    let alice = m.signin("alice", "brand-new-pw").await;

    // Only root changes state; disabling ends sessions and blocks sign-in.
    m.patch(&format!("/api/v1/users/{alice_id}"), &alice, json!({"state": "disabled"})).await.expect(403);
    m.patch(&format!("/api/v1/users/{alice_id}"), &root, json!({"state": "sleepy"})).await.expect(400);
    m.patch(&format!("/api/v1/users/{alice_id}"), &root, json!({"state": "disabled"})).await.expect(200);
    m.get("/api/v1/users/me", &alice).await.expect(401);
    m.call(Method::POST, "/api/v1/users/signin", None, Some(json!({"name": "alice", "password": "brand-new-pw"})))
        .await
        .expect(403);
    m.stop().await;
}

async fn resources_pagination_and_errors(backend: Backend) {
    let m = TestManager::start(backend).await;
    let root = m.root.clone();
    // Bodies that are not JSON, or JSON of the wrong shape, are clear 4xx errors.
    let raw = m.http.post(format!("{}/api/v1/clusters", m.base)).bearer_auth(&root).body("{}").send().await.unwrap();
    assert_eq!(raw.status(), 415);
    m.post("/api/v1/clusters", &root, json!({"name": 5})).await.expect(400);
    m.get("/api/v1/clusters/abc", &root).await.expect(400);
    m.get("/api/v1/clusters/99999", &root).await.expect(404);

    // Validation names the field.
    let bad = |body| m.post("/api/v1/clusters", &root, body);
    assert_eq!(bad(json!({"name": ""})).await.expect(400).body["field"], "name");
    assert_eq!(
        bad(json!({"name": "c", "scopes": {"cidrs": ["10.0.0.0/33"]}})).await.expect(400).body["field"],
        "scopes.cidrs"
    );
    assert_eq!(
        bad(json!({"name": "c", "scopes": {"hostnames": ["(unclosed"]}})).await.expect(400).body["field"],
        "scopes.hostnames"
    );
    assert_eq!(
        bad(json!({"name": "c", "scheduler_cluster_config": {"candidate_parent_limit": 0}})).await.expect(400).body["field"],
        "scheduler_cluster_config.candidate_parent_limit"
    );

    // Create, read, change, paginate, delete.
    let created = m
        .post(
            "/api/v1/clusters",
            &root,
            json!({"name": "east", "bio": "east coast", "scopes": {"idc": "e1", "cidrs": ["10.1.0.0/16"], "hostnames": ["^e-.*"]},
                   "scheduler_cluster_config": {"candidate_parent_limit": 6, "filter_parent_limit": 60, "job_rate_limit": 5},
                   "is_default": true}),
        )
        .await
        .expect(201);
    let east = created.id();
    assert_eq!(created.body["scopes"]["cidrs"][0], "10.1.0.0/16");
    assert_eq!(created.body["peer_cluster_config"]["load_limit"], 200);
    m.post("/api/v1/clusters", &root, json!({"name": "east"})).await.expect(409);
    // Only one default cluster.
    let defaults = m.get("/api/v1/clusters?is_default=true", &root).await.expect(200);
    assert_eq!(defaults.body.as_array().unwrap().len(), 1);
    assert_eq!(defaults.body[0]["id"], east);
    let patched = m.patch(&format!("/api/v1/clusters/{east}"), &root, json!({"bio": "changed"})).await.expect(200);
    assert_eq!(patched.body["bio"], "changed");
    assert_eq!(patched.body["scopes"]["idc"], "e1");
    for i in 0..11 {
        m.post("/api/v1/clusters", &root, json!({"name": format!("c{i:02}")})).await.expect(201);
    }
    let page = m.get("/api/v1/clusters?page=3&per_page=5", &root).await.expect(200);
    assert_eq!(page.headers["x-total-count"], "13");
    assert_eq!(page.body.as_array().unwrap().len(), 3);
    let link = page.headers["link"].to_str().unwrap();
    assert!(
        link.contains("page=2&per_page=5>; rel=\"prev\"") && link.contains("page=3&per_page=5>; rel=\"last\""),
        "{link}"
    );
    assert_eq!(m.get("/api/v1/clusters?page=0", &root).await.expect(400).body["field"], "page");
    assert_eq!(m.get("/api/v1/clusters?per_page=5000", &root).await.expect(400).body["field"], "per_page");
    m.get("/api/v1/clusters?page=-1", &root).await.expect(400);
    assert_eq!(m.get("/api/v1/clusters?name=c03", &root).await.expect(200).headers["x-total-count"], "1");
    let c00 = m.get("/api/v1/clusters?name=c00", &root).await.body[0]["id"].as_i64().unwrap();
    m.delete(&format!("/api/v1/clusters/{c00}"), &root).await.expect(204);
    m.get(&format!("/api/v1/clusters/{c00}"), &root).await.expect(404);
    // A deleted name can be used again.
    m.post("/api/v1/clusters", &root, json!({"name": "c00"})).await.expect(201);

    // Applications, configs, jobs.
    let app = m
        .post(
            "/api/v1/applications",
            &root,
            json!({"name": "ml", "priority": {"value": 3, "urls": [{"url": "^https://models/", "value": 5}]}}),
        )
        .await
        .expect(201);
    m.post("/api/v1/applications", &root, json!({"name": "bad", "priority": {"value": 9}})).await.expect(400);
    m.patch(&format!("/api/v1/applications/{}", app.id()), &root, json!({"url": "https://ml.example"}))
        .await
        .expect(200);
    let config = m.post("/api/v1/configs", &root, json!({"name": "gc_ttl", "value": "24h"})).await.expect(201);
    m.post("/api/v1/configs", &root, json!({"name": "gc_ttl", "value": "1h"})).await.expect(409);
    assert_eq!(
        m.patch(&format!("/api/v1/configs/{}", config.id()), &root, json!({"value": "1h"})).await.expect(200).body["value"],
        "1h"
    );
    let job = m
        .post(
            "/api/v1/jobs",
            &root,
            json!({"type": "get_task", "args": {"task_id": "a".repeat(64)}, "scheduler_cluster_ids": [east]}),
        )
        .await
        .expect(201);
    assert_eq!(job.body["state"], "PENDING");
    assert_eq!(job.body["scheduler_cluster_ids"], json!([east]));
    assert_eq!(
        m.post("/api/v1/jobs", &root, json!({"type": "explode", "args": {}})).await.expect(422).body["field"],
        "type"
    );
    assert_eq!(
        m.post("/api/v1/jobs", &root, json!({"type": "get_task", "args": {"task_id": "xyz"}})).await.expect(422).body["field"],
        "args.task_id"
    );
    m.post("/api/v1/jobs", &root, json!({"type": "preheat", "args": {"url": "ftp://x"}})).await.expect(422);
    m.post(
        "/api/v1/jobs",
        &root,
        json!({"type": "get_task", "args": {"url": "https://o/f"}, "scheduler_cluster_ids": [987654]}),
    )
    .await
    .expect(422);
    // The cluster's job rate limit holds. Lowered to one job a second and hit by a burst sent
    // at once, so the check does not hang on how fast the machine answers: whatever the timing,
    // each one-second window admits one job, and the rest are refused with 429.
    m.patch(
        &format!("/api/v1/clusters/{east}"),
        &root,
        json!({"scheduler_cluster_config": {"candidate_parent_limit": 6, "filter_parent_limit": 60, "job_rate_limit": 1}}),
    )
    .await
    .expect(200);
    let started = std::time::Instant::now();
    let burst = (0..8).map(|_| {
        m.post(
            "/api/v1/jobs",
            &root,
            json!({"type": "get_task", "args": {"url": "https://o/f"}, "scheduler_cluster_ids": [east]}),
        )
    });
    let answers = futures::future::join_all(burst).await;
    let windows = started.elapsed().as_secs() as usize + 2;
    let (mut accepted, mut limited) = (0, 0);
    for a in answers {
        match a.status.as_u16() {
            201 => accepted += 1,
            429 => {
                assert_eq!(a.expect(429).body["code"], "too_many_requests");
                limited += 1;
            }
            other => panic!("a job POST answered {other}: {}", a.body),
        }
    }
    assert!(accepted <= windows, "{accepted} jobs admitted in {windows} one-job windows");
    assert!(limited >= 2, "expected the rate limit to answer 429, got {limited} of 8");
    // The runner may already have run them (and failed: no scheduler is active), so no state filter.
    let listed = m.get("/api/v1/jobs?type=get_task&per_page=100", &root).await.expect(200);
    assert_eq!(listed.body.as_array().unwrap().len(), 1 + accepted, "the first job and the admitted ones");
    // No host has registered yet.
    for path in ["/api/v1/schedulers", "/api/v1/seed-peers", "/api/v1/peers"] {
        assert_eq!(m.get(path, &root).await.expect(200).body, json!([]));
    }
    m.get("/api/v1/schedulers/1", &root).await.expect(404);
    m.stop().await;
}

async fn tokens_oapi_and_audit(backend: Backend) {
    let m = TestManager::start(backend).await;
    let root = m.root.clone();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let pat = |body| m.post("/api/v1/personal-access-tokens", &root, body);
    assert_eq!(
        pat(json!({"name": "t", "scopes": [], "expired_at": tomorrow})).await.expect(400).body["field"],
        "scopes"
    );
    assert_eq!(
        pat(json!({"name": "t", "scopes": ["job"], "expired_at": past})).await.expect(400).body["field"],
        "expired_at"
    );
    pat(json!({"name": "t", "scopes": ["root"], "expired_at": tomorrow})).await.expect(400);
    let created = pat(json!({"name": "harbor", "scopes": ["job"], "expired_at": tomorrow})).await.expect(201);
    let job_token = created.body["token"].as_str().unwrap().to_owned();
    let token_id = created.id();
    assert!(job_token.starts_with("dfly_pat_"));
    pat(json!({"name": "harbor", "scopes": ["job"], "expired_at": tomorrow})).await.expect(409);
    // Shown once: lists and reads carry only the prefix.
    let listed = m.get("/api/v1/personal-access-tokens", &root).await.expect(200);
    assert!(!listed.body.to_string().contains(&job_token));
    assert!(job_token.starts_with(listed.body[0]["token_prefix"].as_str().unwrap()));

    // Harbor's preheat call, as Harbor sends it.
    let harbor = json!({"type": "preheat", "args": {"type": "image", "url": "https://reg.example/v2/lib/app/manifests/1.0",
        "tag": "", "filtered_query_params": "", "headers": {"Authorization": "Bearer x"}, "scope": "all_peers",
        "concurrent_count": 0, "timeout": 0}, "scheduler_cluster_ids": null});
    let job = m.post("/oapi/v1/jobs", &job_token, harbor.clone()).await.expect(201);
    assert_eq!(job.body["state"], "PENDING");
    let got = m.get(&format!("/oapi/v1/jobs/{}", job.id()), &job_token).await.expect(200);
    assert_eq!(got.body["args"]["url"], harbor["args"]["url"]);
    let via_query = m.http.get(format!("{}/oapi/v1/jobs?access_token={job_token}", m.base)).send().await.unwrap();
    assert_eq!(via_query.status(), 200);

    // 401 for missing or unknown tokens; 403 for scope, state and expiry.
    m.call(Method::GET, "/oapi/v1/jobs", None, None).await.expect(401);
    m.get("/oapi/v1/jobs", "dfly_pat_unknown").await.expect(401);
    m.get("/oapi/v1/jobs", &root).await.expect(401);
    m.get("/api/v1/clusters", &job_token).await.expect(401);
    m.get("/oapi/v1/clusters", &job_token).await.expect(403);
    let both = pat(json!({"name": "ci", "scopes": ["job", "cluster"], "expired_at": tomorrow})).await.expect(201);
    let both_token = both.body["token"].as_str().unwrap().to_owned();
    assert_eq!(m.get("/oapi/v1/clusters", &both_token).await.expect(200).body[0]["name"], "default");
    m.post("/oapi/v1/clusters", &both_token, json!({"name": "from-ci"})).await.expect(201);
    m.patch(&format!("/api/v1/personal-access-tokens/{token_id}"), &root, json!({"state": "inactive"}))
        .await
        .expect(200);
    m.get("/oapi/v1/jobs", &job_token).await.expect(403);
    m.patch(&format!("/api/v1/personal-access-tokens/{token_id}"), &root, json!({"state": "active"})).await.expect(200);
    m.get("/oapi/v1/jobs", &job_token).await.expect(200);
    m.db.exec(&format!("UPDATE personal_access_tokens SET expired_at = '2001-01-01 00:00:00' WHERE id = {token_id}"))
        .await;
    m.get("/oapi/v1/jobs", &job_token).await.expect(403);
    let used = m.get(&format!("/api/v1/personal-access-tokens/{token_id}"), &root).await.expect(200);
    assert!(used.body["last_used_at"].is_string());
    m.delete(&format!("/api/v1/personal-access-tokens/{}", both.id()), &root).await.expect(204);
    m.get("/oapi/v1/clusters", &both_token).await.expect(401);

    // The audit log recorded who did what, including the failures.
    m.call(Method::POST, "/api/v1/users/signin", None, Some(json!({"name": "root", "password": "bad-password"})))
        .await
        .expect(401);
    let audits = m.get("/api/v1/audits?per_page=100", &root).await.expect(200);
    let entries = audits.body.as_array().unwrap();
    let find = |event: &str, state: &str| entries.iter().find(|e| e["event"] == event && e["state"] == state).cloned();
    let signin_failed = find("users.signin", "failure").expect("failed sign-in audited");
    assert_eq!(signin_failed["actor_name"], "root");
    assert_eq!(signin_failed["status_code"], 401);
    let by_token = find("clusters.create", "success").expect("cluster creation audited");
    assert_eq!(by_token["actor_type"], "personal_access_token");
    assert_eq!(by_token["path"], "/oapi/v1/clusters");
    assert!(find("personal-access-tokens.create", "failure").is_some());
    assert!(entries.iter().all(|e| e["operation"] != "GET"));
    assert_eq!(
        m.get("/api/v1/audits?event=jobs.create", &root).await.expect(200).body[0]["actor_type"],
        "personal_access_token"
    );

    // The document describes what is served; metrics count it.
    let doc = m.call(Method::GET, "/openapi.json", None, None).await.expect(200);
    for path in ["/api/v1/users/signin", "/api/v1/clusters/{id}", "/oapi/v1/jobs", "/oapi/v1/jobs/{id}", "/healthy"] {
        assert!(doc.body["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    let metrics = m.http.get(format!("{}/metrics", m.base)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics
            .contains("damselfly_manager_http_requests_total{route=\"/oapi/v1/jobs\",method=\"POST\",status=\"201\"}"),
        "{metrics}"
    );
    m.stop().await;
}

/// Every sign-in attempt costs an Argon2 hash: a flood for one name is told to wait (429 with
/// `Retry-After`) before any more hashing, and other users still sign in. The limit is the
/// manager's, not the database's, so SQLite alone shows it.
#[tokio::test]
async fn a_sign_in_flood_is_told_to_wait_and_others_still_sign_in() {
    let m = TestManager::start(Backend::Sqlite).await;
    let attempt = || {
        m.call(Method::POST, "/api/v1/users/signin", None, Some(json!({"name": "victim", "password": "guess-guess"})))
    };
    let answers = futures::future::join_all((0..30).map(|_| attempt())).await;
    let refused: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert!(answers.iter().all(|a| a.status == 401 || a.status == 429), "only 401s and 429s");
    assert!(refused.len() >= 10, "at most 20 attempts per name at once: {} refused", refused.len());
    for r in &refused {
        assert_eq!(r.body["code"], "too_many_requests");
        let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    // Another name is not held back by the flood.
    m.call(Method::POST, "/api/v1/users/signin", None, Some(json!({"name": "root", "password": ROOT_PASSWORD})))
        .await
        .expect(200);
    m.stop().await;
}

/// A change carried by the console's cookie must come from the console's own pages: a browser
/// that says it came from elsewhere is refused, whatever the route (API or server function),
/// while bearer-token callers and reads pass; every answer carries the security headers.
#[tokio::test]
async fn cross_site_changes_riding_on_the_cookie_are_refused() {
    let m = TestManager::start(Backend::Sqlite).await;
    let cookie = format!("jwt={}", m.root);
    let body = json!({"name": "from-elsewhere", "scheduler_cluster_config": {}});
    let send = |path: &str, headers: &[(&str, &str)], bearer: bool| {
        let mut req = m.http.post(format!("{}{path}", m.base)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if bearer {
            req = req.bearer_auth(&m.root);
        }
        async move { testkit::manager::Answer::read(req.send().await.unwrap()).await }
    };
    for path in ["/api/v1/clusters", "/console/fn/sign_out"] {
        for from in [&[("sec-fetch-site", "cross-site")][..], &[("origin", "https://evil.example")][..]] {
            let mut headers = vec![("cookie", cookie.as_str())];
            headers.extend_from_slice(from);
            let refused = send(path, &headers, false).await.expect(403);
            assert_eq!(refused.body["code"], "forbidden");
            assert_eq!(refused.headers["x-frame-options"], "DENY");
        }
    }
    // The same change with a bearer token, or from the console's own origin, goes through.
    send("/api/v1/clusters", &[("origin", "https://evil.example")], true).await.expect(201);
    let own = [("cookie", cookie.as_str()), ("origin", m.base.as_str()), ("sec-fetch-site", "same-origin")];
    let same = send("/api/v1/clusters", &own, false).await;
    assert_eq!(same.status, 409, "reached the handler (the name is taken): {:?}", same.body);

    // The console's own page signing out with its cookie reaches the server function.
    let token = m.signin("root", ROOT_PASSWORD).await;
    let session = format!("jwt={token}");
    let own = [("cookie", session.as_str()), ("origin", m.base.as_str()), ("sec-fetch-site", "same-origin")];
    let signed_out = send("/console/fn/sign_out", &own, false).await;
    assert!(signed_out.status.is_success() || signed_out.status.is_redirection(), "{:?}", signed_out.status);
    m.call(Method::GET, "/api/v1/users/me", Some(&token), None).await.expect(401);

    let read = m.get("/api/v1/users/me", &m.root).await.expect(200);
    assert_eq!(read.headers["x-content-type-options"], "nosniff");
    assert_eq!(read.headers["referrer-policy"], "same-origin");
    assert!(read.headers["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    m.stop().await;
}

/// A console page runs only the scripts its server render put there: its policy allows scripts
/// of this origin or with the response's nonce, every inline script carries that nonce, and
/// the nonce is new for each response.
#[tokio::test]
async fn a_console_page_runs_only_its_own_scripts() {
    let m = TestManager::start(Backend::Sqlite).await;
    let mut nonces = Vec::new();
    for _ in 0..2 {
        let page = m
            .http
            .get(format!("{}/clusters", m.base))
            .header("cookie", format!("jwt={}", m.root))
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 200);
        let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        let html = page.text().await.unwrap();
        let script_src = policy.split(';').map(str::trim).find(|d| d.starts_with("script-src")).expect(&policy);
        let nonce = script_src
            .split_whitespace()
            .find_map(|s| s.strip_prefix("'nonce-").and_then(|s| s.strip_suffix('\'')))
            .expect(&policy)
            .to_owned();
        assert!(!script_src.contains("unsafe-inline"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        let scripts: Vec<&str> =
            html.match_indices("<script").map(|(i, _)| &html[i..i + html[i..].find('>').unwrap()]).collect();
        assert!(!scripts.is_empty(), "the page hydrates from scripts");
        for script in scripts {
            // A script file of this origin runs under `'self'`; anything inline needs the nonce.
            let own_file = script.contains("src=\"/") && !script.contains("src=\"//");
            assert!(own_file || script.contains(&format!("nonce=\"{nonce}\"")), "{script} lacks the nonce {nonce}");
        }
        assert!(policy.contains("script-src 'self'"), "{policy}");
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "each response has its own nonce");
    m.stop().await;
}

#[tokio::test]
async fn an_open_manager_lets_people_sign_up_and_checks_what_they_send() {
    let m = TestManager::start_with(Backend::Sqlite, |c| c.auth.allow_signup = true).await;
    let signup = |body| m.call(Method::POST, "/api/v1/users/signup", None, Some(body));
    assert_eq!(signup(json!({"name": "x y", "password": "long-enough"})).await.expect(400).body["field"], "name");
    let made = signup(json!({"name": "carol", "password": "long-enough"})).await.expect(201);
    assert_eq!(made.body["name"], "carol");
    signup(json!({"name": "carol", "password": "long-enough"})).await.expect(409);
    m.signin("carol", "long-enough").await;
    m.stop().await;
}

#[tokio::test]
async fn behind_https_every_cookie_the_manager_sets_is_secure() {
    /// The `Set-Cookie` of a console sign-out (it clears the session cookie).
    async fn sign_out_cookie(m: &TestManager, extra: &[(&str, &str)]) -> String {
        let token = m.signin("root", ROOT_PASSWORD).await;
        let mut req = m
            .http
            .post(format!("{}/console/fn/sign_out", m.base))
            .header("cookie", format!("jwt={token}"))
            .header("sec-fetch-site", "same-origin");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let answer = req.send().await.unwrap();
        let cookie = answer.headers().get("set-cookie").expect("sign-out clears the cookie");
        cookie.to_str().unwrap().to_owned()
    }
    let plain = TestManager::start(Backend::Sqlite).await;
    assert!(!sign_out_cookie(&plain, &[]).await.contains("Secure"), "plain HTTP keeps cookies usable");
    let proxied = sign_out_cookie(&plain, &[("x-forwarded-proto", "https")]).await;
    assert!(proxied.ends_with("; Secure") && proxied.contains("HttpOnly"), "{proxied}");
    plain.stop().await;
    let https = TestManager::start_with(Backend::Sqlite, |c| c.server.secure_cookies = true).await;
    let cookie = sign_out_cookie(&https, &[]).await;
    assert_eq!(cookie.matches("Secure").count(), 1, "{cookie}");
    https.stop().await;
}
