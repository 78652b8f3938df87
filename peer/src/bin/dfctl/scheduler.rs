//! `dfctl preheat --scheduler`: a preheat asked of a scheduler directly, for a site that runs no
//! manager. dfctl shows the scheduler an operator's certificate (`damselfly cert --component
//! operator`), follows the per-host results it streams while it works, and tallies them in the
//! shape a manager writes into a preheat job's `result`, so both paths print alike.
//!
//! The stream is the preheat: when dfctl stops (Ctrl-C), the scheduler cancels what the hosts
//! have not started. Several `--scheduler`s are tried in turn until one takes the preheat (any
//! scheduler of the cluster reaches every host: hosts announce themselves to all of them).
//! Files only: an image's manifest is resolved to its blobs by the manager.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    time::Duration,
};

use common::tls::{Credentials, Expect};
use proto::scheduler::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Failure, preheat::progress_bar};

/// How long connecting to one scheduler may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The operator's certificate, key and CA (PEM files): the flags', else `dfctl.toml`'s
/// `[scheduler]` section.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

impl TlsFiles {
    fn is_empty(&self) -> bool {
        self.cert.is_none() && self.key.is_none() && self.ca.is_none()
    }
}

/// The credentials to present: all three files from the flags, else from `dfctl.toml`.
pub fn credentials(flags: TlsFiles) -> Result<Credentials, Failure> {
    let (files, from) = if flags.is_empty() {
        let path = crate::manager::config_path();
        let file = crate::manager::read_config(path.clone())?;
        let shown = path.map_or_else(|| "dfctl.toml".to_owned(), |p| p.display().to_string());
        (file.scheduler, format!("[scheduler] in {shown}"))
    } else {
        (flags, "--cert, --key and --ca".to_owned())
    };
    let (Some(cert), Some(key), Some(ca)) = (&files.cert, &files.key, &files.ca) else {
        return Err(Failure::usage(if files.is_empty() {
            "a scheduler takes a preheat only over mutual TLS: pass --cert, --key and --ca, or set cert, key and \
             ca under [scheduler] in dfctl.toml (issue them with damselfly cert --component operator)"
                .to_owned()
        } else {
            format!("{from}: cert, key and ca go together")
        }));
    };
    let read =
        |p: &Path| std::fs::read_to_string(p).map_err(|e| Failure::usage(format!("cannot read {}: {e}", p.display())));
    Credentials::from_pem(&read(cert)?, &read(key)?, &read(ca)?).map_err(|e| Failure::usage(format!("{from}: {e}")))
}

/// What is asked of the scheduler, with each task's URL by its id (the results name ids).
#[derive(Debug)]
pub struct Preheat {
    pub request: pb::PreheatRequest,
    pub urls: BTreeMap<String, String>,
}

/// Where the preheat ran and how it went, in the manager's job result shape.
#[derive(Debug)]
pub struct Ran {
    /// `{"job_states": [...]}`, one state for the scheduler's cluster.
    pub result: Value,
    /// Whether every host task succeeded.
    pub succeeded: bool,
}

/// Runs `preheat` on the first of `addrs` that takes it, until its last result.
pub async fn run(addrs: &[String], credentials: &Credentials, preheat: Preheat) -> Result<Ran, Failure> {
    let cluster = credentials.identity.cluster_id;
    // A manager's certificate (cluster 0) speaks to every cluster's schedulers.
    let expect = Expect::scheduler((cluster > 0).then_some(cluster));
    let tls = credentials.client_config(expect).map_err(|e| Failure::usage(format!("the certificate: {e}")))?;
    let mut refusals = Vec::new();
    for addr in addrs {
        let channel = common::tls::channel(addr, tls.clone(), CONNECT_TIMEOUT)
            .map_err(|e| Failure::usage(format!("--scheduler {addr:?}: {e}")))?;
        let mut client = pb::scheduler_client::SchedulerClient::new(channel);
        match client.preheat(preheat.request.clone()).await {
            Ok(stream) => return Ok(follow(addr, cluster, stream.into_inner(), &preheat).await),
            Err(status) => refusals.push(format!("scheduler {addr}: {}", why(&status))),
        }
    }
    Err(Failure::Failed(refusals.join("; ")))
}

/// A refusal or transport error in words a user can act on.
fn why(status: &tonic::Status) -> String {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown => {
            let cause = std::error::Error::source(status).map(crate::root_cause);
            cause.unwrap_or_else(|| status.message().to_owned())
        }
        _ => status.message().to_owned(),
    }
}

/// One host picked by the scheduler.
#[derive(Debug)]
struct Host {
    hostname: String,
    ip: String,
}

/// Reads the stream to its end, showing progress on a terminal.
async fn follow(addr: &str, cluster: i64, mut stream: tonic::Streaming<pb::PreheatEvent>, preheat: &Preheat) -> Ran {
    let bar = progress_bar();
    let mut hosts: BTreeMap<String, Host> = BTreeMap::new();
    let mut results: HashMap<(String, String), Result<u64, String>> = HashMap::new();
    let mut broken = None;
    let mut bytes = 0u64;
    loop {
        match stream.message().await {
            Ok(Some(pb::PreheatEvent { event: Some(pb::preheat_event::Event::Hosts(picked)) })) => {
                for h in picked.hosts {
                    hosts.insert(h.host_id, Host { hostname: h.hostname, ip: h.ip });
                }
                if let Some(bar) = &bar {
                    bar.set_length((hosts.len() * preheat.urls.len()) as u64);
                }
            }
            Ok(Some(pb::PreheatEvent { event: Some(pb::preheat_event::Event::Result(r)) })) => {
                let outcome = if r.success {
                    bytes += r.content_length;
                    Ok(r.content_length)
                } else {
                    Err(r.description)
                };
                results.insert((r.host_id, r.task_id), outcome);
                if let Some(bar) = &bar {
                    bar.set_position(results.len() as u64);
                    bar.set_message(crate::table::bytes(bytes));
                }
            }
            Ok(Some(pb::PreheatEvent { event: None })) => {
                broken = Some(format!("scheduler {addr} sent an empty preheat event"));
                break;
            }
            Ok(None) => break,
            Err(status) => {
                broken = Some(format!("scheduler {addr}: the preheat stream broke: {}", why(&status)));
                break;
            }
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    tally(cluster, &hosts, &results, broken, &preheat.urls)
}

/// The manager's shape of a finished preheat on one cluster: every host × URL a success or a
/// failure with its reason; a result the scheduler never sent is a failure too.
fn tally(
    cluster: i64,
    hosts: &BTreeMap<String, Host>,
    results: &HashMap<(String, String), Result<u64, String>>,
    broken: Option<String>,
    urls: &BTreeMap<String, String>,
) -> Ran {
    let mut success = Vec::new();
    let mut failure = Vec::new();
    let mut errors: Vec<String> = broken.iter().cloned().collect();
    let mut bytes = 0u64;
    for (host_id, host) in hosts {
        for (task_id, url) in urls {
            let entry = json!({"url": url, "task_id": task_id, "hostname": host.hostname, "ip": host.ip,
                "host_id": host_id});
            match results.get(&(host_id.clone(), task_id.clone())) {
                Some(Ok(len)) => {
                    bytes += len;
                    success.push(entry);
                }
                outcome => {
                    let why = match outcome {
                        Some(Err(why)) => why.as_str(),
                        _ => broken.as_deref().unwrap_or("no result from the host"),
                    };
                    errors.push(format!("{url} on {}: {why}", host.hostname));
                    let mut entry = entry;
                    entry["description"] = json!(why);
                    failure.push(entry);
                }
            }
        }
    }
    let succeeded = errors.is_empty();
    errors.dedup();
    errors.truncate(20);
    let result = json!({"job_states": [{
        "state": if succeeded { "SUCCESS" } else { "FAILURE" },
        "error": errors.join("; "),
        "results": [{
            "scheduler_cluster_id": cluster,
            "success_tasks": success,
            "failure_tasks": failure,
            "progress": {"tasks": hosts.len() * urls.len(), "finished": results.len(), "bytes": bytes},
        }],
    }]});
    Ran { result, succeeded }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_host_and_url_is_a_success_or_a_failure_with_its_reason() {
        let hosts: BTreeMap<String, Host> = [
            ("a-10.0.0.1".to_owned(), Host { hostname: "a".into(), ip: "10.0.0.1".into() }),
            ("b-10.0.0.2".to_owned(), Host { hostname: "b".into(), ip: "10.0.0.2".into() }),
        ]
        .into();
        let urls: BTreeMap<String, String> = [("t1".to_owned(), "http://o/1".to_owned())].into();
        let results: HashMap<_, _> = [(("a-10.0.0.1".to_owned(), "t1".to_owned()), Ok(10))].into();
        let ran = tally(4, &hosts, &results, None, &urls);
        assert!(!ran.succeeded);
        let state = &ran.result["job_states"][0];
        assert_eq!(state["state"], "FAILURE");
        assert_eq!(state["error"], "http://o/1 on b: no result from the host");
        let r = &state["results"][0];
        assert_eq!(r["scheduler_cluster_id"], 4);
        assert_eq!(r["success_tasks"][0]["hostname"], "a");
        assert_eq!(r["failure_tasks"][0]["description"], "no result from the host");
        assert_eq!(r["progress"], json!({"tasks": 2, "finished": 1, "bytes": 10}));

        let results: HashMap<_, _> = [
            (("a-10.0.0.1".to_owned(), "t1".to_owned()), Ok(10)),
            (("b-10.0.0.2".to_owned(), "t1".to_owned()), Err("origin answered 404".to_owned())),
        ]
        .into();
        let ran = tally(4, &hosts, &results, Some("the stream broke".into()), &urls);
        assert_eq!(ran.result["job_states"][0]["error"], "the stream broke; http://o/1 on b: origin answered 404");

        let all: HashMap<_, _> = [
            (("a-10.0.0.1".to_owned(), "t1".to_owned()), Ok(10)),
            (("b-10.0.0.2".to_owned(), "t1".to_owned()), Ok(10)),
        ]
        .into();
        let ran = tally(4, &hosts, &all, None, &urls);
        assert!(ran.succeeded);
        assert_eq!(ran.result["job_states"][0]["state"], "SUCCESS");
    }
}
