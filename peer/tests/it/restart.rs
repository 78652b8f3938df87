//! A scheduler restart costs no origin traffic: the restarted scheduler (same address, empty task
//! table, a new boot id) hears from every dfdaemon what its cache holds, the seed peer's copy with
//! its digests, so the next download of a file the cluster already holds takes it from the
//! holders with the seed peer's digests. Without a seed peer's copy, a task goes back to the
//! origin once for its digests: a normal peer's word is not taken for them.

use std::time::Duration;

use common::ids::{HostId, TaskId};
use scheduler::{config::SchedulerConfig, resource::CachedCopy};
use testkit::{
    origin::{Origin, content},
    peer::{PIECE, PeerBuilder, TestPeer},
    scheduler::TestScheduler,
};

fn id_of(url: &str) -> TaskId {
    common::task_id::task_id(&common::task_id::TaskSpec { url, piece_length: Some(PIECE), ..Default::default() })
        .unwrap()
}

/// Downloads `url` on `peer` into `out` and checks the bytes against `expected`.
async fn fetch(peer: &TestPeer, url: &str, out: &std::path::Path, expected: &[u8]) -> anyhow::Result<()> {
    peer.dfget(url, out, |_| {}).await.map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    assert_eq!(std::fs::read(out)?, expected, "{url}");
    Ok(())
}

/// The piece digests a dfdaemon's cache recorded for `id`, in hex by piece number.
fn cached_digests(data: &std::path::Path, id: &TaskId) -> anyhow::Result<std::collections::BTreeMap<u32, String>> {
    let meta: peer::storage::TaskMeta =
        serde_json::from_slice(&std::fs::read(data.join("storage/meta").join(format!("{}.json", id.0)))?)?;
    Ok(meta.digests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_a_restart_the_seed_peers_copy_serves_the_next_download_with_its_digests() -> anyhow::Result<()> {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir()?;
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let seed = PeerBuilder::new(dir.path().join("seed"), "seed").seed(true).scheduler(&scheduler.addr).start().await;
    let mut peers = Vec::new();
    for name in ["peer0", "peer1", "peer2"] {
        peers.push(PeerBuilder::new(dir.path().join(name), name).scheduler(&scheduler.addr).start().await);
    }
    scheduler.wait_for_hosts(4).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let len = 12 * PIECE as usize + 7;
    let url = format!("{}/bytes/{len}/9", origin.base);
    let expected = content(len, 9);
    let (a, b) = (dir.path().join("out-0"), dir.path().join("out-1"));
    let (r0, r1) = tokio::join!(fetch(&peers[0], &url, &a, &expected), fetch(&peers[1], &url, &b, &expected));
    r0?;
    r1?;
    assert_eq!(origin.sent(), len as u64);

    let scheduler = scheduler.restart().await;
    assert!(scheduler.tasks.is_empty(), "a restarted scheduler starts knowing no task");
    // Every dfdaemon sees the new boot id and tells what it holds: three copies, the seed's
    // with its digests.
    let id = id_of(&url);
    let tasks = scheduler.tasks.clone();
    let task = id.clone();
    testkit::eventually("the cached copies to be announced", Duration::from_secs(10), || {
        let (tasks, task) = (tasks.clone(), task.clone());
        async move {
            tasks.get(&task).is_some_and(|c| {
                let t = c.lock();
                t.snapshot().peers.len() == 3 && (0..13).all(|n| t.digest(n).is_some())
            })
        }
    })
    .await;

    let c = dir.path().join("out-2");
    fetch(&peers[2], &url, &c, &expected).await?;
    assert_eq!(origin.sent(), len as u64, "the download after the restart read nothing from the origin");

    // The digests the scheduler handed out are the seed peer's, and the new peer took every
    // piece from the holders.
    let seeds = cached_digests(&seed.data, &id)?;
    let cell = scheduler.tasks.get(&id).unwrap();
    let t = cell.lock();
    for n in 0..13u32 {
        assert_eq!(t.digest(n).map(|d| d.to_hex()).as_ref(), seeds.get(&n), "piece {n}");
    }
    assert_eq!(cached_digests(&peers[2].data, &id)?, seeds);
    let snapshot = t.snapshot();
    let new =
        snapshot.peers.iter().find(|p| p.host_id.0.starts_with("peer2") && p.id != CachedCopy::peer_id(&p.host_id));
    let new = new.expect("peer2 registered");
    assert_eq!((new.origin_pieces, new.parent_pieces.values().sum::<u32>()), (0, 13));
    assert!(snapshot.peers.iter().any(|p| p.id == CachedCopy::peer_id(&HostId("seed-127.0.0.1-seed".into()))));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_a_seed_peers_copy_a_task_goes_back_to_the_origin_once_for_its_digests() -> anyhow::Result<()> {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir()?;
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let mut peers = Vec::new();
    for name in ["peer0", "peer1", "peer2"] {
        peers.push(PeerBuilder::new(dir.path().join(name), name).scheduler(&scheduler.addr).start().await);
    }
    scheduler.wait_for_hosts(3).await;

    let len = 6 * PIECE as usize;
    let url = format!("{}/bytes/{len}/3", origin.base);
    let expected = content(len, 3);
    fetch(&peers[0], &url, &dir.path().join("out-0"), &expected).await?;
    assert_eq!(origin.sent(), len as u64);

    let scheduler = scheduler.restart().await;
    let id = id_of(&url);
    let tasks = scheduler.tasks.clone();
    let task = id.clone();
    testkit::eventually("peer0's copy to be announced", Duration::from_secs(10), || {
        let (tasks, task) = (tasks.clone(), task.clone());
        async move { tasks.get(&task).is_some_and(|c| !c.lock().is_empty()) }
    })
    .await;
    // A normal peer's copy counts as a holder, but no digest is taken from it.
    assert!((0..6).all(|n| scheduler.tasks.get(&id).unwrap().lock().digest(n).is_none()));

    // So the next download goes to the origin once, and the one after it reads nothing there.
    fetch(&peers[1], &url, &dir.path().join("out-1"), &expected).await?;
    assert_eq!(origin.sent(), 2 * len as u64);
    fetch(&peers[2], &url, &dir.path().join("out-2"), &expected).await?;
    assert_eq!(origin.sent(), 2 * len as u64);
    let truth = cached_digests(&peers[0].data, &id)?;
    let cell = scheduler.tasks.get(&id).unwrap();
    assert!((0..6u32).all(|n| cell.lock().digest(n).map(|d| d.to_hex()).as_ref() == truth.get(&n)));
    Ok(())
}
