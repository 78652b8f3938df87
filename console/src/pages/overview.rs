//! The overview: how much there is and how much of it is alive, and the latest jobs.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::{
    api::{hosts::host_counts, jobs::list_jobs, models::short_time},
    app::use_me,
    components::{ErrorNote, Loading, StateBadge},
};

#[component]
pub fn OverviewPage() -> impl IntoView {
    let me = use_me();
    let counts = Resource::new(|| (), |_| host_counts());
    let jobs = Resource::new(|| (), |_| list_jobs(1, String::new(), String::new(), String::new()));
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
            <p class="muted">{format!("Signed in as {}.", me.name)}</p>
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
