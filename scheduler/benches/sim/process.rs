//! The measured processes: a release binary started with a configuration file, its addresses
//! read from its ready file, its CPU, memory and writes read from `/proc`, its `/metrics` read
//! over plain HTTP/1.0 (no HTTP client in the scheduler's dependencies).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Linux's `USER_HZ`: `/proc/<pid>/stat` counts CPU time in these.
const TICKS_PER_SEC: f64 = 100.0;

/// A running binary; killed when dropped.
pub struct Proc {
    child: Child,
    pub grpc: String,
    pub http: String,
}

impl Proc {
    /// Starts `bin -c config --ready-file …` with its log in `dir`, and waits until it serves.
    pub fn start(bin: &Path, config: &Path, dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let ready = dir.join("ready.json");
        let log = std::fs::File::create(dir.join("log.txt"))?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(config)
            .arg("--ready-file")
            .arg(&ready)
            .args(extra)
            .env("RUST_LOG", std::env::var("SIM_SERVER_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting {}: {e}", bin.display()))?;
        let mut p = Self { child, grpc: String::new(), http: String::new() };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(text) = std::fs::read_to_string(&ready)
                && let (Some(grpc), Some(http)) = (json_field(&text, "grpc"), json_field(&text, "http"))
            {
                (p.grpc, p.http) = (grpc, http);
                return Ok(p);
            }
            if let Some(status) = p.child.try_wait()? {
                anyhow::bail!("{} exited with {status}; see {}", bin.display(), dir.join("log.txt").display());
            }
            if Instant::now() > deadline {
                anyhow::bail!("{} did not start within a minute", bin.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// CPU time (user + system) and memory now.
    pub fn usage(&self) -> anyhow::Result<Usage> {
        usage(self.pid())
    }

    /// `GET /metrics` on its HTTP port.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        http_get(&self.http, "/metrics").await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What `/proc` says of a process at one instant.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// User + system CPU, seconds.
    pub cpu_secs: f64,
    /// Resident set now and at its peak, bytes.
    pub rss: u64,
    pub peak_rss: u64,
    /// Bytes it caused to be written to storage.
    pub write_bytes: u64,
}

/// [`Usage`] of any process (the simulator's own: `std::process::id()`).
pub fn usage(pid: u32) -> anyhow::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3 (state).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime is field 14, stime 15; `fields[0]` is field 3.
    let cpu_secs = (ticks(11) + ticks(12)) / TICKS_PER_SEC;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    let write_bytes =
        io.lines().find_map(|l| l.strip_prefix("write_bytes:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    Ok(Usage { cpu_secs, rss: kib("VmRSS:"), peak_rss: kib("VmHWM:"), write_bytes })
}

/// The string value of `"key":"value"` in a flat JSON object.
fn json_field(text: &str, key: &str) -> Option<String> {
    let start = text.find(&format!("\"{key}\""))? + key.len() + 2;
    let rest = text[start..].trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_owned())
}

/// A body over HTTP/1.0 (the connection closes after it).
pub async fn http_get(addr: &str, path: &str) -> anyhow::Result<String> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await?;
    let mut out = String::new();
    tcp.read_to_string(&mut out).await?;
    Ok(out.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default())
}

/// A fresh directory under `root`.
pub fn subdir(root: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
