//! The peer's one error type, by what a caller can do about it, and its gRPC mapping.

use tonic::{Code, Status};

/// Everything that can go wrong in the peer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Credentials could not be had or used.
    #[error("TLS: {0}")]
    Tls(#[from] common::tls::Error),
    /// The request is malformed; the message names the field.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The output file exists and overwriting was not asked for.
    #[error("{0} already exists (pass --overwrite to replace it)")]
    OutputExists(String),
    /// The origin answered with a client error such as 404; retrying will not help.
    #[error("origin answered {status} for {url}")]
    OriginRejected { status: u16, url: String },
    /// The origin failed (5xx, unreachable, reset) after retries.
    #[error("origin unavailable for {url}: {reason}")]
    OriginUnavailable { url: String, reason: String },
    /// The content arrived incomplete or does not match the expected digest.
    #[error("integrity check failed: {0}")]
    Integrity(String),
    /// No peer can serve and back-to-source is disabled.
    #[error("no peer can serve {0} and back-to-source is disabled")]
    NoSource(String),
    /// This host does not cache the task.
    #[error("task {0} is not in this host's cache")]
    TaskNotFound(common::ids::TaskId),
    /// A download is using the task, so it cannot be removed now.
    #[error("task {0} is in use by a download; try again when it is done")]
    TaskInUse(common::ids::TaskId),
    /// The caller on the download socket may not write where it asked.
    #[error("not allowed: {0}")]
    Forbidden(String),
    /// The cluster's policy (its block list) refuses this download.
    #[error("refused by the scheduler: {0}")]
    Refused(String),
    /// The origin is a target the dfdaemon does not reach for this requester (the `[proxy]`
    /// target policy); the message names the rule.
    #[error("{0}")]
    TargetRefused(String),
    /// The scheduler stream broke or refused the peer.
    #[error("scheduler: {0}")]
    SchedulerLost(String),
    /// The dfdaemon is stopping; the download was abandoned (partial pieces stay cached).
    #[error("the dfdaemon is shutting down")]
    ShuttingDown,
    /// The download did not finish in time.
    #[error("download timed out after {0:?}")]
    Timeout(std::time::Duration),
    /// Local I/O failed (disk full, permissions…).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A gRPC transport failed.
    #[error("gRPC transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::InvalidRequest(_) => Code::InvalidArgument,
            Error::OutputExists(_) => Code::AlreadyExists,
            Error::OriginRejected { status: 404 | 410, .. } => Code::NotFound,
            Error::OriginRejected { status: 401 | 403, .. } => Code::PermissionDenied,
            Error::OriginRejected { .. } => Code::FailedPrecondition,
            Error::OriginUnavailable { .. } => Code::Unavailable,
            Error::Integrity(_) => Code::DataLoss,
            Error::NoSource(_) | Error::TaskInUse(_) => Code::FailedPrecondition,
            Error::TaskNotFound(_) => Code::NotFound,
            Error::Refused(_) | Error::Forbidden(_) | Error::TargetRefused(_) => Code::PermissionDenied,
            Error::SchedulerLost(_) | Error::ShuttingDown => Code::Unavailable,
            Error::Timeout(_) => Code::DeadlineExceeded,
            Error::Config(_) | Error::Io(_) | Error::Transport(_) | Error::Tls(_) => Code::Internal,
        };
        if code == Code::Internal {
            tracing::error!(error = %e, "request failed");
        }
        Status::new(code, e.to_string())
    }
}
