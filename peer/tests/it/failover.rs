//! Several schedulers, one of them lost mid-download: three schedulers, a seed peer and two
//! peers (every dfdaemon given all three addresses); a file whose peers download slowly (a
//! download rate limit) loses the scheduler its task hashes to. The peers register with the next
//! scheduler in rendezvous order carrying the pieces they hold, that scheduler orders the seed
//! peer, which holds the whole file and tells it so, and the downloads finish with the right
//! bytes while the origin serves the file once.

use std::time::Duration;

use common::ids::{HostId, TaskId};
use peer::rpc::scheduler_set::SchedulerSet;
use scheduler::{config::SchedulerConfig, resource::CachedCopy};
use sha2::{Digest as _, Sha256};
use testkit::{
    origin::{Origin, content},
    peer::{PIECE, PeerBuilder},
    scheduler::TestScheduler,
};

fn id_of(url: &str) -> TaskId {
    common::task_id::task_id(&common::task_id::TaskSpec { url, piece_length: Some(PIECE), ..Default::default() })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_scheduler_lost_mid_download_hands_its_task_to_the_next_and_the_downloads_finish() -> anyhow::Result<()> {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir()?;
    let mut schedulers = Vec::new();
    for _ in 0..3 {
        schedulers.push(TestScheduler::start(SchedulerConfig::default()).await);
    }
    let addrs: Vec<&str> = schedulers.iter().map(|s| s.addr.as_str()).collect();
    let seed = PeerBuilder::new(dir.path().join("seed"), "seed").seed(true).schedulers(&addrs).start().await;
    // 40 pieces at 640 KiB/s: about four seconds per peer, long enough to lose a scheduler.
    let slow = |name: &str| {
        PeerBuilder::new(dir.path().join(name), name).schedulers(&addrs).config(|c| c.download.rate_limit = 10 * PIECE)
    };
    let peers = [slow("peer0").start().await, slow("peer1").start().await];
    for s in &schedulers {
        s.wait_for_hosts(3).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let len = 40 * PIECE as usize;
    let url = format!("{}/bytes/{len}/5", origin.base);
    let id = id_of(&url);
    let set = SchedulerSet::new(addrs.iter().map(|a| a.parse().unwrap()).collect(), None);
    let ranked: Vec<String> = set.ranked(&id.0).iter().map(ToString::to_string).collect();
    let at = |addr: &str| schedulers.iter().position(|s| s.addr == addr).unwrap();
    let (owner, next, last) = (at(&ranked[0]), at(&ranked[1]), at(&ranked[2]));

    let downloads = futures::future::join_all(peers.iter().enumerate().map(|(i, peer)| {
        let (out, url) = (dir.path().join(format!("out-{i}")), url.clone());
        async move { peer.dfget(&url, &out, |_| {}).await.map(|_| out) }
    }));
    // The seed peer holds the whole file and both peers some pieces, not all, on the task's
    // scheduler: it is lost.
    let lose_the_owner = async {
        let tasks = schedulers[owner].tasks.clone();
        let task = id.clone();
        testkit::eventually("both peers to hold some pieces", Duration::from_secs(20), || {
            let (tasks, task) = (tasks.clone(), task.clone());
            async move {
                let Some(cell) = tasks.get(&task) else { return false };
                let peers = cell.lock().snapshot().peers;
                let normal: Vec<u32> =
                    peers.iter().filter(|p| p.host_id.0.starts_with("peer")).map(|p| p.finished.len()).collect();
                let seed_whole = peers.iter().any(|p| p.host_id.0.starts_with("seed") && p.finished.len() == 40);
                seed_whole && normal.len() == 2 && normal.iter().all(|n| (4..30).contains(n))
            }
        })
        .await;
        schedulers[owner].shutdown.cancel();
    };
    let (results, ()) = tokio::join!(downloads, lose_the_owner);

    let expected = content(len, 5);
    for result in results {
        let out = result.map_err(|e| anyhow::anyhow!("download failed: {e}"))?;
        let got = std::fs::read(&out)?;
        assert_eq!(Sha256::digest(&got), Sha256::digest(&expected), "the downloaded file is the content");
    }
    assert_eq!(origin.sent(), len as u64, "the origin served the file once, to the seed peer");

    // The next scheduler in rendezvous order took the task: both peers registered there with the
    // pieces they held (so fewer than all came from parents there), the seed peer's copy with it.
    let cell = schedulers[next].tasks.get(&id).expect("the next scheduler knows the task");
    let snapshot = cell.lock().snapshot();
    let seed_copy = CachedCopy::peer_id(&HostId("seed-127.0.0.1-seed".into()));
    assert!(snapshot.peers.iter().any(|p| p.id == seed_copy), "{:?}", snapshot.peers);
    for name in ["peer0", "peer1"] {
        let p = snapshot.peers.iter().find(|p| p.host_id.0.starts_with(name)).expect("registered on the next");
        let from_parents: u32 = p.parent_pieces.values().sum();
        assert_eq!(p.origin_pieces, 0, "{name}");
        assert!(from_parents < 40, "{name} carried on from the pieces it held: {from_parents} from parents");
        assert_eq!(p.finished.len(), 40, "{name}: the next scheduler knows every piece it holds, old and new");
    }
    assert!(schedulers[last].tasks.get(&id).is_none(), "the third scheduler never saw the task");
    drop(seed);
    Ok(())
}
