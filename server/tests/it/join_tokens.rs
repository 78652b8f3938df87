//! Cluster join tokens: made, listed and revoked by those who may change the cluster, shown once;
//! redeemed by enrolment, which counts every use and refuses every bad token the same way, even
//! under concurrent redemption.

use serde_json::json;
use server::{Error, JoinGrant, JoinRole, redeem_join_token as redeem};
use testkit::{db::Backend, manager::TestManager};

testkit::on_every_database!(
    join_tokens_are_made_by_those_who_may_change_the_cluster,
    redeeming_counts_uses_and_refuses_bad_tokens_alike,
    a_single_use_token_redeemed_at_once_by_many_succeeds_once,
);

/// A tenant `acme` with an admin (`owner`), a member and a guest, a cluster of its own, and a user
/// of another tenant; answers the cluster's id and each actor's sign-in token.
struct Acme {
    tenant: i64,
    cluster: i64,
    owner: String,
    member: String,
    guest: String,
    stranger: String,
}

impl Acme {
    async fn new(m: &TestManager) -> Self {
        let (_, owner) = m.user("owner").await;
        let tenant = m.post("/api/v1/tenants", &owner, json!({"name": "acme"})).await.expect(201).id();
        let cluster = m
            .post("/api/v1/clusters", &owner, json!({"tenant_id": tenant, "name": "acme-east"}))
            .await
            .expect(201)
            .id();
        let mut tokens = vec![];
        for (name, role) in [("acme-member", "member"), ("acme-guest", "guest")] {
            let (_, token) = m.user(name).await;
            m.post(&format!("/api/v1/tenants/{tenant}/members"), &owner, json!({"user_name": name, "role": role}))
                .await
                .expect(201);
            tokens.push(token);
        }
        let (_, stranger) = m.user("stranger").await;
        m.post("/api/v1/tenants", &stranger, json!({"name": "elsewhere"})).await.expect(201);
        let guest = tokens.pop().unwrap();
        let member = tokens.pop().unwrap();
        Self { tenant, cluster, owner, member, guest, stranger }
    }

    fn url(&self) -> String {
        format!("/api/v1/clusters/{}/join-tokens", self.cluster)
    }

    /// Makes a token as the owner; answers its id and the token.
    async fn token(&self, m: &TestManager, body: serde_json::Value) -> (i64, String) {
        let created = m.post(&self.url(), &self.owner, body).await.expect(201);
        (created.id(), created.body["token"].as_str().unwrap().to_owned())
    }
}

async fn join_tokens_are_made_by_those_who_may_change_the_cluster(backend: Backend) {
    let m = TestManager::start(backend).await;
    let acme = Acme::new(&m).await;
    let url = acme.url();

    // Input is checked, field by field.
    let bad = |body| m.post(&url, &acme.owner, body);
    assert_eq!(bad(json!({"role": "peer", "name": ""})).await.expect(400).body["field"], "name");
    bad(json!({"role": "manager", "name": "x"})).await.expect(400);
    bad(json!({"name": "x"})).await.expect(400);
    bad(json!({"role": "peer", "name": "x", "secret": "mine"})).await.expect(400);
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let too_far = (chrono::Utc::now() + chrono::Duration::days(400)).to_rfc3339();
    for at in [past, too_far] {
        let answer = bad(json!({"role": "peer", "name": "x", "expires_at": at})).await.expect(400);
        assert_eq!(answer.body["field"], "expires_at");
    }
    for n in [0, -1, 1_000_001] {
        assert_eq!(
            bad(json!({"role": "peer", "name": "x", "max_uses": n})).await.expect(400).body["field"],
            "max_uses"
        );
    }
    let raw = m.http.post(format!("{}{url}", m.base)).bearer_auth(&acme.owner).body("{}").send().await.unwrap();
    assert_eq!(raw.status(), 415);

    // The owner makes one: the token is shown once, and lasts a day by default.
    let created = m.post(&url, &acme.owner, json!({"role": "seed_peer", "name": "seeds", "max_uses": 3})).await;
    let created = created.expect(201);
    let token = created.body["token"].as_str().unwrap().to_owned();
    let id = created.id();
    assert!(token.starts_with(&format!("dfj1.{id}.")), "{token}");
    assert_eq!(created.body["role"], "seed_peer");
    assert_eq!(created.body["state"], "active");
    assert_eq!(created.body["cluster_id"], acme.cluster);
    assert_eq!(created.body["tenant_id"], acme.tenant);
    assert_eq!((created.body["uses"].as_i64(), created.body["max_uses"].as_i64()), (Some(0), Some(3)));
    let expires: chrono::DateTime<chrono::Utc> = created.body["expires_at"].as_str().unwrap().parse().unwrap();
    let left = expires - chrono::Utc::now();
    assert!(left > chrono::Duration::hours(23) && left <= chrono::Duration::hours(24), "{left}");
    let prefix = created.body["token_prefix"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&prefix) && prefix.len() < token.len() / 2, "{prefix}");
    let listed = m.get(&url, &acme.owner).await.expect(200);
    assert_eq!(listed.headers["x-total-count"], "1");
    assert_eq!(listed.body[0]["token_prefix"], prefix.as_str());
    let got = m.get(&format!("{url}/{id}"), &acme.owner).await.expect(200);
    for shown in [&listed.body, &got.body] {
        assert!(!shown.to_string().contains(&token[prefix.len()..]), "the secret is shown again: {shown}");
        assert!(shown.to_string().contains(&prefix));
    }

    // Members and guests see the cluster but not its tokens; another tenant sees nothing.
    for who in [&acme.member, &acme.guest] {
        m.get(&url, who).await.expect(403);
        m.get(&format!("{url}/{id}"), who).await.expect(403);
        m.post(&url, who, json!({"role": "peer", "name": "mine"})).await.expect(403);
        m.delete(&format!("{url}/{id}"), who).await.expect(403);
    }
    for answer in [
        m.get(&url, &acme.stranger).await,
        m.get(&format!("{url}/{id}"), &acme.stranger).await,
        m.post(&url, &acme.stranger, json!({"role": "peer", "name": "mine"})).await,
        m.delete(&format!("{url}/{id}"), &acme.stranger).await,
    ] {
        let answer = answer.expect(404);
        assert!(!answer.body.to_string().contains("acme"), "{}", answer.body);
    }
    // A token is found only under its own cluster.
    let default = m.get("/api/v1/clusters?name=default", &m.root).await.expect(200).body[0]["id"].as_i64().unwrap();
    m.get(&format!("/api/v1/clusters/{default}/join-tokens/{id}"), &m.root).await.expect(404);
    m.get(&format!("{url}/999999"), &acme.owner).await.expect(404);
    m.get(&format!("{url}/abc"), &acme.owner).await.expect(400);
    assert_eq!(m.get(&format!("{url}?per_page=0"), &acme.owner).await.expect(400).body["field"], "per_page");
    m.get(&format!("{url}/{id}"), &m.root).await.expect(200);

    // Revoking keeps the row, for the record; a refused revocation changed nothing.
    assert_eq!(m.get(&format!("{url}/{id}"), &acme.owner).await.expect(200).body["state"], "active");
    m.delete(&format!("{url}/{id}"), &acme.owner).await.expect(204);
    m.delete(&format!("{url}/{id}"), &acme.owner).await.expect(204);
    let revoked = m.get(&format!("{url}/{id}"), &acme.owner).await.expect(200);
    assert_eq!(revoked.body["state"], "revoked");
    assert_eq!(m.get(&url, &acme.owner).await.expect(200).body[0]["state"], "revoked");
    let err = redeem(&m.sql, &token).await.unwrap_err();
    assert!(matches!(err, Error::Unauthorized(_)), "{err:?}");

    // Both changes are in the tenant's audit log, under the owner's name.
    let audits = m.get("/api/v1/audits?per_page=100", &acme.owner).await.expect(200);
    for event in ["clusters.join-tokens.create", "clusters.join-tokens.delete"] {
        let entry = audits.body.as_array().unwrap().iter().find(|e| e["event"] == event && e["state"] == "success");
        let entry = entry.unwrap_or_else(|| panic!("{event} not audited: {}", audits.body));
        assert_eq!(entry["actor_name"], "owner");
        assert_eq!(entry["tenant_id"], acme.tenant);
    }

    // The document describes the routes.
    let doc = m.get("/openapi.json", &m.root).await.expect(200);
    for path in ["/api/v1/clusters/{id}/join-tokens", "/api/v1/clusters/{id}/join-tokens/{token_id}"] {
        assert!(doc.body["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
    m.stop().await;
}

async fn redeeming_counts_uses_and_refuses_bad_tokens_alike(backend: Backend) {
    let m = TestManager::start(backend).await;
    let acme = Acme::new(&m).await;
    let url = acme.url();

    // A good token enrols its role in its cluster, as often as it allows, counting each use.
    let (id, token) = acme.token(&m, json!({"role": "scheduler", "name": "schedulers", "max_uses": 2})).await;
    let grant = redeem(&m.sql, &token).await.unwrap();
    assert_eq!(
        grant,
        JoinGrant { token_id: id, cluster_id: acme.cluster, tenant_id: acme.tenant, role: JoinRole::Scheduler }
    );
    let used = m.get(&format!("{url}/{id}"), &acme.owner).await.expect(200);
    assert_eq!(used.body["uses"], 1);
    assert!(used.body["last_used_at"].is_string());
    // The token carries the CA's fingerprint for the enrolling side to pin; the manager ignores
    // that part, and takes the token without it too.
    let (bare, pin) = token.rsplit_once('.').unwrap();
    assert_eq!(pin, testkit::pki::ca().fingerprint());
    assert_eq!(redeem(&m.sql, bare).await.unwrap(), grant);
    assert_eq!(m.get(&format!("{url}/{id}"), &acme.owner).await.expect(200).body["uses"], 2);
    let exhausted = token.clone();

    // Every other token is refused with the same error.
    let (_, unlimited) = acme.token(&m, json!({"role": "peer", "name": "peers"})).await;
    // The forms below are made from the token without its CA part.
    let unlimited = unlimited.rsplit_once('.').unwrap().0.to_owned();
    for _ in 0..3 {
        assert_eq!(redeem(&m.sql, &unlimited).await.unwrap().role, JoinRole::Peer);
    }
    let (revoked_id, revoked) = acme.token(&m, json!({"role": "peer", "name": "revoked"})).await;
    m.delete(&format!("{url}/{revoked_id}"), &acme.owner).await.expect(204);
    let (expired_id, expired) = acme.token(&m, json!({"role": "peer", "name": "expired"})).await;
    m.db.exec(&format!("UPDATE join_tokens SET expires_at = '2001-01-01 00:00:00' WHERE id = {expired_id}")).await;
    // A token of a deleted cluster enrols nowhere.
    let gone = m.post("/api/v1/clusters", &acme.owner, json!({"tenant_id": acme.tenant, "name": "gone"})).await;
    let gone = gone.expect(201).id();
    let gone_url = format!("/api/v1/clusters/{gone}/join-tokens");
    let made = m.post(&gone_url, &acme.owner, json!({"role": "peer", "name": "g"})).await.expect(201);
    let orphan = made.body["token"].as_str().unwrap().to_owned();
    m.delete(&format!("/api/v1/clusters/{gone}"), &acme.owner).await.expect(204);
    // The right id with another secret, and the right secret under another id.
    let (head, secret) = unlimited.rsplit_once('.').unwrap();
    let mut flipped = secret.as_bytes().to_vec();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    let wrong_secret = format!("{head}.{}", String::from_utf8(flipped).unwrap());
    let wrong_id = format!("dfj1.{id}.{secret}");
    let refused = [
        ("exhausted", exhausted),
        ("revoked", revoked),
        ("expired", expired),
        ("orphan", orphan),
        ("wrong secret", wrong_secret),
        ("wrong id", wrong_id),
        ("empty", String::new()),
        ("garbage", "not a token".to_owned()),
        ("prefix only", "dfj1".to_owned()),
        ("no secret", format!("dfj1.{id}")),
        ("bad base64", format!("dfj1.{id}.{}", "!".repeat(43))),
        ("short secret", format!("{head}.{}", &secret[..20])),
        ("other version", unlimited.replacen("dfj1", "dfj2", 1)),
        ("five parts", format!("{unlimited}.aa.bb")),
        ("over-long", format!("{unlimited}.{}", "a".repeat(300))),
        ("huge", "dfj1.".repeat(100_000)),
    ];
    let mut messages = vec![];
    for (what, token) in &refused {
        match redeem(&m.sql, token).await {
            Err(Error::Unauthorized(message)) => messages.push(message),
            other => panic!("{what}: want Unauthorized, got {other:?}"),
        }
    }
    messages.dedup();
    assert_eq!(messages.len(), 1, "the refusals differ: {messages:?}");
    // Refusals counted nothing.
    assert_eq!(m.get(&format!("{url}/{id}"), &acme.owner).await.expect(200).body["uses"], 2);
    let listed = m.get(&url, &acme.owner).await.expect(200);
    let uses = |name: &str| listed.body.as_array().unwrap().iter().find(|t| t["name"] == name).unwrap()["uses"].clone();
    assert_eq!((uses("peers"), uses("revoked"), uses("expired")), (json!(3), json!(0), json!(0)));
    m.stop().await;
}

async fn a_single_use_token_redeemed_at_once_by_many_succeeds_once(backend: Backend) {
    let m = TestManager::start(backend).await;
    let acme = Acme::new(&m).await;
    let (id, token) = acme.token(&m, json!({"role": "seed_peer", "name": "once", "max_uses": 1})).await;
    let tries: Vec<_> = (0..16)
        .map(|_| {
            let (db, token) = (m.sql.clone(), token.clone());
            tokio::spawn(async move { redeem(&db, &token).await })
        })
        .collect();
    let mut granted = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(grant) => {
                assert_eq!(grant.token_id, id);
                granted += 1;
            }
            Err(Error::Unauthorized(_)) => {}
            Err(e) => panic!("a redemption failed otherwise: {e:?}"),
        }
    }
    assert_eq!(granted, 1, "a single-use token was redeemed {granted} times");
    let row = m.get(&format!("{}/{id}", acme.url()), &acme.owner).await.expect(200);
    assert_eq!(row.body["uses"], 1);
    m.stop().await;
}
