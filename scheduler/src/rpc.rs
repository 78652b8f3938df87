//! The gRPC edge: converts `damselfly.scheduler.v1` messages to the scheduler's own types and
//! back. No other module sees protobuf types.

use std::{sync::Arc, time::Instant};

use common::ids::HostId;
use proto::{common::v1 as pb_common, scheduler::v1 as pb};
use tonic::{Request, Response, Status};

use crate::{
    Error,
    resource::{Host, HostKind, Hosts},
};

/// The `Scheduler` gRPC service.
#[derive(Debug, Clone)]
pub struct SchedulerService {
    pub hosts: Arc<Hosts>,
    pub host_ttl_secs: u64,
}

impl TryFrom<pb_common::Host> for Host {
    type Error = Error;

    fn try_from(h: pb_common::Host) -> Result<Self, Error> {
        if h.id.is_empty() {
            return Err(Error::InvalidRequest("host.id must not be empty".into()));
        }
        if h.ip.parse::<std::net::IpAddr>().is_err() {
            return Err(Error::InvalidRequest(format!(
                "host.ip {:?} is not an IP address",
                h.ip
            )));
        }
        let upload_port = u16::try_from(h.upload_port)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| {
                Error::InvalidRequest(format!("host.upload_port {} is not a port", h.upload_port))
            })?;
        let kind = match pb_common::HostType::try_from(h.r#type) {
            Ok(pb_common::HostType::Normal) => HostKind::Normal,
            Ok(pb_common::HostType::Seed) => HostKind::Seed,
            _ => {
                return Err(Error::InvalidRequest(
                    "host.type must be NORMAL or SEED".into(),
                ));
            }
        };
        Ok(Host {
            id: HostId(h.id),
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
        let host = request
            .into_inner()
            .host
            .ok_or_else(|| Status::invalid_argument("host is required"))?;
        let host = Host::try_from(host)?;
        tracing::debug!(host_id = %host.id, kind = ?host.kind, "host announced");
        self.hosts.announce(host, Instant::now());
        Ok(Response::new(pb::AnnounceHostResponse {
            host_ttl_secs: self.host_ttl_secs,
        }))
    }

    async fn leave_host(
        &self,
        request: Request<pb::LeaveHostRequest>,
    ) -> Result<Response<pb::LeaveHostResponse>, Status> {
        let id = HostId(request.into_inner().host_id);
        if !self.hosts.leave(&id) {
            return Err(Status::not_found(format!("host {id} is not known")));
        }
        tracing::info!(host_id = %id, "host left");
        Ok(Response::new(pb::LeaveHostResponse {}))
    }
}
