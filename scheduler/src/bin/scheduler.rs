//! `scheduler`: the Damselfly scheduler.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;
use common::runtime::{self, ProcessArgs};
use scheduler::{
    Listeners, Scheduler,
    config::{Overrides, SchedulerConfig},
};

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
    /// Join token to enrol with when no certificate is kept (see `[manager] join_token`).
    #[arg(long, env = "DAMSELFLY_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// Where the enrolled key and certificate are kept [default: /var/lib/damselfly/scheduler/tls].
    #[arg(long, env = "DAMSELFLY_SCHEDULER_TLS_DIR")]
    tls_dir: Option<PathBuf>,
    #[command(flatten)]
    process: ProcessArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::main("scheduler", cli.process.log_format, run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = Overrides {
        grpc_addr: cli.grpc_addr,
        http_addr: cli.http_addr,
        manager_addr: cli.manager,
        join_token: cli.join_token,
        tls_dir: cli.tls_dir,
    };
    let config = SchedulerConfig::load(cli.config.as_deref(), overrides, &runtime::hostname())?;
    let shutdown = runtime::shutdown_on_signals()?;
    let grpc = runtime::bind(config.server.grpc_addr, "grpc").await?;
    let http = runtime::bind(config.server.http_addr, "http").await?;
    let addrs = BTreeMap::from([("grpc", grpc.local_addr()?.to_string()), ("http", http.local_addr()?.to_string())]);
    runtime::announce("scheduler", cli.process.ready_file.as_deref(), &addrs)?;
    Scheduler::new(config).serve(Listeners { grpc, http }, shutdown).await?;
    Ok(())
}
