//! Rows: every list and count shows exactly what the actor may read, of every tenant, and a
//! refused list names nothing.

use serde_json::Value;

use super::{
    contract::{Kind, Method, Outcome, expected, sees_audits, status_of},
    fixture::{Fixture, Report, TENANTS},
};

pub async fn collections(f: &Fixture, r: &mut Report) {
    let kinds = [
        Kind::Tenant,
        Kind::Cluster,
        Kind::Application,
        Kind::Job,
        Kind::Token,
        Kind::Scheduler,
        Kind::SeedPeer,
        Kind::Peer,
    ];
    for actor in &f.actors {
        for kind in kinds {
            let url = format!("/api/v1/{}", kind.collection().unwrap());
            let answer = f.m.get(&format!("{url}?per_page=1000"), &actor.token).await;
            let items = answer.body.as_array().cloned();
            r.case(items.is_some(), || format!("{} GET {url}: {}", actor.name, answer.body));
            let Some(items) = items else { continue };
            let total: usize = answer.headers["x-total-count"].to_str().unwrap().parse().unwrap();
            r.also(total == items.len(), || {
                format!("{} GET {url}: X-Total-Count {total} but {} items", actor.name, items.len())
            });
            let tenant_of = |item: &Value| match kind {
                Kind::Tenant => f.tenant_named(item["id"].as_i64()),
                kind if kind.is_host() => f.tenant_of_cluster(item["cluster_id"].as_i64()),
                _ => f.tenant_named(item["tenant_id"].as_i64()),
            };
            for item in &items {
                let Some(tenant) = tenant_of(item) else { continue };
                let own = item["user_id"].as_i64() == Some(actor.id);
                r.also(expected(f.role(actor, tenant), kind, Method::Get, own) == Outcome::Allowed, || {
                    format!("{} GET {url}: lists {item} of {tenant}", actor.name)
                });
            }
            // And nothing visible is missing.
            for object in f.objects.iter().filter(|o| o.kind == kind) {
                let own = object.owner == Some(actor.id);
                let visible = expected(f.role(actor, object.tenant), kind, Method::Get, own) == Outcome::Allowed;
                let listed = items.iter().any(|i| i["id"].as_i64() == Some(object.id));
                r.also(visible == listed, || {
                    format!("{} GET {url}: {kind:?} {} listed={listed}, visible={visible}", actor.name, object.id)
                });
            }
        }
    }
}

/// A cluster's join tokens: all of them for those who may change it, else nothing.
pub async fn join_tokens(f: &Fixture, r: &mut Report) {
    for actor in &f.actors {
        for tenant in TENANTS {
            let url = format!("/api/v1/clusters/{}/join-tokens?per_page=1000", f.clusters[tenant]);
            let answer = f.m.get(&url, &actor.token).await;
            let want = expected(f.role(actor, tenant), Kind::JoinToken, Method::Get, false);
            let ok = answer.status.as_u16() == status_of(want, Some(Method::Get));
            r.case(ok, || format!("{} GET {url}: want {want:?}, got {} {}", actor.name, answer.status, answer.body));
            if !ok {
                continue;
            }
            let fixture = f.objects.iter().filter(|o| o.kind == Kind::JoinToken && o.tenant == tenant);
            if want != Outcome::Allowed {
                r.also(!fixture.clone().any(|o| answer.body.to_string().contains(&o.marker)), || {
                    format!("{} GET {url}: the refusal names a token", actor.name)
                });
                continue;
            }
            let items = answer.body.as_array().cloned().unwrap_or_default();
            r.also(
                items.iter().all(|i| i["tenant_id"] == f.tenants[tenant] && i["cluster_id"] == f.clusters[tenant]),
                || format!("{} GET {url}: lists another cluster's token: {}", actor.name, answer.body),
            );
            for object in fixture {
                r.also(items.iter().any(|i| i["id"].as_i64() == Some(object.id)), || {
                    format!("{} GET {url}: join token {} missing", actor.name, object.id)
                });
            }
        }
    }
}

/// The audit log: admins see their tenants' entries, all of them, and nothing else; others see
/// none; asking for another tenant's entries by filter answers nothing.
pub async fn audits(f: &Fixture, r: &mut Report) {
    let m = &f.m;
    let mut entries_of = std::collections::HashMap::new();
    for tenant in TENANTS {
        let url = format!("/api/v1/audits?per_page=1000&tenant_id={}", f.tenants[tenant]);
        let all = m.get(&url, &m.root).await.expect(200);
        let ids: Vec<i64> = all.body.as_array().unwrap().iter().filter_map(|e| e["id"].as_i64()).collect();
        assert!(!ids.is_empty(), "the fixture's changes in {tenant} left no audit entry");
        entries_of.insert(tenant, ids);
    }
    for actor in &f.actors {
        let audits = m.get("/api/v1/audits?per_page=1000", &actor.token).await;
        r.case(audits.status == 200, || format!("{} GET /api/v1/audits: {}", actor.name, audits.body));
        let entries = audits.body.as_array().cloned().unwrap_or_default();
        for entry in &entries {
            let tenant = f.tenant_named(entry["tenant_id"].as_i64());
            let ok = actor.name == "root" || tenant.is_some_and(|t| sees_audits(f.role(actor, t)));
            r.also(ok, || format!("{} GET /api/v1/audits: sees {entry}", actor.name));
        }
        for tenant in TENANTS {
            // Entries only grow, so those root saw must all be there (pages hold 1000 at most).
            let want = if sees_audits(f.role(actor, tenant)) { entries_of[tenant].len() } else { 0 };
            let url = format!("/api/v1/audits?per_page=1000&tenant_id={}", f.tenants[tenant]);
            let filtered = m.get(&url, &actor.token).await;
            let n = filtered.body.as_array().map(Vec::len);
            r.case(n.is_some_and(|n| n >= want && (want > 0 || n == 0)), || {
                format!("{} GET {url}: want {want} entries, got {} {}", actor.name, filtered.status, filtered.body)
            });
        }
    }
}
