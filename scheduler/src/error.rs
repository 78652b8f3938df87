//! The scheduler's one error type, and its gRPC mapping.

/// Everything that can go wrong in the scheduler, by what a caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A request was malformed; the message names the field.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A listener or file could not be used.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Credentials could not be had or used.
    #[error("TLS: {0}")]
    Tls(#[from] common::tls::Error),
    /// The gRPC server failed.
    #[error("gRPC transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidRequest(m) => tonic::Status::invalid_argument(m),
            other => {
                tracing::error!(error = %other, "request failed");
                tonic::Status::internal(other.to_string())
            }
        }
    }
}
