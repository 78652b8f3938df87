//! `preheat`: resolve what to warm (an image's blobs, or the files named), then ask one active
//! scheduler of every chosen cluster to warm it on the hosts the scope picks, and follow each
//! cluster's stream of per-host results until every one is in.
//!
//! The manager stays off the data path: it only relays orders and tallies results. While the
//! preheat runs, its progress is written to the job every [`PROGRESS_EVERY`] (the runner stamps
//! it as alive besides, [`super::keep_stamped`]); a job deleted, or set to `FAILURE` through the API, is
//! cancelled (the dropped streams tell the schedulers) and keeps what the API wrote; a shutdown hands the job back as `PENDING`, so the next start runs it again and
//! the hosts find what they already cached. A scheduler that goes away fails its cluster's
//! unfinished tasks with the reason; nothing waits past the job's timeout.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use common::task_id::{TaskSpec, task_id};
use futures::{StreamExt, future::join_all};
use sea_orm::{ActiveEnum, DatabaseConnection};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::image::ImageRequest;
use crate::{
    Error,
    config::JobsConfig,
    entity::jobs::{self, JobState},
    service::{
        preheat::{PreheatArgs, PreheatKind},
        registry::active_schedulers,
        scheduler_rpc::{PreheatCall, PreheatEvent, PreheatHost, PreheatTask, SchedulerClient},
    },
};

/// How often a running preheat's progress is written to its job.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How long past its timeout a preheat waits for a scheduler that stopped talking.
const GRACE: Duration = Duration::from_secs(30);

/// One cluster's preheat, as far as it has gone.
#[derive(Debug, Default)]
struct ClusterRun {
    hosts: Vec<PreheatHost>,
    /// Per host and task: bytes cached, or why not.
    results: BTreeMap<(String, String), Result<u64, String>>,
    /// Why the cluster's part failed as a whole (no scheduler, a broken stream).
    error: Option<String>,
    done: bool,
}

/// What is warmed: each task's spec, keyed by its id.
struct Plan {
    tasks: Vec<PreheatTask>,
    urls: HashMap<String, String>,
}

/// Runs a preheat job and records its outcome.
pub async fn execute(
    db: &DatabaseConnection,
    config: &JobsConfig,
    reach: &super::Reach,
    job: jobs::Model,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let clusters: Vec<i64> = serde_json::from_value(job.cluster_ids.clone()).unwrap_or_default();
    let args = match PreheatArgs::parse(&job.args) {
        Ok(a) => a,
        Err(e) => {
            let states = json!([{"state": "FAILURE", "error": e.to_string(), "results": []}]);
            return finish(db, &job, JobState::Failure, states).await.map(drop);
        }
    };
    let plan = match plan(&args, config).await {
        Ok(p) => p,
        Err(e) => {
            let states = json!([{"state": "FAILURE", "error": e, "results": []}]);
            return finish(db, &job, JobState::Failure, states).await.map(drop);
        }
    };
    let timeout = match args.timeout_secs {
        0 => Duration::from_secs(config.preheat_timeout_secs.max(1)),
        s => Duration::from_secs(s),
    };
    let call = PreheatCall {
        tasks: plan.tasks.clone(),
        scope: args.scope,
        ips: args.ips.clone(),
        count: args.count,
        percentage: args.percentage,
        concurrent_count: args.concurrent_count,
        timeout_secs: timeout.as_secs(),
    };
    let runs: HashMap<i64, std::sync::Mutex<ClusterRun>> =
        clusters.iter().map(|c| (*c, std::sync::Mutex::new(ClusterRun::default()))).collect();
    let connect_timeout = Duration::from_secs(config.scheduler_timeout_secs.max(1));
    let all = join_all(clusters.iter().map(|&cluster| {
        let run = &runs[&cluster];
        let call = call.clone();
        async move {
            let outcome =
                tokio::time::timeout(timeout + GRACE, on_cluster(db, reach, cluster, call, connect_timeout, run)).await;
            let mut r = run.lock().unwrap_or_else(|p| p.into_inner());
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(e)) => r.error = Some(e),
                Err(_) => {
                    r.error = Some(format!("the scheduler gave no result within {} s", (timeout + GRACE).as_secs()))
                }
            }
            r.done = true;
        }
    }));
    tokio::pin!(all);
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            _ = &mut all => break,
            () = shutdown.cancelled() => {
                tracing::info!(job_id = job.id, "manager stopping: preheat handed back to run again");
                return record(db, &job, JobState::Pending, &runs, &plan).await.map(drop);
            }
            _ = tick.tick() => {
                // Deleted, or set to FAILURE through the API: dropping the scheduler streams
                // cancels the preheat on the hosts.
                if !record(db, &job, JobState::Running, &runs, &plan).await? {
                    tracing::info!(job_id = job.id, "preheat job cancelled");
                    return Ok(());
                }
            }
        }
    }
    let failed = runs.values().any(|r| {
        let r = r.lock().unwrap_or_else(|p| p.into_inner());
        r.error.is_some() || r.results.values().any(Result::is_err)
    });
    let state = if failed { JobState::Failure } else { JobState::Success };
    tracing::info!(job_id = job.id, state = state.to_value().as_str(), "preheat finished");
    if !record(db, &job, state, &runs, &plan).await? {
        tracing::info!(job_id = job.id, "preheat job cancelled as it ended; its result is dropped");
    }
    Ok(())
}

/// The tasks to warm: the image's blobs, or the files.
async fn plan(args: &PreheatArgs, config: &JobsConfig) -> Result<Plan, String> {
    let (urls, headers) = match args.kind {
        PreheatKind::File => (args.urls.clone(), args.headers.clone()),
        PreheatKind::Image => {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(config.registry_timeout_secs.max(1)))
                .redirect(reqwest::redirect::Policy::limited(5))
                .build()
                .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
            let request = ImageRequest {
                url: args.urls[0].clone(),
                platform: args.platform.clone(),
                headers: args.headers.clone(),
                username: args.username.clone(),
                password: args.password.clone(),
            };
            let resolved = super::image::resolve(&client, &request).await.map_err(|e| e.to_string())?;
            (resolved.blobs.into_iter().map(|b| b.url).collect(), resolved.headers)
        }
    };
    let mut tasks = Vec::with_capacity(urls.len());
    let mut ids = HashMap::new();
    for url in urls {
        let spec = TaskSpec {
            url: &url,
            tag: &args.tag,
            application: &args.application,
            piece_length: args.piece_length,
            filtered_query_params: &args.filtered_query_params,
            blob_digest: args.blob_digest_task_id,
        };
        let id = task_id(&spec).map_err(|e| format!("{url}: {e}"))?;
        ids.insert(id.0, url.clone());
        tasks.push(PreheatTask {
            url,
            tag: args.tag.clone(),
            application: args.application.clone(),
            filtered_query_params: args.filtered_query_params.clone(),
            piece_length: args.piece_length,
            headers: headers.clone(),
            blob_digest_task_id: args.blob_digest_task_id,
        });
    }
    Ok(Plan { tasks, urls: ids })
}

/// Runs the preheat on one active scheduler of `cluster`, recording into `run`.
async fn on_cluster(
    db: &DatabaseConnection,
    reach: &super::Reach,
    cluster: i64,
    call: PreheatCall,
    connect_timeout: Duration,
    run: &std::sync::Mutex<ClusterRun>,
) -> Result<(), String> {
    let active = active_schedulers(db, cluster, reach.keepalive).await.map_err(|e| format!("database: {e}"))?;
    if active.is_empty() {
        return Err("the cluster has no active scheduler".into());
    }
    let mut refusals = Vec::new();
    for s in &active {
        let mut client = match SchedulerClient::connect(&reach.dialer, cluster, &s.ip, s.port, connect_timeout).await {
            Ok(c) => c,
            Err(e) => {
                refusals.push(e);
                continue;
            }
        };
        let mut events = match client.preheat(call.clone()).await {
            Ok(events) => Box::pin(events),
            Err(e) => {
                refusals.push(format!("scheduler {}:{}: {e}", s.ip, s.port));
                continue;
            }
        };
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| format!("scheduler {}:{}: {e}", s.ip, s.port))?;
            let mut r = run.lock().unwrap_or_else(|p| p.into_inner());
            match event {
                PreheatEvent::Hosts(hosts) => r.hosts = hosts,
                PreheatEvent::Result { host_id, task_id, outcome } => {
                    r.results.insert((host_id, task_id), outcome);
                }
            }
        }
        return Ok(());
    }
    Err(refusals.join("; "))
}

/// Writes the job's state and its per-cluster results in Dragonfly's shape; false when the job
/// was cancelled or deleted meanwhile.
async fn record(
    db: &DatabaseConnection,
    job: &jobs::Model,
    state: JobState,
    runs: &HashMap<i64, std::sync::Mutex<ClusterRun>>,
    plan: &Plan,
) -> Result<bool, Error> {
    let mut clusters: Vec<&i64> = runs.keys().collect();
    clusters.sort();
    let states: Vec<Value> =
        clusters.into_iter().map(|c| job_state(*c, &runs[c].lock().unwrap_or_else(|p| p.into_inner()), plan)).collect();
    finish(db, job, state, Value::Array(states)).await
}

/// One cluster's `job_states[]` entry: its state, its error and its success and failure tasks.
fn job_state(cluster: i64, run: &ClusterRun, plan: &Plan) -> Value {
    let mut success = Vec::new();
    let mut failure = Vec::new();
    let mut bytes = 0u64;
    let mut errors: Vec<String> = run.error.iter().cloned().collect();
    let mut hosts = Vec::with_capacity(run.hosts.len());
    for host in &run.hosts {
        // This host's own progress: tasks finished, bytes cached.
        let (mut finished, mut cached) = (0usize, 0u64);
        for (task, url) in &plan.urls {
            let entry = |extra: Option<&str>| {
                let mut v = json!({"url": url, "task_id": task, "hostname": host.hostname, "ip": host.ip, "host_id": host.host_id});
                if let Some(why) = extra {
                    v["description"] = json!(why);
                }
                v
            };
            let outcome = run.results.get(&(host.host_id.clone(), task.clone()));
            finished += usize::from(outcome.is_some());
            match outcome {
                Some(Ok(len)) => {
                    bytes += len;
                    cached += len;
                    success.push(entry(None));
                }
                Some(Err(why)) => {
                    errors.push(format!("{} on {}: {why}", url, host.hostname));
                    failure.push(entry(Some(why)));
                }
                None if run.done => {
                    let why = run.error.as_deref().unwrap_or("no result from the host");
                    failure.push(entry(Some(why)));
                }
                None => {}
            }
        }
        hosts.push(json!({"host_id": host.host_id, "hostname": host.hostname, "ip": host.ip,
            "finished": finished, "bytes": cached}));
    }
    let total = run.hosts.len() * plan.urls.len();
    let state = if !run.done {
        "RUNNING"
    } else if errors.is_empty() {
        "SUCCESS"
    } else {
        "FAILURE"
    };
    errors.truncate(20);
    json!({
        "state": state,
        "error": errors.join("; "),
        "results": [{
            "scheduler_cluster_id": cluster,
            "success_tasks": success,
            "failure_tasks": failure,
            "progress": {"tasks": total, "finished": run.results.len(), "bytes": bytes},
            // Every host picked, with its own progress (tasks finished, bytes cached).
            "hosts": hosts,
        }],
    })
}

/// Writes the job's state and results while it is still this runner's; false when it was
/// cancelled or deleted meanwhile.
async fn finish(db: &DatabaseConnection, job: &jobs::Model, state: JobState, job_states: Value) -> Result<bool, Error> {
    super::record_run(db, super::Claim::of(job), state, json!({ "job_states": job_states })).await
}
