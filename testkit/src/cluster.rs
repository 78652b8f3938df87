//! A small data-plane cluster ([`Cluster`]): one scheduler, one seed peer (`seed`) and `n`
//! peers (`peer0`, `peer1`, …) announcing to it, in one temp dir. Dropping it leaves the
//! servers to the test runtime's end; cancel a member's `shutdown` to stop it earlier.

use peer::config::DfdaemonConfig;
use scheduler::config::SchedulerConfig;

use crate::{
    peer::{PeerBuilder, TestPeer, Tweak},
    scheduler::TestScheduler,
};

/// A running cluster.
pub struct Cluster {
    /// Holds every daemon's data; outputs may go here too.
    pub dir: tempfile::TempDir,
    pub scheduler: TestScheduler,
    pub seed: TestPeer,
    pub peers: Vec<TestPeer>,
}

/// What a [`Cluster`] starts with.
pub struct ClusterBuilder {
    peers: usize,
    scheduler: SchedulerConfig,
    seed: Tweak,
}

impl Cluster {
    /// A scheduler, a seed peer and `peers` peers with default settings.
    pub async fn start(peers: usize) -> Self {
        Self::builder(peers).start().await
    }

    pub fn builder(peers: usize) -> ClusterBuilder {
        ClusterBuilder { peers, scheduler: SchedulerConfig::default(), seed: Box::new(|_| {}) }
    }
}

impl ClusterBuilder {
    /// The scheduler's configuration.
    pub fn scheduler(mut self, config: SchedulerConfig) -> Self {
        self.scheduler = config;
        self
    }

    /// Changes the seed peer's configuration.
    pub fn seed_config(mut self, tweak: impl FnOnce(&mut DfdaemonConfig) + Send + 'static) -> Self {
        self.seed = Box::new(tweak);
        self
    }

    /// Starts everything and waits until every daemon has announced itself.
    pub async fn start(self) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let scheduler = TestScheduler::start(self.scheduler).await;
        let seed = PeerBuilder::new(dir.path().join("seed"), "seed")
            .seed(true)
            .scheduler(&scheduler.addr)
            .config(self.seed)
            .start()
            .await;
        let mut peers = Vec::new();
        for i in 0..self.peers {
            let name = format!("peer{i}");
            peers.push(PeerBuilder::new(dir.path().join(&name), &name).scheduler(&scheduler.addr).start().await);
        }
        scheduler.wait_for_hosts(self.peers + 1).await;
        // Give the seed peer a moment to open its watch stream.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        Cluster { dir, scheduler, seed, peers }
    }
}
