//! `Preheat` and `ReportPreheat`: the manager asks for tasks to be warmed on hosts of this
//! cluster; the scheduler picks the hosts ([`preheat_targets`]), hands each host its tasks over
//! its order stream a few at a time (`concurrent_count` in flight per host), and streams back
//! each host's result per task as the host reports it.
//!
//! A preheat always ends: a host that leaves, or whose order stream closes, fails what it still
//! owes; the deadline fails what is left; the manager closing the stream cancels it. Hosts drop
//! what they have not started when told to cancel.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::IpAddr,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime},
};

use common::ids::{HostId, TaskId};
use proto::scheduler::v1 as pb;
use tokio::sync::mpsc;
use tonic::{Response, Status};

use super::{BoxStream, SchedulerService};
use crate::{
    resource::{Delivery, Host, HostOrder, PreheatOutcome, PreheatResult, SeedOrder},
    scheduling::preheat_targets::{self, Narrowing, Scope},
};

/// Most tasks one preheat may carry (an image's blobs, a file preheat's URLs).
pub const MAX_TASKS: usize = 10_000;
/// Most request headers per task, and the longest name plus value.
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Most filtered query parameters per task.
const MAX_FILTERED: usize = 64;
/// Tasks in flight per host when the request says 0 (Dragonfly's default), and the most allowed.
pub const DEFAULT_CONCURRENCY: u32 = 8;
const MAX_CONCURRENCY: u32 = 64;
/// The deadline when the request says 0, and the longest allowed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// Longest failure reason a host may report.
pub const MAX_DESCRIPTION: usize = 4096;
/// How often the driver checks that its hosts are still there.
const LOOK_AROUND: Duration = Duration::from_secs(1);
/// How long a cancellation waits for room in a busy host's order queue.
const CANCEL_PATIENCE: Duration = Duration::from_secs(30);

/// A validated preheat request.
#[derive(Debug)]
struct Plan {
    tasks: Vec<SeedOrder>,
    scope: Scope,
    narrowing: Narrowing,
    concurrency: u32,
    timeout: Duration,
}

fn plan(req: pb::PreheatRequest) -> Result<Plan, Status> {
    if req.tasks.is_empty() || req.tasks.len() > MAX_TASKS {
        return Err(Status::invalid_argument(format!("a preheat carries 1 to {MAX_TASKS} tasks")));
    }
    let mut seen = HashSet::new();
    let mut tasks = Vec::with_capacity(req.tasks.len());
    for (i, spec) in req.tasks.into_iter().enumerate() {
        let order = task(spec).map_err(|e| Status::invalid_argument(format!("tasks[{i}]: {e}")))?;
        if seen.insert(order.task_id.clone()) {
            tasks.push(order);
        }
    }
    let scope = match pb::PreheatScope::try_from(req.scope) {
        Ok(pb::PreheatScope::SingleSeedPeer) => Scope::SingleSeedPeer,
        Ok(pb::PreheatScope::AllSeedPeers) => Scope::AllSeedPeers,
        Ok(pb::PreheatScope::AllPeers) => Scope::AllPeers,
        Err(_) => return Err(Status::invalid_argument(format!("scope {} is not known", req.scope))),
    };
    let narrowing = if !req.ips.is_empty() {
        if req.ips.len() > 10_000 {
            return Err(Status::invalid_argument("at most 10000 ips"));
        }
        let ips = req
            .ips
            .iter()
            .map(|ip| {
                ip.parse::<IpAddr>().map_err(|_| Status::invalid_argument(format!("ips: {ip:?} is not an IP address")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Narrowing::Ips(ips)
    } else if let Some(count) = req.count {
        if count == 0 {
            return Err(Status::invalid_argument("count must be at least 1"));
        }
        Narrowing::Count(count)
    } else if let Some(p) = req.percentage {
        if !(1..=100).contains(&p) {
            return Err(Status::invalid_argument(format!("percentage must be 1-100, not {p}")));
        }
        Narrowing::Percentage(p)
    } else {
        Narrowing::None
    };
    let concurrency = match req.concurrent_count {
        0 => DEFAULT_CONCURRENCY,
        n => n.min(MAX_CONCURRENCY),
    };
    let timeout = match req.timeout_secs {
        0 => DEFAULT_TIMEOUT,
        s => Duration::from_secs(s).min(MAX_TIMEOUT),
    };
    Ok(Plan { tasks, scope, narrowing, concurrency, timeout })
}

/// One task of the request, its id derived again from its spec.
fn task(spec: pb::TaskSpec) -> Result<SeedOrder, String> {
    let url = url::Url::parse(&spec.url).map_err(|e| format!("url: {e}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err("url must be http or https".into());
    }
    if spec.request_headers.len() > MAX_HEADERS
        || spec.request_headers.iter().any(|(k, v)| k.len() + v.len() > MAX_HEADER_BYTES)
    {
        return Err(format!("at most {MAX_HEADERS} headers of {MAX_HEADER_BYTES} bytes each"));
    }
    if spec.filtered_query_params.len() > MAX_FILTERED {
        return Err(format!("at most {MAX_FILTERED} filtered query parameters"));
    }
    let derived = super::spec_task_id(&spec).map_err(|e| e.to_string())?;
    if !spec.task_id.is_empty() && spec.task_id != derived.0 {
        return Err("task_id is not the id of its URL and shape".into());
    }
    let mut headers: Vec<(String, String)> = spec.request_headers.into_iter().collect();
    headers.sort();
    Ok(SeedOrder {
        task_id: derived.0,
        url: spec.url,
        headers,
        piece_length: spec.piece_length,
        tag: spec.tag,
        application: spec.application,
        filtered_query_params: spec.filtered_query_params,
        blob_digest: spec.blob_digest_task_id,
    })
}

/// A preheat id no earlier run of this scheduler handed out.
fn new_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let started = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{started:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

pub fn start(svc: &SchedulerService, req: pb::PreheatRequest) -> Result<Response<BoxStream<pb::PreheatEvent>>, Status> {
    let plan = plan(req)?;
    let connected: Vec<Host> = svc.hosts.all().into_iter().filter(|h| svc.orders.is_connected(&h.id)).collect();
    let key = plan.tasks[0].task_id.clone();
    let hosts = preheat_targets::choose(connected, plan.scope, &plan.narrowing, &key)
        .map_err(|e| Status::failed_precondition(e.to_string()))?;
    let id = new_id();
    tracing::info!(preheat_id = %id, tasks = plan.tasks.len(), hosts = hosts.len(), "preheat started");
    let results = svc.preheats.begin(&id);
    let (events, rx) = mpsc::channel(256);
    let picked = pb::PreheatEvent {
        event: Some(pb::preheat_event::Event::Hosts(pb::PreheatHosts {
            hosts: hosts
                .iter()
                .map(|h| pb::PreheatHost { host_id: h.id.0.clone(), hostname: h.hostname.clone(), ip: h.ip.clone() })
                .collect(),
        })),
    };
    // The first event fits: the channel is new.
    let _ = events.try_send(Ok(picked));
    let driver = Driver::new(svc.clone(), id, &hosts, plan, events);
    tokio::spawn(driver.run(results));
    Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
}

/// One host's share of a preheat.
#[derive(Default)]
struct Work {
    waiting: VecDeque<usize>,
    in_flight: HashSet<TaskId>,
}

/// Runs one preheat to its end.
struct Driver {
    svc: SchedulerService,
    id: String,
    tasks: Vec<SeedOrder>,
    concurrency: u32,
    timeout: Duration,
    work: HashMap<HostId, Work>,
    events: mpsc::Sender<Result<pb::PreheatEvent, Status>>,
}

impl Driver {
    fn new(
        svc: SchedulerService,
        id: String,
        hosts: &[Host],
        plan: Plan,
        events: mpsc::Sender<Result<pb::PreheatEvent, Status>>,
    ) -> Self {
        let work = hosts
            .iter()
            .map(|h| (h.id.clone(), Work { waiting: (0..plan.tasks.len()).collect(), in_flight: HashSet::new() }))
            .collect();
        Self { svc, id, tasks: plan.tasks, concurrency: plan.concurrency, timeout: plan.timeout, work, events }
    }

    async fn run(mut self, mut results: mpsc::UnboundedReceiver<PreheatResult>) {
        self.svc.metrics.preheats_running.inc();
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let mut look = tokio::time::interval(LOOK_AROUND);
        let hosts: Vec<HostId> = self.work.keys().cloned().collect();
        let mut failed = Vec::new();
        for host in &hosts {
            failed.extend(self.dispatch(host));
        }
        let mut cancelled = !self.emit_all(failed).await;
        while !cancelled && self.work.values().any(|w| !w.waiting.is_empty() || !w.in_flight.is_empty()) {
            tokio::select! {
                Some(result) = results.recv() => {
                    let host = result.host_id.clone();
                    if let Some(w) = self.work.get_mut(&host) {
                        w.in_flight.remove(&result.task_id);
                    }
                    let mut out = vec![result];
                    out.extend(self.dispatch(&host));
                    cancelled = !self.emit_all(out).await;
                }
                _ = look.tick() => {
                    let mut out = Vec::new();
                    for host in &hosts {
                        match self.lost(host) {
                            Some(why) => out.extend(self.fail_host(host, &why)),
                            None => out.extend(self.dispatch(host)),
                        }
                    }
                    cancelled = !self.emit_all(out).await;
                }
                () = &mut deadline => {
                    let why = format!("timed out after {} s", self.timeout.as_secs());
                    let out: Vec<PreheatResult> = hosts.iter().flat_map(|h| self.fail_host(h, &why)).collect();
                    self.cancel_on(&hosts);
                    self.emit_all(out).await;
                }
                () = self.events.closed() => cancelled = true,
                () = self.svc.shutdown.cancelled() => {
                    let why = "the scheduler is shutting down";
                    let out: Vec<PreheatResult> = hosts.iter().flat_map(|h| self.fail_host(h, why)).collect();
                    self.cancel_on(&hosts);
                    self.emit_all(out).await;
                }
            }
        }
        if cancelled {
            tracing::info!(preheat_id = %self.id, "preheat cancelled: its caller went away");
            self.cancel_on(&hosts);
        } else {
            tracing::info!(preheat_id = %self.id, "preheat finished");
        }
        self.svc.preheats.end(&self.id);
        self.svc.metrics.preheats_running.dec();
    }

    /// Why `host` will not report any more, if it will not.
    fn lost(&self, host: &HostId) -> Option<String> {
        let w = self.work.get(host)?;
        if w.waiting.is_empty() && w.in_flight.is_empty() {
            return None;
        }
        if self.svc.hosts.get(host).is_none() {
            Some("the host left the cluster".into())
        } else if !self.svc.orders.is_connected(host) {
            Some("the host's order stream closed".into())
        } else {
            None
        }
    }

    /// Orders `host` tasks until `concurrency` are in flight or its order queue is full (the
    /// rest wait for a result or the next look); answers the tasks of a host whose stream has
    /// closed as failed.
    fn dispatch(&mut self, host: &HostId) -> Vec<PreheatResult> {
        let Some(w) = self.work.get_mut(host) else { return vec![] };
        while w.in_flight.len() < self.concurrency as usize {
            let Some(i) = w.waiting.pop_front() else { break };
            let task = self.tasks[i].clone();
            let task_id = TaskId(task.task_id.clone());
            self.svc.preheats.owe(&self.id, host, &task_id);
            let order = HostOrder::Preheat { preheat_id: self.id.clone(), task, concurrent_count: self.concurrency };
            match self.svc.orders.offer(host, order) {
                Delivery::Queued => {
                    w.in_flight.insert(task_id);
                }
                Delivery::Full => {
                    // Behind (other preheats, a slow reader): the task waits for the next look.
                    self.svc.preheats.forgive(&self.id, host, &task_id);
                    w.waiting.push_front(i);
                    break;
                }
                Delivery::Gone => {
                    self.svc.preheats.forgive(&self.id, host, &task_id);
                    w.waiting.push_front(i);
                    return self.fail_host(host, "the host's order stream closed");
                }
            }
        }
        vec![]
    }

    /// Fails everything `host` still owes or waits for.
    fn fail_host(&mut self, host: &HostId, why: &str) -> Vec<PreheatResult> {
        let Some(w) = self.work.get_mut(host) else { return vec![] };
        let mut out = Vec::new();
        for task in w.in_flight.drain() {
            self.svc.preheats.forgive(&self.id, host, &task);
            out.push(task);
        }
        out.extend(w.waiting.drain(..).map(|i| TaskId(self.tasks[i].task_id.clone())));
        if !out.is_empty() {
            tracing::warn!(preheat_id = %self.id, host_id = %host, tasks = out.len(), why, "preheat failed on a host");
        }
        out.into_iter()
            .map(|task_id| PreheatResult {
                host_id: host.clone(),
                task_id,
                outcome: PreheatOutcome::Failed(why.to_owned()),
            })
            .collect()
    }

    /// Tells `hosts` to drop what they have not started of this preheat. A host whose order
    /// queue is full is told once it has room (for up to [`CANCEL_PATIENCE`]), so it does not
    /// spend the time on tasks nobody waits for.
    fn cancel_on(&self, hosts: &[HostId]) {
        for host in hosts {
            let order = || HostOrder::CancelPreheat(self.id.clone());
            if self.svc.orders.offer(host, order()) != Delivery::Full {
                continue;
            }
            let (orders, host, order) = (self.svc.orders.clone(), host.clone(), order());
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + CANCEL_PATIENCE;
                while tokio::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if orders.offer(&host, order.clone()) != Delivery::Full {
                        return;
                    }
                }
            });
        }
    }

    /// Streams `results` to the caller; false once the caller has gone.
    async fn emit_all(&self, results: Vec<PreheatResult>) -> bool {
        for r in results {
            let result = if matches!(r.outcome, PreheatOutcome::Cached { .. }) {
                crate::metrics::PeerResult::Succeeded
            } else {
                crate::metrics::PeerResult::Failed
            };
            self.svc.metrics.preheat_results.get_or_create(&crate::metrics::ResultLabels { result }).inc();
            let (success, description, content_length) = match r.outcome {
                PreheatOutcome::Cached { content_length } => (true, String::new(), content_length),
                PreheatOutcome::Failed(why) => (false, why, 0),
            };
            let event = pb::PreheatEvent {
                event: Some(pb::preheat_event::Event::Result(pb::PreheatResult {
                    host_id: r.host_id.0,
                    task_id: r.task_id.0,
                    success,
                    description,
                    content_length,
                })),
            };
            if self.events.send(Ok(event)).await.is_err() {
                return false;
            }
        }
        true
    }
}

/// `ReportPreheat`: the calling host's result for one task it was ordered.
pub fn report(svc: &SchedulerService, caller: &common::tls::Caller, req: pb::PreheatReport) -> Result<(), Status> {
    let host = HostId::parse(&req.host_id).map_err(|e| Status::invalid_argument(format!("host_id: {e}")))?;
    svc.daemon_of(caller, &host, super::DAEMONS)?;
    let task = TaskId::parse(&req.task_id).map_err(|e| Status::invalid_argument(format!("task_id: {e}")))?;
    if req.preheat_id.is_empty() || req.preheat_id.len() > 64 {
        return Err(Status::invalid_argument("preheat_id must be 1 to 64 bytes"));
    }
    if req.description.len() > MAX_DESCRIPTION {
        return Err(Status::invalid_argument(format!("description is over {MAX_DESCRIPTION} bytes")));
    }
    let outcome = if req.success {
        PreheatOutcome::Cached { content_length: req.content_length }
    } else {
        PreheatOutcome::Failed(if req.description.is_empty() {
            "the host gave no reason".into()
        } else {
            req.description
        })
    };
    svc.preheats
        .report(&req.preheat_id, PreheatResult { host_id: host, task_id: task, outcome })
        .map_err(|e| Status::failed_precondition(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn spec(url: &str) -> pb::TaskSpec {
        pb::TaskSpec { url: url.into(), ..Default::default() }
    }

    #[test]
    fn a_plan_derives_every_task_id_and_refuses_what_is_out_of_bounds() {
        let mut req = pb::PreheatRequest {
            tasks: vec![spec("http://o/a"), spec("http://o/a"), spec("http://o/b")],
            ..Default::default()
        };
        let p = plan(req.clone()).unwrap();
        assert_eq!(p.tasks.len(), 2, "the same task twice is one task");
        assert_eq!((p.scope, p.concurrency, p.timeout), (Scope::SingleSeedPeer, DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT));
        req.tasks[0].task_id = "0".repeat(64);
        assert!(plan(req.clone()).unwrap_err().message().contains("tasks[0]"));
        req.tasks[0].task_id.clear();
        req.tasks[1].url = "file:///etc/passwd".into();
        assert!(plan(req.clone()).unwrap_err().message().contains("tasks[1]: url must be http"));
        req.tasks[1].url = "http://o/a".into();
        req.tasks[2].request_headers = (0..65).map(|i| (format!("h{i}"), String::new())).collect::<HashMap<_, _>>();
        assert!(plan(req.clone()).is_err());
        req.tasks[2].request_headers.clear();
        assert!(plan(pb::PreheatRequest { tasks: vec![], ..Default::default() }).is_err());
        for bad in [
            pb::PreheatRequest { scope: 9, ..req.clone() },
            pb::PreheatRequest { count: Some(0), ..req.clone() },
            pb::PreheatRequest { percentage: Some(101), ..req.clone() },
            pb::PreheatRequest { ips: vec!["not-an-ip".into()], ..req.clone() },
        ] {
            assert_eq!(plan(bad).unwrap_err().code(), tonic::Code::InvalidArgument);
        }
        let narrowed =
            plan(pb::PreheatRequest { ips: vec!["10.0.0.1".into()], count: Some(2), ..req.clone() }).unwrap();
        assert_eq!(narrowed.narrowing, Narrowing::Ips(vec!["10.0.0.1".parse().unwrap()]), "ips come first");
        let capped = plan(pb::PreheatRequest { concurrent_count: 1000, timeout_secs: u64::MAX, ..req }).unwrap();
        assert_eq!((capped.concurrency, capped.timeout), (MAX_CONCURRENCY, MAX_TIMEOUT));
    }
}
