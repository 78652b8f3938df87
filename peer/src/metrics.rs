//! Prometheus metrics of the dfdaemon, served on `GET /metrics` of its HTTP listener.
//!
//! Traffic is counted by where bytes came from, as Dragonfly's users know it: `back_to_source`
//! (the origin), `remote_peer` (parents) and `local_peer` (this host's cache), plus `inline`: tiny
//! content (at most 128 bytes) that came in the scheduler's own messages, which is neither origin
//! nor peer traffic.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

common::snake_label!(TrafficType {
    BackToSource => "back_to_source",
    RemotePeer => "remote_peer",
    LocalPeer => "local_peer",
    Inline => "inline",
});

common::snake_label!(Outcome { Success => "success", Failure => "failure" });

common::snake_label!(ConnectMode { Tunnel => "tunnel", Intercept => "intercept", Refused => "refused", Busy => "busy" });

common::snake_label!(PieceFailure { Unreachable => "unreachable", Corrupt => "corrupt", Missing => "missing" });

/// Where downloaded bytes came from.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum TrafficType {
    BackToSource,
    RemotePeer,
    LocalPeer,
    /// Tiny content handed over by the scheduler.
    Inline,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TrafficLabels {
    pub r#type: TrafficType,
}

/// How a download ended.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub result: Outcome,
}

/// Why a piece from a parent was rejected.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PieceFailure {
    Unreachable,
    Corrupt,
    Missing,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PieceFailureLabels {
    pub reason: PieceFailure,
}

/// What became of a `CONNECT` to the proxy.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum ConnectMode {
    /// Tunnelled untouched.
    Tunnel,
    /// Intercepted with the proxy's CA.
    Intercept,
    /// Refused: a bad target, the target policy, or an upstream that could not be reached.
    Refused,
    /// Refused: `proxy.connect.max_connections` were open.
    Busy,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectLabels {
    pub mode: ConnectMode,
}

/// Every metric of one dfdaemon.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Bytes received, by source.
    pub download_traffic: Family<TrafficLabels, Counter>,
    /// Bytes served to other peers.
    pub upload_traffic: Counter,
    /// Downloads requested through the local API, by outcome.
    pub downloads: Family<OutcomeLabels, Counter>,
    /// Pieces from parents that could not be used, by reason.
    pub piece_failures: Family<PieceFailureLabels, Counter>,
    /// `CONNECT`s to the proxy, by what became of them.
    pub proxy_connects: Family<ConnectLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("damselfly_dfdaemon");
        let download_traffic = Family::<TrafficLabels, Counter>::default();
        let upload_traffic = Counter::default();
        let downloads = Family::<OutcomeLabels, Counter>::default();
        let piece_failures = Family::<PieceFailureLabels, Counter>::default();
        registry.register("download_traffic_bytes", "Bytes downloaded, by source", download_traffic.clone());
        registry.register("upload_traffic_bytes", "Bytes uploaded to other peers", upload_traffic.clone());
        registry.register("downloads", "Downloads through the local API, by result", downloads.clone());
        registry.register(
            "piece_failures",
            "Pieces from parents that were rejected, by reason",
            piece_failures.clone(),
        );
        let proxy_connects = Family::<ConnectLabels, Counter>::default();
        registry.register(
            "proxy_connects",
            "CONNECT requests to the proxy, by what became of them",
            proxy_connects.clone(),
        );
        Self { registry, download_traffic, upload_traffic, downloads, piece_failures, proxy_connects }
    }
}

impl Metrics {
    /// Counts `bytes` received from `source`.
    pub fn downloaded(&self, source: TrafficType, bytes: u64) {
        self.download_traffic.get_or_create(&TrafficLabels { r#type: source }).inc_by(bytes);
    }

    /// Bytes received from `source` so far.
    pub fn downloaded_total(&self, source: TrafficType) -> u64 {
        self.download_traffic.get_or_create(&TrafficLabels { r#type: source }).get()
    }

    /// Counts a `CONNECT` that became `mode`.
    pub fn connect(&self, mode: ConnectMode) {
        self.proxy_connects.get_or_create(&ConnectLabels { mode }).inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "encoding metrics failed");
        }
        out
    }
}
