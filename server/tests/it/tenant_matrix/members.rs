//! Rows: a tenant's members, listed, re-roled, removed and added by every actor. Members of one
//! tenant are the business of its people only: another tenant's list, and its refusal, name
//! nobody.

use serde_json::json;

use super::{
    contract::{Kind, Method, Outcome, Role, expected, expected_create, status_of},
    fixture::{Fixture, Report, TENANTS, add_member},
};

/// A user no actor signs in as (one password hash, no sign-in).
async fn quiet_user(f: &Fixture, name: &str) -> i64 {
    let body = json!({"name": name, "password": format!("{name}-password")});
    f.m.post("/api/v1/users", &f.m.root, body).await.expect(201).id()
}

/// The tenant's members as root sees them: user name → role.
async fn roster(f: &Fixture, tenant: &str) -> Vec<(String, String)> {
    let url = format!("/api/v1/tenants/{}/members?per_page=1000", f.tenants[tenant]);
    let listed = f.m.get(&url, &f.m.root).await.expect(200);
    let items = listed.body.as_array().unwrap();
    items
        .iter()
        .map(|m| (m["user_name"].as_str().unwrap().to_owned(), m["role"].as_str().unwrap().to_owned()))
        .collect()
}

fn role_in(roster: &[(String, String)], name: &str) -> Option<String> {
    roster.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone())
}

pub async fn members(f: &Fixture, r: &mut Report) {
    let m = &f.m;
    // Each tenant has a guest the rows try to re-role and remove; `spare` belongs nowhere.
    let mut targets = std::collections::HashMap::new();
    for tenant in TENANTS {
        let name = format!("{tenant}-target");
        targets.insert(tenant, (quiet_user(f, &name).await, name.clone()));
        add_member(m, f.tenants[tenant], &name, Role::Guest).await;
    }
    let spare = "spare";
    quiet_user(f, spare).await;
    let rosters = [roster(f, "alpha").await, roster(f, "beta").await];

    for actor in &f.actors {
        for (tenant, own_roster) in TENANTS.into_iter().zip(&rosters) {
            let role = f.role(actor, tenant);
            let base = format!("/api/v1/tenants/{}/members", f.tenants[tenant]);
            let other_only: Vec<&String> =
                rosters.iter().flatten().map(|(n, _)| n).filter(|n| role_in(own_roster, n).is_none()).collect();

            // The list.
            let want = expected(role, Kind::Member, Method::Get, false);
            let answer = m.get(&format!("{base}?per_page=1000"), &actor.token).await;
            r.case(answer.status.as_u16() == status_of(want, Some(Method::Get)), || {
                format!("{} GET {base}: want {want:?}, got {} {}", actor.name, answer.status, answer.body)
            });
            let names: Vec<&str> =
                answer.body.as_array().into_iter().flatten().filter_map(|i| i["user_name"].as_str()).collect();
            let body = answer.body.to_string();
            if want == Outcome::Allowed {
                r.also(own_roster.iter().all(|(n, _)| names.contains(&n.as_str())), || {
                    format!("{} GET {base}: misses members: {body}", actor.name)
                });
                r.also(other_only.iter().all(|n| !names.contains(&n.as_str())), || {
                    format!("{} GET {base}: lists another tenant's members: {body}", actor.name)
                });
            } else {
                r.also(own_roster.iter().all(|(n, _)| !body.contains(&format!("\"{n}\""))), || {
                    format!("{} GET {base}: the refusal names a member: {body}", actor.name)
                });
            }

            // Re-roling the tenant's guest.
            let (target_id, target) = &targets[tenant];
            let url = format!("{base}/{target_id}");
            let want = expected(role, Kind::Member, Method::Patch, false);
            let answer = m.patch(&url, &actor.token, json!({"role": "member"})).await;
            r.case(answer.status.as_u16() == status_of(want, Some(Method::Patch)), || {
                format!("{} PATCH {url}: want {want:?}, got {} {}", actor.name, answer.status, answer.body)
            });
            let now = role_in(&roster(f, tenant).await, target);
            let changed = now.as_deref() != Some("guest");
            r.also(changed == (want == Outcome::Allowed), || {
                format!("{} PATCH {url}: want {want:?}, the member is now {now:?}", actor.name)
            });
            if changed {
                m.patch(&url, &m.root, json!({"role": "guest"})).await.expect(200);
            }

            // Removing: an allowed removal takes a fresh member, so the guest stays.
            let want = expected(role, Kind::Member, Method::Delete, false);
            let (victim_id, victim) = if want == Outcome::Allowed {
                let name = format!("{tenant}-twin-{}", uuid::Uuid::new_v4().simple());
                let id = quiet_user(f, &name).await;
                add_member(m, f.tenants[tenant], &name, Role::Guest).await;
                (id, name)
            } else {
                (*target_id, target.clone())
            };
            let url = format!("{base}/{victim_id}");
            let answer = m.delete(&url, &actor.token).await;
            r.case(answer.status.as_u16() == status_of(want, Some(Method::Delete)), || {
                format!("{} DELETE {url}: want {want:?}, got {} {}", actor.name, answer.status, answer.body)
            });
            let still = role_in(&roster(f, tenant).await, &victim).is_some();
            r.also(still != (want == Outcome::Allowed), || {
                format!("{} DELETE {url}: want {want:?}, still a member: {still}", actor.name)
            });

            // Adding: an allowed addition takes a fresh user, so `spare` stays outside.
            let want = expected_create(role, Kind::Member);
            let newcomer = if want == Outcome::Allowed {
                let name = format!("{tenant}-new-{}", uuid::Uuid::new_v4().simple());
                quiet_user(f, &name).await;
                name
            } else {
                spare.to_owned()
            };
            let answer = m.post(&base, &actor.token, json!({"user_name": newcomer, "role": "admin"})).await;
            r.case(answer.status.as_u16() == status_of(want, None), || {
                format!("{} POST {base}: want {want:?}, got {} {}", actor.name, answer.status, answer.body)
            });
            let added = role_in(&roster(f, tenant).await, &newcomer).is_some();
            r.also(added == (want == Outcome::Allowed), || {
                format!("{} POST {base}: want {want:?}, {newcomer} added: {added}", actor.name)
            });
        }
    }
}
