//! The peer's side of `AnnouncePeer`, in the peer's own types. The stream's `tonic::Status`es
//! become [`Error`]s here, so the download never sees a gRPC code.

use std::net::{IpAddr, SocketAddr};

pub use common::piece::{PieceReport, PieceSource};
use common::{bitmap::PieceBitmap, digest::PieceDigest, ids::PeerId};
use proto::scheduler::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Code, Status, transport::Channel};

use super::scheduler_set::SchedulerSet;
use crate::Error;

/// A parent the scheduler offered.
#[derive(Debug, Clone, PartialEq)]
pub struct Parent {
    pub peer_id: PeerId,
    pub addr: SocketAddr,
    pub finished: PieceBitmap,
    /// Asked only for pieces no other parent has (a seed peer that is the only way in).
    pub seed: bool,
}

/// What the scheduler tells a downloading peer.
#[derive(Debug, Clone, PartialEq)]
pub enum FromScheduler {
    /// Fetch from the origin.
    BackToSource(String),
    /// Metadata, new digests, and the current parents.
    Update {
        content_length: Option<u64>,
        piece_length: Option<u64>,
        digests: Vec<(u32, PieceDigest)>,
        parents: Vec<Parent>,
        /// Pieces newly handed to this peer to fetch from the origin by range.
        origin_pieces: Vec<u32>,
        /// The whole content, when it is tiny and the scheduler holds it; unverified until
        /// checked against piece 0's digest.
        tiny_content: Option<Vec<u8>>,
    },
}

/// Why a parent could not be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentProblem {
    Unreachable,
    Corrupt,
    Missing,
}

/// What a downloading peer tells the scheduler.
#[derive(Debug, Clone, PartialEq)]
pub enum ToScheduler {
    /// `ranges`: the origin serves byte ranges, so the scheduler may spread pieces over peers.
    ContentInfo {
        content_length: Option<u64>,
        piece_length: u64,
        ranges: bool,
    },
    Pieces(Vec<PieceReport>),
    ParentFailed {
        parent: PeerId,
        piece: u32,
        problem: ParentProblem,
    },
    Finished {
        content_length: u64,
    },
    Failed(String),
}

/// Registration data.
#[derive(Debug, Clone)]
pub struct Registration {
    pub host_id: String,
    pub peer_id: PeerId,
    pub task_id: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub piece_length: Option<u64>,
    pub disable_back_to_source: bool,
    pub tag: String,
    pub application: String,
    pub filtered_query_params: Vec<String>,
    pub blob_digest: bool,
}

/// An open `AnnouncePeer` stream.
#[derive(Debug)]
pub struct PeerStream {
    out: mpsc::Sender<pb::AnnouncePeerRequest>,
    inbound: tonic::Streaming<pb::AnnouncePeerResponse>,
}

impl PeerStream {
    /// Connects to the scheduler at `addr` (through `set`'s channel to it) and registers. A
    /// refusal by the cluster's policy is [`Error::Refused`] (going to the origin instead would
    /// defeat it); any other failure is [`Error::SchedulerLost`], so the caller may fall back.
    pub async fn open(set: &SchedulerSet, addr: SocketAddr, reg: Registration) -> Result<Self, Error> {
        let channel = set.channel(addr)?;
        Self::register(channel, reg).await.map_err(refused_at_open)
    }

    async fn register(channel: Channel, reg: Registration) -> Result<Self, Status> {
        let mut client = pb::scheduler_client::SchedulerClient::new(channel);
        let (out, rx) = mpsc::channel(256);
        let register = pb::RegisterPeer {
            host_id: reg.host_id,
            peer_id: reg.peer_id.0,
            task: Some(pb::TaskSpec {
                task_id: reg.task_id,
                url: reg.url,
                request_headers: reg.headers.into_iter().collect(),
                piece_length: reg.piece_length,
                tag: reg.tag,
                application: reg.application,
                filtered_query_params: reg.filtered_query_params,
                blob_digest_task_id: reg.blob_digest,
            }),
            disable_back_to_source: reg.disable_back_to_source,
        };
        out.send(pb::AnnouncePeerRequest { request: Some(pb::announce_peer_request::Request::Register(register)) })
            .await
            .map_err(|_| Status::internal("request channel closed"))?;
        let inbound = client.announce_peer(ReceiverStream::new(rx)).await?.into_inner();
        Ok(Self { out, inbound })
    }

    /// Sends the last report, closes this side and waits (briefly) for the scheduler to end the
    /// stream, so the report is not lost to a stream reset.
    pub async fn finish(self, last: ToScheduler) -> Result<(), Error> {
        let Self { out, mut inbound } = self;
        Reporter(out).send(last).await?;
        let drain = async { while let Ok(Some(_)) = inbound.message().await {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
        Ok(())
    }

    /// A sender for reports, usable from other tasks.
    pub fn reporter(&self) -> Reporter {
        Reporter(self.out.clone())
    }

    /// The next message. A closed stream is [`Error::SchedulerLost`]; the scheduler's
    /// `FailedPrecondition` (no parent, no back-to-source) is [`Error::NoSource`].
    pub async fn next(&mut self) -> Result<FromScheduler, Error> {
        loop {
            let msg = match self.inbound.message().await {
                Ok(Some(msg)) => msg,
                Ok(None) => return Err(Error::SchedulerLost("the scheduler closed the stream".into())),
                Err(status) => return Err(broken_stream(status)),
            };
            use pb::announce_peer_response::Response as R;
            match msg.response {
                Some(R::NeedBackToSource(b)) => return Ok(FromScheduler::BackToSource(b.reason)),
                Some(R::Update(u)) => {
                    let digests = u
                        .digests
                        .into_iter()
                        .filter_map(|d| Some((d.number, PieceDigest::from_slice(&d.digest)?)))
                        .collect();
                    let parents = u
                        .parents
                        .into_iter()
                        .filter_map(|p| {
                            let ip: IpAddr = p.ip.parse().ok()?;
                            let port = u16::try_from(p.upload_port).ok()?;
                            Some(Parent {
                                peer_id: PeerId(p.peer_id),
                                addr: SocketAddr::new(ip, port),
                                finished: PieceBitmap::from_bytes(&p.finished_pieces),
                                seed: p.seed,
                            })
                        })
                        .collect();
                    return Ok(FromScheduler::Update {
                        content_length: u.content_length,
                        piece_length: (u.piece_length > 0).then_some(u.piece_length),
                        digests,
                        parents,
                        origin_pieces: u.origin_pieces,
                        tiny_content: u.tiny_content,
                    });
                }
                None => continue,
            }
        }
    }
}

/// What a failed registration means for the download: the cluster's policy refusing it is
/// final; anything else lets the caller fall back to the origin.
fn refused_at_open(status: Status) -> Error {
    match status.code() {
        Code::PermissionDenied => Error::Refused(status.message().to_owned()),
        Code::FailedPrecondition | Code::InvalidArgument => Error::SchedulerLost(status.message().to_owned()),
        _ => Error::SchedulerLost(status.to_string()),
    }
}

/// What a failure of an open stream means: the scheduler's `FailedPrecondition` is its answer
/// that no source is left (no parent, and back-to-source disabled); anything else is a lost
/// scheduler.
fn broken_stream(status: Status) -> Error {
    match status.code() {
        Code::FailedPrecondition => Error::NoSource(status.message().to_owned()),
        _ => Error::SchedulerLost(status.to_string()),
    }
}

/// Sends reports on a stream; cloneable.
#[derive(Debug, Clone)]
pub struct Reporter(mpsc::Sender<pb::AnnouncePeerRequest>);

impl Reporter {
    /// Sends one report; an error means the stream is gone.
    pub async fn send(&self, msg: ToScheduler) -> Result<(), Error> {
        use pb::announce_peer_request::Request as R;
        let request = match msg {
            ToScheduler::ContentInfo { content_length, piece_length, ranges } => {
                R::ContentInfo(pb::ContentInfo { content_length, piece_length, ranges })
            }
            ToScheduler::Pieces(pieces) => R::PiecesFinished(pb::PiecesFinished {
                pieces: pieces
                    .into_iter()
                    .map(|p| {
                        let (parent_id, content, inline) = match p.source {
                            PieceSource::Origin { content } => (String::new(), content.unwrap_or_default(), false),
                            PieceSource::Parent(parent) => (parent.0, Vec::new(), false),
                            PieceSource::Inline => (String::new(), Vec::new(), true),
                        };
                        pb::PieceFinished {
                            number: p.number,
                            digest: p.digest.map(|d| d.as_bytes().to_vec()).unwrap_or_default(),
                            parent_id,
                            cost_micros: p.cost_micros,
                            content,
                            inline,
                        }
                    })
                    .collect(),
            }),
            ToScheduler::ParentFailed { parent, piece, problem } => R::ParentFailed(pb::ParentFailed {
                parent_id: parent.0,
                piece,
                reason: match problem {
                    ParentProblem::Unreachable => pb::ParentFailure::Unreachable,
                    ParentProblem::Corrupt => pb::ParentFailure::Corrupt,
                    ParentProblem::Missing => pb::ParentFailure::Missing,
                } as i32,
            }),
            ToScheduler::Finished { content_length } => R::Finished(pb::PeerFinished { content_length }),
            ToScheduler::Failed(description) => R::Failed(pb::PeerFailed { description }),
        };
        self.0
            .send(pb::AnnouncePeerRequest { request: Some(request) })
            .await
            .map_err(|_| Error::SchedulerLost("report stream closed".into()))
    }
}

/// Opens a lazily-connecting channel to the scheduler at `addr` (`host:port`).
pub fn channel(addr: &str) -> Result<Channel, Error> {
    Ok(tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| Error::Config(format!("scheduler address {addr:?}: {e}")))?
        .connect_timeout(std::time::Duration::from_secs(3))
        .connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_statuses_become_the_peers_errors_at_this_edge() {
        let refused = refused_at_open(Status::permission_denied("blocked by the cluster"));
        assert!(matches!(refused, Error::Refused(m) if m == "blocked by the cluster"));
        for code in [Code::FailedPrecondition, Code::InvalidArgument] {
            let lost = refused_at_open(Status::new(code, "no"));
            assert!(matches!(lost, Error::SchedulerLost(m) if m == "no"), "{code:?}");
        }
        assert!(matches!(refused_at_open(Status::unavailable("down")), Error::SchedulerLost(m) if m.contains("down")));

        let no_source = broken_stream(Status::failed_precondition("no parent"));
        assert!(matches!(no_source, Error::NoSource(m) if m == "no parent"));
        // Refusals mid-stream are a lost scheduler like any other break (the caller falls back).
        assert!(matches!(broken_stream(Status::permission_denied("x")), Error::SchedulerLost(_)));
        assert!(matches!(broken_stream(Status::unavailable("reset")), Error::SchedulerLost(_)));
    }
}
