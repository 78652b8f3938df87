//! The cache's tasks on the local API (`ListTasks`, `StatTask`, `DeleteTask`) against a real
//! dfdaemon and origin: what a download leaves is listed and shown as it is on disk, a deletion
//! takes it off the disk (and the next download fetches it again), bad and unknown ids are told
//! apart, and a task a download is using is not deleted under it.

use std::{
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use proto::dfdaemon::v1::{self as pb, dfdaemon_client::DfdaemonClient};
use testkit::{
    origin::{Origin, content},
    peer::{PIECE, PeerBuilder, TestPeer, request},
};
use tonic::{Code, transport::Channel};

async fn api(peer: &TestPeer) -> DfdaemonClient<Channel> {
    DfdaemonClient::new(peer::rpc::connect_unix(peer.socket.clone()).await.unwrap())
}

fn task_id(url: &str, piece_length: Option<u64>) -> String {
    common::task_id::task_id(&common::task_id::TaskSpec { url, piece_length, ..Default::default() }).unwrap().0
}

/// The content file and metadata file of `id` in the daemon's cache under `data`.
fn files(data: &Path, id: &str) -> [PathBuf; 2] {
    let storage = data.join("storage");
    [storage.join("content").join(&id[..3]).join(id), storage.join("meta").join(format!("{id}.json"))]
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[tokio::test]
async fn a_download_is_listed_shown_and_deleted_from_disk() -> anyhow::Result<()> {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir()?;
    let peer = PeerBuilder::new(dir.path().join("data"), "tasks-host").start().await;
    let mut api = api(&peer).await;
    assert!(api.list_tasks(pb::ListTasksRequest {}).await?.into_inner().tasks.is_empty());

    let size = 3 * PIECE + 5;
    let url = format!("{origin}/bytes/{size}/9");
    let out = dir.path().join("out");
    peer.dfget(&url, &out, |_| {}).await?;
    let id = task_id(&url, Some(PIECE));

    let listed = api.list_tasks(pb::ListTasksRequest {}).await?.into_inner().tasks;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let task = &listed[0];
    assert_eq!((task.task_id.as_str(), task.url.as_str()), (id.as_str(), url.as_str()));
    assert_eq!((task.content_length, task.piece_length), (Some(size), Some(PIECE)));
    assert_eq!((task.finished_pieces, task.total_pieces), (4, 4));
    assert_eq!(task.state(), pb::TaskState::Complete);
    assert!(!task.in_use);
    assert!(task.disk_bytes >= size, "{task:?}");
    assert!(now().abs_diff(task.last_access_unix_secs) < 60, "{task:?}");
    let stat = api.stat_task(pb::StatTaskRequest { task_id: id.clone() }).await?.into_inner();
    assert_eq!(&stat, task);
    for f in files(&peer.data, &id) {
        assert!(f.exists(), "{} is where the cache keeps it", f.display());
    }

    // Ids that could not have been derived, and ids this host does not cache.
    for bad in ["", "../../etc/passwd", &"A".repeat(64), &"0".repeat(63), &format!("{id}0")] {
        let stat = api.stat_task(pb::StatTaskRequest { task_id: bad.into() }).await.unwrap_err();
        assert_eq!(stat.code(), Code::InvalidArgument, "{bad:?}: {stat}");
        let delete = api.delete_task(pb::DeleteTaskRequest { task_id: bad.into() }).await.unwrap_err();
        assert_eq!(delete.code(), Code::InvalidArgument, "{bad:?}: {delete}");
    }
    let unknown = "0".repeat(64);
    let stat = api.stat_task(pb::StatTaskRequest { task_id: unknown.clone() }).await.unwrap_err();
    assert_eq!(stat.code(), Code::NotFound, "{stat}");
    let delete = api.delete_task(pb::DeleteTaskRequest { task_id: unknown }).await.unwrap_err();
    assert_eq!(delete.code(), Code::NotFound, "{delete}");

    // Deleting takes it off the disk; the output already written stays.
    let freed = api.delete_task(pb::DeleteTaskRequest { task_id: id.clone() }).await?.into_inner().freed_bytes;
    assert!(freed >= size, "freed {freed}");
    for f in files(&peer.data, &id) {
        assert!(!f.exists(), "{} is gone", f.display());
    }
    assert!(api.list_tasks(pb::ListTasksRequest {}).await?.into_inner().tasks.is_empty());
    let again = api.stat_task(pb::StatTaskRequest { task_id: id.clone() }).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    let again = api.delete_task(pb::DeleteTaskRequest { task_id: id.clone() }).await.unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    assert_eq!(std::fs::read(&out)?, content(size as usize, 9));

    // The next download fetches it from the origin again.
    let sent = origin.sent();
    peer.dfget(&url, &dir.path().join("out2"), |_| {}).await?;
    assert_eq!(origin.sent(), sent + size, "fetched again after the deletion");
    assert_eq!(api.stat_task(pb::StatTaskRequest { task_id: id }).await?.into_inner().state(), pb::TaskState::Complete);
    peer.shutdown.cancel();
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_a_download_is_using_is_not_deleted() -> anyhow::Result<()> {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir()?;
    let peer = PeerBuilder::new(dir.path().join("data"), "busy-host").start().await;
    let mut api = api(&peer).await;
    let url = format!("{origin}/slow");
    let id = task_id(&url, None);
    let out = dir.path().join("slow");
    let download = tokio::spawn({
        let socket = peer.socket.clone();
        let out = out.clone();
        let url = url.clone();
        async move {
            let mut api = DfdaemonClient::new(peer::rpc::connect_unix(socket).await?);
            let mut stream = api.download(request(url, &out)).await?.into_inner();
            while stream.message().await?.is_some() {}
            anyhow::Ok(())
        }
    });
    let mut seen = None;
    for _ in 0..100 {
        let tasks = api.list_tasks(pb::ListTasksRequest {}).await?.into_inner().tasks;
        if let Some(t) = tasks.into_iter().find(|t| t.task_id == id && t.in_use) {
            seen = Some(t);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let seen = seen.expect("the running download's task is listed in use");
    assert_eq!(seen.state(), pb::TaskState::Partial, "{seen:?}");
    let refused = api.delete_task(pb::DeleteTaskRequest { task_id: id.clone() }).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused}");
    assert!(refused.message().contains("in use"), "{refused}");

    tokio::time::timeout(Duration::from_secs(30), download).await???;
    assert_eq!(std::fs::metadata(&out)?.len(), 4 << 20, "the download finished intact");
    api.delete_task(pb::DeleteTaskRequest { task_id: id.clone() }).await?;
    assert!(files(&peer.data, &id).iter().all(|f| !f.exists()));
    peer.shutdown.cancel();
    Ok(())
}
