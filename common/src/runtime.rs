//! Process plumbing every Damselfly binary shares: logging set-up, shutdown on signals, and the
//! ready file that tells a supervisor (the `damselfly` launcher, tests) which ports were bound.
//!
//! Only binaries call this; libraries take a `CancellationToken` and never install subscribers.
//! Every binary's `main` is [`main`] around its own `run`, so they start, log, bind, announce and
//! fail the same way.

use std::{
    collections::BTreeMap,
    fmt::Display,
    future::Future,
    net::SocketAddr,
    path::{Path, PathBuf},
    process::ExitCode,
};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The flags every server binary takes besides its own.
#[derive(Debug, Clone, clap::Args)]
pub struct ProcessArgs {
    /// Write the bound addresses as JSON here once serving (for supervisors and tests).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, default_value = "text", env = "DAMSELFLY_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// A binary's `main`: sets up logging, runs `run` on a multi-threaded runtime, and on error prints
/// `name: error` (with its causes) to stderr and exits non-zero.
pub fn main<E, F>(name: &str, format: LogFormat, run: F) -> ExitCode
where
    E: Display,
    F: Future<Output = Result<(), E>>,
{
    init_logging(format);
    let outcome = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(run).map_err(|e| format!("{e:#}")),
        Err(e) => Err(format!("cannot start the async runtime: {e}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The machine's host name (the kernel's), or `localhost` where it cannot be read.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Binds a TCP listener; the error names what it was for and where.
pub async fn bind(addr: SocketAddr, what: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen for {what} on {addr}: {e}")))
}

/// Logs that `name` is serving on `addresses` and writes the ready file when one was asked for.
pub fn announce(name: &str, ready_file: Option<&Path>, addresses: &BTreeMap<&str, String>) -> std::io::Result<()> {
    let list = addresses.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
    tracing::info!("{name} serving: {list}");
    match ready_file {
        Some(path) => write_ready_file(path, addresses),
        None => Ok(()),
    }
}

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

/// Installs the global `tracing` subscriber. `RUST_LOG` filters; the default is `info`. A second
/// call leaves the first subscriber in place.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
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

    #[tokio::test]
    async fn bind_names_what_failed() {
        let taken = bind("127.0.0.1:0".parse().unwrap(), "http").await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind(addr, "grpc").await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
        assert!(err.to_string().starts_with(&format!("cannot listen for grpc on {addr}: ")), "{err}");
    }

    #[test]
    fn main_reports_failure_with_a_non_zero_exit() {
        let failed = main("t", LogFormat::Text, async { Err::<(), _>("boom") });
        assert_eq!(failed, ExitCode::FAILURE);
        assert_eq!(main("t", LogFormat::Text, async { Ok::<(), String>(()) }), ExitCode::SUCCESS);
    }

    #[test]
    fn hostname_is_never_empty() {
        assert!(!hostname().is_empty());
    }

    #[test]
    fn log_format_parses_known_names_only() {
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert!("xml".parse::<LogFormat>().unwrap_err().contains("xml"));
    }
}
