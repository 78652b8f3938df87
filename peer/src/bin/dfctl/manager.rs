//! The manager as dfctl reaches it: where it is and which personal access token to present
//! (flag, then environment, then `dfctl.toml`), and its `/oapi/v1` job calls with the manager's
//! JSON errors turned into one line.

use std::{path::PathBuf, time::Duration};

use common::api::Job;
use serde::Deserialize;

use crate::Failure;

/// The manager's REST address when nothing says otherwise (its default `http_addr` port).
pub const DEFAULT_MANAGER: &str = "http://127.0.0.1:8080";
/// One request's limit; a job is polled with many short requests.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Tries of a job creation the manager answers 429 to (its per-cluster job rate), a second apart.
const CREATE_TRIES: u32 = 5;

/// `dfctl.toml`: `manager = "http://…"` and `token = "dfly_pat_…"`, both optional, and the
/// `[scheduler]` section for preheats without a manager.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    manager: Option<String>,
    token: Option<String>,
    /// The operator's certificate for `dfctl preheat --scheduler`.
    #[serde(default)]
    pub scheduler: crate::scheduler::TlsFiles,
}

/// `$XDG_CONFIG_HOME/damselfly/dfctl.toml`, else `~/.config/damselfly/dfctl.toml`.
pub fn config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("damselfly").join("dfctl.toml"))
}

pub fn read_config(path: Option<PathBuf>) -> Result<FileConfig, Failure> {
    let Some(path) = path else { return Ok(FileConfig::default()) };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => return Err(Failure::usage(format!("cannot read {}: {e}", path.display()))),
    };
    let config: FileConfig =
        toml::from_str(&text).map_err(|e| Failure::usage(format!("{}: {}", path.display(), e.message())))?;
    if config.token.is_some() {
        use std::os::unix::fs::PermissionsExt;
        if std::fs::metadata(&path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0) {
            eprintln!("dfctl: warning: {} holds a token and is readable by others (chmod 600 it)", path.display());
        }
    }
    Ok(config)
}

/// A manager to call, with the token to present.
#[derive(Debug)]
pub struct Manager {
    base: url::Url,
    token: String,
    http: reqwest::Client,
}

impl Manager {
    /// From the flags (which clap already filled from `DFCTL_MANAGER` and `DFCTL_TOKEN`), else
    /// the config file, else the default address; no token anywhere is a usage error.
    pub fn settle(manager: Option<String>, token: Option<String>) -> Result<Self, Failure> {
        let path = config_path();
        let file =
            if manager.is_some() && token.is_some() { FileConfig::default() } else { read_config(path.clone())? };
        let raw = manager.or(file.manager).unwrap_or_else(|| DEFAULT_MANAGER.to_owned());
        let base = url::Url::parse(&raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                Failure::usage(format!("manager {raw:?} is not an http(s) URL such as {DEFAULT_MANAGER}"))
            })?;
        let token = token.or(file.token).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).ok_or_else(|| {
            let file = path.map_or_else(|| "dfctl.toml".to_owned(), |p| p.display().to_string());
            Failure::usage(format!(
                "no personal access token: pass --token, set DFCTL_TOKEN, or write token = \"…\" in {file} \
                 (create one with scope \"job\" in the console's Tokens page)"
            ))
        })?;
        if token.bytes().any(|b| b.is_ascii_control()) {
            return Err(Failure::usage("the token contains control characters"));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("dfctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Failure::failed(format!("HTTP client: {e}")))?;
        Ok(Self { base, token, http })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.as_str().trim_end_matches('/'))
    }

    /// Creates a job (`POST /oapi/v1/jobs`), waiting out the manager's job rate.
    pub async fn create_job(&self, body: &serde_json::Value) -> Result<Job, Failure> {
        let mut tries = 0;
        loop {
            tries += 1;
            let sent = self.http.post(self.url("/oapi/v1/jobs")).bearer_auth(&self.token).json(body).send().await;
            let response = sent.map_err(|e| self.unreachable(e))?;
            if response.status() == reqwest::StatusCode::TOO_MANY_REQUESTS && tries < CREATE_TRIES {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            return self.answer(response).await;
        }
    }

    /// One job (`GET /oapi/v1/jobs/{id}`). A transport error is [`Poll::Unreachable`], so a
    /// waiter can ride out a manager restart.
    pub async fn job(&self, id: i64) -> Result<Job, Poll> {
        let sent = self.http.get(self.url(&format!("/oapi/v1/jobs/{id}"))).bearer_auth(&self.token).send().await;
        let response = sent.map_err(|e| Poll::Unreachable(self.unreachable(e)))?;
        self.answer(response).await.map_err(Poll::Refused)
    }

    fn unreachable(&self, e: reqwest::Error) -> Failure {
        let why = if e.is_timeout() { "no answer in time".to_owned() } else { crate::root_cause(&e) };
        Failure::failed(format!("cannot reach the manager at {}: {why} (see --manager)", self.base))
    }

    async fn answer(&self, response: reqwest::Response) -> Result<Job, Failure> {
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Failure::failed(format!("reading the manager's answer: {e}")))?;
        if !status.is_success() {
            return Err(Failure::Failed(refusal(status, &body)));
        }
        serde_json::from_slice(&body)
            .map_err(|e| Failure::failed(format!("the manager answered a job dfctl cannot read: {e}")))
    }
}

/// Why polling a job did not give it.
#[derive(Debug)]
pub enum Poll {
    /// The manager could not be reached; it may come back.
    Unreachable(Failure),
    /// The manager answered with an error; asking again will not help.
    Refused(Failure),
}

/// The manager's JSON error, `{"code", "message", "field"}`.
#[derive(Debug, Deserialize)]
struct ErrorBody {
    message: String,
    field: Option<String>,
}

/// One line for an error answer: the manager's message (and the field to fix), else the status.
fn refusal(status: reqwest::StatusCode, body: &[u8]) -> String {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody { message, field: Some(field) }) => format!("{message} (field {field})"),
        Ok(ErrorBody { message, field: None }) => message,
        Err(_) => {
            let text: String = String::from_utf8_lossy(body).chars().take(200).collect();
            format!("the manager answered {status}: {}", text.trim())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_managers_errors_read_as_one_line() {
        let bad = reqwest::StatusCode::UNPROCESSABLE_ENTITY;
        let body = br#"{"code":"invalid_argument","message":"args.count must be at least 1","field":"args.count"}"#;
        assert_eq!(refusal(bad, body), "args.count must be at least 1 (field args.count)");
        let body = br#"{"code":"unauthorized","message":"unknown personal access token"}"#;
        assert_eq!(refusal(reqwest::StatusCode::UNAUTHORIZED, body), "unknown personal access token");
        assert_eq!(
            refusal(reqwest::StatusCode::BAD_GATEWAY, b"upstream down\n"),
            "the manager answered 502 Bad Gateway: upstream down"
        );
    }
}
