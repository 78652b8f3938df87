//! Bringing up the cluster in order and describing it in `cluster.json`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::Serialize;

use crate::{
    join::Joiner,
    process::{Supervised, wait_ready},
};

/// What `damselfly up` was asked for.
#[derive(Debug, Clone)]
pub struct UpOptions {
    pub data_dir: PathBuf,
    pub peers: usize,
    pub bin_dir: PathBuf,
    pub site_root: Option<PathBuf>,
    pub root_password: Option<String>,
    /// Every dfdaemon's `[proxy] registry_mirror`, given as a flag so that it follows the
    /// launcher's command line rather than a config file written on the first start.
    pub registry_mirror: Option<url::Url>,
}

/// The contents of `<data dir>/cluster.json`.
#[derive(Debug, Serialize)]
pub struct ClusterFile {
    pub data_dir: PathBuf,
    pub manager: ManagerEntry,
    pub scheduler: SchedulerEntry,
    pub peers: Vec<PeerEntry>,
    /// The registry each peer's mirror stands for (`--registry-mirror`), when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry_mirror: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ManagerEntry {
    /// Base URL of the REST API and console.
    pub http: String,
    /// gRPC `host:port`.
    pub grpc: String,
}

#[derive(Debug, Serialize)]
pub struct SchedulerEntry {
    /// gRPC `host:port`.
    pub grpc: String,
    /// Base URL of `/healthy` and `/metrics`.
    pub http: String,
}

#[derive(Debug, Serialize)]
pub struct PeerEntry {
    pub name: String,
    pub seed: bool,
    /// What `dfget --endpoint` takes: the download socket's path.
    pub endpoint: String,
    /// Piece transport `host:port`.
    pub upload: String,
    /// HTTP proxy and registry mirror, as a URL for `HTTP_PROXY` or containerd's hosts.toml.
    pub proxy: String,
    /// Base URL of `/healthy` and `/metrics`.
    pub http: String,
    pub pid: u32,
}

/// A running cluster's description.
#[derive(Debug)]
pub struct Cluster {
    pub file: ClusterFile,
    /// The generated root password, when this start created the root user with one.
    pub generated_password: Option<String>,
}

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The manager's configuration on a first start (addresses and the data directory come as flags).
const MANAGER_TOML: &str = "\
# Written by `damselfly up` on the first start; edit it and run `damselfly up` again.
# Every key and its default: the manager's configuration in the README.

[auth]
# Anyone who reaches this local console may make an account (the manager's default is false:
# platform administrators create accounts with POST /api/v1/users).
allow_signup = true

[grpc]
# A local cluster keeps its schedulers' figures every 10 s (the default is 60), so the
# console's overview charts fill in while you watch.
sample_interval_secs = 10
";

/// Each dfdaemon's configuration on a first start (addresses and names come as flags).
const DFDAEMON_TOML: &str = "\
# Written by `damselfly up` on the first start; edit it and run `damselfly up` again.
# Every key and its default: the dfdaemon's configuration in the README.

[proxy]
# The local cluster's origins (the manager, your own test servers) listen on loopback: let
# proxy requests and seed orders reach them, which a dfdaemon refuses by default.
allowed_private_networks = [\"127.0.0.0/8\", \"::1/128\"]
";

/// Starts manager, scheduler, a seed peer and `peers` peers; on error, stops what it started.
pub async fn up(opts: &UpOptions, children: &mut Vec<Supervised>) -> anyhow::Result<Cluster> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let run_dir = opts.data_dir.join("run");
    let log_dir = opts.data_dir.join("logs");
    for dir in [&run_dir, &log_dir] {
        std::fs::create_dir_all(dir)?;
    }
    let loopback = "127.0.0.1:0".to_string();

    // Manager. A first start gets a root password: the given one, else a generated one.
    let manager_dir = opts.data_dir.join("manager");
    let first_start = !manager_dir.join("manager.db").exists();
    let generated = (first_start && opts.root_password.is_none()).then(server::password::generate);
    let mut env = Vec::new();
    if let Some(p) = opts.root_password.clone().or_else(|| generated.clone()) {
        env.push(("DAMSELFLY_ROOT_PASSWORD", p));
    }
    // The manager's configuration file, written once so the operator may edit it.
    std::fs::create_dir_all(&manager_dir)?;
    let manager_config = manager_dir.join("manager.toml");
    if !manager_config.exists() {
        std::fs::write(&manager_config, MANAGER_TOML)?;
    }
    let mut args = vec![
        "--config".into(),
        manager_config.display().to_string(),
        "--data-dir".into(),
        manager_dir.display().to_string(),
        "--http-addr".into(),
        loopback.clone(),
        "--grpc-addr".into(),
        loopback.clone(),
    ];
    if let Some(site) = &opts.site_root {
        args.extend(["--site-root".into(), site.display().to_string()]);
    }
    let manager = start(opts, children, "manager", "manager", args, &env, &client, &run_dir, &log_dir).await?;
    // gRPC is mutual TLS: components without a kept certificate enrol with a join token.
    let password = opts.root_password.clone().or_else(|| generated.clone());
    let mut joiner = Joiner::new(&client, format!("http://{}", manager["http"]), password);
    let scheduler_tls = opts.data_dir.join("scheduler").join("tls");
    let scheduler_env = joiner.env_for(&scheduler_tls, "scheduler", "scheduler").await?;

    let scheduler = start(
        opts,
        children,
        "scheduler",
        "scheduler",
        // It registers with the manager and keeps alive there (cluster 1, the default cluster).
        vec![
            "--grpc-addr".into(),
            loopback.clone(),
            "--http-addr".into(),
            loopback.clone(),
            "--manager".into(),
            manager["grpc"].clone(),
            "--tls-dir".into(),
            scheduler_tls.display().to_string(),
        ],
        &scheduler_env,
        &client,
        &run_dir,
        &log_dir,
    )
    .await?;

    let mut peers = Vec::new();
    for i in 0..=opts.peers {
        let (name, seed) = if i == 0 { ("seed-peer".to_string(), true) } else { (format!("peer-{i}"), false) };
        let peer_dir = opts.data_dir.join("peers").join(&name);
        std::fs::create_dir_all(&peer_dir)?;
        let peer_config = peer_dir.join("dfdaemon.toml");
        if !peer_config.exists() {
            std::fs::write(&peer_config, DFDAEMON_TOML)?;
        }
        let mut args = vec![
            "--config".into(),
            peer_config.display().to_string(),
            "--data-dir".into(),
            peer_dir.display().to_string(),
            "--hostname".into(),
            name.clone(),
            "--http-addr".into(),
            loopback.clone(),
            "--upload-addr".into(),
            loopback.clone(),
            "--proxy-addr".into(),
            loopback.clone(),
            // The manager names the schedulers; the static one serves until it first answers.
            "--manager".into(),
            manager["grpc"].clone(),
            "--scheduler".into(),
            scheduler["grpc"].clone(),
        ];
        if seed {
            args.push("--seed".into());
        }
        if let Some(upstream) = &opts.registry_mirror {
            args.extend(["--registry-mirror".into(), upstream.as_str().trim_end_matches('/').to_owned()]);
        }
        let role = if seed { "seed_peer" } else { "peer" };
        let env = joiner.env_for(&peer_dir.join("tls"), role, &name).await?;
        let addrs = start(opts, children, &name, "dfdaemon", args, &env, &client, &run_dir, &log_dir).await?;
        let pid = children.last().and_then(Supervised::pid).unwrap_or_default();
        peers.push(PeerEntry {
            name,
            seed,
            endpoint: addrs["socket"].clone(),
            upload: addrs["upload"].clone(),
            proxy: format!("http://{}", addrs["proxy"]),
            http: format!("http://{}", addrs["http"]),
            pid,
        });
    }

    let file = ClusterFile {
        data_dir: opts.data_dir.clone(),
        manager: ManagerEntry { http: format!("http://{}", manager["http"]), grpc: manager["grpc"].clone() },
        scheduler: SchedulerEntry { grpc: scheduler["grpc"].clone(), http: format!("http://{}", scheduler["http"]) },
        peers,
        registry_mirror: opts.registry_mirror.as_ref().map(|u| u.as_str().trim_end_matches('/').to_owned()),
    };
    let path = opts.data_dir.join("cluster.json");
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(&file)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(Cluster { file, generated_password: generated })
}

#[allow(clippy::too_many_arguments)]
async fn start(
    opts: &UpOptions,
    children: &mut Vec<Supervised>,
    name: &str,
    binary: &str,
    mut args: Vec<String>,
    env: &[(&str, String)],
    client: &reqwest::Client,
    run_dir: &Path,
    log_dir: &Path,
) -> anyhow::Result<BTreeMap<String, String>> {
    let ready = run_dir.join(format!("{name}.json"));
    let _ = std::fs::remove_file(&ready);
    args.extend(["--ready-file".into(), ready.display().to_string()]);
    let program = opts.bin_dir.join(binary);
    if !program.is_file() {
        anyhow::bail!("{} not found; build the workspace first (`make build`)", program.display());
    }
    let mut child = Supervised::spawn(name, &program, &args, env, log_dir.join(format!("{name}.log")))?;
    let result = wait_ready(&mut child, &ready, "http", client, START_TIMEOUT).await;
    children.push(child);
    let addrs = result?;
    tracing::info!(%name, "healthy");
    Ok(addrs)
}
