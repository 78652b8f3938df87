//! An image preheat for dfdaemons in blob-digest mode (`[proxy] blob_digest_task_id`): such a
//! mirror looks a blob up by its digest's task id, which a preheat of URL-derived task ids
//! never warms. With `"blob_digest_task_id": true` in its arguments the preheat warms exactly
//! what the mirror looks up, so a pull through the mirror afterwards — even from another
//! registry holding the same image — takes no blob bytes from any registry.

use std::time::Duration;

use serde_json::json;
use testkit::{
    db::Backend,
    manager::TestManager,
    peer::{PIECE, PeerBuilder},
    registry::{Image, Layer, OCI_LAYER_TAR, Registry},
    scheduler::{TestScheduler, registering},
};
use tokio_util::sync::CancellationToken;

/// Blob bytes each registry has sent since `before`, after its log settles.
async fn settled(registries: &[&Registry], before: &[u64]) -> Vec<u64> {
    tokio::time::sleep(Duration::from_millis(400)).await;
    registries.iter().zip(before).map(|(r, b)| r.served().blob_bytes - b).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_digest_preheat_warms_what_a_blob_digest_mirror_looks_up_from_any_registry() {
    let image = Image::of(vec![Layer::raw(2 * PIECE as usize + 5, 31, OCI_LAYER_TAR), Layer::tar(1000, 32)]);
    let first = Registry::start().await;
    let second = Registry::start().await;
    let pushed = first.push("team/app", "1.0", &image).await;
    second.push("mirror/app", "1.0", &image).await;
    let blobs = pushed.for_platform("linux/amd64").blobs.clone();

    let m = TestManager::start_with(Backend::Sqlite, |c| c.jobs.poll_interval_ms = 50).await;
    let scheduler = TestScheduler::start(registering(&m.grpc, "sched")).await;
    let dir = tempfile::tempdir().unwrap();
    let stop = CancellationToken::new();
    let mut nodes = Vec::new();
    for (name, seed) in [("seed-a", true), ("node-a", false)] {
        let upstream = second.base.clone();
        let node = PeerBuilder::new(dir.path().join(name), name)
            .seed(seed)
            .scheduler(&scheduler.addr)
            .stopped_by(&stop)
            .config(move |c| {
                c.proxy.blob_digest_task_id = true;
                c.proxy.registry_mirror = upstream;
            })
            .start()
            .await;
        nodes.push(node);
    }
    scheduler.wait_for_hosts(2).await;

    let args = json!({"type": "image", "url": pushed.manifest_url, "scope": "all_peers", "blob_digest_task_id": true});
    let created = m.post("/api/v1/jobs", &m.root, json!({"type": "preheat", "args": args})).await.expect(201);
    let job = crate::jobs::finished_job(&m, created.id()).await;
    assert_eq!(job["state"], "SUCCESS", "{job}");
    let warmed = job["result"]["job_states"][0]["results"][0]["success_tasks"].as_array().unwrap().len();
    assert_eq!(warmed, 2 * blobs.len(), "{job}");
    let bad = json!({"type": "image", "url": pushed.manifest_url, "blob_digest_task_id": "yes"});
    let refused = m.post("/api/v1/jobs", &m.root, json!({"type": "preheat", "args": bad})).await.expect(422);
    assert!(refused.body.to_string().contains("args.blob_digest_task_id"), "{}", refused.body);

    // node-a pulls through its mirror of the *second* registry: every blob from its cache, by digest.
    let registries = [&first, &second];
    let before: Vec<u64> = registries.iter().map(|r| r.served().blob_bytes).collect();
    for b in &blobs {
        let url = format!("{}/v2/mirror/app/blobs/{}", nodes[1].proxy, b.digest);
        let answer = reqwest::get(&url).await.unwrap();
        assert_eq!(answer.status(), 200, "{url}");
        assert_eq!(answer.bytes().await.unwrap().len() as u64, b.size);
    }
    assert_eq!(settled(&registries, &before).await, vec![0, 0], "the preheat warmed what the mirror looked up");
    stop.cancel();
}
