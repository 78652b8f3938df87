//! The data plane end to end, in-process: a real scheduler, a seed peer and several peers on
//! 127.0.0.1 with temp dirs, and a real HTTP origin that counts the bytes it serves.

use std::{path::Path, time::Duration};

use common::{
    ids::HostId,
    task_id::{TaskSpec, task_id},
};
use testkit::{
    cluster::Cluster,
    origin::{Origin, content},
    peer::{PIECE, counter, metric_text},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boundary_sizes_reach_every_peer_with_the_origin_read_once() {
    let origin = Origin::start().await;
    let c = Cluster::start(3).await;
    let p = PIECE as usize;
    let mut uploaded_before = uploaded_bytes(&c).await;
    for (i, len) in [0usize, 1, 128, 129, p - 1, p, p + 1, 9 * p + 7].into_iter().enumerate() {
        let url = format!("{}/bytes/{len}/{i}", origin.base);
        let expected = content(len, i as u8);
        let before = origin.sent();
        let downloads = c.peers.iter().enumerate().map(|(k, peer)| {
            let out = c.dir.path().join(format!("out-{len}-{k}"));
            let url = url.clone();
            async move { (peer.dfget(&url, &out, |_| {}).await, out) }
        });
        for (result, out) in futures::future::join_all(downloads).await {
            let finished = result.unwrap_or_else(|e| panic!("size {len}: {e}"));
            assert_eq!(finished.content_length, len as u64);
            assert_eq!(std::fs::read(&out).unwrap(), expected, "size {len}");
        }
        let origin_bytes = origin.sent() - before;
        assert_eq!(origin_bytes, len as u64, "size {len}: the origin must serve the content exactly once");

        // Tiny content rides in the scheduler's messages: no peer connects to another for it.
        let uploaded = uploaded_bytes(&c).await - uploaded_before;
        uploaded_before += uploaded;
        if len == 0 {
            continue;
        }
        let task = c.scheduler.tasks.get(&id_of(&url)).expect("task known").lock().snapshot();
        let fetcher = task
            .peers
            .iter()
            .find(|p| p.host_id == HostId("seed-127.0.0.1-seed".into()))
            .unwrap_or_else(|| panic!("size {len}: seed fetched: {:?}", task.peers));
        let others: Vec<_> = task.peers.iter().filter(|p| p.host_id != fetcher.host_id).collect();
        assert_eq!(others.len(), c.peers.len(), "size {len}");
        match len {
            1 | 128 => {
                assert_eq!(uploaded, 0.0, "size {len}: no piece may travel over a piece connection");
                assert_eq!(fetcher.origin_pieces, 1, "size {len}");
                for p in &others {
                    assert_eq!((p.inline_pieces, p.origin_pieces), (1, 0), "size {len}: {}", p.id);
                    assert!(p.parent_pieces.is_empty(), "size {len}: {} used a parent", p.id);
                }
            }
            _ => {
                assert!(uploaded > 0.0, "size {len}: the normal path uploads between peers");
                assert!(others.iter().all(|p| p.inline_pieces == 0), "size {len}");
                assert!(others.iter().all(|p| !p.parent_pieces.is_empty()), "size {len}");
            }
        }
    }
    // Both sides count tiny bytes apart from origin and peer traffic.
    let peer_metrics = metric_text(&c.peers[0].http).await;
    assert_eq!(counter(&peer_metrics, r#"damselfly_dfdaemon_download_traffic_bytes_total{type="inline"}"#), 129.0);
    let sched_metrics = metric_text(&c.scheduler.http).await;
    let inline = r#"damselfly_scheduler_traffic_bytes_total{source="inline"}"#;
    assert_eq!(counter(&sched_metrics, inline), 3.0 * 129.0, "{sched_metrics}");
}

/// Bytes every daemon of the cluster served to other peers so far.
async fn uploaded_bytes(c: &Cluster) -> f64 {
    let mut total = 0.0;
    for peer in std::iter::once(&c.seed).chain(&c.peers) {
        total += counter(&metric_text(&peer.http).await, "damselfly_dfdaemon_upload_traffic_bytes_total");
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_origin_serving_ranges_is_spread_over_the_peers_and_still_read_once() {
    let origin = Origin::start().await;
    let c = Cluster::start(4).await;
    let len = 40 * PIECE as usize + 123;
    let url = format!("{}/ranged/{len}/9", origin.base);
    let downloads = c.peers.iter().enumerate().map(|(k, peer)| {
        let out = c.dir.path().join(format!("ranged-{k}"));
        let url = url.clone();
        async move { (peer.dfget(&url, &out, |_| {}).await, out) }
    });
    for (result, out) in futures::future::join_all(downloads).await {
        result.unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), content(len, 9));
    }
    assert_eq!(origin.sent(), len as u64, "each byte leaves the origin once");
    let task = c.scheduler.tasks.get(&id_of(&url)).unwrap().lock().snapshot();
    let fetchers: Vec<(&str, u32)> =
        task.peers.iter().filter(|p| p.origin_pieces > 0).map(|p| (p.id.0.as_str(), p.origin_pieces)).collect();
    assert!(fetchers.len() >= 3, "the pieces enter through several peers, not one: {fetchers:?}");
    assert_eq!(fetchers.iter().map(|(_, n)| n).sum::<u32>(), 41, "each piece is fetched from the origin once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scheduler_down_means_origin_unless_back_to_source_is_disabled() {
    let origin = Origin::start().await;
    let c = Cluster::start(1).await;
    c.scheduler.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("{}/bytes/{}/7", origin.base, 3 * PIECE + 5);
    let out = c.dir.path().join("direct");
    c.peers[0].dfget(&url, &out, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content(3 * PIECE as usize + 5, 7));

    let url = format!("{}/bytes/1000/8", origin.base);
    let err =
        c.peers[0].dfget(&url, &c.dir.path().join("none"), |r| r.disable_back_to_source = true).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err}");
    assert!(err.message().contains("back-to-source is disabled"), "{err}");
    assert!(!c.dir.path().join("none").exists());
}

fn id_of(url: &str) -> common::ids::TaskId {
    task_id(&TaskSpec { url, piece_length: Some(PIECE), ..Default::default() }).unwrap()
}

/// Flips every byte of every content file under `data` (a disk that went bad, or a tampered
/// host), keeping each file's modification time, so the cache's seal does not notice.
fn corrupt_content(data: &Path) -> usize {
    let mut flipped = 0;
    let mut stack = vec![data.join("storage").join("content")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let modified = std::fs::metadata(&path).unwrap().modified().unwrap();
                let bytes: Vec<u8> = std::fs::read(&path).unwrap().iter().map(|b| !b).collect();
                std::fs::write(&path, bytes).unwrap();
                std::fs::File::options().write(true).open(&path).unwrap().set_modified(modified).unwrap();
                flipped += 1;
            }
        }
    }
    flipped
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parent_serving_corrupt_bytes_is_excluded_and_the_file_is_still_right() {
    let origin = Origin::start().await;
    let c = Cluster::start(3).await;
    let len = 8 * PIECE as usize;
    let url = format!("{}/bytes/{len}/3", origin.base);
    for k in 0..2 {
        c.peers[k].dfget(&url, &c.dir.path().join(format!("first-{k}")), |_| {}).await.unwrap();
    }
    // The seed goes away; peer0's disk goes bad; peer2 must still get the right bytes (from peer1).
    c.seed.shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(corrupt_content(&c.peers[0].data), 1);
    let out = c.dir.path().join("after-corruption");
    c.peers[2].dfget(&url, &out, |_| {}).await.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content(len, 3));

    let cell = c.scheduler.tasks.get(&id_of(&url)).expect("task known");
    let snapshot = cell.lock().snapshot();
    let bad = snapshot.peers.iter().find(|p| p.host_id == HostId("peer0-127.0.0.1".into())).unwrap();
    assert!(bad.excluded, "the corrupt parent must be excluded from the task");
    assert!(bad.upload_failed > 0);
    let good = snapshot.peers.iter().find(|p| p.host_id == HostId("peer1-127.0.0.1".into())).unwrap();
    assert!(!good.excluded && good.upload_success > 0);

    // Both sides count it where operators look.
    let peer_metrics = metric_text(&c.peers[2].http).await;
    assert!(
        counter(&peer_metrics, r#"damselfly_dfdaemon_piece_failures_total{reason="corrupt"}"#) >= 1.0,
        "{peer_metrics}"
    );
    assert_eq!(
        counter(&peer_metrics, r#"damselfly_dfdaemon_download_traffic_bytes_total{type="remote_peer"}"#),
        len as f64
    );
    assert_eq!(
        counter(&peer_metrics, r#"damselfly_dfdaemon_download_traffic_bytes_total{type="back_to_source"}"#),
        0.0
    );
    let sched_metrics = metric_text(&c.scheduler.http).await;
    assert!(
        counter(&sched_metrics, r#"damselfly_scheduler_parent_failures_total{reason="corrupt"}"#) >= 1.0,
        "{sched_metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_parent_dying_mid_transfer_costs_a_reschedule_not_the_download() {
    let origin = Origin::start().await;
    // The seed uploads slowly, so peer0 is mid-transfer when the seed dies.
    let c = Cluster::builder(1).seed_config(|cfg| cfg.upload.rate_limit = 512 * 1024).start().await;
    let len = 24 * PIECE as usize;
    let url = format!("{}/bytes/{len}/5", origin.base);
    let out = c.dir.path().join("survivor");
    let download = c.peers[0].dfget(&url, &out, |_| {});
    let killer = async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        c.seed.shutdown.cancel();
    };
    let (result, ()) = tokio::join!(download, killer);
    result.unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), content(len, 5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn origin_failures_through_the_cluster_are_clear_errors_and_leave_no_file() {
    let origin = Origin::start().await;
    let c = Cluster::start(1).await;
    let cases = [
        (format!("{}/status/404", origin.base), tonic::Code::NotFound),
        (format!("{}/status/500", origin.base), tonic::Code::Unavailable),
        (format!("{}/truncated/{}", origin.base, 4 * PIECE), tonic::Code::Unavailable),
    ];
    for (i, (url, code)) in cases.into_iter().enumerate() {
        let out = c.dir.path().join(format!("fail-{i}"));
        let err = c.peers[0].dfget(&url, &out, |_| {}).await.unwrap_err();
        assert_eq!(err.code(), code, "{url}: {err}");
        assert!(!out.exists(), "{url}: no file may be left");
    }
}
