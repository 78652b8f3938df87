//! Prometheus metrics of the scheduler, served on `GET /metrics` of its HTTP listener.

use std::sync::Arc;

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{Histogram, exponential_buckets},
    },
    registry::Registry,
};

common::snake_label!(ParentFailureReason { Unreachable => "unreachable", Corrupt => "corrupt", Missing => "missing" });

common::snake_label!(PeerResult { Succeeded => "succeeded", Failed => "failed" });
common::snake_label!(TaskCall { Stat => "stat", Delete => "delete" });

common::snake_label!(TrafficSource { BackToSource => "back_to_source", RemotePeer => "remote_peer", Inline => "inline" });

use crate::resource::{Hosts, Tasks};

/// Why a child reported a parent.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ParentFailureReason {
    Unreachable,
    Corrupt,
    Missing,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: ParentFailureReason,
}

/// How a peer's download ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PeerResult {
    Succeeded,
    Failed,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: PeerResult,
}

/// A call on one task from outside a download: the manager's jobs (`get_task`, `delete_task`)
/// and operators' tools.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum TaskCall {
    Stat,
    Delete,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub call: TaskCall,
}

/// Where the bytes of a finished piece came from.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum TrafficSource {
    BackToSource,
    RemotePeer,
    /// Tiny content the scheduler handed out in its own messages. Neither origin nor peer
    /// traffic, so it is left out of the manager's totals.
    Inline,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficLabels {
    pub source: TrafficSource,
}

/// The counters a scheduler reports to the manager, since its start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub back_to_source_bytes: u64,
    pub peer_bytes: u64,
    pub succeeded: u64,
    pub failed: u64,
}

/// Every metric of one scheduler.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    hosts_gauge: Gauge,
    tasks_gauge: Gauge,
    /// Downloads registered (`AnnouncePeer` streams).
    pub peers_registered: Counter,
    /// Peers told to fetch from the origin.
    pub back_to_source: Counter,
    /// Seed peers ordered to fetch a new task.
    pub seed_orders: Counter,
    /// Parents reported by children, by reason.
    pub parent_failures: Family<ReasonLabels, Counter>,
    /// Finished downloads, by result.
    pub peer_results: Family<ResultLabels, Counter>,
    /// Time to compute one peer's update (parents and digests), in seconds.
    pub schedule_duration: Histogram,
    /// Bytes of pieces peers reported new, by where they came from (each piece counted once
    /// per peer).
    pub traffic_bytes: Family<TrafficLabels, Counter>,
    /// Preheats under way.
    pub preheats_running: Gauge,
    /// Hosts' results for preheated tasks, by result (a host that left or the deadline count
    /// as failed).
    pub preheat_results: Family<ResultLabels, Counter>,
    /// `StatTask` and `DeleteTask` calls answered, by call.
    pub task_calls: Family<CallLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("damselfly_scheduler");
        let hosts_gauge = Gauge::default();
        let tasks_gauge = Gauge::default();
        let peers_registered = Counter::default();
        let back_to_source = Counter::default();
        let seed_orders = Counter::default();
        let parent_failures = Family::<ReasonLabels, Counter>::default();
        let peer_results = Family::<ResultLabels, Counter>::default();
        let schedule_duration = Histogram::new(exponential_buckets(0.000_01, 4.0, 10));
        let traffic_bytes = Family::<TrafficLabels, Counter>::default();
        let preheats_running = Gauge::default();
        let preheat_results = Family::<ResultLabels, Counter>::default();
        let task_calls = Family::<CallLabels, Counter>::default();
        registry.register("hosts", "Hosts known", hosts_gauge.clone());
        registry.register("tasks", "Tasks known", tasks_gauge.clone());
        registry.register("peers_registered", "Downloads registered", peers_registered.clone());
        registry.register("back_to_source", "Peers told to fetch from the origin", back_to_source.clone());
        registry.register("seed_orders", "Seed peers ordered to fetch a new task", seed_orders.clone());
        registry.register("parent_failures", "Parents reported by children, by reason", parent_failures.clone());
        registry.register("peer_results", "Finished downloads, by result", peer_results.clone());
        registry.register("schedule_duration_seconds", "Time to compute a peer's parents", schedule_duration.clone());
        registry.register("traffic_bytes", "Bytes of pieces peers fetched, by source", traffic_bytes.clone());
        registry.register("preheats_running", "Preheats under way", preheats_running.clone());
        registry.register("preheat_results", "Hosts' results for preheated tasks, by result", preheat_results.clone());
        registry.register("task_calls", "StatTask and DeleteTask calls answered, by call", task_calls.clone());
        Self {
            registry,
            hosts_gauge,
            tasks_gauge,
            peers_registered,
            back_to_source,
            seed_orders,
            parent_failures,
            peer_results,
            schedule_duration,
            traffic_bytes,
            preheats_running,
            preheat_results,
            task_calls,
        }
    }
}

impl Metrics {
    /// Counts bytes of newly finished pieces from `source`.
    pub fn traffic(&self, source: TrafficSource, bytes: u64) {
        if bytes > 0 {
            self.traffic_bytes.get_or_create(&TrafficLabels { source }).inc_by(bytes);
        }
    }

    /// The counters the manager's keepalive report carries.
    pub fn totals(&self) -> Totals {
        let traffic = |source| self.traffic_bytes.get_or_create(&TrafficLabels { source }).get();
        let results = |result| self.peer_results.get_or_create(&ResultLabels { result }).get();
        Totals {
            back_to_source_bytes: traffic(TrafficSource::BackToSource),
            peer_bytes: traffic(TrafficSource::RemotePeer),
            succeeded: results(PeerResult::Succeeded),
            failed: results(PeerResult::Failed),
        }
    }
    /// The text exposition format, with gauges read from the current state.
    pub fn render(&self, hosts: &Arc<Hosts>, tasks: &Arc<Tasks>) -> String {
        self.hosts_gauge.set(hosts.len() as i64);
        self.tasks_gauge.set(tasks.len() as i64);
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}
