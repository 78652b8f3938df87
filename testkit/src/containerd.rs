//! A real containerd for the tests: Debian's `containerd` (1.6) with its own root, state and
//! socket under a temp directory, the native snapshotter and no CRI plugin, so a test pulls
//! images with the real `ctr` exactly as a node's runtime would, without touching the machine's
//! containerd (if any).
//!
//! Each [`Containerd`] is one node's runtime: its content store is its own. (Namespaces of one
//! daemon share the content store, so a second pull in another namespace fetches nothing.)
//! Dropping it kills the daemon.
//!
//! [`HostsDir`] writes containerd's `hosts.toml` files (`ctr --hosts-dir`), the way an operator
//! points containerd at a dfdaemon mirror.

use std::{
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::process::{Child, Command};

/// A running containerd; dropping it kills the daemon.
pub struct Containerd {
    /// Its gRPC socket (`ctr --address`).
    pub socket: PathBuf,
    dir: tempfile::TempDir,
    _child: Child,
}

impl Containerd {
    /// Starts a containerd in a fresh temp directory and waits until `ctr version` answers.
    pub async fn start() -> Self {
        crate::registry::require("containerd");
        crate::registry::require("ctr");
        // A short path: the socket's path must fit in a sockaddr_un.
        let dir = tempfile::Builder::new().prefix("ctrd").tempdir_in("/tmp").unwrap();
        let socket = dir.path().join("c.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = {root:?}\nstate = {state:?}\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = {socket:?}\n",
                root = dir.path().join("root").display().to_string(),
                state = dir.path().join("state").display().to_string(),
                socket = socket.display().to_string(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("containerd failed to start");
        let me = Self { socket, dir, _child: child };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let out = me.ctr().arg("version").output().await.unwrap();
            if out.status.success() {
                return me;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "containerd did not come up: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                me.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `ctr --address <socket>`, ready for its subcommand.
    pub fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(&self.socket).stdin(Stdio::null());
        cmd
    }

    /// `ctr -n test images pull --hosts-dir <hosts> [--user <creds>] <reference>`.
    pub async fn pull(&self, hosts: &Path, creds: Option<&str>, reference: &str) -> std::process::Output {
        let mut cmd = self.ctr();
        cmd.args(["-n", "test", "images", "pull", "--hosts-dir"]).arg(hosts);
        if let Some(creds) = creds {
            cmd.arg("--user").arg(creds);
        }
        cmd.arg(reference).output().await.unwrap()
    }

    /// The daemon's log so far, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

/// One mirror in a `hosts.toml`: where it is and the headers containerd adds.
#[derive(Debug, Clone)]
pub struct MirrorHost {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Extra request headers (e.g. `X-Dragonfly-Registry`).
    pub headers: Vec<(String, String)>,
}

/// A `--hosts-dir`: one `<registry>/hosts.toml` (or `_default/hosts.toml`) per entry.
pub struct HostsDir {
    dir: tempfile::TempDir,
}

impl HostsDir {
    /// An empty hosts directory.
    pub fn new() -> Self {
        Self { dir: tempfile::Builder::new().prefix("hosts").tempdir().unwrap() }
    }

    /// Its path (`ctr --hosts-dir`).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `<namespace>/hosts.toml` (`namespace` is `host:port` or `_default`): `server` is
    /// where containerd goes when every mirror failed, then `mirror` with pull and resolve.
    pub fn write(&self, namespace: &str, server: &str, mirror: &MirrorHost) {
        let mut text = format!(
            "server = {server:?}\n\n[host.{url:?}]\n  capabilities = [\"pull\", \"resolve\"]\n",
            url = mirror.url
        );
        if !mirror.headers.is_empty() {
            text.push_str(&format!("  [host.{:?}.header]\n", mirror.url));
            for (name, value) in &mirror.headers {
                text.push_str(&format!("    {name} = {value:?}\n"));
            }
        }
        let dir = self.dir.path().join(namespace);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts.toml"), text).unwrap();
    }
}

impl Default for HostsDir {
    fn default() -> Self {
        Self::new()
    }
}
