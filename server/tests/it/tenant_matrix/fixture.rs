//! The matrix's world: tenants `alpha` and `beta`, each with a cluster, an application, a job, a
//! scheduler, seed peer and peer that registered and went, a join token, a task record and a
//! scheduler's sample; users with every role; and the [`Report`] the rows write into.

use std::collections::HashMap;

use serde_json::json;
use testkit::{db::Backend, manager::TestManager};

use super::contract::{Kind, Role};

pub const TENANTS: [&str; 2] = ["alpha", "beta"];

pub struct Actor {
    pub name: &'static str,
    pub id: i64,
    /// A sign-in token.
    pub token: String,
    /// Tenant name → role.
    pub roles: HashMap<&'static str, Role>,
}

/// One object of the fixture: kind, id, tenant, owner (tokens), cluster (join tokens), a name
/// that must not leak.
#[derive(Debug, Clone)]
pub struct Object {
    pub kind: Kind,
    pub id: i64,
    pub tenant: &'static str,
    pub owner: Option<i64>,
    pub cluster: Option<i64>,
    pub marker: String,
}

impl Object {
    /// Where `/api/v1` answers for it.
    pub fn path(&self) -> String {
        match self.kind {
            Kind::JoinToken => format!("/api/v1/clusters/{}/join-tokens/{}", self.cluster.unwrap(), self.id),
            kind => format!("/api/v1/{}/{}", kind.collection().unwrap(), self.id),
        }
    }
}

/// What the rows found: every case counted, every difference from the contract kept.
#[derive(Default)]
pub struct Report {
    pub checked: usize,
    pub failures: Vec<String>,
}

impl Report {
    /// Counts a case and keeps `why` when it is not `ok`.
    pub fn case(&mut self, ok: bool, why: impl FnOnce() -> String) {
        self.checked += 1;
        if !ok {
            self.failures.push(why());
        }
    }

    /// Keeps `why` without counting a case (a second look at one already counted).
    pub fn also(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(why());
        }
    }
}

/// A task every cluster has a record of, under its own URL.
pub const TASK_ID: &str = "7a5f0e3b9c1d2e4f6a8b0c2d4e6f8a0b1c3d5e7f9a1b3c5d7e9f1a3b5c7d9e1f";

pub struct Fixture {
    pub m: TestManager,
    pub tenants: HashMap<&'static str, i64>,
    pub clusters: HashMap<&'static str, i64>,
    /// Each tenant's scheduler (samples name it).
    pub schedulers: HashMap<&'static str, i64>,
    pub actors: Vec<Actor>,
    pub objects: Vec<Object>,
    pub tomorrow: String,
}

impl Fixture {
    pub async fn new(backend: Backend) -> Self {
        let m = TestManager::start(backend).await;
        let root = m.root.clone();
        let me = m.get("/api/v1/users/me", &root).await.expect(200);
        let mut actors = vec![Actor { name: "root", id: me.id(), token: root.clone(), roles: HashMap::new() }];
        let mut tenants = HashMap::new();
        for t in TENANTS {
            tenants.insert(t, m.post("/api/v1/tenants", &root, json!({"name": t})).await.expect(201).id());
        }
        for (name, tenant, role) in [
            ("alpha-admin", Some("alpha"), Role::Admin),
            ("alpha-member", Some("alpha"), Role::Member),
            ("alpha-guest", Some("alpha"), Role::Guest),
            ("beta-admin", Some("beta"), Role::Admin),
            ("outsider", None, Role::Guest),
        ] {
            let (id, token) = m.user(name).await;
            let mut roles = HashMap::new();
            if let Some(t) = tenant {
                add_member(&m, tenants[t], name, role).await;
                roles.insert(t, role);
            }
            actors.push(Actor { name, id, token, roles });
        }
        let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
        let mut f = Fixture {
            m,
            tenants,
            clusters: HashMap::new(),
            schedulers: HashMap::new(),
            actors,
            objects: vec![],
            tomorrow,
        };
        for t in TENANTS {
            let c = f.create(Kind::Cluster, t, None).await;
            f.clusters.insert(t, c.id);
            f.objects.push(c);
            let a = f.create(Kind::Application, t, None).await;
            f.objects.push(a);
            let j = f.create(Kind::Job, t, None).await;
            f.objects.push(j);
            f.objects.push(Object {
                kind: Kind::Tenant,
                id: f.tenants[t],
                tenant: t,
                owner: None,
                cluster: None,
                marker: format!("\"{t}\""),
            });
            for kind in [Kind::Scheduler, Kind::SeedPeer, Kind::Peer] {
                let host = f.insert_host(kind, t).await;
                if kind == Kind::Scheduler {
                    f.schedulers.insert(t, host.id);
                }
                f.objects.push(host);
            }
            let jt = f.create(Kind::JoinToken, t, None).await;
            f.objects.push(jt);
            f.record_task_and_sample(t).await;
        }
        // Tokens: alpha's member and admin each own one; beta's admin owns one.
        for owner in ["alpha-member", "alpha-admin", "beta-admin"] {
            let tenant = if owner.starts_with("alpha") { "alpha" } else { "beta" };
            let tok = f.create(Kind::Token, tenant, Some(owner)).await;
            f.objects.push(tok);
        }
        f
    }

    pub fn actor(&self, name: &str) -> &Actor {
        self.actors.iter().find(|a| a.name == name).unwrap()
    }

    pub fn role(&self, actor: &Actor, tenant: &str) -> Option<Role> {
        if actor.name == "root" { Some(Role::Root) } else { actor.roles.get(tenant).copied() }
    }

    /// The tenant, by name, an id belongs to.
    pub fn tenant_named(&self, id: Option<i64>) -> Option<&'static str> {
        self.tenants.iter().find(|(_, t)| Some(**t) == id).map(|(name, _)| *name)
    }

    /// The tenant, by name, of a cluster id.
    pub fn tenant_of_cluster(&self, cluster: Option<i64>) -> Option<&'static str> {
        self.clusters.iter().find(|(_, c)| Some(**c) == cluster).map(|(name, _)| *name)
    }

    /// Creates an object as root (tokens: as their owner) and answers it.
    pub async fn create(&self, kind: Kind, tenant: &'static str, owner: Option<&str>) -> Object {
        let marker = format!("obj-{}", uuid::Uuid::new_v4().simple());
        let tenant_id = self.tenants[tenant];
        let root = &self.m.root;
        let (path, body, token) = match kind {
            Kind::Cluster => ("/api/v1/clusters", json!({"tenant_id": tenant_id, "name": marker}), root.clone()),
            Kind::Application => {
                ("/api/v1/applications", json!({"tenant_id": tenant_id, "name": marker}), root.clone())
            }
            Kind::Job => (
                "/api/v1/jobs",
                json!({"tenant_id": tenant_id, "type": "delete_task", "args": {"url": "https://origin.example/f"}, "bio": marker,
                       "scheduler_cluster_ids": [self.clusters[tenant]]}),
                root.clone(),
            ),
            Kind::Token => (
                "/api/v1/personal-access-tokens",
                json!({"tenant_id": tenant_id, "name": marker, "scopes": ["job"], "expired_at": self.tomorrow}),
                self.actor(owner.unwrap_or("root")).token.clone(),
            ),
            Kind::JoinToken => {
                let path = format!("/api/v1/clusters/{}/join-tokens", self.clusters[tenant]);
                let id = self.m.post(&path, root, json!({"role": "peer", "name": marker})).await.expect(201).id();
                return Object { kind, id, tenant, owner: None, cluster: Some(self.clusters[tenant]), marker };
            }
            kind if kind.is_host() => return self.insert_host(kind, tenant).await,
            _ => unreachable!("tenants and members are made once, by the fixture"),
        };
        let id = post_patiently(&self.m, path, &token, body).await.expect(201).id();
        Object { kind, id, tenant, owner: owner.map(|o| self.actor(o).id), cluster: None, marker }
    }

    /// A host of `kind` that registered in the tenant's cluster and has since gone: the rows
    /// gRPC registration writes, written directly.
    async fn insert_host(&self, kind: Kind, tenant: &'static str) -> Object {
        let marker = format!("host-{}", uuid::Uuid::new_v4().simple());
        let (table, extra_col, extra_val) = match kind {
            Kind::Scheduler => ("schedulers", ", features", ", '[]'"),
            Kind::SeedPeer => ("seed_peers", "", ""),
            Kind::Peer => ("peers", "", ""),
            _ => unreachable!(),
        };
        self.m
            .db
            .exec(&format!(
                "INSERT INTO {table} (cluster_id, hostname, ip, port, state{extra_col}) \
                 VALUES ({}, '{marker}', '10.9.9.9', 8002, 'inactive'{extra_val})",
                self.clusters[tenant]
            ))
            .await;
        let collection = kind.collection().unwrap();
        let listed = self.m.get(&format!("/api/v1/{collection}?hostname={marker}"), &self.m.root).await.expect(200);
        let id = listed.body[0]["id"].as_i64().unwrap_or_else(|| panic!("{collection}: {}", listed.body));
        Object { kind, id, tenant, owner: None, cluster: None, marker }
    }

    /// The tenant's cluster keeps a record of [`TASK_ID`] (its URL names the tenant) and a
    /// sample of its scheduler holding 1 (alpha) or 100 (beta) tasks, so a sum tells whose
    /// samples it counted.
    async fn record_task_and_sample(&self, tenant: &'static str) {
        let cluster = self.clusters[tenant];
        let url = task_url(tenant);
        let info = json!({"task_id": TASK_ID, "url": url, "content_length": 1, "piece_length": 1024,
                          "total_pieces": 1, "peers": []});
        self.m
            .db
            .exec(&format!(
                "INSERT INTO task_records (cluster_id, task_id, url, state, info) \
                 VALUES ({cluster}, '{TASK_ID}', '{url}', 'succeeded', '{info}')"
            ))
            .await;
        let at = chrono::Utc::now().naive_utc().format("%Y-%m-%d %H:%M:%S");
        self.m
            .db
            .exec(&format!(
                "INSERT INTO scheduler_samples (cluster_id, scheduler_id, at, tasks, peers, running_peers, \
                 back_to_source_bytes, peer_bytes, succeeded, failed) \
                 VALUES ({cluster}, {}, '{at}', {}, 0, 0, 0, 0, 0, 0)",
                self.schedulers[tenant],
                sample_tasks(tenant)
            ))
            .await;
    }
}

/// The URL of the tenant's task record (it names the tenant, so a leak shows).
pub fn task_url(tenant: &str) -> String {
    format!("https://origin.example/secret-of-{tenant}")
}

/// How many tasks the tenant's scheduler sample holds.
pub fn sample_tasks(tenant: &str) -> u64 {
    if tenant == "alpha" { 1 } else { 100 }
}

/// Makes `name` a member of tenant `tenant` with `role`, as root.
pub async fn add_member(m: &TestManager, tenant: i64, name: &str, role: Role) {
    let role = match role {
        Role::Admin => "admin",
        Role::Member => "member",
        _ => "guest",
    };
    m.post(&format!("/api/v1/tenants/{tenant}/members"), &m.root, json!({"user_name": name, "role": role}))
        .await
        .expect(201);
}

/// `POST url`, waiting out a cluster's job rate limit (10 jobs a second by default): the rows
/// create jobs faster than that, and the limit is not what they test.
pub async fn post_patiently(
    m: &TestManager,
    url: &str,
    token: &str,
    body: serde_json::Value,
) -> testkit::manager::Answer {
    for _ in 0..5 {
        let answer = m.post(url, token, body.clone()).await;
        if answer.status != 429 {
            return answer;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    m.post(url, token, body).await
}
