//! The manager's Prometheus metrics, served at `/metrics`.

use std::time::Instant;

use axum::{
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, histogram::Histogram},
    registry::Registry,
};

/// Labels of a served request: the route template (never the raw path, which would let
/// clients mint unbounded label values), method and status.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    pub route: String,
    pub method: String,
    pub status: u16,
}

/// Labels of request latency.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    pub route: String,
    pub method: String,
}

/// Every metric the manager exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub latency: Family<RouteLabels, Histogram>,
    pub audit_failures: Counter,
    /// Silent components this manager's sweep marked inactive. With several replicas each row
    /// is counted by the one replica whose sweep changed it, so their sum is the whole.
    pub expired: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("damselfly_manager");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests served", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0])
        });
        registry.register("http_request_duration_seconds", "HTTP request latency", latency.clone());
        let audit_failures = Counter::default();
        registry.register("audit_write_failures", "Audit entries that could not be written", audit_failures.clone());
        let expired = Counter::default();
        registry.register(
            "expired_components",
            "Silent schedulers, seed peers and peers this manager marked inactive",
            expired.clone(),
        );
        Self { registry, requests, latency, audit_failures, expired }
    }
}

impl Metrics {
    /// The text exposition format.
    pub fn render(&self) -> Response {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response();
        }
        ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out).into_response()
    }
}

/// Middleware: counts and times every request by route template.
pub async fn track(State(metrics): State<std::sync::Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    metrics
        .latency
        .get_or_create(&RouteLabels { route: route.clone(), method: method.clone() })
        .observe(start.elapsed().as_secs_f64());
    metrics.requests.get_or_create(&RequestLabels { route, method, status: response.status().as_u16() }).inc();
    response
}
