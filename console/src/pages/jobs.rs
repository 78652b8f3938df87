//! Jobs: the list with filters in the URL, and one job with its results per cluster and peer.

use leptos::prelude::*;
use leptos_router::{
    components::{A, Form},
    hooks::use_params_map,
};
use serde_json::Value;

use crate::{
    api::{
        ApiError,
        clusters::all_clusters,
        jobs::{JobFilter, get_job, list_jobs},
    },
    components::{ClusterSelect, ErrorNote, Loading, Pager, StateBadge, query, query_page},
};
use common::api::{Job, short_time};

const TYPES: &[(&str, &str)] =
    &[("", "any type"), ("preheat", "preheat"), ("get_task", "get task"), ("delete_task", "delete task")];
const STATES: &[&str] = &["", "PENDING", "RUNNING", "SUCCESS", "FAILURE"];

#[component]
pub fn JobsPage() -> impl IntoView {
    let page = query_page();
    let (kind, state, user, cluster) = (query("type"), query("state"), query("user_id"), query("cluster_id"));
    let filter = Memo::new(move |_| JobFilter {
        r#type: kind.get(),
        state: state.get(),
        user_id: user.get(),
        cluster_id: cluster.get(),
    });
    let jobs = Resource::new(move || (page.get(), filter.get()), |(p, f)| list_jobs(p, f));
    let clusters = Resource::new(|| (), |_| all_clusters());
    view! {
        <section class="card" aria-labelledby="jobs-title">
            <div class="heading">
                <h1 id="jobs-title">"Jobs"</h1>
                <div class="actions">
                    <A href="/jobs/task-clear" attr:class="button">"Clear a task"</A>
                    // Preheat (warming peers with an image or file) comes with the image work.
                    <span class="button secondary disabled" aria-disabled="true" title="Preheat arrives with container-image support">
                        "Preheat (soon)"
                    </span>
                </div>
            </div>
            <Form method="GET" action="" attr:class="filters">
                <label for="filter-type">"Type"</label>
                <select id="filter-type" name="type">
                    {TYPES.iter().map(|(v, l)| view! { <option value=*v selected=move || kind.get() == *v>{*l}</option> }).collect_view()}
                </select>
                <label for="filter-state">"State"</label>
                <select id="filter-state" name="state">
                    {STATES.iter().map(|v| view! {
                        <option value=*v selected=move || state.get() == *v>{if v.is_empty() { "any state" } else { v }}</option>
                    }).collect_view()}
                </select>
                <label for="filter-user">"User id"</label>
                <input id="filter-user" name="user_id" type="number" min="1" value=user />
                <label for="filter-cluster">"Cluster"</label>
                <Suspense fallback=move || view! { <ClusterSelect id="filter-cluster" name="cluster_id" any="any cluster" clusters=Vec::new() selected=cluster /> }>
                    {move || clusters.get().map(|r| view! {
                        <ClusterSelect id="filter-cluster" name="cluster_id" any="any cluster" clusters=r.unwrap_or_default() selected=cluster />
                    })}
                </Suspense>
                <button type="submit" class="secondary">"Filter"</button>
            </Form>
            <Suspense fallback=Loading>
                {move || jobs.get().map(|r| match r {
                    Err(error) => view! { <ErrorNote error /> }.into_any(),
                    Ok(page) if page.items.is_empty() => view! { <p class="empty">"No jobs match."</p> }.into_any(),
                    Ok(mut page) => view! {
                        <table id="jobs-table">
                            <thead><tr>
                                <th scope="col">"Id"</th><th scope="col">"Type"</th><th scope="col">"State"</th>
                                <th scope="col">"Target"</th><th scope="col">"Clusters"</th><th scope="col">"User"</th>
                                <th scope="col">"Created"</th>
                            </tr></thead>
                            <tbody>
                                {std::mem::take(&mut page.items).into_iter().map(|j| {
                                    let label = format!("#{}", j.id);
                                    view! {
                                    <tr>
                                        <td><A href=format!("/jobs/{}", j.id)>{label}</A></td>
                                        <td>{j.r#type.clone()}</td>
                                        <td><StateBadge state=j.state.clone() /></td>
                                        <td class="wrap">{target(&j)}</td>
                                        <td>{j.scheduler_cluster_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")}</td>
                                        <td>{j.user_id}</td>
                                        <td>{short_time(&j.created_at)}</td>
                                    </tr>
                                }}).collect_view()}
                            </tbody>
                        </table>
                        <Pager page noun="jobs" />
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

/// What a job is about: its URL or task id.
fn target(job: &Job) -> String {
    let args: &Value = &job.args;
    ["url", "task_id"]
        .iter()
        .find_map(|k| args.get(*k).and_then(Value::as_str))
        .map(str::to_owned)
        .unwrap_or_else(|| "—".into())
}

#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok()));
    let tick = RwSignal::new(0u32);
    let job = Resource::new(
        move || (id(), tick.get()),
        |(id, _)| async move {
            match id {
                Some(id) => get_job(id).await,
                None => Err(ApiError::not_found("no such job")),
            }
        },
    );
    // While the job waits or runs, look again every second (in the browser only).
    Effect::new(move || {
        let running = job.get().and_then(Result::ok).is_some_and(|j| j.state == "PENDING" || j.state == "RUNNING");
        if running {
            set_timeout(move || tick.update(|t| *t += 1), std::time::Duration::from_secs(1));
        }
    });
    view! {
        <Transition fallback=Loading>
            {move || job.get().map(|r| match r {
                Err(error) => view! { <section class="card"><ErrorNote error /></section> }.into_any(),
                Ok(job) => view! { <JobView job /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
pub fn JobView(job: Job) -> impl IntoView {
    let result: Value = job.result.clone().unwrap_or_default();
    let states = result.get("job_states").and_then(Value::as_array).cloned().unwrap_or_default();
    let error = states
        .iter()
        .filter_map(|s| s.get("error").and_then(Value::as_str))
        .filter(|e| !e.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let results: Vec<Value> =
        states.iter().filter_map(|s| s.get("results").and_then(Value::as_array)).flatten().cloned().collect();
    view! {
        <section class="card" aria-labelledby="job-title">
            <h1 id="job-title">{format!("Job #{} · {}", job.id, job.r#type)}</h1>
            <dl class="facts">
                <dt>"State"</dt><dd id="job-state"><StateBadge state=job.state.clone() /></dd>
                <dt>"Target"</dt><dd class="wrap">{target(&job)}</dd>
                <dt>"Clusters"</dt><dd>{job.scheduler_cluster_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")}</dd>
                <dt>"Created"</dt><dd>{short_time(&job.created_at)}</dd>
                <dt>"Updated"</dt><dd>{short_time(&job.updated_at)}</dd>
            </dl>
            {(!error.is_empty()).then(|| view! { <p class="error" role="alert">{error}</p> })}
            {(job.state == "PENDING" || job.state == "RUNNING").then(|| view! {
                <p class="muted" aria-live="polite">"The job is " {job.state.to_lowercase()} "; this page follows it."</p>
            })}
        </section>
        {results.into_iter().map(|r| view! { <ClusterResult result=r /> }).collect_view()}
    }
}

/// One cluster's part of a job: the peers holding the task, or where deleting it worked.
#[component]
fn ClusterResult(result: Value) -> impl IntoView {
    let text = |k: &str| result.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let cluster = result.get("scheduler_cluster_id").and_then(Value::as_i64).unwrap_or_default();
    let rows = |k: &str| result.get(k).and_then(Value::as_array).cloned().unwrap_or_default();
    let peers = rows("peers");
    let done = rows("success_tasks");
    let failed = rows("failure_tasks");
    let error = text("error");
    let is_delete = result.get("success_tasks").is_some();
    let cell = |v: &Value, k: &str| match v.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    view! {
        <section class="card cluster-result" data-cluster=cluster>
            <h2>{format!("Cluster {cluster}")}</h2>
            <p class="muted">"Task " <code>{text("task_id")}</code> " · "
                <a href=format!("/tasks?cluster={cluster}&task={}", text("task_id")) class="task-graph-link">"Task graph"</a></p>
            {(!error.is_empty()).then(|| view! { <p class="error" role="alert">{error.clone()}</p> })}
            {(!is_delete && error.is_empty()).then(|| if peers.is_empty() {
                view! { <p class="empty">"No peer in this cluster holds the task."</p> }.into_any()
            } else {
                view! {
                    <table class="task-peers">
                        <thead><tr><th scope="col">"Hostname"</th><th scope="col">"IP"</th><th scope="col">"State"</th>
                            <th scope="col">"Finished pieces"</th><th scope="col">"Peer id"</th></tr></thead>
                        <tbody>{peers.iter().map(|p| view! {
                            <tr><td>{cell(p, "hostname")}</td><td>{cell(p, "ip")}</td><td>{cell(p, "state")}</td>
                                <td class="num">{cell(p, "finished_pieces")}</td><td><code>{cell(p, "peer_id")}</code></td></tr>
                        }).collect_view()}</tbody>
                    </table>
                }.into_any()
            })}
            {is_delete.then(|| view! {
                <p>{format!("Deleted from {} host(s); {} could not be reached.", done.len(), failed.len())}</p>
                <table class="task-peers">
                    <thead><tr><th scope="col">"Hostname"</th><th scope="col">"IP"</th><th scope="col">"Outcome"</th></tr></thead>
                    <tbody>
                        {done.iter().map(|p| view! { <tr><td>{cell(p, "hostname")}</td><td>{cell(p, "ip")}</td><td><StateBadge state="success".to_owned() /></td></tr> }).collect_view()}
                        {failed.iter().map(|p| view! { <tr><td>{cell(p, "hostname")}</td><td>{cell(p, "ip")}</td><td>{cell(p, "description")}</td></tr> }).collect_view()}
                    </tbody>
                </table>
            })}
        </section>
    }
}
