//! What every request handler shares: the database, the policy, sessions and the manager's
//! settings. It lives apart from [`crate::api`] so the middleware ([`crate::auth`],
//! [`crate::audit`]) and the console's mount depend on it and on no handler module.

use std::{sync::Arc, time::Instant};

use sea_orm::DatabaseConnection;

use crate::{
    auth::{self, Principal, Sessions},
    metrics::Metrics,
    rbac::Rbac,
    service::Ctx,
};

/// What handlers share.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// When the manager started serving, for uptime.
    pub started: Instant,
    /// The authorization policy.
    pub rbac: Rbac,
    /// Sign-in sessions and their tokens.
    pub sessions: Sessions,
    /// OAuth2 / OIDC providers for `/api/v1/users/signin/{name}`.
    pub oauth: Arc<auth::OAuth>,
    /// Whether `POST /api/v1/users/signup` is open.
    pub allow_signup: bool,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Sign-in attempts per name and address, and hashes at a time.
    pub sign_in_throttle: Arc<crate::service::throttle::SignInThrottle>,
    /// Per-cluster job admission.
    pub job_limiter: Arc<crate::service::jobs::JobRateLimiter>,
    /// Redis transport of the job queue, when configured.
    pub job_queue: Option<crate::service::job_queue::RedisQueue>,
    /// A scheduler silent for longer is not asked (`[grpc] keepalive_timeout_secs`).
    pub keepalive_timeout: std::time::Duration,
    /// How often schedulers' figures are kept (`[grpc] sample_interval_secs`).
    pub sample_interval: std::time::Duration,
    /// The cluster's CA; `None` when gRPC runs without TLS.
    pub pki: Option<Arc<crate::pki::Pki>>,
    /// How the manager calls schedulers.
    pub dialer: crate::service::scheduler_rpc::Dialer,
}

impl ApiState {
    /// The context a service operation runs in, for the caller `me`.
    pub fn cx<'a>(&'a self, me: &'a Principal) -> Ctx<'a> {
        Ctx { db: &self.db, rbac: &self.rbac, me }
    }
}
