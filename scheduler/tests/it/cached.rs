//! `AnnounceCachedTasks` over real gRPC and mutual TLS: what a host says its cache holds is
//! recorded for the host its certificate names, digests only from a seed peer's certificate, and
//! every size and id is checked before anything is kept.

use common::{
    ids::{HostId, PeerId, TaskId},
    task_id::{TaskSpec, task_id},
    tls::{Component, Expect},
};
use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use scheduler::{config::SchedulerConfig, resource::CachedCopy};
use testkit::scheduler::TestScheduler;
use tonic::{Code, transport::Channel};

type Client = pb::scheduler_client::SchedulerClient<Channel>;

const PIECE: u64 = 1024;
const URL: &str = "https://o.example/cached";

fn client_as(scheduler: &TestScheduler, component: Component, host: &str) -> Client {
    Client::new(testkit::pki::channel(&scheduler.addr, component, 1, host, Expect::scheduler(Some(1))))
}

/// Announces `id` as a host of `kind` and answers its client.
async fn announced(scheduler: &TestScheduler, id: &str, seed: bool) -> Client {
    let (component, kind) = if seed {
        (Component::SeedPeer, pb_common::HostType::Seed)
    } else {
        (Component::Peer, pb_common::HostType::Normal)
    };
    let mut client = client_as(scheduler, component, id);
    let host = pb_common::Host {
        id: id.into(),
        hostname: id.into(),
        ip: "127.0.0.1".into(),
        upload_port: 4000,
        r#type: kind as i32,
        ..Default::default()
    };
    client.announce_host(pb::AnnounceHostRequest { host: Some(host) }).await.unwrap();
    client
}

fn spec(url: &str) -> pb::TaskSpec {
    let id = task_id(&TaskSpec { url, piece_length: Some(PIECE), ..TaskSpec::default() }).unwrap();
    pb::TaskSpec { task_id: id.0, url: url.into(), piece_length: Some(PIECE), ..Default::default() }
}

/// A whole copy of `pieces` pieces of `URL`, with a digest of `fill` bytes for each.
fn copy(pieces: u32, fill: u8) -> pb::CachedTask {
    pb::CachedTask {
        task: Some(spec(URL)),
        content_length: u64::from(pieces) * PIECE,
        piece_length: PIECE,
        finished_pieces: (0..pieces).collect::<common::bitmap::PieceBitmap>().to_bytes(),
        digests: (0..pieces).map(|number| pb::PieceDigest { number, digest: vec![fill; 32] }).collect(),
    }
}

fn id() -> TaskId {
    TaskId(spec(URL).task_id)
}

#[tokio::test]
async fn a_normal_peers_digests_are_not_trusted_and_a_seed_peers_are() -> anyhow::Result<()> {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let mut peer = announced(&scheduler, "p", false).await;
    let mut seed = announced(&scheduler, "s", true).await;

    // A normal peer claims digests (its own, poisoned ones): its copy counts, its digests do not.
    // The message's host id is not who it is: the certificate's is.
    let request = pb::AnnounceCachedTasksRequest { host_id: "s".into(), tasks: vec![copy(3, 0xee)] };
    let answer = peer.announce_cached_tasks(request).await?.into_inner();
    assert_eq!((answer.accepted, answer.refused, answer.digests_ignored), (1, 0, 3));
    {
        let cell = scheduler.tasks.get(&id()).expect("the task is known");
        let t = cell.lock();
        assert!((0..3).all(|n| t.digest(n).is_none()), "no digest taken from a normal peer");
        let holders: Vec<PeerId> = t.snapshot().peers.into_iter().map(|p| p.id).collect();
        assert_eq!(holders, vec![CachedCopy::peer_id(&HostId("p".into()))], "recorded as the certificate's host");
    }

    // The seed peer's digests are taken.
    let request = pb::AnnounceCachedTasksRequest { host_id: String::new(), tasks: vec![copy(3, 0x11)] };
    let answer = seed.announce_cached_tasks(request).await?.into_inner();
    assert_eq!((answer.accepted, answer.digests_ignored), (1, 0));
    let cell = scheduler.tasks.get(&id()).unwrap();
    assert!((0..3).all(|n| cell.lock().digest(n).map(|d| d.0) == Some([0x11; 32])));

    // Once recorded, a seed's later contradicting digests are refused, not swapped in.
    let request = pb::AnnounceCachedTasksRequest { host_id: String::new(), tasks: vec![copy(3, 0x22)] };
    let answer = seed.announce_cached_tasks(request).await?.into_inner();
    assert_eq!((answer.accepted, answer.refused), (0, 1));
    assert_eq!(cell.lock().digest(0).map(|d| d.0), Some([0x11; 32]));
    Ok(())
}

#[tokio::test]
async fn cached_tasks_are_bounded_and_checked_before_anything_is_kept() -> anyhow::Result<()> {
    let scheduler = TestScheduler::start(SchedulerConfig::default()).await;
    let mut seed = announced(&scheduler, "s", true).await;

    // More tasks than one call may carry: refused whole.
    let many = pb::AnnounceCachedTasksRequest { host_id: String::new(), tasks: vec![copy(1, 1); 257] };
    assert_eq!(seed.announce_cached_tasks(many).await.unwrap_err().code(), Code::InvalidArgument);

    let other =
        task_id(&TaskSpec { url: "https://o.example/other", piece_length: Some(PIECE), ..TaskSpec::default() })?;
    let refused = [
        // An id that is not its spec's, and one that names no file.
        pb::CachedTask { task: Some(pb::TaskSpec { task_id: other.0, ..spec(URL) }), ..copy(3, 1) },
        pb::CachedTask { task: Some(pb::TaskSpec { task_id: "../../x".into(), ..spec(URL) }), ..copy(3, 1) },
        pb::CachedTask { task: None, ..copy(3, 1) },
        // A layout no content has: zero or huge pieces, too many pieces.
        pb::CachedTask { piece_length: 0, ..copy(3, 1) },
        pb::CachedTask { content_length: u64::MAX, ..copy(3, 1) },
        // Another piece length than the id was derived with.
        pb::CachedTask { content_length: 3 * 2048, piece_length: 2048, ..copy(3, 1) },
        // A bitmap past the layout, or empty; a digest of the wrong size or for a piece not held.
        pb::CachedTask { finished_pieces: vec![0xff; 2], ..copy(3, 1) },
        pb::CachedTask { finished_pieces: vec![0xff; 1 << 20], ..copy(3, 1) },
        pb::CachedTask { finished_pieces: Vec::new(), digests: Vec::new(), ..copy(3, 1) },
        pb::CachedTask { digests: vec![pb::PieceDigest { number: 0, digest: vec![1; 31] }], ..copy(3, 1) },
        pb::CachedTask { digests: vec![pb::PieceDigest { number: 7, digest: vec![1; 32] }], ..copy(3, 1) },
        pb::CachedTask { digests: vec![pb::PieceDigest { number: 0, digest: vec![1; 32] }; 4], ..copy(3, 1) },
    ];
    let n = refused.len() as u32;
    let answer = seed
        .announce_cached_tasks(pb::AnnounceCachedTasksRequest { host_id: String::new(), tasks: refused.to_vec() })
        .await?
        .into_inner();
    assert_eq!((answer.accepted, answer.refused), (0, n));
    assert!(scheduler.tasks.get(&id()).is_none_or(|c| c.lock().is_empty()), "nothing kept");

    // A host that never announced itself, and a certificate of another cluster, are refused.
    let mut stranger = client_as(&scheduler, Component::SeedPeer, "t");
    let request = pb::AnnounceCachedTasksRequest { host_id: "s".into(), tasks: vec![copy(3, 1)] };
    assert_eq!(stranger.announce_cached_tasks(request.clone()).await.unwrap_err().code(), Code::FailedPrecondition);
    let mut foreign =
        Client::new(testkit::pki::channel(&scheduler.addr, Component::SeedPeer, 2, "s", Expect::scheduler(Some(1))));
    assert_eq!(foreign.announce_cached_tasks(request).await.unwrap_err().code(), Code::PermissionDenied);
    assert!(scheduler.tasks.get(&id()).is_none_or(|c| c.lock().is_empty()));
    Ok(())
}
