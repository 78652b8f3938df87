//! Jobs: the list with filters in the URL, and one job with its results per cluster and peer.

use std::time::Duration;

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
        jobs::{JobFilter, JobReport, get_job, list_jobs},
    },
    components::{ClusterSelect, ErrorNote, Loading, Pager, StateBadge, query, query_page},
    pages::task_graph::bytes,
};
use common::api::{ClusterResult, HostTask, Job, PreheatHostProgress, short_time};

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
                    <A href="/jobs/preheat" attr:class="button">"Preheat"</A>
                    <A href="/jobs/task-clear" attr:class="button secondary">"Clear a task"</A>
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
                                        <td>{cluster_list(&j)}</td>
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

/// What a job is about: its URL (the first of several) or task id.
fn target(job: &Job) -> String {
    let args = &job.args;
    if let Some(one) = ["url", "task_id"].iter().find_map(|k| args.get(*k).and_then(Value::as_str)) {
        return one.to_owned();
    }
    match args.get("urls").and_then(Value::as_array).map(Vec::as_slice) {
        Some([first, rest @ ..]) => {
            let first = first.as_str().unwrap_or_default();
            if rest.is_empty() { first.to_owned() } else { format!("{first} and {} more", rest.len()) }
        }
        _ => "—".into(),
    }
}

fn cluster_list(job: &Job) -> String {
    job.scheduler_cluster_ids.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// A job, looked at again every 2 s while it waits or runs (in the browser only). The timer is
/// cleared when the job ends and when the page is left.
pub fn follow_job(id: impl Fn() -> Option<i64> + Send + Sync + 'static) -> Resource<Result<JobReport, ApiError>> {
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
    Effect::new(move || {
        if job.get().and_then(Result::ok).is_some_and(|j| j.is_running())
            && let Ok(timer) = set_timeout_with_handle(move || tick.update(|t| *t += 1), Duration::from_secs(2))
        {
            on_cleanup(move || timer.clear());
        }
    });
    job
}

#[component]
pub fn JobPage() -> impl IntoView {
    let params = use_params_map();
    let job = follow_job(move || params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())));
    view! {
        <Transition fallback=Loading>
            {move || job.get().map(|r| match r {
                Err(error) => view! { <section class="card"><ErrorNote error /></section> }.into_any(),
                Ok(report) => view! { <JobView report /> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
pub fn JobView(report: JobReport) -> impl IntoView {
    let running = report.is_running();
    let JobReport { job, result } = report;
    let error =
        result.job_states.iter().map(|s| s.error.as_str()).filter(|e| !e.is_empty()).collect::<Vec<_>>().join("; ");
    let kind = job.r#type.clone();
    let what = (kind == "preheat").then(|| {
        let arg = |k: &str| job.args.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let scope = arg("scope");
        format!("{} · {}", arg("type"), if scope.is_empty() { "single_seed_peer".into() } else { scope })
    });
    view! {
        <section class="card" aria-labelledby="job-title">
            <h1 id="job-title">{format!("Job #{} · {}", job.id, job.r#type)}</h1>
            <dl class="facts">
                <dt>"State"</dt><dd id="job-state"><StateBadge state=job.state.clone() /></dd>
                {what.map(|w| view! { <dt>"Preheat"</dt><dd>{w}</dd> })}
                <dt>"Target"</dt><dd class="wrap">{target(&job)}</dd>
                <dt>"Clusters"</dt><dd>{cluster_list(&job)}</dd>
                <dt>"Created"</dt><dd>{short_time(&job.created_at)}</dd>
                <dt>"Updated"</dt><dd>{short_time(&job.updated_at)}</dd>
            </dl>
            {(!error.is_empty()).then(|| view! { <p class="error" role="alert" id="job-error">{error}</p> })}
            {running.then(|| view! {
                <p class="muted" aria-live="polite">"The job is " {job.state.to_lowercase()} "; this page follows it."</p>
            })}
        </section>
        {result.job_states.into_iter().flat_map(|s| s.results).map(|result| {
            let kind = kind.clone();
            view! { <ClusterResultCard kind result running /> }
        }).collect_view()}
    }
}

/// One cluster's part of a job: the peers holding the task, where deleting it worked, or which
/// hosts a preheat warmed.
#[component]
fn ClusterResultCard(kind: String, result: ClusterResult, running: bool) -> impl IntoView {
    let cluster = result.scheduler_cluster_id;
    let task = (!result.task_id.is_empty()).then(|| {
        let href = format!("/tasks?cluster={cluster}&task={}", result.task_id);
        view! {
            <p class="muted">"Task " <code>{result.task_id.clone()}</code> " · "
                <a href=href class="task-graph-link">"Task graph"</a></p>
        }
    });
    let body = match kind.as_str() {
        "preheat" => view! { <PreheatResult result running /> }.into_any(),
        _ if !result.error.is_empty() => view! { <p class="error" role="alert">{result.error}</p> }.into_any(),
        "get_task" if result.peers.is_empty() => {
            view! { <p class="empty">"No peer in this cluster holds the task."</p> }.into_any()
        }
        "get_task" => view! {
            <table class="task-peers">
                <thead><tr><th scope="col">"Hostname"</th><th scope="col">"IP"</th><th scope="col">"State"</th>
                    <th scope="col">"Finished pieces"</th><th scope="col">"Peer id"</th></tr></thead>
                <tbody>{result.peers.into_iter().map(|p| view! {
                    <tr><td>{p.hostname}</td><td>{p.ip}</td><td>{p.state}</td>
                        <td class="num">{p.finished_pieces}</td><td><code>{p.peer_id}</code></td></tr>
                }).collect_view()}</tbody>
            </table>
        }.into_any(),
        _ => view! {
            <p>{format!("Deleted from {} host(s); {} could not be reached.", result.success_tasks.len(), result.failure_tasks.len())}</p>
            <HostTable tasks=result.success_tasks failures=result.failure_tasks urls=false />
        }.into_any(),
    };
    view! {
        <section class="card cluster-result" data-cluster=cluster>
            <h2>{format!("Cluster {cluster}")}</h2>
            {task}
            {body}
        </section>
    }
}

/// A preheat in one cluster: how far it has gone, then each host's outcome per URL.
#[component]
fn PreheatResult(result: ClusterResult, running: bool) -> impl IntoView {
    let progress = result.progress.unwrap_or_default();
    let waiting = progress.tasks.saturating_sub(progress.finished);
    view! {
        <p class="preheat-progress" data-finished=progress.finished data-tasks=progress.tasks>
            <progress max=progress.tasks.max(1) value=progress.finished></progress>
            {format!(" {} / {} tasks · {} cached in all", progress.finished, progress.tasks, bytes(progress.bytes))}
            {(running && waiting > 0).then(|| format!(" · {waiting} still running"))}
        </p>
        {(progress.tasks == 0 && running).then(|| view! { <p class="muted">"Waiting for the scheduler to pick the hosts…"</p> })}
        {running.then(|| view! { <HostProgressTable hosts=result.hosts tasks=progress.tasks /> })}
        <HostTable tasks=result.success_tasks failures=result.failure_tasks urls=true />
    }
}

/// While a preheat runs: every host it picked, with how many of its tasks it has answered, so
/// a host that has not answered yet shows before it succeeds or fails.
#[component]
fn HostProgressTable(hosts: Vec<PreheatHostProgress>, tasks: u64) -> impl IntoView {
    let each = tasks / (hosts.len() as u64).max(1);
    (!hosts.is_empty()).then(|| {
        view! {
            <table class="task-peers host-progress">
                <thead><tr><th scope="col">"Hostname"</th><th scope="col">"IP"</th>
                    <th scope="col">"Tasks answered"</th><th scope="col">"Cached"</th></tr></thead>
                <tbody>{hosts.into_iter().map(|h| {
                    let state = if h.finished >= each { "done" } else { "pending" };
                    let PreheatHostProgress { hostname, ip, finished, bytes: cached, .. } = h;
                    let host = hostname.clone();
                    view! {
                        <tr data-host=host data-state=state>
                            <td>{hostname}</td><td>{ip}</td>
                            <td class="num">{format!("{finished} / {each}")}</td>
                            <td class="num">{bytes(cached)}</td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table>
        }
    })
}

/// Hosts that did a task (`SUCCESS`) and those that did not (`FAILURE`, with the reason); with
/// `urls`, which URL each row is about.
#[component]
fn HostTable(tasks: Vec<HostTask>, failures: Vec<HostTask>, urls: bool) -> impl IntoView {
    let row = move |t: HostTask, state: &'static str| {
        let HostTask { hostname, ip, url, description, .. } = t;
        let host = hostname.clone();
        view! {
            <tr data-host=host data-state=state>
                <td>{hostname}</td><td>{ip}</td>
                {urls.then(|| view! { <td class="wrap">{url}</td> })}
                <td><StateBadge state=state.to_owned() /></td>
                <td class="wrap">{description}</td>
            </tr>
        }
    };
    (!tasks.is_empty() || !failures.is_empty()).then(|| {
        view! {
            <table class="task-peers host-results">
                <thead><tr><th scope="col">"Hostname"</th><th scope="col">"IP"</th>
                    {urls.then(|| view! { <th scope="col">"URL"</th> })}
                    <th scope="col">"State"</th><th scope="col">"Reason"</th></tr></thead>
                <tbody>
                    {tasks.into_iter().map(|t| row(t, "SUCCESS")).collect_view()}
                    {failures.into_iter().map(|t| row(t, "FAILURE")).collect_view()}
                </tbody>
            </table>
        }
    })
}
