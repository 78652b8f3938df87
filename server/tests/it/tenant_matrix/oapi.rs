//! Rows for `/oapi/v1`, the machines' API (Harbor's preheat, CI): a personal access token acts
//! as its owner inside the one tenant it was made for, within its scopes — never in another
//! tenant, whatever its owner may do there, and a root's token included. Sign-in tokens and
//! personal access tokens do not open each other's API.

use serde_json::{Value, json};

use super::{
    contract::{Kind, Method, Outcome, Role, expected_token, status_of},
    fixture::{Fixture, Object, Report, TENANTS, post_patiently},
};

/// A personal access token of one actor.
struct Pat {
    actor: &'static str,
    role: Role,
    bound: &'static str,
    scopes: &'static [&'static str],
    secret: String,
}

async fn pats(f: &Fixture) -> Vec<Pat> {
    let both: &'static [&'static str] = &["job", "cluster"];
    let mut made = Vec::new();
    for (actor, bound, scopes) in [
        ("root", "alpha", both),
        ("alpha-admin", "alpha", both),
        ("alpha-member", "alpha", both),
        ("alpha-guest", "alpha", both),
        ("beta-admin", "beta", both),
        ("alpha-admin", "alpha", &["job"][..]),
        ("alpha-member", "alpha", &["cluster"][..]),
    ] {
        let a = f.actor(actor);
        let body = json!({"tenant_id": f.tenants[bound], "name": format!("oapi-{}", uuid::Uuid::new_v4().simple()),
                          "scopes": scopes, "expired_at": f.tomorrow});
        let created = f.m.post("/api/v1/personal-access-tokens", &a.token, body).await.expect(201);
        let secret = created.body["token"].as_str().unwrap().to_owned();
        made.push(Pat { actor, role: f.role(a, bound).unwrap(), bound, scopes, secret });
    }
    made
}

fn oapi_path(object: &Object) -> String {
    let collection = match object.kind {
        Kind::Job => "jobs",
        Kind::Cluster => "clusters",
        _ => unreachable!(),
    };
    format!("/oapi/v1/{collection}/{}", object.id)
}

pub async fn oapi(f: &Fixture, r: &mut Report) {
    let m = &f.m;
    let pats = pats(f).await;
    for pat in &pats {
        let who = format!("{}'s {:?} token for {}", pat.actor, pat.scopes, pat.bound);
        let want_of =
            |kind, tenant: &str, method| expected_token(pat.role, pat.bound, pat.scopes, kind, tenant, method);

        // Each job and cluster: read; clusters also changed and deleted.
        for object in f.objects.iter().filter(|o| matches!(o.kind, Kind::Job | Kind::Cluster)) {
            let methods: &[Method] =
                if object.kind == Kind::Job { &[Method::Get] } else { &[Method::Get, Method::Patch, Method::Delete] };
            for &method in methods {
                let want = want_of(object.kind, object.tenant, Some(method));
                let target = if method == Method::Delete && want == Outcome::Allowed {
                    f.create(object.kind, object.tenant, None).await
                } else {
                    object.clone()
                };
                let url = oapi_path(&target);
                // Unique: the same actor's session and other tokens changed it legitimately.
                let stamp = format!("changed-by-{}-{}", pat.actor, uuid::Uuid::new_v4().simple());
                let answer = match method {
                    Method::Get => m.get(&url, &pat.secret).await,
                    Method::Patch => m.patch(&url, &pat.secret, json!({"bio": stamp})).await,
                    Method::Delete => m.delete(&url, &pat.secret).await,
                };
                let status = status_of(want, Some(method));
                r.case(answer.status.as_u16() == status, || {
                    format!(
                        "{who}: {method:?} {url} (of {}): want {status}, got {} {}",
                        object.tenant, answer.status, answer.body
                    )
                });
                r.also(!answer.body.to_string().contains(&object.marker) || want == Outcome::Allowed, || {
                    format!("{who}: {method:?} {url}: the refusal names the object")
                });
                if method != Method::Get && want != Outcome::Allowed {
                    let after = m.get(&target.path(), &m.root).await;
                    r.also(after.status == 200 && !after.body.to_string().contains(&stamp), || {
                        format!("{who}: {method:?} {url}: refused, yet the object changed")
                    });
                }
            }
        }

        // Creation in each tenant, and (as Harbor does) without naming one: the token's.
        let job = |tenant: Option<i64>| {
            let mut body = json!({"type": "get_task", "args": {"task_id": "c".repeat(64)}});
            if let Some(t) = tenant {
                body["tenant_id"] = json!(t);
            }
            body
        };
        let mut posts: Vec<(Kind, &str, &str, Value)> = Vec::new();
        for tenant in TENANTS {
            let name = format!("oapi-new-{}", uuid::Uuid::new_v4().simple());
            posts.push((Kind::Job, "/oapi/v1/jobs", tenant, job(Some(f.tenants[tenant]))));
            posts.push((
                Kind::Cluster,
                "/oapi/v1/clusters",
                tenant,
                json!({"tenant_id": f.tenants[tenant], "name": name}),
            ));
        }
        posts.push((Kind::Job, "/oapi/v1/jobs", pat.bound, job(None)));
        for (kind, url, tenant, body) in posts {
            let named = body.get("tenant_id").is_some();
            let want = want_of(kind, tenant, None);
            let answer = post_patiently(m, url, &pat.secret, body).await;
            r.case(answer.status.as_u16() == status_of(want, None), || {
                format!(
                    "{who}: POST {url} in {tenant} (named: {named}): want {want:?}, got {} {}",
                    answer.status, answer.body
                )
            });
            if answer.status == 201 {
                r.also(answer.body["tenant_id"] == f.tenants[tenant], || {
                    format!("{who}: POST {url}: landed in another tenant: {}", answer.body)
                });
            }
        }

        // Lists show the token's tenant only, and all of it.
        for (kind, url) in [(Kind::Job, "/oapi/v1/jobs"), (Kind::Cluster, "/oapi/v1/clusters")] {
            let answer = m.get(&format!("{url}?per_page=1000"), &pat.secret).await;
            let in_scope = want_of(kind, pat.bound, Some(Method::Get)) == Outcome::Allowed;
            let want = if in_scope { 200 } else { 403 };
            r.case(answer.status.as_u16() == want, || {
                format!("{who}: GET {url}: want {want}, got {} {}", answer.status, answer.body)
            });
            let items = answer.body.as_array().cloned().unwrap_or_default();
            r.also(items.iter().all(|i| i["tenant_id"] == f.tenants[pat.bound]), || {
                format!("{who}: GET {url}: lists another tenant's: {}", answer.body)
            });
            if in_scope {
                for object in f.objects.iter().filter(|o| o.kind == kind && o.tenant == pat.bound) {
                    r.also(items.iter().any(|i| i["id"].as_i64() == Some(object.id)), || {
                        format!("{who}: GET {url}: {kind:?} {} missing", object.id)
                    });
                }
                let total: usize = answer.headers["x-total-count"].to_str().unwrap().parse().unwrap();
                r.also(total == items.len(), || {
                    format!("{who}: GET {url}: X-Total-Count {total}, {} items", items.len())
                });
            }
        }

        // A personal access token does not open `/api/v1`.
        let answer = m.get("/api/v1/jobs", &pat.secret).await;
        r.case(answer.status == 401, || format!("{who}: GET /api/v1/jobs: want 401, got {}", answer.status));
    }

    // Nor does a sign-in token open `/oapi/v1`.
    for actor in &f.actors {
        let answer = m.get("/oapi/v1/jobs", &actor.token).await;
        r.case(answer.status == 401, || {
            format!("{}'s session: GET /oapi/v1/jobs: want 401, got {}", actor.name, answer.status)
        });
    }
}
