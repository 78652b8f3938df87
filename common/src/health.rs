//! The health report every component answers on its `/healthy` endpoint.
//!
//! One shape for all services, so the launcher, the console and operators' probes read them the
//! same way.

use serde::{Deserialize, Serialize};

/// Which component produced a [`HealthReport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The control plane: REST API, console, registration.
    Manager,
    /// The per-cluster tracker that picks parents.
    Scheduler,
    /// The peer daemon (normal or seed mode).
    Dfdaemon,
}

impl Component {
    /// The name used in logs and URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Component::Manager => "manager",
            Component::Scheduler => "scheduler",
            Component::Dfdaemon => "dfdaemon",
        }
    }
}

/// Whether a component can do its job right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Serving normally.
    Ok,
    /// Up, but a dependency it needs is unreachable (for example the database).
    Degraded,
}

/// Body of `GET /healthy` on every component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Which component answered.
    pub component: Component,
    /// Its version (`common::VERSION` of the build).
    pub version: String,
    /// Whether it is fully able to serve.
    pub status: HealthStatus,
    /// Seconds since the process started serving.
    pub uptime_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_report_wire_shape_is_stable() {
        let report = HealthReport {
            component: Component::Scheduler,
            version: "1.2.3".into(),
            status: HealthStatus::Degraded,
            uptime_secs: 7,
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"component": "scheduler", "version": "1.2.3", "status": "degraded", "uptime_secs": 7})
        );
        let back: HealthReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
    }
}
