//! Server functions: the console's only way to data.
//!
//! Each one runs on the manager and calls the manager's public HTTP API over loopback as the
//! signed-in visitor ([`client`]), never its database or services directly; that keeps
//! authorization and tenant isolation in the API layer alone. Every one answers [`ApiError`],
//! the API's own error shape, so forms can put messages next to the fields they name.

mod error;
pub mod json;
pub mod page;

#[cfg(feature = "ssr")]
pub mod client;

pub mod audits;
pub mod auth;
pub mod clusters;
pub mod health;
pub mod hosts;
pub mod jobs;
pub mod peers;
pub mod roles;
pub mod stats;
pub mod tasks;
pub mod tenants;
pub mod tokens;
pub mod topology;
pub mod users;

#[cfg(feature = "ssr")]
pub use client::ManagerApi;
pub use error::ApiError;

/// Lines of a textarea: trimmed, empty ones dropped.
pub fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// A number from a form field, or an error naming the field.
pub fn number<T: std::str::FromStr>(field: &str, text: &str) -> Result<T, ApiError> {
    text.trim().parse().map_err(|_| ApiError::invalid(field, format!("{field} must be a whole number")))
}

/// A path on this console to go back to after signing in: only local paths, so a link cannot
/// send people elsewhere after they signed in.
pub fn local_path(path: Option<&str>) -> String {
    match path {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.starts_with("/\\") => p.to_owned(),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_return_targets() {
        assert_eq!(local_path(Some("/clusters?page=2")), "/clusters?page=2");
        assert_eq!(local_path(Some("//evil.example/")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(Some("https://evil.example/")), "/");
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn lines_and_numbers() {
        assert_eq!(lines(" a \n\n b\r\n"), vec!["a", "b"]);
        assert_eq!(number::<u32>("load_limit", " 12 "), Ok(12));
        assert_eq!(number::<u32>("load_limit", "-1").unwrap_err().field.as_deref(), Some("load_limit"));
    }
}
