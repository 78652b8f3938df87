//! The tenant matrix: every role × tenant × endpoint × method, against an expectation written
//! here independently of the server's policy. Any answer that differs fails, and so does any
//! list, count or error body that shows another tenant's objects.
//!
//! Tenants `alpha` and `beta`; actors: platform root, alpha's admin, member and guest, beta's
//! admin, and a user of no tenant.

use std::collections::HashMap;

use serde_json::{Value, json};
use testkit::{db::Backend, manager::TestManager};

testkit::on_every_database!(tenant_matrix);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Role {
    Root,
    Admin,
    Member,
    Guest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tenant,
    Cluster,
    Application,
    Job,
    Token,
    Scheduler,
    /// A cluster's join token: only those who may change the cluster see or revoke it.
    JoinToken,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Patch,
    Delete,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Allowed,
    Forbidden,
    NotFound,
}

struct Actor {
    name: &'static str,
    id: i64,
    token: String,
    /// Tenant name → role.
    roles: HashMap<&'static str, Role>,
}

/// The contract, from the issue: root everything; admin everything in its tenant; member reads
/// and creates jobs; guest reads; tokens are private to their owner and the tenant's admins;
/// objects of a tenant one has no role in are not found.
fn expected(role: Option<Role>, kind: Kind, method: Method, own: bool) -> Outcome {
    use Outcome::*;
    let Some(role) = role else { return NotFound };
    if role == Role::Root {
        return Allowed;
    }
    let read = method == Method::Get;
    match kind {
        Kind::Token if own || role == Role::Admin => Allowed,
        Kind::Token => NotFound,
        Kind::JoinToken if role == Role::Admin => Allowed,
        Kind::JoinToken => Forbidden,
        Kind::Tenant if method == Method::Delete => Forbidden,
        Kind::Scheduler if method == Method::Patch => unreachable!(),
        _ if read || role == Role::Admin => Allowed,
        _ => Forbidden,
    }
}

fn expected_create(role: Option<Role>, kind: Kind) -> Outcome {
    use Outcome::*;
    match (role, kind) {
        (None, _) => NotFound,
        (Some(Role::Root | Role::Admin), _) => Allowed,
        (Some(_), Kind::Token) => Allowed,
        (Some(Role::Member), Kind::Job) => Allowed,
        (Some(_), _) => Forbidden,
    }
}

fn status_of(outcome: Outcome, method: Method) -> u16 {
    match (outcome, method) {
        (Outcome::Allowed, Method::Delete) => 204,
        (Outcome::Allowed, _) => 200,
        (Outcome::Forbidden, _) => 403,
        (Outcome::NotFound, _) => 404,
    }
}

fn path(object: &Object) -> String {
    let (kind, id) = (object.kind, object.id);
    let base = match kind {
        Kind::Tenant => "tenants",
        Kind::Cluster => "clusters",
        Kind::Application => "applications",
        Kind::Job => "jobs",
        Kind::Token => "personal-access-tokens",
        Kind::Scheduler => "schedulers",
        Kind::JoinToken => return format!("/api/v1/clusters/{}/join-tokens/{id}", object.cluster.unwrap()),
    };
    format!("/api/v1/{base}/{id}")
}

/// One object of the fixture: kind, id, tenant, owner (tokens), cluster (join tokens), a name
/// that must not leak.
#[derive(Debug, Clone)]
struct Object {
    kind: Kind,
    id: i64,
    tenant: &'static str,
    owner: Option<i64>,
    cluster: Option<i64>,
    marker: String,
}

struct Fixture {
    m: TestManager,
    tenants: HashMap<&'static str, i64>,
    clusters: HashMap<&'static str, i64>,
    actors: Vec<Actor>,
    objects: Vec<Object>,
    tomorrow: String,
}

impl Fixture {
    async fn new(backend: Backend) -> Self {
        let m = TestManager::start(backend).await;
        let root = m.root.clone();
        let me = m.get("/api/v1/users/me", &root).await.expect(200);
        let mut actors = vec![Actor { name: "root", id: me.id(), token: root.clone(), roles: HashMap::new() }];
        let mut tenants = HashMap::new();
        for t in ["alpha", "beta"] {
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
                let role_name = match role {
                    Role::Admin => "admin",
                    Role::Member => "member",
                    _ => "guest",
                };
                m.post(
                    &format!("/api/v1/tenants/{}/members", tenants[t]),
                    &root,
                    json!({"user_name": name, "role": role_name}),
                )
                .await
                .expect(201);
                roles.insert(t, role);
            }
            actors.push(Actor { name, id, token, roles });
        }
        let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
        let mut f = Fixture { m, tenants, clusters: HashMap::new(), actors, objects: vec![], tomorrow };
        for t in ["alpha", "beta"] {
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
            // A scheduler that registered in the tenant's cluster and has since gone.
            let host = format!("sched-{t}");
            f.m.db
                .exec(&format!(
                    "INSERT INTO schedulers (cluster_id, hostname, ip, port, features, state) \
                     VALUES ({}, '{host}', '10.9.9.9', 8002, '[]', 'inactive')",
                    f.clusters[t]
                ))
                .await;
            let listed = f.m.get(&format!("/api/v1/schedulers?hostname={host}"), &root).await.expect(200);
            f.objects.push(Object {
                kind: Kind::Scheduler,
                id: listed.body[0]["id"].as_i64().unwrap(),
                tenant: t,
                owner: None,
                cluster: None,
                marker: host,
            });
            let jt = f.create(Kind::JoinToken, t, None).await;
            f.objects.push(jt);
        }
        // Tokens: alpha's member and admin each own one; beta's admin owns one.
        for owner in ["alpha-member", "alpha-admin", "beta-admin"] {
            let tenant = if owner.starts_with("alpha") { "alpha" } else { "beta" };
            let tok = f.create(Kind::Token, tenant, Some(owner)).await;
            f.objects.push(tok);
        }
        f
    }

    fn actor(&self, name: &str) -> &Actor {
        self.actors.iter().find(|a| a.name == name).unwrap()
    }

    fn role(&self, actor: &Actor, tenant: &str) -> Option<Role> {
        if actor.name == "root" { Some(Role::Root) } else { actor.roles.get(tenant).copied() }
    }

    /// Creates an object as root (tokens: as their owner) and answers it.
    async fn create(&self, kind: Kind, tenant: &'static str, owner: Option<&str>) -> Object {
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
            Kind::Tenant | Kind::Scheduler => unreachable!(),
        };
        let id = self.m.post(path, &token, body).await.expect(201).id();
        Object { kind, id, tenant, owner: owner.map(|o| self.actor(o).id), cluster: None, marker }
    }
}

async fn tenant_matrix(backend: Backend) {
    let f = Fixture::new(backend).await;
    let m = &f.m;
    let mut failures = Vec::new();
    let mut checked = 0;

    // Reads and changes of every object by every actor.
    for actor in &f.actors {
        for object in &f.objects {
            let own = object.owner == Some(actor.id);
            let role = f.role(actor, object.tenant);
            for method in [Method::Get, Method::Patch, Method::Delete] {
                if matches!(object.kind, Kind::Scheduler | Kind::JoinToken) && method == Method::Patch {
                    continue;
                }
                let want = expected(role, object.kind, method, own);
                // An allowed delete runs on a fresh twin, so the fixture stays whole.
                let target = if method == Method::Delete && want == Outcome::Allowed {
                    match object.kind {
                        Kind::Tenant | Kind::Scheduler => continue,
                        Kind::Token => {
                            let owner = f.actors.iter().find(|a| Some(a.id) == object.owner).map(|a| a.name);
                            f.create(Kind::Token, object.tenant, owner).await
                        }
                        kind => f.create(kind, object.tenant, None).await,
                    }
                } else {
                    object.clone()
                };
                let url = path(&target);
                let stamp = format!("changed-by-{}", actor.name);
                let answer = match method {
                    Method::Get => m.get(&url, &actor.token).await,
                    Method::Patch => m.patch(&url, &actor.token, json!({"bio": stamp})).await,
                    Method::Delete => m.delete(&url, &actor.token).await,
                };
                checked += 1;
                let status = status_of(want, method);
                if answer.status.as_u16() != status {
                    failures.push(format!(
                        "{} {method:?} {url} ({:?} of {}): want {status}, got {} {}",
                        actor.name, object.kind, object.tenant, answer.status, answer.body
                    ));
                }
                if answer.status == 404 && answer.body.to_string().contains(&object.marker) {
                    failures.push(format!("{} {method:?} {url}: the 404 body names the object", actor.name));
                }
                if method != Method::Get && want != Outcome::Allowed {
                    // A refused change changed nothing.
                    let after = m.get(&url, &m.root).await;
                    if after.status != 200
                        || (method == Method::Patch && after.body.to_string().contains(&stamp))
                        || after.body["state"] == "revoked"
                    {
                        failures.push(format!("{} {method:?} {url}: refused, yet the object changed", actor.name));
                    }
                }
            }
        }
    }

    // Creation inside each tenant.
    for actor in &f.actors {
        for tenant in ["alpha", "beta"] {
            let role = f.role(actor, tenant);
            let tenant_id = f.tenants[tenant];
            let name = format!("new-{}", uuid::Uuid::new_v4().simple());
            let join_tokens = format!("/api/v1/clusters/{}/join-tokens", f.clusters[tenant]);
            for (kind, url, body) in [
                (Kind::Cluster, "/api/v1/clusters", json!({"tenant_id": tenant_id, "name": name})),
                (Kind::Application, "/api/v1/applications", json!({"tenant_id": tenant_id, "name": name})),
                (
                    Kind::Job,
                    "/api/v1/jobs",
                    json!({"tenant_id": tenant_id, "type": "get_task", "args": {"task_id": "b".repeat(64)}}),
                ),
                (
                    Kind::Token,
                    "/api/v1/personal-access-tokens",
                    json!({"tenant_id": tenant_id, "name": name, "scopes": ["cluster"], "expired_at": f.tomorrow}),
                ),
                (Kind::JoinToken, join_tokens.as_str(), json!({"role": "scheduler", "name": name})),
            ] {
                let want = match expected_create(role, kind) {
                    Outcome::Allowed => 201,
                    Outcome::Forbidden => 403,
                    Outcome::NotFound => 404,
                };
                let answer = m.post(url, &actor.token, body).await;
                checked += 1;
                if answer.status.as_u16() != want {
                    failures.push(format!(
                        "{} POST {url} in {tenant}: want {want}, got {} {}",
                        actor.name, answer.status, answer.body
                    ));
                }
            }
        }
    }

    // Lists and counts show exactly what the actor may see.
    for actor in &f.actors {
        for (kind, url) in [
            (Kind::Tenant, "/api/v1/tenants"),
            (Kind::Cluster, "/api/v1/clusters"),
            (Kind::Application, "/api/v1/applications"),
            (Kind::Job, "/api/v1/jobs"),
            (Kind::Token, "/api/v1/personal-access-tokens"),
            (Kind::Scheduler, "/api/v1/schedulers"),
        ] {
            let answer = m.get(&format!("{url}?per_page=1000"), &actor.token).await;
            checked += 1;
            let Some(items) = answer.body.as_array() else {
                failures.push(format!("{} GET {url}: {}", actor.name, answer.body));
                continue;
            };
            let total: usize = answer.headers["x-total-count"].to_str().unwrap().parse().unwrap();
            if total != items.len() {
                failures.push(format!("{} GET {url}: X-Total-Count {total} but {} items", actor.name, items.len()));
            }
            let tenant_of = |item: &Value| -> Option<i64> {
                match kind {
                    Kind::Tenant => item["id"].as_i64(),
                    Kind::Scheduler => {
                        let cluster = item["cluster_id"].as_i64();
                        f.clusters.iter().find(|(_, id)| Some(**id) == cluster).map(|(t, _)| f.tenants[*t])
                    }
                    _ => item["tenant_id"].as_i64(),
                }
            };
            for item in items {
                let Some(tenant_id) = tenant_of(item) else { continue };
                let Some(tenant) = f.tenants.iter().find(|(_, id)| **id == tenant_id).map(|(t, _)| *t) else {
                    continue;
                };
                let own = item["user_id"].as_i64() == Some(actor.id);
                if expected(f.role(actor, tenant), kind, Method::Get, own) != Outcome::Allowed {
                    failures.push(format!("{} GET {url}: lists {item} of {tenant}", actor.name));
                }
            }
            // And nothing visible is missing.
            for object in f.objects.iter().filter(|o| o.kind == kind) {
                let own = object.owner == Some(actor.id);
                let visible = expected(f.role(actor, object.tenant), kind, Method::Get, own) == Outcome::Allowed;
                let listed = items.iter().any(|i| i["id"].as_i64() == Some(object.id));
                if visible != listed {
                    failures.push(format!(
                        "{} GET {url}: {:?} {} listed={listed}, visible={visible}",
                        actor.name, kind, object.id
                    ));
                }
            }
        }
        // A cluster's join tokens: all of them for those who may change it, else nothing.
        for tenant in ["alpha", "beta"] {
            let url = format!("/api/v1/clusters/{}/join-tokens?per_page=1000", f.clusters[tenant]);
            let answer = m.get(&url, &actor.token).await;
            checked += 1;
            let want = expected(f.role(actor, tenant), Kind::JoinToken, Method::Get, false);
            if answer.status.as_u16() != status_of(want, Method::Get) {
                failures
                    .push(format!("{} GET {url}: want {want:?}, got {} {}", actor.name, answer.status, answer.body));
                continue;
            }
            let fixture = f.objects.iter().filter(|o| o.kind == Kind::JoinToken && o.tenant == tenant);
            if want != Outcome::Allowed {
                if fixture.clone().any(|o| answer.body.to_string().contains(&o.marker)) {
                    failures.push(format!("{} GET {url}: the refusal names a token", actor.name));
                }
                continue;
            }
            let items = answer.body.as_array().cloned().unwrap_or_default();
            if items.iter().any(|i| i["tenant_id"] != f.tenants[tenant] || i["cluster_id"] != f.clusters[tenant]) {
                failures.push(format!("{} GET {url}: lists another cluster's token: {}", actor.name, answer.body));
            }
            for object in fixture {
                if !items.iter().any(|i| i["id"].as_i64() == Some(object.id)) {
                    failures.push(format!("{} GET {url}: join token {} missing", actor.name, object.id));
                }
            }
        }
        // The audit log: admins see their tenants' entries only; others see none.
        let audits = m.get("/api/v1/audits?per_page=1000", &actor.token).await.expect(200);
        for entry in audits.body.as_array().unwrap() {
            let tenant = f.tenants.iter().find(|(_, id)| entry["tenant_id"].as_i64() == Some(**id)).map(|(t, _)| *t);
            let ok = actor.name == "root" || tenant.is_some_and(|t| f.role(actor, t) == Some(Role::Admin));
            if !ok {
                failures.push(format!("{} GET /api/v1/audits: sees {entry}", actor.name));
            }
        }
    }

    assert!(checked > 250, "the matrix checked only {checked} cases");
    assert!(failures.is_empty(), "{} of {checked} cases failed:\n{}", failures.len(), failures.join("\n"));
    f.m.stop().await;
}
