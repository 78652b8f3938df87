//! `damselfly`: runs a whole local Damselfly cluster in the foreground (`damselfly up`), and
//! issues certificates offline (`damselfly cert`).

mod cert;
mod cluster;
mod join;
mod process;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};
use common::runtime::{self, LogFormat};

use crate::{
    cluster::{Cluster, UpOptions},
    process::Supervised,
};

/// Damselfly: peer-to-peer file and image distribution.
#[derive(Debug, Parser)]
#[command(version = common::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log format: text or json.
    #[arg(long, global = true, default_value = "text", env = "DAMSELFLY_LOG_FORMAT")]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a local cluster (manager with console on SQLite, scheduler, seed peer, peers) in the
    /// foreground; Ctrl-C stops all of it.
    Up {
        /// Number of normal peers besides the seed peer.
        #[arg(long, default_value_t = 2)]
        peers: usize,
        /// Where databases, content, logs and cluster.json go.
        #[arg(long, default_value = ".damselfly")]
        data_dir: PathBuf,
        /// Directory with the manager, scheduler and dfdaemon binaries [default: this binary's].
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// The console bundle directory [default: the manager's default].
        #[arg(long)]
        site_root: Option<PathBuf>,
        /// A registry every dfdaemon's mirror stands for (`[proxy] registry_mirror`), so CRI-O,
        /// podman and skopeo pull through a peer with a `[[registry.mirror]]` of its proxy
        /// address, e.g. http://127.0.0.1:5000 [default: none; containerd names the registry
        /// itself].
        #[arg(long)]
        registry_mirror: Option<url::Url>,
    },
    /// Issue a scheduler's or dfdaemon's certificate from a CA directory, offline (for hosts
    /// that cannot enrol with a join token); prints the identity it names.
    Cert(cert::CertArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    runtime::init_logging(cli.log_format);
    let (peers, data_dir, bin_dir, site_root, registry_mirror) = match cli.command {
        Command::Up { peers, data_dir, bin_dir, site_root, registry_mirror } => {
            (peers, data_dir, bin_dir, site_root, registry_mirror)
        }
        Command::Cert(args) => {
            return match cert::issue(&args) {
                Ok(identity) => {
                    println!("{}", identity.uri());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("damselfly cert: {e:#}");
                    ExitCode::FAILURE
                }
            };
        }
    };
    if peers > 64 {
        eprintln!("damselfly: --peers {peers} is more than one machine should run (at most 64)");
        return ExitCode::from(2);
    }
    if let Some(url) = &registry_mirror
        && (!matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.path() != "/"
            || url.query().is_some()
            || !url.username().is_empty()
            || url.password().is_some())
    {
        eprintln!(
            "damselfly: --registry-mirror must be http:// or https:// with a host and no path, query or credentials"
        );
        return ExitCode::from(2);
    }
    let opts = match options(peers, data_dir, bin_dir, site_root, registry_mirror) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("damselfly: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match run(opts).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("damselfly: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn options(
    peers: usize,
    data_dir: PathBuf,
    bin_dir: Option<PathBuf>,
    site_root: Option<PathBuf>,
    registry_mirror: Option<url::Url>,
) -> anyhow::Result<UpOptions> {
    std::fs::create_dir_all(&data_dir)?;
    let data_dir = std::fs::canonicalize(&data_dir)?;
    let bin_dir = match bin_dir {
        Some(d) => d,
        None => std::env::current_exe()?
            .parent()
            .ok_or_else(|| anyhow::anyhow!("cannot tell this binary's directory"))?
            .to_owned(),
    };
    let root_password = std::env::var("DAMSELFLY_ROOT_PASSWORD").ok().filter(|p| !p.is_empty());
    Ok(UpOptions { data_dir, peers, bin_dir, site_root, root_password, registry_mirror })
}

async fn run(opts: UpOptions) -> anyhow::Result<ExitCode> {
    let _lock = lock_data_dir(&opts.data_dir)?;
    let shutdown = runtime::shutdown_on_signals()?;
    let mut children: Vec<Supervised> = Vec::new();
    let started = tokio::select! {
        r = cluster::up(&opts, &mut children) => r,
        _ = shutdown.cancelled() => Err(anyhow::anyhow!("interrupted during start-up")),
    };
    let code = match started {
        Ok(cluster) => {
            print_banner(&opts, &cluster);
            tokio::select! {
                _ = shutdown.cancelled() => ExitCode::SUCCESS,
                name = first_exit(&mut children) => {
                    eprintln!("damselfly: {name} exited unexpectedly; stopping the cluster (logs in {})",
                        opts.data_dir.join("logs").display());
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("damselfly: {e:#}");
            ExitCode::FAILURE
        }
    };
    for child in children.iter_mut().rev() {
        child.stop().await;
    }
    let _ = std::fs::remove_file(opts.data_dir.join("cluster.json"));
    eprintln!("damselfly: every process stopped");
    Ok(code)
}

/// Resolves with the name of the first child that exits.
async fn first_exit(children: &mut [Supervised]) -> String {
    let waits = children.iter_mut().map(|c| {
        Box::pin(async move {
            let _ = c.exited().await;
            c.name.clone()
        })
    });
    futures_select_all(waits).await
}

async fn futures_select_all<F: std::future::Future<Output = String> + Unpin>(futs: impl Iterator<Item = F>) -> String {
    let futs: Vec<F> = futs.collect();
    if futs.is_empty() {
        return std::future::pending().await;
    }
    let (name, _, _) = futures::future::select_all(futs).await;
    name
}

fn print_banner(opts: &UpOptions, cluster: &Cluster) {
    let f = &cluster.file;
    let password = match (&cluster.generated_password, &opts.root_password) {
        (Some(p), _) => format!("{p}   (generated; shown once)"),
        (None, Some(_)) => "(from DAMSELFLY_ROOT_PASSWORD)".into(),
        (None, None) => "(unchanged since this data dir was created)".into(),
    };
    let peer = f.peers.iter().find(|p| !p.seed).or(f.peers.first());
    let dfget = opts.bin_dir.join("dfget");
    println!();
    println!("Damselfly is running. Ctrl-C stops everything.");
    println!();
    println!("  Console      {}", f.manager.http);
    println!("  User         root");
    println!("  Password     {password}");
    println!("  Cluster      {}", opts.data_dir.join("cluster.json").display());
    println!("  Logs         {}", opts.data_dir.join("logs").display());
    if let Some(peer) = peer {
        println!();
        println!("Try a download through {}:", peer.name);
        println!(
            "  {} {}/pkg/console.css -O /tmp/damselfly-console.css --overwrite -e {}",
            dfget.display(),
            f.manager.http,
            peer.endpoint
        );
        if let Some(upstream) = &f.registry_mirror {
            println!();
            println!("Pull {upstream}'s images through {} (CRI-O, podman, skopeo):", peer.name);
            println!(
                "  skopeo copy --src-tls-verify=false docker://{}/<repository>:<tag> oci:/tmp/image",
                peer.proxy.trim_start_matches("http://")
            );
        }
    }
    println!();
}

/// Refuses to run two launchers on one data dir; the lock file holds the launcher's pid.
fn lock_data_dir(dir: &std::path::Path) -> anyhow::Result<LockFile> {
    let path = dir.join("launcher.pid");
    if let Ok(pid) = std::fs::read_to_string(&path)
        && let Ok(pid) = pid.trim().parse::<i32>()
        && pid != std::process::id() as i32
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
    {
        anyhow::bail!("another damselfly (pid {pid}) is running on {}", dir.display());
    }
    std::fs::write(&path, std::process::id().to_string())?;
    Ok(LockFile(path))
}

struct LockFile(PathBuf);

impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
