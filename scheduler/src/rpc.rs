//! The gRPC edge: converts `damselfly.scheduler.v1` messages to the scheduler's own types and
//! back, and [`manager`] is the client side of `damselfly.manager.v1`. No other module sees
//! protobuf types.
//!
//! Every call asks who is calling ([`Caller`], from the client's certificate) before anything
//! else: a dfdaemon of this scheduler's cluster announces, leaves, registers downloads and
//! watches orders and reports preheats only as the host its certificate names; only a seed peer
//! takes seed orders; only the manager deletes tasks and starts preheats.

mod announce_peer;
pub mod manager;
mod orders;
pub mod preheat;

use std::{pin::Pin, sync::Arc, time::Instant};

use futures::Stream;
use tokio_stream::StreamExt;

use common::{
    ids::HostId,
    tls::{Caller, Component, transport::Revocable},
};
use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use tonic::{Request, Response, Status};

use crate::{
    Error,
    metrics::{CallLabels, TaskCall},
    resource::{Host, HostKind, HostOrders, Hosts, Preheats, SeedWatchers, TaskSnapshot, Tasks},
    scheduling::{LiveBlockList, LiveLimits},
};

/// The `Scheduler` gRPC service.
#[derive(Debug, Clone)]
pub struct SchedulerService {
    pub hosts: Arc<Hosts>,
    pub tasks: Arc<Tasks>,
    pub seeds: Arc<SeedWatchers>,
    pub orders: Arc<HostOrders>,
    /// Preheats this scheduler drives.
    pub preheats: Arc<Preheats>,
    /// Downloads the cluster refuses, updated at runtime from the manager's cluster settings.
    pub block_list: LiveBlockList,
    /// Parent selection limits, updated at runtime from the manager's cluster settings.
    pub limits: LiveLimits,
    pub host_ttl_secs: u64,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The cluster this scheduler's certificate names; `None` when TLS is off.
    pub cluster_id: Option<i64>,
    /// Cancelled when the scheduler stops: order streams and preheats end with it, so the
    /// graceful stop does not wait on them and callers learn why.
    pub shutdown: tokio_util::sync::CancellationToken,
}

impl SchedulerService {
    /// The caller must be a dfdaemon of this cluster speaking for `host` (one of `allowed`).
    pub(crate) fn daemon_of(&self, caller: &Caller, host: &HostId, allowed: &[Component]) -> Result<(), Status> {
        let Some(id) = caller.require(allowed)? else { return Ok(()) };
        if Some(id.cluster_id) != self.cluster_id {
            return Err(Status::permission_denied(format!("{id} is not of this scheduler's cluster")));
        }
        if &id.host_id != host {
            return Err(Status::permission_denied(format!("{id} may not speak for host {host}")));
        }
        Ok(())
    }

    /// The caller must be the manager, or an operator of this cluster (a site without a
    /// manager: `dfctl preheat --scheduler`).
    fn preheater(&self, caller: &Caller) -> Result<(), Status> {
        match caller.require(&[Component::Manager, Component::Operator])? {
            Some(id) if id.component == Component::Operator && Some(id.cluster_id) != self.cluster_id => {
                Err(Status::permission_denied(format!("{id} is not of this scheduler's cluster")))
            }
            _ => Ok(()),
        }
    }

    /// The caller must be the manager, or a dfdaemon of this cluster.
    fn reader(&self, caller: &Caller) -> Result<(), Status> {
        match caller.require(&[Component::Manager, Component::SeedPeer, Component::Peer])? {
            Some(id) if id.component != Component::Manager && Some(id.cluster_id) != self.cluster_id => {
                Err(Status::permission_denied(format!("{id} is not of this scheduler's cluster")))
            }
            _ => Ok(()),
        }
    }
}

const DAEMONS: &[Component] = &[Component::SeedPeer, Component::Peer];

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Longest IDC, location or version a host may announce.
pub(crate) const MAX_LABEL: usize = 256;

impl TryFrom<pb_common::Host> for Host {
    type Error = Error;

    fn try_from(h: pb_common::Host) -> Result<Self, Error> {
        let id = HostId::parse(&h.id).map_err(|e| Error::InvalidRequest(format!("host.id: {e}")))?;
        // What a host says of itself is kept for as long as it announces: bounded, so one
        // host cannot grow the scheduler's memory with its labels.
        if h.hostname.len() > HostId::MAX_LEN {
            return Err(Error::InvalidRequest(format!("host.hostname is over {} bytes", HostId::MAX_LEN)));
        }
        for (field, value) in [("host.idc", &h.idc), ("host.location", &h.location), ("host.version", &h.version)] {
            if value.len() > MAX_LABEL {
                return Err(Error::InvalidRequest(format!("{field} is over {MAX_LABEL} bytes")));
            }
        }
        if h.ip.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::InvalidRequest(format!("host.ip {:?} is not an IP address", h.ip)));
        }
        let upload_port = u16::try_from(h.upload_port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| Error::InvalidRequest(format!("host.upload_port {} is not a port", h.upload_port)))?;
        let kind = match pb_common::HostType::try_from(h.r#type) {
            Ok(pb_common::HostType::Normal) => HostKind::Normal,
            Ok(pb_common::HostType::Seed) => HostKind::Seed,
            _ => {
                return Err(Error::InvalidRequest("host.type must be NORMAL or SEED".into()));
            }
        };
        Ok(Host {
            id,
            hostname: h.hostname,
            ip: h.ip,
            upload_port,
            kind,
            idc: h.idc,
            location: h.location,
            upload_limit: h.upload_limit,
            version: h.version,
        })
    }
}

#[tonic::async_trait]
impl pb::scheduler_server::Scheduler for SchedulerService {
    async fn announce_host(
        &self,
        request: Request<pb::AnnounceHostRequest>,
    ) -> Result<Response<pb::AnnounceHostResponse>, Status> {
        let caller = Caller::of(&request);
        let host = request.into_inner().host.ok_or_else(|| Status::invalid_argument("host is required"))?;
        let host = Host::try_from(host)?;
        // A seed host is announced only with a seed peer's certificate.
        let role = if host.kind == HostKind::Seed { Component::SeedPeer } else { Component::Peer };
        self.daemon_of(&caller, &host.id, &[role])?;
        tracing::debug!(host_id = %host.id, kind = ?host.kind, "host announced");
        self.hosts.announce(host, Instant::now());
        Ok(Response::new(pb::AnnounceHostResponse { host_ttl_secs: self.host_ttl_secs }))
    }

    async fn leave_host(
        &self,
        request: Request<pb::LeaveHostRequest>,
    ) -> Result<Response<pb::LeaveHostResponse>, Status> {
        let caller = Caller::of(&request);
        let id = HostId::parse(&request.into_inner().host_id).map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.daemon_of(&caller, &id, DAEMONS)?;
        if !self.hosts.leave(&id) {
            return Err(Status::not_found(format!("host {id} is not known")));
        }
        self.tasks.remove_host(&id);
        tracing::info!(host_id = %id, "host left");
        Ok(Response::new(pb::LeaveHostResponse {}))
    }

    type AnnouncePeerStream = BoxStream<pb::AnnouncePeerResponse>;

    async fn announce_peer(
        &self,
        request: Request<tonic::Streaming<pb::AnnouncePeerRequest>>,
    ) -> Result<Response<Self::AnnouncePeerStream>, Status> {
        let caller = Caller::of(&request);
        let revocable = Revocable::of(&request);
        let answer = announce_peer::start(self.clone(), caller, request.into_inner()).await?;
        Ok(Response::new(Box::pin(revocable.wrap(answer.into_inner()))))
    }

    type WatchSeedTasksStream = BoxStream<pb::SeedTask>;

    async fn watch_seed_tasks(
        &self,
        request: Request<pb::WatchSeedTasksRequest>,
    ) -> Result<Response<Self::WatchSeedTasksStream>, Status> {
        let caller = Caller::of(&request);
        let revocable = Revocable::of(&request);
        let id = HostId::parse(&request.into_inner().host_id).map_err(|e| Status::invalid_argument(e.to_string()))?;
        self.daemon_of(&caller, &id, &[Component::SeedPeer])?;
        match self.hosts.get(&id) {
            Some(h) if h.kind == HostKind::Seed => {}
            Some(_) => return Err(Status::failed_precondition(format!("host {id} is not a seed peer"))),
            None => return Err(Status::failed_precondition(format!("host {id} has not announced itself"))),
        }
        tracing::info!(host_id = %id, "seed peer watching for tasks");
        let orders = tokio_stream::wrappers::ReceiverStream::new(self.seeds.watch(id));
        let stream = orders.map(|o| Ok(pb::SeedTask { task: Some(task_spec(o)) }));
        let stream = futures::StreamExt::take_until(stream, self.shutdown.clone().cancelled_owned());
        Ok(Response::new(Box::pin(revocable.wrap(Box::pin(stream)))))
    }

    async fn stat_task(&self, request: Request<pb::StatTaskRequest>) -> Result<Response<pb::TaskInfo>, Status> {
        self.reader(&Caller::of(&request))?;
        self.metrics.task_calls.get_or_create(&CallLabels { call: TaskCall::Stat }).inc();
        let id = common::ids::TaskId::parse(&request.into_inner().task_id)
            .map_err(|e| Status::invalid_argument(format!("task_id: {e}")))?;
        let cell = self.tasks.get(&id).ok_or_else(|| Status::not_found(format!("task {id} is not known")))?;
        let t = cell.lock().snapshot();
        Ok(Response::new(task_info(t, &self.hosts)))
    }

    async fn delete_task(
        &self,
        request: Request<pb::DeleteTaskRequest>,
    ) -> Result<Response<pb::DeleteTaskResponse>, Status> {
        Caller::of(&request).require(&[Component::Manager])?;
        self.metrics.task_calls.get_or_create(&CallLabels { call: TaskCall::Delete }).inc();
        orders::delete_task(self, request.into_inner()).map(Response::new)
    }

    type WatchHostOrdersStream = BoxStream<pb::HostOrder>;

    async fn watch_host_orders(
        &self,
        request: Request<pb::WatchHostOrdersRequest>,
    ) -> Result<Response<Self::WatchHostOrdersStream>, Status> {
        let caller = Caller::of(&request);
        let revocable = Revocable::of(&request);
        let answer = orders::watch_host_orders(self, &caller, request.into_inner())?;
        Ok(Response::new(Box::pin(revocable.wrap(answer.into_inner()))))
    }

    type PreheatStream = BoxStream<pb::PreheatEvent>;

    async fn preheat(&self, request: Request<pb::PreheatRequest>) -> Result<Response<Self::PreheatStream>, Status> {
        let caller = Caller::of(&request);
        self.preheater(&caller)?;
        // Without a manager there is no job history: the log says who asked.
        if let Caller::Known(id) = &caller {
            tracing::info!(caller = %id.uri(), tasks = request.get_ref().tasks.len(), "preheat asked");
        }
        preheat::start(self, request.into_inner())
    }

    async fn report_preheat(
        &self,
        request: Request<pb::PreheatReport>,
    ) -> Result<Response<pb::ReportPreheatResponse>, Status> {
        let caller = Caller::of(&request);
        preheat::report(self, &caller, request.into_inner())?;
        Ok(Response::new(pb::ReportPreheatResponse {}))
    }
}

/// The id of the task `spec` describes, derived from its URL, tag, application, piece length
/// and filtered query parameters (never the id a caller sends).
pub(crate) fn spec_task_id(spec: &pb::TaskSpec) -> Result<common::ids::TaskId, common::task_id::TaskIdError> {
    common::task_id::task_id(&common::task_id::TaskSpec {
        url: &spec.url,
        tag: &spec.tag,
        application: &spec.application,
        piece_length: spec.piece_length,
        filtered_query_params: &spec.filtered_query_params,
        blob_digest: spec.blob_digest_task_id,
    })
}

/// What a host is ordered to fetch, on the wire.
pub(crate) fn task_spec(o: crate::resource::SeedOrder) -> pb::TaskSpec {
    pb::TaskSpec {
        task_id: o.task_id,
        url: o.url,
        request_headers: o.headers.into_iter().collect(),
        piece_length: o.piece_length,
        tag: o.tag,
        application: o.application,
        filtered_query_params: o.filtered_query_params,
        blob_digest_task_id: o.blob_digest,
    }
}

/// A task's snapshot on the wire, with each peer's host name and address (`StatTask`, and the
/// task history schedulers send the manager).
pub(crate) fn task_info(t: TaskSnapshot, hosts: &Hosts) -> pb::TaskInfo {
    pb::TaskInfo {
        task_id: t.id.0,
        url: t.url,
        content_length: t.content_length,
        piece_length: t.piece_length.unwrap_or(0),
        total_pieces: t.total_pieces,
        peers: t
            .peers
            .into_iter()
            .map(|p| {
                let host = hosts.get(&p.host_id);
                pb::PeerInfo {
                    peer_id: p.id.0,
                    state: p.phase.as_str().into(),
                    finished_pieces: p.finished.len(),
                    hostname: host.as_ref().map(|h| h.hostname.clone()).unwrap_or_default(),
                    ip: host.map(|h| h.ip).unwrap_or_default(),
                    host_id: p.host_id.0,
                    origin_pieces: p.origin_pieces,
                    inline_pieces: p.inline_pieces,
                    sources: p
                        .parent_pieces
                        .into_iter()
                        .map(|(parent, pieces)| pb::PieceSource { parent_id: parent.0, pieces })
                        .collect(),
                }
            })
            .collect(),
    }
}

/// A host announces itself with any message it likes: fields are refused or make a `Host`
/// within bounds (an id [`HostId::parse`] takes, an IP address, a non-zero port, a known kind).
#[cfg(test)]
mod properties {
    use std::net::IpAddr;

    use proptest::prelude::*;

    use super::*;

    fn host() -> impl Strategy<Value = pb_common::Host> {
        let id = prop_oneof![3 => "[a-z0-9.:_-]{1,40}", 1 => any::<String>(), 1 => "[a-z]{250,256}"];
        let ip = prop_oneof![3 => any::<IpAddr>().prop_map(|ip| ip.to_string()), 1 => any::<String>(), 1 => "[0-9.:a-f%]{0,20}"];
        let port = prop_oneof![3 => 0..=65_536u32, 1 => any::<u32>()];
        let kind = prop_oneof![3 => 0..4i32, 1 => any::<i32>()];
        let label = || prop_oneof![3 => "[a-z0-9.-]{0,40}", 1 => any::<String>(), 1 => "[a-z]{250,300}"];
        (id, ip, port, kind, label(), label(), label(), any::<u32>()).prop_map(
            |(id, ip, upload_port, r#type, hostname, idc, location, upload_limit)| pb_common::Host {
                id,
                hostname,
                ip,
                upload_port,
                r#type,
                idc,
                location,
                upload_limit,
                ..Default::default()
            },
        )
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn an_announced_host_is_within_bounds_or_refused(pb in host()) {
            let valid = HostId::parse(&pb.id).is_ok()
                && pb.ip.parse::<IpAddr>().is_ok()
                && (1..=65_535).contains(&pb.upload_port)
                && matches!(pb.r#type, 1 | 2)
                && pb.hostname.len() <= HostId::MAX_LEN
                && [&pb.idc, &pb.location, &pb.version].iter().all(|l| l.len() <= MAX_LABEL);
            match Host::try_from(pb.clone()) {
                Ok(host) => {
                    prop_assert!(valid, "{pb:?} accepted");
                    prop_assert_eq!(&host.id.0, &pb.id);
                    prop_assert_eq!(host.ip.parse::<IpAddr>().ok(), pb.ip.parse::<IpAddr>().ok());
                    prop_assert_eq!(u32::from(host.upload_port), pb.upload_port);
                    prop_assert_eq!(host.kind == HostKind::Seed, pb.r#type == 2);
                }
                Err(e) => {
                    prop_assert!(!valid, "{pb:?} refused: {e}");
                    prop_assert_eq!(Status::from(e).code(), tonic::Code::InvalidArgument);
                }
            }
        }
    }
}
