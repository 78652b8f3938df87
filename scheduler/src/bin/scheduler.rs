//! `scheduler`: the Damselfly scheduler.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;
use common::runtime::{self, LogFormat};
use scheduler::{
    Listeners, Scheduler,
    config::{Overrides, SchedulerConfig},
};
use tokio::net::TcpListener;

/// The Damselfly scheduler: keeps hosts, tasks and peers and picks parents for downloads.
#[derive(Debug, Parser)]
#[command(version = common::VERSION)]
struct Cli {
    /// TOML configuration file (every key is optional; see README "Configuration").
    #[arg(short, long, env = "DAMSELFLY_SCHEDULER_CONFIG")]
    config: Option<PathBuf>,
    /// Address for gRPC [default: 0.0.0.0:8002].
    #[arg(long, env = "DAMSELFLY_SCHEDULER_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// Address for /healthy and /metrics [default: 0.0.0.0:8004].
    #[arg(long, env = "DAMSELFLY_SCHEDULER_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// gRPC `host:port` of the manager to register with [default: none, standalone].
    #[arg(long, env = "DAMSELFLY_SCHEDULER_MANAGER_ADDR")]
    manager: Option<String>,
    /// Write the bound addresses as JSON here once serving (for supervisors and tests).
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, default_value = "text", env = "DAMSELFLY_LOG_FORMAT")]
    log_format: LogFormat,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::init_logging(cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scheduler: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = Overrides { grpc_addr: cli.grpc_addr, http_addr: cli.http_addr, manager_addr: cli.manager };
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let config = SchedulerConfig::load(cli.config.as_deref(), overrides, &hostname)?;
    let shutdown = runtime::shutdown_on_signals()?;
    let grpc = TcpListener::bind(config.server.grpc_addr).await?;
    let http = TcpListener::bind(config.server.http_addr).await?;
    let addrs = BTreeMap::from([("grpc", grpc.local_addr()?.to_string()), ("http", http.local_addr()?.to_string())]);
    tracing::info!(grpc = %addrs["grpc"], http = %addrs["http"], "scheduler serving");
    if let Some(path) = &cli.ready_file {
        runtime::write_ready_file(path, &addrs)?;
    }
    Scheduler::new(config).serve(Listeners { grpc, http }, shutdown).await?;
    Ok(())
}
