//! One supervised child process: spawned with its output in a log file, bound to die with the
//! launcher, and stopped with SIGTERM then SIGKILL.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use nix::{sys::signal::Signal, unistd::Pid};
use tokio::process::{Child, Command};

/// A child process the launcher owns.
#[derive(Debug)]
pub struct Supervised {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

/// How long a child may take to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

impl Supervised {
    /// Starts `program` with `args`; stdout and stderr go to `log`.
    pub fn spawn(
        name: &str,
        program: &Path,
        args: &[String],
        env: &[(&str, String)],
        log: PathBuf,
    ) -> anyhow::Result<Self> {
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            // Its own process group: a terminal's Ctrl-C reaches only the launcher, which then
            // stops the children in order.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches no memory of the parent.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGTERM).map_err(std::io::Error::from));
        }
        let child = cmd.spawn().map_err(|e| anyhow::anyhow!("cannot start {}: {e}", program.display()))?;
        Ok(Self { name: name.to_owned(), log, child })
    }

    /// The child's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits until the child exits on its own.
    pub async fn exited(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.child.wait().await
    }

    /// Whether it has exited, without waiting.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// SIGTERM, then SIGKILL after [`STOP_GRACE`].
    pub async fn stop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            if tokio::time::timeout(STOP_GRACE, self.child.wait()).await.is_err() {
                tracing::warn!(name = %self.name, "did not stop in time; killing");
                let _ = self.child.kill().await;
            }
        }
    }

    /// The last lines of its log, to explain a failure.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Waits for `child` to write its ready file, then for `GET http://<addr>/healthy` to answer 200.
pub async fn wait_ready(
    child: &mut Supervised,
    ready_file: &Path,
    health_key: &str,
    client: &reqwest::Client,
    timeout: Duration,
) -> anyhow::Result<BTreeMap<String, String>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut addrs: Option<BTreeMap<String, String>> = None;
    loop {
        if child.has_exited() {
            anyhow::bail!(
                "{} exited during start-up; last log lines ({}):\n{}",
                child.name,
                child.log.display(),
                child.log_tail(20)
            );
        }
        if addrs.is_none()
            && let Ok(bytes) = std::fs::read(ready_file)
        {
            addrs = serde_json::from_slice(&bytes).ok();
        }
        if let Some(a) = &addrs {
            let url = format!("http://{}/healthy", a.get(health_key).map(String::as_str).unwrap_or(""));
            if matches!(client.get(&url).send().await, Ok(r) if r.status().is_success()) {
                return Ok(a.clone());
            }
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!("{} was not healthy after {timeout:?}; see {}", child.name, child.log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
