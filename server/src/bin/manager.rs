//! `manager`: the Damselfly control plane (REST API, console, registration).

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;
use common::runtime::{self, ProcessArgs};
use server::{
    Listeners, Manager,
    config::{ManagerConfig, Overrides},
    db::RootUser,
};

/// The Damselfly manager: REST API, operator console, and registration of schedulers and peers.
#[derive(Debug, Parser)]
#[command(version = common::VERSION)]
struct Cli {
    /// TOML configuration file (every key is optional; see README "Configuration").
    #[arg(short, long, env = "DAMSELFLY_MANAGER_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and local state [default: /var/lib/damselfly/manager].
    #[arg(long, env = "DAMSELFLY_MANAGER_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address for the REST API and console [default: 0.0.0.0:8080].
    #[arg(long, env = "DAMSELFLY_MANAGER_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// Address for gRPC [default: 0.0.0.0:65003].
    #[arg(long, env = "DAMSELFLY_MANAGER_GRPC_ADDR")]
    grpc_addr: Option<SocketAddr>,
    /// sqlite://, postgres:// or mysql:// URL [default: SQLite in the data dir].
    #[arg(long, env = "DAMSELFLY_MANAGER_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory with the console bundle (pkg/console.js, .wasm, .css).
    #[arg(long, env = "DAMSELFLY_MANAGER_SITE_ROOT")]
    site_root: Option<PathBuf>,
    #[command(flatten)]
    process: ProcessArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::main("manager", cli.process.log_format, run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = Overrides {
        data_dir: cli.data_dir,
        http_addr: cli.http_addr,
        grpc_addr: cli.grpc_addr,
        database_url: cli.database_url,
        site_root: cli.site_root,
    };
    let config = ManagerConfig::load(cli.config.as_deref(), overrides)?;
    let shutdown = runtime::shutdown_on_signals()?;
    let http = runtime::bind(config.server.http_addr, "http").await?;
    let grpc = runtime::bind(config.server.grpc_addr, "grpc").await?;

    let root_password = std::env::var("DAMSELFLY_ROOT_PASSWORD").ok().filter(|p| !p.is_empty());
    let (manager, root) = Manager::open(config, root_password.as_deref()).await?;
    match root {
        RootUser::Existing => {}
        RootUser::CreatedWithGivenPassword => {
            tracing::info!("created user root with the password from DAMSELFLY_ROOT_PASSWORD");
        }
        RootUser::CreatedWithGeneratedPassword(p) => {
            println!("Created user root with password: {p}\n(shown once; change it after signing in)");
        }
    }

    let addrs = BTreeMap::from([("http", http.local_addr()?.to_string()), ("grpc", grpc.local_addr()?.to_string())]);
    runtime::announce("manager", cli.process.ready_file.as_deref(), &addrs)?;
    manager.serve(Listeners { http, grpc }, shutdown).await?;
    Ok(())
}
