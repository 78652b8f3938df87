//! The manager's one error type, and how it becomes an HTTP response or a gRPC status.
//!
//! Every error the API answers has the same JSON shape, [`ErrorBody`]: a stable `code` for
//! programs, a `message` for people, and the offending `field` when one input is to blame.

use axum::{
    Json,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use sea_orm::{DbErr, SqlErr};
use serde::Serialize;

/// Everything that can go wrong in the manager, by what a caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration is invalid; the message names the key.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The database could not be reached or refused a statement.
    #[error("database error: {0}")]
    Database(DbErr),
    /// Password hashing failed (only on resource exhaustion).
    #[error("password hashing failed: {0}")]
    Password(String),
    /// A listener or file could not be used.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The request carries no usable credential (missing, unknown, expired session).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller is known but may not do this (role, token scope, expired or disabled token).
    #[error("{0}")]
    Forbidden(String),
    /// No such object, or one the caller may not know exists.
    #[error("{0}")]
    NotFound(String),
    /// The input is wrong; `field` names the part to fix when there is one.
    #[error("{message}")]
    Invalid { field: Option<String>, message: String },
    /// Well-formed, but the arguments cannot be acted on (a job's `args`, as Dragonfly answers
    /// them: 422); `field` names the part to fix.
    #[error("{message}")]
    Unprocessable { field: Option<String>, message: String },
    /// The request body is not JSON (wrong or missing `Content-Type`).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The change would clash with an existing object (a taken name, say).
    #[error("{0}")]
    Conflict(String),
    /// Too many requests for a rate-limited resource; retry in a second.
    #[error("{0}")]
    TooManyRequests(String),
    /// Over a caller's budget (sign-in attempts); retry after the given seconds.
    #[error("{message}")]
    Throttled { message: String, retry_after_secs: u64 },
    /// Something the manager depends on (a scheduler, say) did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// A service the manager called on the caller's behalf (an OAuth provider) failed or answered
    /// nonsense; the message says which and why, never with secrets.
    #[error("{0}")]
    BadGateway(String),
    /// A bug or an impossible state; the message is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// An input error blamed on `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { field: Some(field.to_owned()), message: message.into() }
    }

    /// The same input error, answered as unprocessable (422) rather than bad (400).
    pub fn unprocessable(self) -> Self {
        match self {
            Self::Invalid { field, message } => Self::Unprocessable { field, message },
            other => other,
        }
    }

    /// `"<what> not found"`.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }
}

impl From<DbErr> for Error {
    /// Constraint violations are the caller's doing (a taken name, a vanished parent); anything
    /// else is the database's.
    fn from(e: DbErr) -> Self {
        match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => {
                Self::Conflict("an object with the same name already exists".into())
            }
            Some(SqlErr::ForeignKeyConstraintViolation(_)) => {
                Self::Conflict("the object refers to, or is referred to by, another object".into())
            }
            _ => Self::Database(e),
        }
    }
}

/// The JSON body of every error the API answers with.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code such as `not_found` or `invalid_argument`.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
    /// The input field to fix, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl Error {
    /// The HTTP status and stable code for this error.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::Config(_) => (StatusCode::INTERNAL_SERVER_ERROR, "misconfigured"),
            Error::Database(_) => (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable"),
            Error::Password(_) | Error::Io(_) | Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Invalid { .. } => (StatusCode::BAD_REQUEST, "invalid_argument"),
            Error::Unprocessable { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_argument"),
            Error::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Error::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Error::TooManyRequests(_) | Error::Throttled { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::BadGateway(_) => (StatusCode::BAD_GATEWAY, "bad_gateway"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
            public_message(&self)
        } else {
            self.to_string()
        };
        let retry_after = match &self {
            Error::Throttled { retry_after_secs, .. } => Some(*retry_after_secs),
            Error::TooManyRequests(_) => Some(1),
            _ => None,
        };
        let field = match self {
            Error::Invalid { field, .. } | Error::Unprocessable { field, .. } => field,
            _ => None,
        };
        let mut response = (status, Json(ErrorBody { code, message, field })).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
        }
        response
    }
}

/// What a client is told of a server-side failure: never the database's or the system's own
/// words (they name tables, hosts and paths), which go to the manager's log instead.
fn public_message(e: &Error) -> String {
    match e {
        Error::Internal(_) | Error::Password(_) | Error::Io(_) | Error::Config(_) => {
            "internal error; see the manager's log".into()
        }
        Error::Database(_) => "the database is unavailable; see the manager's log".into(),
        other => other.to_string(),
    }
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        if matches!(e, Error::Internal(_) | Error::Password(_) | Error::Io(_) | Error::Config(_) | Error::Database(_)) {
            tracing::error!(error = %e, "call failed");
        }
        let message = public_message(&e);
        match e {
            Error::Unauthorized(_) => Self::unauthenticated(message),
            Error::Forbidden(_) => Self::permission_denied(message),
            Error::NotFound(_) => Self::not_found(message),
            Error::Invalid { .. } | Error::Unprocessable { .. } | Error::UnsupportedMediaType(_) => {
                Self::invalid_argument(message)
            }
            Error::Conflict(_) => Self::already_exists(message),
            Error::TooManyRequests(_) | Error::Throttled { .. } => Self::resource_exhausted(message),
            Error::Database(_) | Error::Unavailable(_) | Error::BadGateway(_) => Self::unavailable(message),
            Error::Config(_) | Error::Password(_) | Error::Io(_) | Error::Internal(_) => Self::internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_database_s_own_words_stay_in_the_log() {
        let leak = "connection to server at \"db.internal\" (10.0.0.5), port 5432 failed: table users_secret";
        for error in [
            Error::Database(DbErr::Custom(leak.into())),
            Error::Io(std::io::Error::other(leak)),
            Error::Config(leak.into()),
        ] {
            let status = tonic::Status::from(Error::Internal(leak.into()));
            assert!(!status.message().contains("db.internal"), "{}", status.message());
            let grpc = tonic::Status::from(match &error {
                Error::Database(_) => Error::Database(DbErr::Custom(leak.into())),
                Error::Io(_) => Error::Io(std::io::Error::other(leak)),
                _ => Error::Config(leak.into()),
            });
            assert!(!grpc.message().contains("db.internal"), "{}", grpc.message());
            let body = axum::body::to_bytes(error.into_response().into_body(), 1 << 16).await.unwrap();
            let body = String::from_utf8_lossy(&body);
            assert!(!body.contains("db.internal") && !body.contains("users_secret"), "{body}");
            assert!(body.contains("see the manager's log"), "{body}");
        }
    }
}
