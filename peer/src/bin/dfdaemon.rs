//! `dfdaemon`: the Damselfly peer daemon.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, process::ExitCode};

use clap::Parser;
use common::runtime::{self, ProcessArgs};
use peer::{
    Dfdaemon, Listeners,
    config::{DfdaemonConfig, Overrides},
    init_runtime::{self, Runtime},
};
use tokio::net::UnixListener;

/// The Damselfly peer daemon: downloads for local clients and serves pieces to other peers.
#[derive(Debug, Parser)]
#[command(version = common::VERSION)]
struct Cli {
    /// TOML configuration file (every key is optional; see README "Configuration").
    #[arg(short, long, env = "DAMSELFLY_DFDAEMON_CONFIG", global = true)]
    config: Option<PathBuf>,
    /// Directory for content, metadata and the socket [default: /var/lib/damselfly/dfdaemon].
    #[arg(long, env = "DAMSELFLY_DFDAEMON_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Run as a seed peer.
    #[arg(long, env = "DAMSELFLY_DFDAEMON_SEED")]
    seed: bool,
    /// Host name announced to the scheduler [default: the machine's hostname].
    #[arg(long, env = "DAMSELFLY_DFDAEMON_HOSTNAME")]
    hostname: Option<String>,
    /// Unix socket of the download API [default: <data-dir>/dfdaemon.sock].
    #[arg(long, env = "DAMSELFLY_DFDAEMON_SOCKET")]
    socket: Option<PathBuf>,
    /// Address for /healthy and /metrics [default: 0.0.0.0:4003].
    #[arg(long, env = "DAMSELFLY_DFDAEMON_HTTP_ADDR")]
    http_addr: Option<SocketAddr>,
    /// Address of the piece transport [default: 0.0.0.0:4000].
    #[arg(long, env = "DAMSELFLY_DFDAEMON_UPLOAD_ADDR")]
    upload_addr: Option<SocketAddr>,
    /// Address of the HTTP proxy and registry mirror [default: 127.0.0.1:4001].
    #[arg(long, env = "DAMSELFLY_DFDAEMON_PROXY_ADDR", global = true)]
    proxy_addr: Option<SocketAddr>,
    /// Scheduler gRPC address, host:port [default: none, every download goes to the origin].
    #[arg(long, env = "DAMSELFLY_DFDAEMON_SCHEDULER")]
    scheduler: Option<String>,
    /// Manager gRPC address, host:port; it names the schedulers [default: none, use --scheduler].
    #[arg(long, env = "DAMSELFLY_DFDAEMON_MANAGER")]
    manager: Option<String>,
    /// Join token to enrol with when no certificate is kept (see `[manager] join_token`).
    #[arg(long, env = "DAMSELFLY_JOIN_TOKEN", hide_env_values = true)]
    join_token: Option<String>,
    /// Upstream registry of mirror requests that name none (`[proxy] registry_mirror`), e.g.
    /// http://registry.local:5000 for CRI-O's or podman's `[[registry.mirror]]`.
    #[arg(long, env = "DAMSELFLY_DFDAEMON_REGISTRY_MIRROR", global = true)]
    registry_mirror: Option<String>,
    #[command(flatten)]
    process: ProcessArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Write a container runtime's mirror configuration pointing at this dfdaemon, from its
    /// configuration (proxy address, registry_mirror, [[proxy.registries]]); files that already
    /// say the same are left alone.
    InitRuntime {
        /// The runtime to configure.
        #[arg(value_enum)]
        runtime: Runtime,
        /// Directory to write into [default: /etc/containerd/certs.d for containerd,
        /// /etc/containers/registries.conf.d for CRI-O and podman].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Another registry to pull through the dfdaemon (containerd only), e.g. https://quay.io.
        #[arg(long = "registry")]
        registries: Vec<url::Url>,
        /// containerd: also `_default/hosts.toml`, every other registry through the dfdaemon.
        #[arg(long)]
        all_registries: bool,
    },
}

fn main() -> ExitCode {
    let mut cli = Cli::parse();
    if let Some(Command::InitRuntime { runtime, dir, registries, all_registries }) = cli.command.take() {
        return init_runtime(&cli, runtime, dir, &registries, all_registries);
    }
    runtime::main("dfdaemon", cli.process.log_format, run(cli))
}

/// `dfdaemon init-runtime`: prints each file written or left alone; an error is a message and
/// exit code 1.
fn init_runtime(cli: &Cli, target: Runtime, dir: Option<PathBuf>, extra: &[url::Url], all: bool) -> ExitCode {
    let overrides =
        Overrides { proxy_addr: cli.proxy_addr, registry_mirror: cli.registry_mirror.clone(), ..Overrides::default() };
    let written = DfdaemonConfig::load(cli.config.as_deref(), overrides, &runtime::hostname())
        .and_then(|config| init_runtime::files(target, &config, extra, all))
        .and_then(|files| init_runtime::write(dir.as_deref().unwrap_or(target.default_dir()), &files));
    match written {
        Ok(written) => {
            for w in written {
                println!("{} {}", if w.changed { "wrote" } else { "unchanged" }, w.path.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dfdaemon init-runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = Overrides {
        data_dir: cli.data_dir,
        seed: cli.seed.then_some(true),
        hostname: cli.hostname,
        socket: cli.socket,
        http_addr: cli.http_addr,
        upload_addr: cli.upload_addr,
        proxy_addr: cli.proxy_addr,
        scheduler_addr: cli.scheduler,
        manager_addr: cli.manager,
        join_token: cli.join_token,
        registry_mirror: cli.registry_mirror,
    };
    let config = DfdaemonConfig::load(cli.config.as_deref(), overrides, &runtime::hostname())?;
    std::fs::create_dir_all(&config.data_dir)?;
    let shutdown = runtime::shutdown_on_signals()?;

    let socket_path = &config.server.socket;
    if socket_path.exists() {
        // A socket left by a crashed daemon; a live one would still accept connections.
        if std::os::unix::net::UnixStream::connect(socket_path).is_ok() {
            anyhow::bail!("another dfdaemon is serving on {}", socket_path.display());
        }
        std::fs::remove_file(socket_path)?;
    }
    let socket = UnixListener::bind(socket_path)?;
    // Whoever may connect may have files written as this daemon's user: the owner and its group
    // only, whatever the umask.
    std::fs::set_permissions(socket_path, std::os::unix::fs::PermissionsExt::from_mode(0o660))?;
    let http = runtime::bind(config.server.http_addr, "http").await?;
    let upload = runtime::bind(config.server.upload_addr, "upload").await?;
    let proxy = runtime::bind(config.server.proxy_addr, "proxy").await?;
    let addrs = BTreeMap::from([
        ("socket", socket_path.display().to_string()),
        ("http", http.local_addr()?.to_string()),
        ("upload", upload.local_addr()?.to_string()),
        ("proxy", proxy.local_addr()?.to_string()),
    ]);
    let name = if config.seed { "dfdaemon (seed peer)" } else { "dfdaemon" };
    runtime::announce(name, cli.process.ready_file.as_deref(), &addrs)?;
    Dfdaemon::new(config).serve(Listeners { socket, http, upload, proxy }, shutdown).await?;
    Ok(())
}
