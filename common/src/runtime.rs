//! Process plumbing every Damselfly binary shares: logging set-up, shutdown on signals, and the
//! ready file that tells a supervisor (the `damselfly` launcher, tests) which ports were bound.
//!
//! Only binaries call this; libraries take a `CancellationToken` and never install subscribers.

use std::{collections::BTreeMap, path::Path};

use tokio_util::sync::CancellationToken;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            other => Err(format!("unknown log format {other:?} (expected text or json)")),
        }
    }
}

/// Installs the global `tracing` subscriber. `RUST_LOG` filters; the default is `info`.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// A token cancelled on the first SIGINT or SIGTERM.
pub fn shutdown_on_signals() -> std::io::Result<CancellationToken> {
    use tokio::signal::unix::{SignalKind, signal};
    let token = CancellationToken::new();
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let cancel = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
            _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        }
        cancel.cancel();
    });
    Ok(token)
}

/// Writes `{"name": "address", …}` to `path` atomically (temp file + rename), so a reader never
/// sees half a file. Called once every listener is bound.
pub fn write_ready_file(path: &Path, addresses: &BTreeMap<&str, String>) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(addresses)?)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_file_is_complete_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready.json");
        let addrs = BTreeMap::from([("http", "127.0.0.1:1".to_string())]);
        write_ready_file(&path, &addrs).unwrap();
        let back: BTreeMap<String, String> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back["http"], "127.0.0.1:1");
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn log_format_parses_known_names_only() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("xml".parse::<LogFormat>().unwrap_err().contains("xml"));
    }
}
