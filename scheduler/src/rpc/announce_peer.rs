//! One download's stream: register, then report progress and receive parents, digests, or the
//! instruction to fetch from the origin. The stream's task holds no lock across an await.

use std::time::{Duration, Instant};

use common::{
    digest::PieceDigest,
    ids::{HostId, PeerId, TaskId},
};
use proto::scheduler::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Response, Status, Streaming};

use super::{BoxStream, SchedulerService};
use crate::metrics::{Metrics, ParentFailureReason, PeerResult, ReasonLabels, ResultLabels, TrafficSource};
use crate::resource::{
    ContentInfo, HostKind, PieceReport, PieceSource, SeedOrder, Sent, SourceDecision, Task, TaskCell, Update,
};

/// Validates the first message and spawns the loop that drives this peer.
pub async fn start(
    svc: SchedulerService,
    caller: common::tls::Caller,
    mut inbound: Streaming<pb::AnnouncePeerRequest>,
) -> Result<Response<BoxStream<pb::AnnouncePeerResponse>>, Status> {
    let first = inbound.message().await?.ok_or_else(|| Status::invalid_argument("stream ended before RegisterPeer"))?;
    let Some(pb::announce_peer_request::Request::Register(reg)) = first.request else {
        return Err(Status::invalid_argument("the first message must be RegisterPeer"));
    };
    let host_id = HostId::parse(&reg.host_id).map_err(|e| Status::invalid_argument(e.to_string()))?;
    svc.daemon_of(&caller, &host_id, super::DAEMONS)?;
    let host = svc
        .hosts
        .get(&host_id)
        .ok_or_else(|| Status::failed_precondition(format!("host {host_id} has not announced itself")))?;
    if reg.peer_id.is_empty() {
        return Err(Status::invalid_argument("peer_id must not be empty"));
    }
    let spec = reg.task.ok_or_else(|| Status::invalid_argument("task is required"))?;
    let task_id = derived_task_id(&spec)?;
    if let Some(reason) = svc.block_list.get().refuses(&spec.url, &spec.application, &spec.tag) {
        tracing::info!(url = %spec.url, %reason, "download refused by the cluster's block list");
        return Err(Status::permission_denied(format!("the cluster's block list refuses this download: {reason}")));
    }

    let peer = PeerId(reg.peer_id);
    let headers: Vec<(String, String)> = spec.request_headers.into_iter().collect();
    let cell = svc.tasks.get_or_create(&task_id, &spec.url, headers, spec.piece_length);
    {
        // Every registrant's spec derives the same id, so any of them describes the task.
        let mut t = cell.lock();
        (t.tag, t.application, t.filtered_query_params) = (spec.tag, spec.application, spec.filtered_query_params);
        t.blob_digest = spec.blob_digest_task_id;
        t.register(peer.clone(), host_id.clone(), reg.disable_back_to_source);
        if svc.preheats.owed_by(&host_id, &task_id) {
            t.want(&peer);
        }
    }
    cell.changed();
    tracing::info!(task_id = %task_id, peer_id = %peer, host_id = %host_id, "peer registered");
    svc.metrics.peers_registered.inc();

    let (tx, rx) = mpsc::channel(64);
    let is_seed = host.kind == HostKind::Seed;
    tokio::spawn(drive(svc, cell, peer, is_seed, inbound, tx));
    Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
}

/// The task's id, derived here from what the peer says it downloads (URL, tag, application,
/// piece length, filtered query parameters) and compared with the id it sent: a peer cannot bind
/// a task id to another URL, and an id that is not a hash never reaches a file name or a seed peer.
fn derived_task_id(spec: &pb::TaskSpec) -> Result<TaskId, Status> {
    let claimed = TaskId::parse(&spec.task_id).map_err(|e| Status::invalid_argument(format!("task.task_id: {e}")))?;
    let derived = super::spec_task_id(spec).map_err(|e| Status::invalid_argument(format!("task: {e}")))?;
    if derived != claimed {
        return Err(Status::invalid_argument(
            "task.task_id is not the id of its url, tag, application, piece_length and filtered_query_params",
        ));
    }
    Ok(claimed)
}

type Out = mpsc::Sender<Result<pb::AnnouncePeerResponse, Status>>;

/// How often a peer that has parents chooses again when nothing told it to.
const PARENTS_REFRESH: Duration = Duration::from_secs(2);

async fn drive(
    svc: SchedulerService,
    cell: std::sync::Arc<TaskCell>,
    peer: PeerId,
    is_seed: bool,
    mut inbound: Streaming<pb::AnnouncePeerRequest>,
    tx: Out,
) {
    let mut version = cell.subscribe();
    let nudge = cell.listen(&peer);
    let mut sent = Sent::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    loop {
        let limits = svc.limits.get();
        let decision = cell.lock().decide_source(&peer, svc.seeds.any(), is_seed, Instant::now());
        match decision {
            SourceDecision::Wait => {}
            SourceDecision::OrderSeed => {
                let order = {
                    let t = cell.lock();
                    SeedOrder {
                        task_id: t.id.0.clone(),
                        url: t.url.clone(),
                        headers: t.headers.clone(),
                        piece_length: t.requested_piece_length,
                        tag: t.tag.clone(),
                        application: t.application.clone(),
                        filtered_query_params: t.filtered_query_params.clone(),
                        blob_digest: t.blob_digest,
                    }
                };
                let sent_to_seed = svc.seeds.dispatch(order);
                svc.metrics.seed_orders.inc();
                tracing::info!(peer_id = %peer, sent_to_seed, "new task: seed peer ordered");
            }
            SourceDecision::BackToSource(reason) => {
                tracing::info!(peer_id = %peer, %reason, "peer goes back to source");
                svc.metrics.back_to_source.inc();
                let msg = pb::announce_peer_response::Response::NeedBackToSource(pb::NeedBackToSource { reason });
                if tx.send(Ok(pb::AnnouncePeerResponse { response: Some(msg) })).await.is_err() {
                    break;
                }
                cell.changed();
            }
            SourceDecision::Fail(reason) => {
                let _ = tx.send(Err(Status::failed_precondition(reason))).await;
                break;
            }
        }
        let started = Instant::now();
        let (update, handed_out, has_parents) = {
            let mut t = cell.lock();
            let (update, handed_out) = t.update_and_hand_out(&peer, &mut sent, &svc.hosts, &limits);
            (update, handed_out, t.peer(&peer).is_some_and(|r| !r.parents.is_empty()))
        };
        let decided = Instant::now();
        // Origin pieces may have gone to other peers: wake their streams to tell them.
        if handed_out {
            cell.changed();
        }
        svc.metrics.schedule_duration.observe(started.elapsed().as_secs_f64());
        if let Some(u) = update
            && tx.send(Ok(update_to_pb(u))).await.is_err()
        {
            break;
        }
        // Waits for a reason to decide again; true when the stream is over.
        let over = 'wait: loop {
            tokio::select! {
                msg = inbound.message() => match msg {
                    Ok(Some(m)) => match handle(&cell, &peer, m, &svc.metrics) {
                        Ok(Handled::Progressed) => {
                            let audience = cell.lock().progress_audience(&peer);
                            cell.nudge(&audience);
                            break 'wait false;
                        }
                        Ok(Handled::Changed) => {
                            cell.changed();
                            break 'wait false;
                        }
                        Ok(Handled::Done) => {
                            cell.changed();
                            break 'wait true;
                        }
                        Err(status) => {
                            let _ = tx.send(Err(status)).await;
                            break 'wait true;
                        }
                    },
                    Ok(None) | Err(_) => break 'wait true,
                },
                _ = version.changed() => break 'wait false,
                _ = nudge.notified() => break 'wait false,
                _ = tick.tick() => {
                    // A peer with parents hears of their pieces at once and chooses again at
                    // each report of its own: the tick is only its fallback, every
                    // PARENTS_REFRESH. Deciding every 500 ms for every stream was, at 10k
                    // peers, most of the scheduler's work.
                    if !has_parents || decided.elapsed() >= PARENTS_REFRESH {
                        break 'wait false;
                    }
                }
                _ = tx.closed() => break 'wait true,
            }
        };
        if over {
            break;
        }
    }
    cell.forget(&peer);
    cell.lock().peer_left(&peer);
    cell.changed();
}

/// What a message changed, so whose streams must hear of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handled {
    /// Something any peer of the task may need at once (content info, digests, a failure).
    Changed,
    /// Pieces the peer took from parents: news for its children and for peers waiting for
    /// parents ([`Task::progress_audience`]); the others hear of it at their next decision.
    Progressed,
    /// The peer is done with the stream (and the task changed).
    Done,
}

/// Applies one message.
fn handle(cell: &TaskCell, peer: &PeerId, msg: pb::AnnouncePeerRequest, metrics: &Metrics) -> Result<Handled, Status> {
    use pb::announce_peer_request::Request as R;
    let mut task = cell.lock();
    match msg.request {
        Some(R::Register(_)) => Err(Status::invalid_argument("RegisterPeer may only be the first message")),
        Some(R::ContentInfo(info)) => {
            let info = ContentInfo {
                content_length: info.content_length,
                piece_length: info.piece_length,
                ranges: info.ranges,
            };
            task.content_info(peer, info).map_err(Status::invalid_argument)?;
            Ok(Handled::Changed)
        }
        Some(R::PiecesFinished(p)) => {
            let reports = p
                .pieces
                .into_iter()
                .map(|p| {
                    let digest = match p.digest.len() {
                        0 => None,
                        32 => PieceDigest::from_slice(&p.digest),
                        n => {
                            return Err(Status::invalid_argument(format!(
                                "piece {} digest is {n} bytes, not 32",
                                p.number
                            )));
                        }
                    };
                    let source = piece_source(p.number, p.parent_id, p.content, p.inline, digest.is_some())?;
                    Ok(PieceReport { number: p.number, digest, source, cost_micros: p.cost_micros })
                })
                .collect::<Result<Vec<_>, Status>>()?;
            let new = new_piece_bytes(&task, peer, &reports);
            task.pieces_finished(peer, &reports).map_err(Status::invalid_argument)?;
            metrics.traffic(TrafficSource::BackToSource, new.origin);
            metrics.traffic(TrafficSource::RemotePeer, new.peers);
            metrics.traffic(TrafficSource::Inline, new.inline);
            // A piece from the origin brings a digest every peer needs; one from a parent only
            // makes the reporter a better-stocked parent.
            let from_parents = reports.iter().all(|r| matches!(r.source, PieceSource::Parent(_)));
            Ok(if from_parents { Handled::Progressed } else { Handled::Changed })
        }
        Some(R::ParentFailed(f)) => {
            let corrupt = f.reason == pb::ParentFailure::Corrupt as i32;
            let reason = match pb::ParentFailure::try_from(f.reason) {
                Ok(pb::ParentFailure::Corrupt) => ParentFailureReason::Corrupt,
                Ok(pb::ParentFailure::Missing) => ParentFailureReason::Missing,
                _ => ParentFailureReason::Unreachable,
            };
            metrics.parent_failures.get_or_create(&ReasonLabels { reason }).inc();
            task.parent_failed(peer, &PeerId(f.parent_id), corrupt);
            Ok(Handled::Changed)
        }
        Some(R::Finished(_)) => {
            task.peer_succeeded(peer);
            metrics.peer_results.get_or_create(&ResultLabels { result: PeerResult::Succeeded }).inc();
            tracing::info!(task_id = %task.id, peer_id = %peer, "peer finished");
            Ok(Handled::Done)
        }
        Some(R::Failed(f)) => {
            tracing::warn!(task_id = %task.id, peer_id = %peer, reason = %f.description, "peer failed");
            task.peer_failed(peer);
            metrics.peer_results.get_or_create(&ResultLabels { result: PeerResult::Failed }).inc();
            Ok(Handled::Done)
        }
        None => Err(Status::invalid_argument("empty request")),
    }
}

/// Where a reported piece came from, from its wire fields: `inline` pieces carry nothing else,
/// and only a piece from the origin (with its digest) may carry its bytes.
fn piece_source(
    number: u32,
    parent_id: String,
    content: Vec<u8>,
    inline: bool,
    has_digest: bool,
) -> Result<PieceSource, Status> {
    match (inline, parent_id.is_empty()) {
        (true, true) if content.is_empty() && !has_digest => Ok(PieceSource::Inline),
        (true, _) => {
            Err(Status::invalid_argument(format!("piece {number} reported inline carries a parent, digest or bytes")))
        }
        (false, true) => Ok(PieceSource::Origin { content: (!content.is_empty()).then_some(content) }),
        (false, false) if content.is_empty() => Ok(PieceSource::Parent(PeerId(parent_id))),
        (false, false) => Err(Status::invalid_argument(format!(
            "piece {number} from a parent carries bytes; only the origin fetcher's may"
        ))),
    }
}

/// Bytes of newly reported pieces, by where they came from.
#[derive(Debug, Default, PartialEq, Eq)]
struct NewBytes {
    origin: u64,
    peers: u64,
    /// Tiny content handed out by the scheduler: neither origin nor peer traffic.
    inline: u64,
}

/// Bytes of the reported pieces `peer` did not have yet, by source. A piece reported twice
/// counts once; before the layout is known nothing counts.
fn new_piece_bytes(task: &Task, peer: &PeerId, reports: &[PieceReport]) -> NewBytes {
    let mut new = NewBytes::default();
    let (Some(layout), Some(record)) = (task.layout(), task.peer(peer)) else { return new };
    let mut seen = std::collections::HashSet::new();
    for r in reports {
        if record.finished.contains(r.number) || !seen.insert(r.number) {
            continue;
        }
        let len = layout.len_of(r.number).unwrap_or(0);
        match r.source {
            PieceSource::Origin { .. } => new.origin += len,
            PieceSource::Parent(_) => new.peers += len,
            PieceSource::Inline => new.inline += len,
        }
    }
    new
}

fn update_to_pb(u: Update) -> pb::AnnouncePeerResponse {
    let update = pb::TaskUpdate {
        content_length: u.content_length,
        piece_length: u.piece_length.unwrap_or(0),
        digests: u
            .digests
            .into_iter()
            .map(|(number, d)| pb::PieceDigest { number, digest: d.as_bytes().to_vec() })
            .collect(),
        parents: u
            .parents
            .into_iter()
            .map(|p| pb::Parent {
                peer_id: p.peer_id.0,
                host_id: p.host.id.0,
                ip: p.host.ip,
                upload_port: u32::from(p.host.upload_port),
                finished_pieces: p.finished.to_bytes(),
                seed: p.last_resort,
            })
            .collect(),
        origin_pieces: u.origin_pieces,
        tiny_content: u.tiny_content,
    };
    pb::AnnouncePeerResponse { response: Some(pb::announce_peer_response::Response::Update(update)) }
}

#[cfg(test)]
mod tests {
    use common::task_id::{TaskSpec, task_id};

    use super::*;

    #[test]
    fn only_a_piece_from_the_origin_may_carry_bytes_and_inline_pieces_carry_nothing() {
        let from_origin = piece_source(0, String::new(), b"hi".to_vec(), false, true).unwrap();
        assert_eq!(from_origin, PieceSource::Origin { content: Some(b"hi".to_vec()) });
        assert_eq!(
            piece_source(0, String::new(), Vec::new(), false, true).unwrap(),
            PieceSource::Origin { content: None }
        );
        assert_eq!(
            piece_source(0, "p".into(), Vec::new(), false, false).unwrap(),
            PieceSource::Parent(PeerId("p".into()))
        );
        assert_eq!(piece_source(0, String::new(), Vec::new(), true, false).unwrap(), PieceSource::Inline);

        let refused = [
            piece_source(0, "p".into(), b"hi".to_vec(), false, false),
            piece_source(0, "p".into(), Vec::new(), true, false),
            piece_source(0, String::new(), b"hi".to_vec(), true, false),
            piece_source(0, String::new(), Vec::new(), true, true),
        ];
        for r in refused {
            assert_eq!(r.unwrap_err().code(), tonic::Code::InvalidArgument);
        }
    }

    #[test]
    fn a_task_id_must_be_the_one_its_spec_derives() {
        let url = "https://o.example/f?X-Amz-Signature=s&v=1";
        let id = |spec: &TaskSpec| task_id(spec).unwrap().0;
        let base = TaskSpec { url, tag: "t", ..TaskSpec::default() };
        let spec =
            |task_id: String| pb::TaskSpec { task_id, url: url.into(), tag: "t".into(), ..pb::TaskSpec::default() };
        assert_eq!(derived_task_id(&spec(id(&base))).unwrap().0, id(&base));

        let filtered = vec!["v".to_string()];
        let narrowed = pb::TaskSpec {
            filtered_query_params: filtered.clone(),
            ..spec(id(&TaskSpec { filtered_query_params: &filtered, ..base }))
        };
        assert!(derived_task_id(&narrowed).is_ok(), "the filtered parameters are part of the derivation");

        let refused = [
            spec("../../etc/cron.d/x".into()),
            spec(String::new()),
            spec(id(&TaskSpec { url: "https://o.example/other", ..base })),
            spec(id(&TaskSpec { tag: "u", ..base })),
            pb::TaskSpec { piece_length: Some(0), ..spec(id(&base)) },
            pb::TaskSpec { piece_length: Some(100_000_000_000), ..spec(id(&base)) },
            pb::TaskSpec { url: "not a url".into(), ..spec(id(&base)) },
        ];
        for r in refused {
            let status = derived_task_id(&r).unwrap_err();
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{r:?}");
        }
    }
}

/// What a peer registers and reports is any message: a task spec names a task only with the id
/// it derives, and a piece's wire fields make a source only in the combinations that mean one.
#[cfg(test)]
mod properties {
    use common::task_id::{TaskSpec, task_id};
    use proptest::prelude::*;

    use super::*;

    /// A spec whose claimed id is mostly its own, else another task's or any string.
    fn spec() -> impl Strategy<Value = pb::TaskSpec> {
        let url = prop_oneof![3 => "https://o\\.example/[a-z]{0,8}(\\?[a-z=&-]{0,20})?", 1 => any::<String>()];
        let params = proptest::collection::vec(prop_oneof!["[a-z-]{1,8}", any::<String>()], 0..3);
        let piece_length = proptest::option::of(prop_oneof![any::<u64>(), Just(4 << 20)]);
        let other = task_id(&TaskSpec { url: "https://o.example/x", tag: "other", ..TaskSpec::default() }).unwrap().0;
        let claim = prop_oneof![3 => Just(None), 1 => Just(Some(other)), 1 => any::<String>().prop_map(Some)];
        (url, any::<String>(), any::<String>(), piece_length, params, claim).prop_map(
            |(url, tag, application, piece_length, filtered_query_params, claim)| {
                let mut spec =
                    pb::TaskSpec { url, tag, application, piece_length, filtered_query_params, ..Default::default() };
                spec.task_id = claim.or_else(|| derive(&spec).ok().map(|id| id.0)).unwrap_or_default();
                spec
            },
        )
    }

    fn derive(spec: &pb::TaskSpec) -> Result<TaskId, common::task_id::TaskIdError> {
        task_id(&TaskSpec {
            url: &spec.url,
            tag: &spec.tag,
            application: &spec.application,
            piece_length: spec.piece_length,
            filtered_query_params: &spec.filtered_query_params,
            blob_digest: spec.blob_digest_task_id,
        })
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn a_registered_task_is_the_one_its_spec_derives(spec in spec()) {
            let own = derive(&spec).ok().filter(|id| id.0 == spec.task_id);
            match derived_task_id(&spec) {
                Ok(id) => {
                    prop_assert_eq!(Some(&id), own.as_ref());
                    prop_assert_eq!(TaskId::parse(&id.0), Ok(id.clone()));
                }
                Err(status) => {
                    prop_assert!(own.is_none(), "its own id refused: {}", status.message());
                    prop_assert_eq!(status.code(), tonic::Code::InvalidArgument);
                }
            }
        }
        #[test]
        fn a_piece_source_comes_only_from_a_meaningful_combination(
            number in any::<u32>(),
            parent in prop_oneof![Just(String::new()), any::<String>()],
            content in proptest::collection::vec(any::<u8>(), 0..4),
            inline in any::<bool>(),
            has_digest in any::<bool>(),
        ) {
            match piece_source(number, parent.clone(), content.clone(), inline, has_digest) {
                Ok(PieceSource::Inline) => prop_assert!(inline && parent.is_empty() && content.is_empty() && !has_digest),
                Ok(PieceSource::Parent(p)) => prop_assert!(!inline && !p.0.is_empty() && p.0 == parent && content.is_empty()),
                Ok(PieceSource::Origin { content: held }) => {
                    prop_assert!(!inline && parent.is_empty());
                    prop_assert_eq!(held, (!content.is_empty()).then_some(content));
                }
                Err(status) => prop_assert_eq!(status.code(), tonic::Code::InvalidArgument),
            }
        }
    }
}
