//! The one error every console server function answers: the manager API's JSON error, with the
//! HTTP status it came with, so pages can show the message next to the field it names and send
//! signed-out visitors to the sign-in page.

use std::fmt;

use leptos::server_fn::{error::FromServerFnError, error::ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// An error from the manager's API (or from reaching it), as pages see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// HTTP status of the API answer; 0 when the API was not reached or the call never left
    /// the browser.
    pub status: u16,
    /// The API's stable error code (`unauthorized`, `invalid`, `not_found`, …).
    pub code: String,
    /// A sentence for people.
    pub message: String,
    /// The request field the error is about, for forms.
    #[serde(default)]
    pub field: Option<String>,
}

impl ApiError {
    /// An error found by the console itself about one form field (before the API is asked).
    /// On the server it also makes the answer a 400, as the API's own refusals are.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        #[cfg(feature = "ssr")]
        super::client::set_status(http::StatusCode::BAD_REQUEST);
        Self { status: 400, code: "invalid".into(), message: message.into(), field: Some(field.into()) }
    }

    /// Something the page asked for does not exist (or is not the visitor's to see).
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { status: 404, code: "not_found".into(), message: message.into(), field: None }
    }

    /// The manager could not be reached, or answered something that is not the API's JSON.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self { status: 0, code: "unavailable".into(), message: message.into(), field: None }
    }

    /// The session is missing or over: the page should send the visitor to sign in.
    pub fn is_signed_out(&self) -> bool {
        self.status == 401
    }

    /// The message when it is about `field`.
    pub fn for_field(&self, field: &str) -> Option<String> {
        (self.field.as_deref() == Some(field)).then(|| self.message.clone())
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiError {}

impl FromServerFnError for ApiError {
    type Encoder = super::json::TextJson;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        let message = match value {
            ServerFnErrorErr::Request(e) => format!("the manager could not be reached: {e}"),
            other => other.to_string(),
        };
        Self::unavailable(message)
    }
}
