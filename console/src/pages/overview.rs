//! The overview: how much there is and how much of it is alive, tasks and traffic over time
//! (from the schedulers' keepalive figures, `GET /api/v1/stats`), and the latest jobs.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::{
    api::{
        hosts::host_counts,
        jobs::{JobFilter, list_jobs},
        stats::{WINDOWS, get_stats},
    },
    charts::{Series, TimeChart},
    components::{ErrorNote, Loading, StateBadge, query},
    context::use_me,
    pages::task_graph::bytes,
};
use common::api::{Stats, short_time};

#[component]
pub fn OverviewPage() -> impl IntoView {
    let me = use_me();
    let counts = Resource::new(|| (), |_| host_counts());
    let jobs = Resource::new(|| (), |_| list_jobs(1, JobFilter::default()));
    let window = query("window");
    let window = Memo::new(move |_| {
        let w = window.get();
        if WINDOWS.contains(&w.as_str()) { w } else { WINDOWS[0].to_owned() }
    });
    let stats = Resource::new(move || window.get(), get_stats);
    let stat = |label: &'static str, id: &'static str, (on, all): (u64, u64)| {
        view! {
            <div class="stat" id=id>
                <span class="stat-value">{on}<span class="muted">{format!(" / {all}")}</span></span>
                <span class="stat-label">{label}" active"</span>
                <meter min="0" max=all.max(1) value=on aria-label=format!("{label} active")></meter>
            </div>
        }
    };
    view! {
        <section class="card" aria-labelledby="overview-title">
            <h1 id="overview-title">"Overview"</h1>
            <p class="muted">{format!("Signed in as {}.", me.user.name)}</p>
            <Suspense fallback=Loading>
                {move || counts.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(c) => view! {
                        <div class="stats">
                            <div class="stat" id="stat-clusters">
                                <span class="stat-value">{c.clusters}</span>
                                <span class="stat-label"><A href="/clusters">"clusters"</A></span>
                            </div>
                            {stat("schedulers", "stat-schedulers", c.schedulers)}
                            {stat("seed peers", "stat-seed-peers", c.seed_peers)}
                            {stat("peers", "stat-peers", c.peers)}
                        </div>
                    }.into_any(),
                })}
            </Suspense>
        </section>
        <section class="card" aria-labelledby="activity-title">
            <div class="heading">
                <h2 id="activity-title">"Tasks and traffic"</h2>
                <nav class="actions" aria-label="Time window">
                    {WINDOWS.iter().map(|w| view! {
                        <A href=format!("?window={w}") attr:class="window"
                            attr:aria-current=move || (window.get() == *w).then_some("true")>{*w}</A>
                    }).collect_view()}
                </nav>
            </div>
            <Suspense fallback=Loading>
                {move || stats.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(s) => view! { <Activity stats=s /> }.into_any(),
                })}
            </Suspense>
        </section>
        <section class="card" aria-labelledby="recent-jobs">
            <h2 id="recent-jobs">"Latest jobs"</h2>
            <Suspense fallback=Loading>
                {move || jobs.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! { <p class="empty">"No jobs yet."</p> }.into_any(),
                    Ok(page) => {
                        let count = |s: &str| page.items.iter().filter(|j| j.state == s).count();
                        let summary = format!(
                            "Of the latest {}: {} succeeded, {} failed, {} waiting or running.",
                            page.items.len(), count("SUCCESS"), count("FAILURE"), count("PENDING") + count("RUNNING")
                        );
                        view! {
                            <p>{summary}</p>
                            <ul class="plain">
                                {page.items.into_iter().take(5).map(|j| {
                                    let label = format!("#{} {}", j.id, j.r#type);
                                    view! {
                                    <li><A href=format!("/jobs/{}", j.id)>{label}</A> " "
                                        <StateBadge state=j.state.clone() /> " " <span class="muted">{short_time(&j.created_at)}</span></li>
                                }}).collect_view()}
                            </ul>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}

/// The charts and totals of one window.
#[component]
fn Activity(stats: Stats) -> impl IntoView {
    let secs = stats.bucket_secs.max(1) as f64;
    let rate = |f: fn(&common::api::StatsPoint) -> u64| -> Vec<Option<f64>> {
        stats.points.iter().map(|p| Some(f(p) as f64 / secs)).collect()
    };
    let gauge = |f: fn(&common::api::StatsPoint) -> Option<u64>| -> Vec<Option<f64>> {
        stats.points.iter().map(|p| f(p).map(|v| v as f64)).collect()
    };
    let traffic = vec![
        Series { label: "from the origin", class: "origin", values: rate(|p| p.back_to_source_bytes) },
        Series { label: "from other peers", class: "peers", values: rate(|p| p.peer_bytes) },
    ];
    let load = vec![
        Series { label: "tasks", class: "tasks", values: gauge(|p| p.tasks) },
        Series { label: "peers downloading", class: "running", values: gauge(|p| p.running_peers) },
    ];
    let total = |f: fn(&common::api::StatsPoint) -> u64| stats.points.iter().map(f).sum::<u64>();
    let (origin, peers) = (total(|p| p.back_to_source_bytes), total(|p| p.peer_bytes));
    let (succeeded, failed) = (total(|p| p.succeeded), total(|p| p.failed));
    let offload = if origin + peers == 0 {
        String::new()
    } else {
        format!(" ({:.0}% from peers)", 100.0 * peers as f64 / (origin + peers) as f64)
    };
    let from = stats.points.first().map(|p| short_time(&p.at)).unwrap_or_default();
    let summary = format!(
        "In this window: {} from the origin, {} from other peers{offload}; {succeeded} downloads succeeded, {failed} failed.",
        bytes(origin),
        bytes(peers),
    );
    view! {
        <p id="activity-summary">{summary}</p>
        <div class="charts">
            <TimeChart id="chart-traffic" title="Traffic (per second)" series=traffic stacked=true
                format=|v| format!("{}/s", bytes(v as u64)) from=from.clone() to="now".to_owned() />
            <TimeChart id="chart-tasks" title="Tasks and downloads" series=load
                format=|v| format!("{v:.0}") from=from to="now".to_owned() />
        </div>
    }
}
