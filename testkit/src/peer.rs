//! A dfdaemon in-process ([`PeerBuilder`] → [`TestPeer`]): its unix socket, HTTP, upload and
//! proxy listeners on loopback, its data in a directory the test owns, and the local download
//! API as `dfget` calls it ([`TestPeer::download`], [`TestPeer::dfget`]).

use std::path::{Path, PathBuf};

use peer::{
    Dfdaemon, Listeners,
    config::{DfdaemonConfig, Overrides},
};
use proto::dfdaemon::v1::{self as pb, download_response::Event};
use tokio::net::{TcpListener, UnixListener};
use tokio_util::sync::CancellationToken;

/// The piece length [`TestPeer::dfget`] asks for: small, so a few hundred KiB are many pieces.
pub const PIECE: u64 = 64 * 1024;

/// A change to a dfdaemon's configuration, made once it is loaded.
pub type Tweak = Box<dyn FnOnce(&mut DfdaemonConfig) + Send>;

/// How a test dfdaemon is configured before it starts.
pub struct PeerBuilder {
    data: PathBuf,
    name: String,
    overrides: Overrides,
    stopped_by: Option<CancellationToken>,
    tweaks: Vec<Tweak>,
    /// Loopback origins allowed to fetches on someone else's behalf (proxy requests, seed
    /// orders): every test origin listens on 127.0.0.1, as an operator's would on a private
    /// network. [`PeerBuilder::default_target_policy`] turns it off.
    loopback_targets: bool,
}

/// A running dfdaemon.
pub struct TestPeer {
    /// Its local download API (what `dfget` talks to).
    pub socket: PathBuf,
    /// `http://127.0.0.1:<port>` of its `/healthy` and `/metrics`.
    pub http: String,
    /// `http://127.0.0.1:<port>` of its HTTP proxy and registry mirror.
    pub proxy: String,
    /// Its data directory (cache, metadata).
    pub data: PathBuf,
    pub shutdown: CancellationToken,
}

impl PeerBuilder {
    /// A normal peer named `name` (its hostname), keeping its data in `data`.
    pub fn new(data: impl Into<PathBuf>, name: &str) -> Self {
        let data = data.into();
        let overrides = Overrides { data_dir: Some(data.clone()), hostname: Some(name.into()), ..Default::default() };
        Self { data, name: name.into(), overrides, stopped_by: None, tweaks: Vec::new(), loopback_targets: true }
    }

    /// A seed peer (or not).
    pub fn seed(mut self, seed: bool) -> Self {
        self.overrides.seed = Some(seed);
        self
    }

    /// Announces to the scheduler at `addr`, every second.
    pub fn scheduler(mut self, addr: &str) -> Self {
        self.overrides.scheduler_addr = Some(addr.into());
        self.config(|c| c.scheduler.announce_interval_secs = 1)
    }

    /// Announces to every scheduler of `addrs` (`[scheduler] addrs`), every second.
    pub fn schedulers(self, addrs: &[&str]) -> Self {
        let addrs: Vec<String> = addrs.iter().map(|a| (*a).to_owned()).collect();
        self.config(move |c| {
            c.scheduler.addrs = addrs;
            c.scheduler.announce_interval_secs = 1;
        })
    }

    /// Asks the manager at `addr` for its schedulers, keeping alive every second.
    pub fn manager(mut self, addr: &str) -> Self {
        self.overrides.manager_addr = Some(addr.into());
        self.config(|c| c.manager.keepalive_interval_secs = 1)
    }

    /// Changes the configuration once it is loaded.
    pub fn config(mut self, tweak: impl FnOnce(&mut DfdaemonConfig) + Send + 'static) -> Self {
        self.tweaks.push(Box::new(tweak));
        self
    }

    /// Keeps the configuration's default target policy: loopback, private and link-local
    /// origins are refused to proxy requests and seed orders.
    pub fn default_target_policy(mut self) -> Self {
        self.loopback_targets = false;
        self
    }

    /// Stops the daemon when `token` is cancelled, too (it gets a child token).
    pub fn stopped_by(mut self, token: &CancellationToken) -> Self {
        self.stopped_by = Some(token.clone());
        self
    }

    pub async fn start(self) -> TestPeer {
        crate::init_logs();
        let mut config = DfdaemonConfig::load(None, self.overrides, &self.name).unwrap();
        if self.loopback_targets {
            config.proxy.allowed_private_networks = vec!["127.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        }
        for tweak in self.tweaks {
            tweak(&mut config);
        }
        // Mutual TLS unless the test says otherwise, with a certificate of the test CA naming the
        // host as enrolment would (a seed peer for the configured cluster, a peer for cluster 1).
        let networked = !config.scheduler.static_addrs().is_empty() || !config.manager.addr.is_empty();
        if networked && config.tls.mode == common::tls::Mode::Mtls && config.tls.cert.is_none() {
            let role = if config.seed { common::tls::Component::SeedPeer } else { common::tls::Component::Peer };
            let cluster = i64::try_from(config.manager.cluster_id).unwrap();
            config.tls = crate::pki::settings_for(role, cluster, &peer::rpc::host_id(&config));
        }
        std::fs::create_dir_all(&self.data).unwrap();
        let socket = config.server.socket.clone();
        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_base = format!("http://{}", http.local_addr().unwrap());
        let proxy_base = format!("http://{}", proxy.local_addr().unwrap());
        let listeners = Listeners {
            socket: UnixListener::bind(&socket).unwrap(),
            http,
            upload: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            proxy,
        };
        let shutdown = self.stopped_by.map_or_else(CancellationToken::new, |t| t.child_token());
        tokio::spawn(Dfdaemon::new(config).serve(listeners, shutdown.clone()));
        TestPeer { socket, http: http_base, proxy: proxy_base, data: self.data, shutdown }
    }
}

/// A download request for `url` into `output`, everything else left to the daemon.
pub fn request(url: impl Into<String>, output: &Path) -> pb::DownloadRequest {
    pb::DownloadRequest { url: url.into(), output_path: output.display().to_string(), ..Default::default() }
}

impl TestPeer {
    /// Runs one download through the local API until `Finished` (or the stream's error).
    pub async fn download(&self, req: pb::DownloadRequest) -> Result<pb::Finished, tonic::Status> {
        let channel = peer::rpc::connect_unix(self.socket.clone()).await.unwrap();
        let mut client = pb::dfdaemon_client::DfdaemonClient::new(channel);
        let mut stream = client.download(req).await?.into_inner();
        while let Some(msg) = stream.message().await? {
            if let Some(Event::Finished(f)) = msg.event {
                return Ok(f);
            }
        }
        Err(tonic::Status::unknown("stream ended without Finished"))
    }

    /// Downloads `url` to `out` in [`PIECE`]-sized pieces within 60 s, as `dfget` would;
    /// `tweak` changes the request first.
    pub async fn dfget(
        &self,
        url: &str,
        out: &Path,
        tweak: impl FnOnce(&mut pb::DownloadRequest),
    ) -> Result<pb::Finished, tonic::Status> {
        let mut req = request(url, out);
        req.piece_length = Some(PIECE);
        req.timeout_ms = 60_000;
        tweak(&mut req);
        self.download(req).await
    }
}

/// The text of `<base>/metrics`.
pub async fn metric_text(base: &str) -> String {
    reqwest::get(format!("{base}/metrics")).await.unwrap().text().await.unwrap()
}

/// The value of one sample line of a metrics text (0 when absent).
pub fn counter(text: &str, sample: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok())).unwrap_or(0.0)
}
