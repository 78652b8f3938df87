//! The manager part: `n` simulated dfdaemons, each a TLS connection with its own peer
//! certificate, register (`ListSchedulers` upserts the peer's row) and then hold a `KeepAlive`
//! stream, sending one message per `interval` (a dfdaemon's default, 5 s), their phases spread
//! evenly over the interval. Over a window in the steady state, the manager's CPU time and the
//! database's work are divided by the keepalives sent.
//!
//! Database load: on PostgreSQL, `pg_stat_database` of a database of the bench's own
//! (transactions committed, rows updated and read; every statement outside a transaction is one
//! transaction), read with `psql`; on SQLite, which counts nothing, the bytes the manager
//! process wrote to storage (`/proc/<pid>/io`, the WAL and the database file).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use proto::manager::v1 as pb;
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::process::{Proc, Usage};

type Client = pb::manager_client::ManagerClient<Channel>;

/// The simulated dfdaemon `i`'s hostname.
pub fn hostname(i: usize) -> String {
    format!("kpeer-{i:05}")
}

/// What one window measured.
#[derive(Debug, Default)]
pub struct Window {
    pub secs: f64,
    pub keepalives: u64,
    pub cpu_secs: f64,
    pub write_bytes: u64,
    /// PostgreSQL only: transactions committed, rows updated, rows fetched.
    pub pg: Option<[f64; 3]>,
    pub rss: u64,
    /// Registration (`ListSchedulers`) of every peer, seconds.
    pub register_secs: f64,
    pub errors: u64,
}

/// Registers `channels.len()` peers, holds their keepalives, and measures a `window` after a
/// warm-up of one interval past the last stream's start.
pub async fn run(
    manager: &Proc,
    channels: &[Channel],
    interval: Duration,
    window: Duration,
    pg_db: Option<&str>,
) -> anyhow::Result<Window> {
    let started = Instant::now();
    let clients: Vec<Client> = channels.iter().map(|c| Client::new(c.clone())).collect();
    let mut set = tokio::task::JoinSet::new();
    let at_once = Arc::new(tokio::sync::Semaphore::new(64));
    for (i, client) in clients.iter().enumerate() {
        let (mut client, at_once) = (client.clone(), at_once.clone());
        set.spawn(async move {
            let _slot = at_once.acquire_owned().await;
            let r = pb::ListSchedulersRequest {
                hostname: hostname(i),
                ip: "127.0.0.1".into(),
                download_port: 4000,
                version: "sim".into(),
                ..Default::default()
            };
            client.list_schedulers(r).await.map(|r| r.into_inner().cluster_id)
        });
    }
    let mut cluster_id = 0;
    while let Some(r) = set.join_next().await {
        cluster_id = r??;
    }
    let register_secs = started.elapsed().as_secs_f64();

    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let n = clients.len();
    let mut streams = tokio::task::JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let (sent, errors) = (sent.clone(), errors.clone());
        let phase = interval.mul_f64(i as f64 / n as f64);
        streams.spawn(async move {
            let mut client = client;
            let (tx, rx) = mpsc::channel(1);
            let message = pb::KeepAliveRequest {
                source_type: pb::SourceType::Peer as i32,
                hostname: hostname(i),
                ip: "127.0.0.1".into(),
                cluster_id,
                ..Default::default()
            };
            let sender = async move {
                let mut at = t0 + phase;
                loop {
                    tokio::time::sleep_until(at).await;
                    if tx.send(message.clone()).await.is_err() {
                        return;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    at += interval;
                }
            };
            tokio::select! {
                () = sender => {}
                r = client.keep_alive(ReceiverStream::new(rx)) => if r.is_err() { errors.fetch_add(1, Ordering::Relaxed); },
            }
        });
    }
    // Every stream has started after one interval; one more for the manager to settle.
    tokio::time::sleep(interval * 2).await;
    let (u0, k0, pg0) = (manager.usage()?, sent.load(Ordering::Relaxed), pg_stats(pg_db));
    let w0 = Instant::now();
    tokio::time::sleep(window).await;
    let (u1, k1, pg1) = (manager.usage()?, sent.load(Ordering::Relaxed), pg_stats(pg_db));
    let secs = w0.elapsed().as_secs_f64();
    streams.abort_all();
    let delta = |a: Usage, b: Usage| (b.cpu_secs - a.cpu_secs, b.write_bytes.saturating_sub(a.write_bytes));
    let (cpu_secs, write_bytes) = delta(u0, u1);
    let pg = match (pg0, pg1) {
        (Some(a), Some(b)) => Some([b[0] - a[0], b[1] - a[1], b[2] - a[2]]),
        _ => None,
    };
    Ok(Window {
        secs,
        keepalives: k1 - k0,
        cpu_secs,
        write_bytes,
        pg,
        rss: u1.rss,
        register_secs,
        errors: errors.load(Ordering::Relaxed),
    })
}

/// `xact_commit`, `tup_updated`, `tup_fetched` of database `db`, read with `psql`.
fn pg_stats(db: Option<&str>) -> Option<[f64; 3]> {
    let db = db?;
    // Backends flush their statistics about once a second: over a window of tens of seconds
    // the edges are small, and this reading counts itself once.
    let sql = "select xact_commit, tup_updated, tup_fetched from pg_stat_database where datname = current_database()";
    let out = psql(db, sql).ok()?;
    let v: Vec<f64> = out.trim().split('|').filter_map(|f| f.parse().ok()).collect();
    (v.len() == 3).then(|| [v[0], v[1], v[2]])
}

/// Runs one statement with `psql` as `postgres` on 127.0.0.1; answers its unaligned output.
pub fn psql(db: &str, sql: &str) -> anyhow::Result<String> {
    let out = std::process::Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", db, "-Atc", sql])
        .output()?;
    anyhow::ensure!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
