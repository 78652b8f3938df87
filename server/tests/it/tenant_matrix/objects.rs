//! Rows: every actor reads, changes and deletes every object of `/api/v1`, and creates each kind
//! inside each tenant. A refused change must change nothing; a 404 must not name the object.

use serde_json::json;

use super::{
    contract::{Kind, Method, Outcome, expected, expected_create, status_of},
    fixture::{Fixture, Report, TENANTS, post_patiently},
};

pub async fn reads_and_changes(f: &Fixture, r: &mut Report) {
    let m = &f.m;
    for actor in &f.actors {
        for object in &f.objects {
            let own = object.owner == Some(actor.id);
            let role = f.role(actor, object.tenant);
            for method in [Method::Get, Method::Patch, Method::Delete] {
                if (object.kind.is_host() || object.kind == Kind::JoinToken) && method == Method::Patch {
                    continue;
                }
                let want = expected(role, object.kind, method, own);
                // An allowed delete runs on a fresh twin, so the fixture stays whole.
                let target = if method == Method::Delete && want == Outcome::Allowed {
                    match object.kind {
                        Kind::Tenant => continue,
                        Kind::Token => {
                            let owner = f.actors.iter().find(|a| Some(a.id) == object.owner).map(|a| a.name);
                            f.create(Kind::Token, object.tenant, owner).await
                        }
                        kind => f.create(kind, object.tenant, None).await,
                    }
                } else {
                    object.clone()
                };
                let url = target.path();
                let stamp = format!("changed-by-{}", actor.name);
                let answer = match method {
                    Method::Get => m.get(&url, &actor.token).await,
                    Method::Patch => m.patch(&url, &actor.token, json!({"bio": stamp})).await,
                    Method::Delete => m.delete(&url, &actor.token).await,
                };
                let status = status_of(want, Some(method));
                r.case(answer.status.as_u16() == status, || {
                    format!(
                        "{} {method:?} {url} ({:?} of {}): want {status}, got {} {}",
                        actor.name, object.kind, object.tenant, answer.status, answer.body
                    )
                });
                r.also(answer.status != 404 || !answer.body.to_string().contains(&object.marker), || {
                    format!("{} {method:?} {url}: the 404 body names the object", actor.name)
                });
                if method != Method::Get && want != Outcome::Allowed {
                    // A refused change changed nothing.
                    let after = m.get(&url, &m.root).await;
                    r.also(
                        after.status == 200
                            && !(method == Method::Patch && after.body.to_string().contains(&stamp))
                            && after.body["state"] != "revoked",
                        || format!("{} {method:?} {url}: refused, yet the object changed", actor.name),
                    );
                }
            }
        }
    }
}

pub async fn creations(f: &Fixture, r: &mut Report) {
    for actor in &f.actors {
        for tenant in TENANTS {
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
                let want = status_of(expected_create(role, kind), None);
                let answer = post_patiently(&f.m, url, &actor.token, body).await;
                r.case(answer.status.as_u16() == want, || {
                    format!("{} POST {url} in {tenant}: want {want}, got {} {}", actor.name, answer.status, answer.body)
                });
            }
        }
    }
}
