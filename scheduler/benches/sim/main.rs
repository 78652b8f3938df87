//! `make bench-scheduler`: one release scheduler under 1k, 5k and 10k simulated peers over real
//! gRPC and mutual TLS, then one release manager holding 10k peers' keepalives.
//!
//! A `[[bench]]` with `harness = false` of the scheduler crate, not a binary: it ships in no
//! release, builds only with `cargo bench`, and uses the crates the scheduler already depends on
//! (`proto`'s clients, `common::tls`). It starts the measured servers as separate processes from
//! `target/release`, so their CPU and memory are theirs alone (`/proc/<pid>`), and prints tables.
//!
//! - `pki`: a CA per run and one certificate per simulated host (the servers bind a caller to
//!   the host its certificate names, so hosts cannot share one);
//! - `swarm`: the scheduler's peers, and the two decision latencies;
//! - `keepalive`: the manager's peers, and CPU and database work per keepalive;
//! - `process`: starting the binaries, `/proc` readings, `/metrics`;
//! - `stats`: percentiles and metric parsing.

mod keepalive;
mod pki;
mod process;
mod stats;
mod swarm;

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use clap::Parser;
use common::{
    ids::HostId,
    tls::{Component, Expect},
};

use crate::{
    process::{Proc, subdir, usage},
    stats::{histogram_quantile, metric, mib, p50_p99},
};

/// Scheduler and manager benchmark (see scheduler/benches/sim/README.md).
#[derive(Debug, Parser)]
struct Args {
    /// Simulated peers (downloads) per scheduler run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000")]
    peers: Vec<usize>,
    /// Runs of each point.
    #[arg(long, default_value_t = 2)]
    reps: usize,
    /// Peers of one task.
    #[arg(long, default_value_t = 100)]
    peers_per_task: usize,
    /// Tasks per image, so peers per host (1: one TLS connection per peer).
    #[arg(long, default_value_t = 10)]
    layers: usize,
    /// Pieces per task (4 MiB each).
    #[arg(long, default_value_t = 16)]
    pieces: u32,
    /// Mean milliseconds a peer takes per piece from its parents.
    #[arg(long, default_value_t = 1000)]
    piece_ms: u64,
    /// Milliseconds the source takes per piece from the origin.
    #[arg(long, default_value_t = 100)]
    origin_ms: u64,
    /// Seconds over which downloaders arrive.
    #[arg(long, default_value_t = 20)]
    ramp_secs: u64,
    /// A scheduler run stops after this many seconds, finished or not.
    #[arg(long, default_value_t = 90)]
    deadline_secs: u64,
    /// Concurrent uploads each simulated host announces.
    #[arg(long, default_value_t = 16)]
    upload_limit: u32,
    /// Peers keeping alive with the manager (0: skip the manager part).
    #[arg(long, default_value_t = 10_000)]
    manager_peers: usize,
    /// Seconds between a peer's keepalives (the dfdaemon's default).
    #[arg(long, default_value_t = 5)]
    keepalive_secs: u64,
    /// Seconds of the manager's measured window.
    #[arg(long, default_value_t = 30)]
    window_secs: u64,
    /// Also run the manager on PostgreSQL (postgres@127.0.0.1:5432, a database of its own).
    #[arg(long)]
    postgres: bool,
    /// Skip the scheduler part.
    #[arg(long)]
    manager_only: bool,
    /// Directory of the release binaries.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release"))]
    bin_dir: PathBuf,
    /// `cargo bench` passes this; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let root = tempfile::Builder::new().prefix("damselfly-bench-scheduler").tempdir()?;
    println!(
        "machine: {} cores, {}; simulator and servers share it (simulator pid {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model(),
        std::process::id()
    );
    if !args.manager_only {
        scheduler_part(&args, root.path()).await?;
    }
    if args.manager_peers > 0 {
        manager_part(&args, root.path()).await?;
    }
    Ok(())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name").map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned()))
        })
        .unwrap_or_default()
}

/// One scheduler run's figures.
struct Row {
    peers: usize,
    rep: usize,
    hosts: usize,
    out: swarm::Outcome,
    announce_secs: f64,
    /// Scheduler CPU over the swarm, seconds, and the swarm's length.
    cpu_secs: f64,
    swarm_secs: f64,
    peak_rss: u64,
    end_rss: u64,
    sim_cpu_secs: f64,
    page: String,
}

async fn scheduler_part(args: &Args, root: &Path) -> anyhow::Result<()> {
    let bin = args.bin_dir.join("scheduler");
    let mut rows = Vec::new();
    for &peers in &args.peers {
        let shape = swarm::Shape {
            peers,
            peers_per_task: args.peers_per_task,
            layers: args.layers,
            pieces: args.pieces,
            piece_len: 4 << 20,
            piece_interval: Duration::from_millis(args.piece_ms),
            origin_interval: Duration::from_millis(args.origin_ms),
            lead: Duration::from_secs(1),
            ramp: Duration::from_secs(args.ramp_secs),
            upload_limit: args.upload_limit,
            deadline: Duration::from_secs(args.deadline_secs),
        };
        shape.check()?;
        for rep in 1..=args.reps {
            let row = scheduler_run(&bin, root, &shape, rep).await?;
            print_row(&row);
            rows.push(row);
        }
    }
    println!();
    println!(
        "scheduler: {} peers per task, {} tasks per host, {} pieces, a piece per {} ms per peer; mTLS, one connection per host",
        args.peers_per_task, args.layers, args.pieces, args.piece_ms
    );
    println!(
        "{:>6} {:>6} {:>3} | {:>17} | {:>17} | {:>17} | {:>9} | {:>6} {:>6} {:>7} | {:>9} | {:>8} | {:>6} {:>7}",
        "peers",
        "hosts",
        "run",
        "register→update",
        "register→parents",
        "report→update",
        "reports/s",
        "CPU",
        "RSS",
        "CPU/rep",
        "done",
        "announce",
        "sim",
        "sim lag"
    );
    println!(
        "{:>6} {:>6} {:>3} | {:>17} | {:>17} | {:>17} | {:>9} | {:>6} {:>6} {:>7} | {:>9} | {:>8} | {:>6} {:>7}",
        "",
        "",
        "",
        "p50 / p99 ms",
        "p50 / p99 ms",
        "p50 / p99 ms",
        "",
        "cores",
        "MiB",
        "µs",
        "of peers",
        "s",
        "cores",
        "p99 ms"
    );
    for r in &mut rows {
        let lag = stats::quantile_ms(&mut r.out.sim_lag, 0.99).unwrap_or(0.0);
        println!(
            "{:>6} {:>6} {:>3} | {:>17} | {:>17} | {:>17} | {:>9.0} | {:>6.2} {:>6.0} {:>7.0} | {:>9} | {:>8.1} | {:>6.2} {:>7.1}",
            r.peers,
            r.hosts,
            r.rep,
            p50_p99(&mut r.out.first_update),
            p50_p99(&mut r.out.register),
            p50_p99(&mut r.out.report),
            r.out.reports as f64 / r.swarm_secs,
            r.cpu_secs / r.swarm_secs,
            mib(r.peak_rss),
            r.cpu_secs / r.out.reports.max(1) as f64 * 1e6,
            format!("{}/{}", r.out.finished, r.out.finished + r.out.unfinished),
            r.announce_secs,
            r.sim_cpu_secs / r.swarm_secs,
            lag,
        );
    }
    println!();
    println!("where the scheduler's time goes (its /metrics; parent computation is timed under the task's lock):");
    println!(
        "{:>6} {:>3} | {:>8} | {:>9} {:>10} {:>8} {:>12} | {:>9} | {:>10}",
        "peers", "run", "CPU s", "decisions", "per report", "mean µs", "p99 bucket", "share", "end RSS"
    );
    for r in &rows {
        let sum = metric(&r.page, "damselfly_scheduler_schedule_duration_seconds_sum");
        let count = metric(&r.page, "damselfly_scheduler_schedule_duration_seconds_count");
        let p99 = histogram_quantile(&r.page, "damselfly_scheduler_schedule_duration_seconds", 0.99);
        println!(
            "{:>6} {:>3} | {:>8.1} | {:>9.0} {:>10.1} {:>8.1} {:>12} | {:>8.0}% | {:>6.0} MiB",
            r.peers,
            r.rep,
            r.cpu_secs,
            count,
            count / r.out.reports.max(1) as f64,
            if count > 0.0 { sum / count * 1e6 } else { 0.0 },
            p99.map_or("-".into(), |s| format!("≤ {:.2} ms", s * 1e3)),
            100.0 * sum / r.cpu_secs.max(1e-9),
            mib(r.end_rss),
        );
    }
    Ok(())
}

fn print_row(r: &Row) {
    let errors = r.out.first_error.as_deref().map(|e| format!(", first error: {e}")).unwrap_or_default();
    eprintln!(
        "  scheduler {} peers run {}: {} reports, {} updates, {} finished, {} unfinished, {} errors{errors}, swarm {:.1} s",
        r.peers, r.rep, r.out.reports, r.out.updates, r.out.finished, r.out.unfinished, r.out.errors, r.swarm_secs
    );
}

async fn scheduler_run(bin: &Path, root: &Path, shape: &swarm::Shape, rep: usize) -> anyhow::Result<Row> {
    let dir = subdir(root, &format!("scheduler-{}-{rep}", shape.peers))?;
    let ca = pki::ca(&dir.join("ca"))?;
    let me = HostId::for_host("bench-scheduler", "127.0.0.1", false);
    let tls = pki::server_files(&ca, &dir.join("tls"), Component::Scheduler, &me)?;
    let config = dir.join("scheduler.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\ngrpc_addr = \"127.0.0.1:0\"\nhttp_addr = \"127.0.0.1:0\"\n\n\
             [host]\nhostname = \"bench-scheduler\"\nip = \"127.0.0.1\"\n\n\
             [manager]\naddr = \"\"\ncluster_id = {}\n\n{tls}",
            pki::CLUSTER
        ),
    )?;
    let sched = Proc::start(bin, &config, &dir, &[])?;
    let hosts: Vec<HostId> = (0..shape.hosts()).map(swarm::host_id).collect();
    let configs = pki::clients(&ca, &hosts, Expect::scheduler(Some(pki::CLUSTER)))?;
    let channels = configs
        .into_iter()
        .map(|c| common::tls::channel(&sched.grpc, c, Duration::from_secs(30)))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let clients = swarm::announce(&channels, shape).await?;
    let announce_secs = started.elapsed().as_secs_f64();
    let (u0, s0) = (sched.usage()?, usage(std::process::id())?);
    let began = Instant::now();
    let out = swarm::run(&clients, shape).await;
    let swarm_secs = began.elapsed().as_secs_f64();
    let (u1, s1) = (sched.usage()?, usage(std::process::id())?);
    let page = sched.metrics().await?;
    Ok(Row {
        peers: shape.peers,
        rep,
        hosts: shape.hosts(),
        out,
        announce_secs,
        cpu_secs: u1.cpu_secs - u0.cpu_secs,
        swarm_secs,
        peak_rss: u1.peak_rss,
        end_rss: u1.rss,
        sim_cpu_secs: s1.cpu_secs - s0.cpu_secs,
        page,
    })
}

async fn manager_part(args: &Args, root: &Path) -> anyhow::Result<()> {
    let mut backends = vec![("sqlite", None)];
    if args.postgres {
        backends.push(("postgres", Some("damselfly_bench_scheduler")));
    }
    let mut windows = Vec::new();
    for (name, pg) in backends {
        for rep in 1..=args.reps {
            let w = manager_run(args, root, name, pg, rep).await?;
            eprintln!(
                "  manager {name} run {rep}: {} keepalives in {:.1} s, {} stream errors, registered in {:.1} s",
                w.keepalives, w.secs, w.errors, w.register_secs
            );
            windows.push((name, rep, w));
        }
    }
    println!();
    println!(
        "manager: {} peers keeping alive every {} s (one mTLS connection each), measured over {} s",
        args.manager_peers, args.keepalive_secs, args.window_secs
    );
    println!(
        "{:>8} {:>3} | {:>12} | {:>10} | {:>7} | {:>8} {:>9} {:>9} | {:>10} | {:>6} | {:>8}",
        "database",
        "run",
        "keepalives/s",
        "CPU µs/ka",
        "CPU %",
        "xacts/ka",
        "rows upd",
        "rows read",
        "KiB wr/ka",
        "RSS",
        "register"
    );
    for (name, rep, w) in &windows {
        let per = |x: f64| x / w.keepalives.max(1) as f64;
        let pg = |i: usize| w.pg.map_or("-".into(), |v| format!("{:.2}", per(v[i])));
        println!(
            "{:>8} {:>3} | {:>12.0} | {:>10.0} | {:>6.1}% | {:>8} {:>9} {:>9} | {:>10.2} | {:>6.0} | {:>6.1} s",
            name,
            rep,
            w.keepalives as f64 / w.secs,
            per(w.cpu_secs) * 1e6,
            100.0 * w.cpu_secs / w.secs,
            pg(0),
            pg(1),
            pg(2),
            per(w.write_bytes as f64) / 1024.0,
            mib(w.rss),
            w.register_secs,
        );
    }
    Ok(())
}

async fn manager_run(
    args: &Args,
    root: &Path,
    backend: &str,
    pg: Option<&str>,
    rep: usize,
) -> anyhow::Result<keepalive::Window> {
    let dir = subdir(root, &format!("manager-{backend}-{rep}"))?;
    let ca_dir = dir.join("ca");
    let ca = pki::ca(&ca_dir)?;
    let url = match pg {
        Some(db) => {
            keepalive::psql("postgres", &format!("drop database if exists {db} with (force)"))?;
            keepalive::psql("postgres", &format!("create database {db}"))?;
            format!("postgres://postgres@127.0.0.1:5432/{db}")
        }
        None => String::new(),
    };
    let config = dir.join("manager.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n\n[server]\nhttp_addr = \"127.0.0.1:0\"\ngrpc_addr = \"127.0.0.1:0\"\n\n\
             [database]\nurl = {url:?}\n\n[console]\nsite_root = {:?}\n\n\
             [tls]\nca_cert = {:?}\nca_key = {:?}\n",
            dir.join("data"),
            dir.join("no-site"),
            ca_dir.join("ca.crt"),
            ca_dir.join("ca.key"),
        ),
    )?;
    let manager = Proc::start(&args.bin_dir.join("manager"), &config, &dir, &[])?;
    let hosts: Vec<HostId> =
        (0..args.manager_peers).map(|i| HostId::for_host(&keepalive::hostname(i), "127.0.0.1", false)).collect();
    let configs = pki::clients(&ca, &hosts, Expect::MANAGER)?;
    let channels = configs
        .into_iter()
        .map(|c| common::tls::channel(&manager.grpc, c, Duration::from_secs(30)))
        .collect::<Result<Vec<_>, _>>()?;
    let window = keepalive::run(
        &manager,
        &channels,
        Duration::from_secs(args.keepalive_secs),
        Duration::from_secs(args.window_secs),
        pg,
    )
    .await?;
    drop(manager);
    if let Some(db) = pg {
        let _ = keepalive::psql("postgres", &format!("drop database if exists {db} with (force)"));
    }
    Ok(window)
}
