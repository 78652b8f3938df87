//! `dfctl preheat`: a preheat job on the manager, in the body Harbor and Dragonfly's dfctl send,
//! optionally waited for with a progress line and then a table of every host's result; or, with
//! `--scheduler`, a preheat of files asked of a scheduler directly ([`crate::scheduler`]), for a
//! site without a manager, printed the same way.
//!
//! What can be checked here is checked before the manager is asked (exit 2); the manager checks
//! everything again and its refusal names the field (exit 1).

use std::{collections::BTreeMap, io::IsTerminal, net::IpAddr, time::Duration};

use clap::ValueEnum;
use common::api::Job;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Failure, Output,
    manager::{Manager, Poll},
    scheduler, table,
};

/// How often a waited-for job is polled.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Polls in a row the manager may miss (a restart) before dfctl gives up waiting.
const MISSED_POLLS: u32 = 30;

#[derive(Debug, clap::Args)]
#[command(after_help = "The job runs on the manager: stopping dfctl while it waits does not stop the job.\n\
    With --scheduler there is no job: dfctl waits for every result, and stopping it cancels the preheat.")]
pub struct Args {
    /// What to warm: an image's manifest URL (<registry>/v2/<repository>/manifests/<tag or
    /// digest>) or file URLs (several for one job).
    #[arg(required = true, value_parser = parse_url)]
    urls: Vec<url::Url>,
    /// What the URL names [default: image for a manifest URL, else file].
    #[arg(long = "type", value_enum)]
    kind: Option<Kind>,
    /// Which hosts of each cluster are warmed.
    #[arg(long, value_enum, default_value_t = Scope::SingleSeedPeer)]
    scope: Scope,
    /// Only this many hosts of the scope.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1_000_000), conflicts_with_all = ["percentage", "ips"])]
    count: Option<u32>,
    /// Only this share of the scope's hosts, in percent (rounded up).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100), conflicts_with = "ips")]
    percentage: Option<u32>,
    /// Only the hosts with this IP address (repeatable).
    #[arg(long = "ip", value_name = "IP")]
    ips: Vec<IpAddr>,
    /// The image for this platform from a multi-platform index: os/arch[/variant].
    #[arg(long, value_parser = parse_platform)]
    platform: Option<String>,
    /// Header for the registry or origin, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Registry user name.
    #[arg(long)]
    username: Option<String>,
    /// Read the registry password from standard input (its first line).
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Run on these scheduler clusters only (repeatable) [default: every cluster of the token's tenant].
    #[arg(long = "cluster", value_name = "ID", value_parser = clap::value_parser!(i64).range(1..))]
    clusters: Vec<i64>,
    /// Tasks each host fetches at once [default: the scheduler's].
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=1000))]
    concurrent_count: Option<u32>,
    /// Seconds the whole preheat may take [default: the manager's].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    timeout: Option<u64>,
    /// Tag, as given to dfget (part of the task id).
    #[arg(long)]
    tag: Option<String>,
    /// Application, as given to dfget (part of the task id).
    #[arg(long)]
    application: Option<String>,
    /// Query parameter to ignore in the task id, as given to dfget (repeatable).
    #[arg(long = "filtered-query-param")]
    filtered_query_params: Vec<String>,
    /// Piece length in bytes, as given to dfget (part of the task id).
    #[arg(long)]
    piece_length: Option<u64>,
    /// Warm each OCI blob under its digest's task id: what dfdaemons with `[proxy]
    /// blob_digest_task_id = true` look up (without it, the URL's task id, what dfget and the
    /// proxy's default mode look up).
    #[arg(long)]
    blob_digest_task_id: bool,
    /// Wait until the job is done, then print every host's result.
    #[arg(long)]
    wait: bool,
    /// Ask this scheduler (host:port of its gRPC API) instead of a manager, for a site that runs
    /// none; repeat to try others in turn. Files only; dfctl waits for every result.
    #[arg(long = "scheduler", value_name = "HOST:PORT", value_parser = parse_host_port,
        conflicts_with_all = ["clusters", "platform", "username", "password_stdin"])]
    schedulers: Vec<String>,
    /// With --scheduler: the operator's certificate (PEM), from `damselfly cert --component
    /// operator` [default: cert under [scheduler] in dfctl.toml].
    #[arg(long, requires = "schedulers")]
    cert: Option<std::path::PathBuf>,
    /// With --scheduler: its private key [default: key under [scheduler] in dfctl.toml].
    #[arg(long, requires = "schedulers")]
    key: Option<std::path::PathBuf>,
    /// With --scheduler: the cluster's CA certificate [default: ca under [scheduler] in dfctl.toml].
    #[arg(long, requires = "schedulers")]
    ca: Option<std::path::PathBuf>,
    /// The manager's REST address [default: from dfctl.toml, else http://127.0.0.1:8080].
    #[arg(long, env = "DFCTL_MANAGER")]
    manager: Option<String>,
    /// A personal access token with scope "job" [default: from dfctl.toml].
    #[arg(long, env = "DFCTL_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// How to print the job.
    #[arg(long, value_enum, default_value_t = Output::Table)]
    output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Kind {
    /// The blobs of an image named by its manifest URL.
    Image,
    /// The files at the URLs.
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scope {
    /// One seed peer per cluster.
    #[value(name = "single_seed_peer")]
    SingleSeedPeer,
    /// Every seed peer.
    #[value(name = "all_seed_peers")]
    AllSeedPeers,
    /// Every peer, seed peers included.
    #[value(name = "all_peers")]
    AllPeers,
}

impl Scope {
    fn wire(self) -> &'static str {
        match self {
            Self::SingleSeedPeer => "single_seed_peer",
            Self::AllSeedPeers => "all_seed_peers",
            Self::AllPeers => "all_peers",
        }
    }
}

fn parse_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| format!("invalid URL {s:?}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} is not an http or https URL"));
    }
    Ok(url)
}

/// `host:port` with a port: a scheduler's gRPC address.
fn parse_host_port(s: &str) -> Result<String, String> {
    let bad = || format!("{s:?} is not host:port, such as 10.0.0.5:8002");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    let port: u16 = port.parse().map_err(|_| bad())?;
    let host_ok = host.parse::<IpAddr>().is_ok()
        || (!host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if port == 0 || !host_ok {
        return Err(bad());
    }
    Ok(s.to_owned())
}

fn parse_platform(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split('/').collect();
    let ok = (2..=3).contains(&parts.len())
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 32
                && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        });
    if ok { Ok(s.to_owned()) } else { Err(format!("{s:?} is not os/arch or os/arch/variant, as linux/arm64/v8")) }
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once(':').ok_or_else(|| format!("header {s:?} must be \"Name: value\""))?;
    let (name, value) = (name.trim(), value.trim());
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid HTTP header name"))?;
    reqwest::header::HeaderValue::from_str(value).map_err(|_| format!("the value of header {name} is not valid"))?;
    Ok((name.to_owned(), value.to_owned()))
}

/// Whether `url` names an image: `/v2/<repository>/manifests/<reference>`, no query (the
/// manager's own rule for an image's URL).
fn is_manifest_url(url: &url::Url) -> bool {
    let Some(rest) = url.path().strip_prefix("/v2/") else { return false };
    let Some((repository, reference)) = rest.rsplit_once("/manifests/") else { return false };
    !repository.is_empty() && !reference.is_empty() && !reference.contains('/') && url.query().is_none()
}

/// The kind asked for, else the one the URLs imply.
fn kind_of(args: &Args) -> Result<Kind, Failure> {
    let kind = args.kind.unwrap_or_else(|| if is_manifest_url(&args.urls[0]) { Kind::Image } else { Kind::File });
    if kind == Kind::Image && args.urls.len() > 1 {
        return Err(Failure::usage(
            "an image preheat takes one manifest URL: run dfctl once per image, or pass --type file",
        ));
    }
    Ok(kind)
}

/// The job as the manager's `POST /oapi/v1/jobs` takes it; fields left to the manager's defaults
/// are left out.
fn body(args: &Args, kind: Kind, password: Option<String>) -> Value {
    let mut a = serde_json::Map::new();
    a.insert("type".into(), json!(if kind == Kind::Image { "image" } else { "file" }));
    match args.urls.as_slice() {
        [one] => a.insert("url".into(), json!(one.as_str())),
        many => a.insert("urls".into(), json!(many.iter().map(url::Url::as_str).collect::<Vec<_>>())),
    };
    a.insert("scope".into(), json!(args.scope.wire()));
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            a.insert(key.into(), v);
        }
    };
    put("count", args.count.map(Value::from));
    put("percentage", args.percentage.map(Value::from));
    put("ips", (!args.ips.is_empty()).then(|| json!(args.ips.iter().map(ToString::to_string).collect::<Vec<_>>())));
    put("platform", args.platform.clone().map(Value::from));
    let headers: BTreeMap<&str, &str> = args.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    put("headers", (!headers.is_empty()).then(|| json!(headers)));
    put("username", args.username.clone().map(Value::from));
    put("password", password.map(Value::from));
    put("concurrent_count", args.concurrent_count.map(Value::from));
    put("timeout", args.timeout.map(Value::from));
    put("tag", args.tag.clone().map(Value::from));
    put("application", args.application.clone().map(Value::from));
    put("filtered_query_params", (!args.filtered_query_params.is_empty()).then(|| json!(args.filtered_query_params)));
    put("piece_length", args.piece_length.map(Value::from));
    put("blob_digest_task_id", args.blob_digest_task_id.then_some(Value::Bool(true)));
    let clusters = (!args.clusters.is_empty()).then(|| json!(args.clusters));
    json!({"type": "preheat", "args": a, "scheduler_cluster_ids": clusters})
}

fn read_password() -> Result<String, Failure> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| Failure::usage(format!("reading the password: {e}")))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err(Failure::usage("--password-stdin read an empty password"));
    }
    Ok(password)
}

pub async fn run(args: Args) -> Result<(), Failure> {
    let kind = kind_of(&args)?;
    if !args.schedulers.is_empty() {
        return on_scheduler(&args, kind).await;
    }
    let manager = Manager::settle(args.manager.clone(), args.token.clone())?;
    let password = if args.password_stdin { Some(read_password()?) } else { None };
    let job = manager.create_job(&body(&args, kind, password)).await?;
    if !args.wait {
        return match args.output {
            Output::Json => print_json(&job),
            Output::Table => {
                println!("job {} {}", job.id, job.state);
                Ok(())
            }
        };
    }
    eprintln!("dfctl: job {} created; waiting for it (Ctrl-C stops waiting, not the job)", job.id);
    let job = wait(&manager, job.id).await?;
    let outcome = Outcome::of(&job);
    match args.output {
        Output::Json => print_json(&job)?,
        Output::Table => print!("{}", host_table(&outcome)),
    }
    if job.state == "SUCCESS" {
        eprintln!("dfctl: job {} SUCCESS: {}", job.id, outcome.summary());
        return Ok(());
    }
    let why = if outcome.errors.is_empty() { "no reason given".to_owned() } else { outcome.errors.join("; ") };
    eprintln!("dfctl: job {} {}: {why}", job.id, job.state);
    Err(Failure::Reported)
}

/// A preheat of files straight on a scheduler: always waited for, printed as a job's hosts are.
async fn on_scheduler(args: &Args, kind: Kind) -> Result<(), Failure> {
    if kind == Kind::Image {
        return Err(Failure::usage(
            "--scheduler preheats files only: an image's manifest is resolved to its blobs by the manager. \
             Preheat the image through the manager, or pass its blob URLs (…/v2/<repository>/blobs/<digest>) \
             with --type file",
        ));
    }
    let files = scheduler::TlsFiles { cert: args.cert.clone(), key: args.key.clone(), ca: args.ca.clone() };
    let credentials = scheduler::credentials(files)?;
    let ran = scheduler::run(&args.schedulers, &credentials, scheduler_preheat(args)?).await?;
    let outcome = Outcome::of_result(Some(&ran.result));
    let state = if ran.succeeded { "SUCCESS" } else { "FAILURE" };
    match args.output {
        Output::Json => {
            let text = serde_json::to_string_pretty(&json!({"state": state, "result": ran.result}))
                .map_err(|e| Failure::failed(e.to_string()))?;
            println!("{text}");
        }
        Output::Table => print!("{}", host_table(&outcome)),
    }
    if ran.succeeded {
        eprintln!("dfctl: preheat SUCCESS: {}", outcome.summary());
        return Ok(());
    }
    let why = if outcome.errors.is_empty() { "no reason given".to_owned() } else { outcome.errors.join("; ") };
    eprintln!("dfctl: preheat FAILURE: {why}");
    Err(Failure::Reported)
}

/// The scheduler's `Preheat` request for the files of `args`, and each task's URL by its id.
fn scheduler_preheat(args: &Args) -> Result<scheduler::Preheat, Failure> {
    use proto::scheduler::v1 as pb;
    let tag = args.tag.clone().unwrap_or_default();
    let application = args.application.clone().unwrap_or_default();
    let headers: std::collections::HashMap<String, String> = args.headers.iter().cloned().collect();
    let mut urls = BTreeMap::new();
    let mut tasks = Vec::with_capacity(args.urls.len());
    for url in &args.urls {
        let spec = common::task_id::TaskSpec {
            url: url.as_str(),
            tag: &tag,
            application: &application,
            piece_length: args.piece_length,
            filtered_query_params: &args.filtered_query_params,
            blob_digest: args.blob_digest_task_id,
        };
        let id = common::task_id::task_id(&spec).map_err(|e| Failure::usage(format!("{url}: {e}")))?;
        urls.insert(id.0.clone(), url.to_string());
        tasks.push(pb::TaskSpec {
            task_id: id.0,
            url: url.to_string(),
            request_headers: headers.clone(),
            piece_length: args.piece_length,
            tag: tag.clone(),
            application: application.clone(),
            filtered_query_params: args.filtered_query_params.clone(),
            blob_digest_task_id: args.blob_digest_task_id,
        });
    }
    let scope = match args.scope {
        Scope::SingleSeedPeer => pb::PreheatScope::SingleSeedPeer,
        Scope::AllSeedPeers => pb::PreheatScope::AllSeedPeers,
        Scope::AllPeers => pb::PreheatScope::AllPeers,
    };
    let request = pb::PreheatRequest {
        tasks,
        scope: scope.into(),
        ips: args.ips.iter().map(ToString::to_string).collect(),
        count: args.count,
        percentage: args.percentage,
        concurrent_count: args.concurrent_count.unwrap_or(0),
        timeout_secs: args.timeout.unwrap_or(0),
    };
    Ok(scheduler::Preheat { request, urls })
}

fn print_json(job: &Job) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(job).map_err(|e| Failure::failed(e.to_string()))?;
    println!("{text}");
    Ok(())
}

/// A bar of tasks done on stderr when it is a terminal; none otherwise (scripts, pipes).
pub(crate) fn progress_bar() -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {pos}/{len} tasks {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    })
}

/// Polls the job until it is `SUCCESS` or `FAILURE`, showing its progress on a terminal.
async fn wait(manager: &Manager, id: i64) -> Result<Job, Failure> {
    let bar = progress_bar();
    let mut missed = 0;
    loop {
        match manager.job(id).await {
            Ok(job) if job.state == "SUCCESS" || job.state == "FAILURE" => {
                if let Some(bar) = &bar {
                    bar.finish_and_clear();
                }
                return Ok(job);
            }
            Ok(job) => {
                missed = 0;
                if let Some(bar) = &bar {
                    let progress = Outcome::of(&job).progress;
                    bar.set_message(table::bytes(progress.bytes));
                    bar.set_length(progress.tasks);
                    bar.set_position(progress.finished);
                }
            }
            Err(Poll::Unreachable(e)) if missed < MISSED_POLLS => {
                missed += 1;
                if missed == 1
                    && let Failure::Failed(why) = &e
                {
                    eprintln!("dfctl: {why}; still trying");
                }
            }
            Err(Poll::Unreachable(e) | Poll::Refused(e)) => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                return Err(e);
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A preheat's `result` as the manager writes it:
/// `{"job_states": [{"state", "error", "results": [{"scheduler_cluster_id", "success_tasks",
/// "failure_tasks", "progress"}]}]}`. Read leniently: a missing part is empty.
#[derive(Debug, Default, Deserialize)]
struct PreheatResult {
    #[serde(default)]
    job_states: Vec<ClusterState>,
}

#[derive(Debug, Default, Deserialize)]
struct ClusterState {
    #[serde(default)]
    error: String,
    #[serde(default)]
    results: Vec<ClusterResult>,
}

#[derive(Debug, Default, Deserialize)]
struct ClusterResult {
    scheduler_cluster_id: Option<i64>,
    #[serde(default)]
    success_tasks: Vec<HostTask>,
    #[serde(default)]
    failure_tasks: Vec<HostTask>,
    #[serde(default)]
    progress: Progress,
}

#[derive(Debug, Default, Deserialize)]
struct HostTask {
    #[serde(default)]
    url: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    description: String,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
struct Progress {
    #[serde(default)]
    tasks: u64,
    #[serde(default)]
    finished: u64,
    #[serde(default)]
    bytes: u64,
}

/// One host's result for one URL.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct HostRow {
    cluster: Option<i64>,
    hostname: String,
    ip: String,
    url: String,
    succeeded: bool,
    error: String,
}

/// What a job's result says, summed over its clusters.
#[derive(Debug, Default)]
struct Outcome {
    hosts: Vec<HostRow>,
    progress: Progress,
    errors: Vec<String>,
}

impl Outcome {
    fn of(job: &Job) -> Self {
        Self::of_result(job.result.as_ref())
    }

    /// From a preheat's `result` (a manager job's, or dfctl's own tally of a scheduler's).
    fn of_result(result: Option<&Value>) -> Self {
        let result: PreheatResult = result.and_then(|r| serde_json::from_value(r.clone()).ok()).unwrap_or_default();
        let mut out = Self::default();
        for state in result.job_states {
            if !state.error.is_empty() {
                out.errors.push(state.error);
            }
            for r in state.results {
                out.progress.tasks += r.progress.tasks;
                out.progress.finished += r.progress.finished;
                out.progress.bytes += r.progress.bytes;
                let row = |t: HostTask, succeeded: bool| HostRow {
                    cluster: r.scheduler_cluster_id,
                    hostname: t.hostname,
                    ip: t.ip,
                    url: t.url,
                    succeeded,
                    error: t.description,
                };
                out.hosts.extend(r.success_tasks.into_iter().map(|t| row(t, true)));
                out.hosts.extend(r.failure_tasks.into_iter().map(|t| row(t, false)));
            }
        }
        out.hosts.sort();
        out
    }

    fn summary(&self) -> String {
        let ok = self.hosts.iter().filter(|h| h.succeeded).count();
        format!("{ok} of {} host tasks succeeded, {} warmed", self.hosts.len(), table::bytes(self.progress.bytes))
    }
}

fn host_table(outcome: &Outcome) -> String {
    let rows: Vec<Vec<String>> = outcome
        .hosts
        .iter()
        .map(|h| {
            vec![
                h.cluster.map_or_else(|| "-".into(), |c| c.to_string()),
                h.hostname.clone(),
                h.ip.clone(),
                h.url.clone(),
                if h.succeeded { "SUCCESS" } else { "FAILURE" }.into(),
                h.error.replace('\n', " "),
            ]
        })
        .collect();
    table::render(&["CLUSTER", "HOSTNAME", "IP", "URL", "STATE", "ERROR"], &rows)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(line: &[&str]) -> Args {
        Cli::try_parse_from(std::iter::once("preheat").chain(line.iter().copied())).unwrap().args
    }

    #[test]
    fn the_body_is_what_the_manager_takes() {
        let image = args(&["https://reg.example/v2/lib/app/manifests/1.0", "--platform", "linux/arm64"]);
        let kind = kind_of(&image).unwrap();
        assert_eq!(
            body(&image, kind, None),
            json!({"type": "preheat", "args": {"type": "image", "url": "https://reg.example/v2/lib/app/manifests/1.0",
                "scope": "single_seed_peer", "platform": "linux/arm64"}, "scheduler_cluster_ids": null})
        );
        let files = args(&[
            "http://o/a",
            "http://o/b",
            "--scope",
            "all_peers",
            "--ip",
            "10.0.0.1",
            "--ip",
            "::1",
            "-H",
            "X-A: 1",
            "--username",
            "u",
            "--cluster",
            "3",
            "--concurrent-count",
            "4",
            "--timeout",
            "60",
        ]);
        assert_eq!(kind_of(&files).unwrap(), Kind::File);
        assert_eq!(
            body(&files, Kind::File, Some("pw".into())),
            json!({"type": "preheat", "args": {"type": "file", "urls": ["http://o/a", "http://o/b"], "scope": "all_peers",
                "ips": ["10.0.0.1", "::1"], "headers": {"X-A": "1"}, "username": "u", "password": "pw",
                "concurrent_count": 4, "timeout": 60}, "scheduler_cluster_ids": [3]})
        );
        let counted = args(&["http://o/a", "--count", "2"]);
        assert_eq!(body(&counted, Kind::File, None)["args"]["count"], 2);
        // A manifest URL with a query, or a blob, is a file.
        assert_eq!(kind_of(&args(&["https://r/v2/a/manifests/1?x=1"])).unwrap(), Kind::File);
        assert_eq!(kind_of(&args(&["https://r/v2/a/blobs/sha256:00"])).unwrap(), Kind::File);
        let two_images = args(&["https://r/v2/a/manifests/1", "https://r/v2/b/manifests/1"]);
        assert!(matches!(kind_of(&two_images), Err(Failure::Usage(_))));
    }

    #[test]
    fn a_finished_job_reads_as_one_row_per_host_and_url() {
        let job: Job = serde_json::from_value(json!({"id": 7, "tenant_id": 1, "user_id": 1, "type": "preheat",
            "state": "FAILURE", "args": {}, "bio": "", "scheduler_cluster_ids": [1], "created_at": "", "updated_at": "",
            "result": {"job_states": [{"state": "FAILURE", "error": "http://o/x on b: origin answered 404",
                "results": [{"scheduler_cluster_id": 1,
                    "success_tasks": [{"url": "http://o/y", "hostname": "b", "ip": "10.0.0.2"}],
                    "failure_tasks": [{"url": "http://o/x", "hostname": "b", "ip": "10.0.0.2", "description": "origin answered 404"}],
                    "progress": {"tasks": 2, "finished": 2, "bytes": 2048}}]}]}}))
        .unwrap();
        let outcome = Outcome::of(&job);
        assert_eq!((outcome.progress.tasks, outcome.progress.finished, outcome.progress.bytes), (2, 2, 2048));
        assert_eq!(outcome.errors, ["http://o/x on b: origin answered 404"]);
        assert_eq!(
            host_table(&outcome),
            "CLUSTER  HOSTNAME  IP        URL         STATE    ERROR\n\
             1        b         10.0.0.2  http://o/x  FAILURE  origin answered 404\n\
             1        b         10.0.0.2  http://o/y  SUCCESS\n"
        );
    }
}
