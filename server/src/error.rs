//! The manager's one error type, and how it becomes an HTTP response.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use serde::Serialize;

/// Everything that can go wrong in the manager, by what a caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The database could not be reached or refused a statement.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Password hashing failed (only on resource exhaustion).
    #[error("password hashing failed: {0}")]
    Password(String),
    /// A listener or file could not be used.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// The JSON body of every error the API answers with.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// Stable, machine-readable code such as `database_unavailable`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            Error::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, "misconfigured"),
            Error::Database(_) => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Error::Password(_) | Error::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        tracing::error!(error = %self, "request failed");
        (status, Json(ErrorBody { code, message: self.to_string() })).into_response()
    }
}
