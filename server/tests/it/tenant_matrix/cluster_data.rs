//! Rows: what schedulers reported about a cluster — its task records and the samples behind the
//! overview's charts — reaches only those who may read the cluster, and a sum over "all my
//! clusters" counts no other tenant's.

use super::{
    contract::{Kind, Method, Outcome, expected, status_of},
    fixture::{Fixture, Report, TASK_ID, TENANTS, sample_tasks, task_url},
};

pub async fn tasks(f: &Fixture, r: &mut Report) {
    for actor in &f.actors {
        for tenant in TENANTS {
            let cluster = f.clusters[tenant];
            let want = expected(f.role(actor, tenant), Kind::Cluster, Method::Get, false);
            let others: Vec<String> = TENANTS.iter().filter(|t| **t != tenant).map(|t| task_url(t)).collect();
            for url in [
                format!("/api/v1/clusters/{cluster}/tasks?per_page=1000"),
                format!("/api/v1/clusters/{cluster}/tasks/{TASK_ID}"),
            ] {
                let answer = f.m.get(&url, &actor.token).await;
                let body = answer.body.to_string();
                r.case(answer.status.as_u16() == status_of(want, Some(Method::Get)), || {
                    format!("{} GET {url}: want {want:?}, got {} {body}", actor.name, answer.status)
                });
                let shows_own = body.contains(&task_url(tenant));
                r.also(shows_own == (want == Outcome::Allowed), || {
                    format!("{} GET {url}: want {want:?}, shows {tenant}'s task: {shows_own}: {body}", actor.name)
                });
                r.also(others.iter().all(|o| !body.contains(o)), || {
                    format!("{} GET {url}: shows another tenant's task: {body}", actor.name)
                });
            }
        }
    }
}

/// The largest `tasks` gauge of a stats answer (0 when none reported).
fn peak_tasks(body: &serde_json::Value) -> u64 {
    body["points"].as_array().into_iter().flatten().filter_map(|p| p["tasks"].as_u64()).max().unwrap_or(0)
}

pub async fn stats(f: &Fixture, r: &mut Report) {
    for actor in &f.actors {
        let mut visible_sum = 0;
        for tenant in TENANTS {
            let want = expected(f.role(actor, tenant), Kind::Cluster, Method::Get, false);
            if want == Outcome::Allowed {
                visible_sum += sample_tasks(tenant);
            }
            let url = format!("/api/v1/stats?scheduler_cluster_id={}", f.clusters[tenant]);
            let answer = f.m.get(&url, &actor.token).await;
            r.case(answer.status.as_u16() == status_of(want, Some(Method::Get)), || {
                format!("{} GET {url}: want {want:?}, got {} {}", actor.name, answer.status, answer.body)
            });
            let peak = peak_tasks(&answer.body);
            let want_peak = if want == Outcome::Allowed { sample_tasks(tenant) } else { 0 };
            r.also(peak == want_peak, || format!("{} GET {url}: {peak} tasks, want {want_peak}", actor.name));
        }
        let answer = f.m.get("/api/v1/stats", &actor.token).await;
        let peak = peak_tasks(&answer.body);
        r.case(answer.status == 200 && peak == visible_sum, || {
            format!("{} GET /api/v1/stats: {} with {peak} tasks, want {visible_sum}", actor.name, answer.status)
        });
    }
}
