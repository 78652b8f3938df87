//! The manager's gRPC edge (`damselfly.manager.v1`): schedulers and seed peers register and
//! keep themselves alive, peers learn which schedulers serve them, and schedulers read their
//! cluster's settings.
//!
//! Protobuf types stop in this file: requests are validated into the registry's own types (a
//! bad field is `InvalidArgument` naming it), and rows are converted back on the way out.
//! [`registry`] owns the tables, [`keepalive`] the streams and the sweep, [`scopes`] the pure
//! choice of a cluster for a peer, [`cluster_config`] the cluster's JSON settings.
//!
//! Who calls is taken from the client's certificate ([`Caller`]), never from the message: a
//! scheduler registers and keeps alive only as itself in its own cluster, a seed peer likewise,
//! a peer is placed only in the cluster its join token named. `Enroll` is the one call open to
//! a client without a certificate.

mod keepalive;

use std::{net::IpAddr, pin::pin, sync::Arc, time::Duration};

use common::{
    ids::HostId,
    tls::{Caller, Component as Role},
};

use futures::StreamExt;
use proto::manager::v1 as pb;
use sea_orm::{ActiveEnum, DatabaseConnection};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use self::keepalive::{KeepAlive, Sampling};
use crate::{
    Error,
    config::GrpcConfig,
    entity::{schedulers, seed_peers},
    pki::Pki,
    service::{
        cluster_config::ClusterSettings,
        enrolment::{self, Enrolment},
        registry::{
            self, Component, HostKey, PeerRegistration, SchedulerRegistration, SeedPeerRegistration, SeedPeerType,
        },
        samples::SchedulerStats,
        scopes::{CandidateCluster, PeerPlace, scopes_from_json},
    },
};

/// The `Manager` gRPC service and its background sweep.
#[derive(Debug, Clone)]
pub struct Registration {
    db: DatabaseConnection,
    /// How long a component may stay silent before it counts as inactive.
    keepalive_timeout: Duration,
    /// How often schedulers' figures are kept, and how long.
    sampling: Sampling,
    /// Ends open keepalive streams so a graceful shutdown does not wait on them.
    shutdown: CancellationToken,
    /// The CA enrolment signs with; `None` in plaintext mode.
    pki: Option<Arc<Pki>>,
    /// Whether an enrolling host must connect from the address it names.
    enrolment_address_check: bool,
}

impl Registration {
    /// The service over `db`; streams end when `shutdown` is cancelled.
    pub fn new(
        db: DatabaseConnection,
        config: &GrpcConfig,
        pki: Option<Arc<Pki>>,
        enrolment_address_check: bool,
        shutdown: CancellationToken,
    ) -> Self {
        let sampling = Sampling {
            interval: Duration::from_secs(config.sample_interval_secs),
            retention: Duration::from_secs(config.sample_retention_days.saturating_mul(86_400)),
        };
        let keepalive_timeout = Duration::from_secs(config.keepalive_timeout_secs);
        Self { db, keepalive_timeout, sampling, shutdown, pki, enrolment_address_check }
    }

    /// The tonic service to mount.
    pub fn service(self) -> pb::manager_server::ManagerServer<Self> {
        pb::manager_server::ManagerServer::new(self)
    }

    /// Expires silent components until shutdown, counting them in `metrics`; run one per
    /// replica (each row is expired by one sweep, whichever comes first).
    /// What a scheduler of `cluster` reads: its settings and the serials it must refuse.
    async fn cluster_config(&self, cluster: &crate::entity::clusters::Model) -> Result<pb::ClusterConfig, Error> {
        let mut config: pb::ClusterConfig = ClusterSettings::from_row(cluster).into();
        config.revoked_serials = self.revoked_serials(cluster.id).await?;
        Ok(config)
    }

    /// The revoked serials of `cluster` (none without TLS, where nothing is checked).
    async fn revoked_serials(&self, cluster: i64) -> Result<Vec<String>, Error> {
        if self.pki.is_none() {
            return Ok(Vec::new());
        }
        crate::service::certificates::revoked_serials(&self.db, Some(cluster)).await
    }

    pub async fn sweep(self, metrics: Arc<crate::metrics::Metrics>) {
        keepalive::sweep(self.db, self.keepalive_timeout, self.sampling, metrics, self.shutdown).await;
    }
}

/// Task records one keepalive may carry; the rest are dropped (schedulers send 32).
const MAX_TASKS_PER_KEEPALIVE: usize = 256;

fn hostname(value: String, field: &str) -> Result<String, Error> {
    // A hostname becomes part of a host id, which is at most a DNS name long.
    if value.is_empty() || value.len() > HostId::MAX_LEN {
        return Err(Error::invalid(field, format!("{field} must be 1–{} bytes", HostId::MAX_LEN)));
    }
    Ok(value)
}

fn ip(value: &str, field: &str) -> Result<IpAddr, Error> {
    value.parse().map_err(|_| Error::invalid(field, format!("{field} {value:?} is not an IP address")))
}

fn port(value: u32, field: &str) -> Result<u16, Error> {
    u16::try_from(value)
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| Error::invalid(field, format!("{field} {value} is not a port")))
}

fn optional_port(value: u32, field: &str) -> Result<u16, Error> {
    if value == 0 { Ok(0) } else { port(value, field) }
}

/// The identity a registration or keepalive names: cluster, IP and hostname, each checked.
fn host_key(cluster: u64, address: &str, name: String) -> Result<HostKey, Error> {
    Ok(HostKey { cluster_id: cluster_id(cluster)?, ip: ip(address, "ip")?, hostname: hostname(name, "hostname")? })
}

/// Whether the caller may speak for `key` as a `role`: its certificate must name that role, that
/// cluster and the host id the key derives. Plaintext mode trusts everyone.
fn speaks_for(caller: &Caller, role: Role, key: &HostKey) -> Result<(), Status> {
    let Some(id) = caller.require(&[role])? else { return Ok(()) };
    let host = HostId::for_host(&key.hostname, &key.ip.to_string(), role == Role::SeedPeer);
    if id.cluster_id == key.cluster_id && id.host_id == host {
        Ok(())
    } else {
        Err(Status::permission_denied(format!("{id} may not speak for {role} {host} of cluster {}", key.cluster_id)))
    }
}

fn cluster_id(value: u64) -> Result<i64, Error> {
    i64::try_from(value)
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| Error::invalid("cluster_id", format!("cluster_id {value} is not a cluster id")))
}

impl TryFrom<pb::UpdateSchedulerRequest> for SchedulerRegistration {
    type Error = Error;

    fn try_from(r: pb::UpdateSchedulerRequest) -> Result<Self, Error> {
        Ok(Self {
            key: host_key(r.cluster_id, &r.ip, r.hostname)?,
            port: port(r.port, "port")?,
            idc: r.idc,
            location: r.location,
            features: r.features,
            version: r.version,
        })
    }
}

impl TryFrom<pb::UpdateSeedPeerRequest> for SeedPeerRegistration {
    type Error = Error;

    fn try_from(r: pb::UpdateSeedPeerRequest) -> Result<Self, Error> {
        let kind = match r.r#type.as_str() {
            "" | "super" => SeedPeerType::Super,
            "strong" => SeedPeerType::Strong,
            "weak" => SeedPeerType::Weak,
            other => return Err(Error::invalid("type", format!("type {other:?} must be super, strong or weak"))),
        };
        Ok(Self {
            key: host_key(r.cluster_id, &r.ip, r.hostname)?,
            port: port(r.port, "port")?,
            download_port: optional_port(r.download_port, "download_port")?,
            kind,
            idc: r.idc,
            location: r.location,
            version: r.version,
        })
    }
}

impl TryFrom<pb::KeepAliveRequest> for KeepAlive {
    type Error = Error;

    fn try_from(r: pb::KeepAliveRequest) -> Result<Self, Error> {
        let kind = match pb::SourceType::try_from(r.source_type) {
            Ok(pb::SourceType::Scheduler) => Component::Scheduler,
            Ok(pb::SourceType::SeedPeer) => Component::SeedPeer,
            Ok(pb::SourceType::Peer) => Component::Peer,
            _ => return Err(Error::invalid("source_type", "source_type must be SCHEDULER, SEED_PEER or PEER")),
        };
        Ok(Self {
            kind,
            key: host_key(r.cluster_id, &r.ip, r.hostname)?,
            upload_rate: r.upload_rate,
            stats: r.scheduler_stats.map(|s| SchedulerStats {
                tasks: s.tasks,
                peers: s.peers,
                running_peers: s.running_peers,
                back_to_source_bytes: s.back_to_source_bytes,
                peer_bytes: s.peer_bytes,
                succeeded: s.succeeded,
                failed: s.failed,
            }),
            // A scheduler sends a few dozen per message; a task id that is not one is dropped.
            tasks: r
                .tasks
                .into_iter()
                .take(MAX_TASKS_PER_KEEPALIVE)
                .filter(|t| common::ids::TaskId::parse(&t.task_id).is_ok())
                .map(crate::service::scheduler_rpc::task_info)
                .collect(),
        })
    }
}

fn scheduler_reply(m: schedulers::Model, cluster_config: Option<pb::ClusterConfig>) -> pb::Scheduler {
    pb::Scheduler {
        id: u64::try_from(m.id).unwrap_or_default(),
        hostname: m.hostname,
        ip: m.ip,
        port: u32::try_from(m.port).unwrap_or_default(),
        idc: m.idc,
        location: m.location,
        features: serde_json::from_value(m.features).unwrap_or_default(),
        cluster_id: u64::try_from(m.cluster_id).unwrap_or_default(),
        state: m.state.to_value(),
        cluster_config,
    }
}

fn seed_peer_reply(m: seed_peers::Model) -> pb::SeedPeer {
    pb::SeedPeer {
        id: u64::try_from(m.id).unwrap_or_default(),
        hostname: m.hostname,
        ip: m.ip,
        port: u32::try_from(m.port).unwrap_or_default(),
        download_port: u32::try_from(m.download_port).unwrap_or_default(),
        r#type: m.r#type,
        idc: m.idc,
        location: m.location,
        cluster_id: u64::try_from(m.cluster_id).unwrap_or_default(),
        state: m.state.to_value(),
    }
}

impl From<ClusterSettings> for pb::ClusterConfig {
    fn from(s: ClusterSettings) -> Self {
        Self {
            cluster_id: u64::try_from(s.cluster_id).unwrap_or_default(),
            candidate_parent_limit: s.scheduler.candidate_parent_limit,
            filter_parent_limit: s.scheduler.filter_parent_limit,
            job_rate_limit: s.scheduler.job_rate_limit,
            seed_peer_load_limit: s.seed_peer.load_limit,
            peer_load_limit: s.peer.load_limit,
            block_list: Some(pb::BlockList {
                applications: s.peer.block_list.applications,
                urls: s.peer.block_list.urls,
                tags: s.peer.block_list.tags,
            }),
            // Filled in by the service, which reads them from the certificate record.
            revoked_serials: Vec::new(),
        }
    }
}

#[tonic::async_trait]
impl pb::manager_server::Manager for Registration {
    async fn enroll(&self, request: Request<pb::EnrollRequest>) -> Result<Response<pb::EnrollResponse>, Status> {
        let Some(pki) = &self.pki else {
            return Err(Status::failed_precondition("this manager runs without TLS ([tls] mode = \"plaintext\")"));
        };
        let from = request.extensions().get::<common::tls::transport::PeerInfo>().map(|p| p.remote.ip());
        let r = request.into_inner();
        let e = Enrolment {
            join_token: r.join_token,
            csr_der: r.certificate_request,
            ip: ip(&r.ip, "ip")?,
            hostname: hostname(r.hostname, "hostname")?,
            from: from.filter(|_| self.enrolment_address_check),
        };
        let enrolled = enrolment::enrol(&self.db, pki, e).await?;
        Ok(Response::new(pb::EnrollResponse {
            certificate_chain: enrolled.chain,
            ca_certificate: enrolled.ca,
            cluster_id: u64::try_from(enrolled.identity.cluster_id).unwrap_or_default(),
            component: enrolled.identity.component.to_string(),
        }))
    }

    async fn renew(&self, request: Request<pb::RenewRequest>) -> Result<Response<pb::EnrollResponse>, Status> {
        let Some(pki) = &self.pki else {
            return Err(Status::failed_precondition("this manager runs without TLS ([tls] mode = \"plaintext\")"));
        };
        let caller = Caller::of(&request);
        let Some(identity) = caller.require(&[Role::Scheduler, Role::SeedPeer, Role::Peer])?.cloned() else {
            return Err(Status::failed_precondition("renewal needs TLS"));
        };
        let enrolled = enrolment::renew(&self.db, pki, identity, &request.into_inner().certificate_request).await?;
        Ok(Response::new(pb::EnrollResponse {
            certificate_chain: enrolled.chain,
            ca_certificate: enrolled.ca,
            cluster_id: u64::try_from(enrolled.identity.cluster_id).unwrap_or_default(),
            component: enrolled.identity.component.to_string(),
        }))
    }

    async fn update_scheduler(
        &self,
        request: Request<pb::UpdateSchedulerRequest>,
    ) -> Result<Response<pb::Scheduler>, Status> {
        let caller = Caller::of(&request);
        let r = SchedulerRegistration::try_from(request.into_inner())?;
        speaks_for(&caller, Role::Scheduler, &r.key)?;
        let cluster = registry::live_cluster(&self.db, r.key.cluster_id).await?;
        tracing::info!(hostname = %r.key.hostname, ip = %r.key.ip, cluster_id = r.key.cluster_id, "scheduler registered");
        let row = registry::upsert_scheduler(&self.db, r).await?;
        let config = self.cluster_config(&cluster).await?;
        Ok(Response::new(scheduler_reply(row, Some(config))))
    }

    async fn update_seed_peer(
        &self,
        request: Request<pb::UpdateSeedPeerRequest>,
    ) -> Result<Response<pb::SeedPeer>, Status> {
        let caller = Caller::of(&request);
        let r = SeedPeerRegistration::try_from(request.into_inner())?;
        speaks_for(&caller, Role::SeedPeer, &r.key)?;
        tracing::info!(hostname = %r.key.hostname, ip = %r.key.ip, cluster_id = r.key.cluster_id, "seed peer registered");
        let row = registry::upsert_seed_peer(&self.db, r).await?;
        Ok(Response::new(seed_peer_reply(row)))
    }

    async fn list_schedulers(
        &self,
        request: Request<pb::ListSchedulersRequest>,
    ) -> Result<Response<pb::ListSchedulersResponse>, Status> {
        let caller = Caller::of(&request);
        let r = request.into_inner();
        let hostname = hostname(r.hostname, "hostname")?;
        let ip = ip(&r.ip, "ip")?;
        let download_port = optional_port(r.download_port, "download_port")?;
        // A peer is placed only among the clusters its certificate allows: the one its join
        // token named. Scopes rank inside that set.
        let allowed = match caller.require(&[Role::Peer, Role::SeedPeer])? {
            None => None,
            Some(id) => {
                let role = if r.seed_peer { Role::SeedPeer } else { Role::Peer };
                let key = HostKey { cluster_id: id.cluster_id, hostname: hostname.clone(), ip };
                speaks_for(&caller, role, &key)?;
                Some(id.cluster_id)
            }
        };
        let place =
            PeerPlace { hostname: hostname.clone(), ip: Some(ip), idc: r.idc.clone(), location: r.location.clone() };
        let clusters: Vec<CandidateCluster> = registry::live_clusters(&self.db)
            .await?
            .into_iter()
            .filter(|c| allowed.is_none_or(|id| id == c.id))
            .map(|c| CandidateCluster { id: c.id, scopes: scopes_from_json(&c.scopes), is_default: c.is_default })
            .collect();
        let cluster_id = crate::service::scopes::best_cluster(&clusters, &place)
            .ok_or_else(|| Error::NotFound("no cluster is configured".into()))?;
        if !r.seed_peer {
            registry::upsert_peer(
                &self.db,
                PeerRegistration {
                    key: HostKey { cluster_id, hostname, ip },
                    download_port,
                    idc: r.idc,
                    location: r.location,
                    version: r.version,
                    os: r.os,
                    platform: r.platform,
                },
            )
            .await?;
        }
        let schedulers = registry::active_schedulers(&self.db, cluster_id, self.keepalive_timeout).await?;
        Ok(Response::new(pb::ListSchedulersResponse {
            schedulers: schedulers.into_iter().map(|s| scheduler_reply(s, None)).collect(),
            cluster_id: u64::try_from(cluster_id).unwrap_or_default(),
            revoked_serials: self.revoked_serials(cluster_id).await?,
        }))
    }

    async fn get_cluster_config(
        &self,
        request: Request<pb::GetClusterConfigRequest>,
    ) -> Result<Response<pb::ClusterConfig>, Status> {
        let caller = Caller::of(&request);
        let id = cluster_id(request.into_inner().cluster_id)?;
        if let Some(me) = caller.require(&[Role::Scheduler, Role::SeedPeer, Role::Peer])?
            && me.cluster_id != id
        {
            return Err(Status::permission_denied(format!("{me} may not read cluster {id}'s settings")));
        }
        let cluster = registry::live_cluster(&self.db, id).await?;
        Ok(Response::new(self.cluster_config(&cluster).await?))
    }

    async fn keep_alive(
        &self,
        request: Request<tonic::Streaming<pb::KeepAliveRequest>>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request);
        caller.require(&[Role::Scheduler, Role::SeedPeer, Role::Peer])?;
        // The stream outlives any one check: a certificate revoked while it is open ends it.
        let connection = request.extensions().get::<common::tls::transport::PeerInfo>().cloned();
        let messages = request.into_inner().map(move |m| match m {
            Ok(m) => {
                if let Some(Caller::Revoked(id)) = connection.as_ref().map(|c| c.caller_now()) {
                    return Err(Error::Unauthorized(format!("the certificate of {id} was revoked")));
                }
                let alive = KeepAlive::try_from(m)?;
                let role = match alive.kind {
                    Component::Scheduler => Role::Scheduler,
                    Component::SeedPeer => Role::SeedPeer,
                    Component::Peer => Role::Peer,
                };
                speaks_for(&caller, role, &alive.key).map_err(|s| Error::Forbidden(s.message().to_owned()))?;
                Ok(alive)
            }
            // The component went away mid-message: the stream is over.
            Err(status) => Err(Error::Unavailable(format!("keepalive stream broke: {}", status.message()))),
        });
        // tonic drops this handler when the client resets the stream (a stopped scheduler does),
        // so the stream is held in its own task, which always gets to mark the end.
        let (db, timeout, sampling, shutdown) =
            (self.db.clone(), self.keepalive_timeout, self.sampling, self.shutdown.clone());
        let held =
            tokio::spawn(async move { keepalive::hold(&db, timeout, sampling, pin!(messages), &shutdown).await });
        held.await.map_err(|e| Error::Internal(format!("keepalive task failed: {e}")))??;
        Ok(Response::new(()))
    }
}

/// Registrations and keepalives arrive from any certified component with any field values:
/// each is refused as `InvalidArgument` or holds an id, an address, a hostname and ports within
/// bounds; and a caller speaks only for the host and cluster its certificate names.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keepalive_keeps_a_bounded_number_of_well_named_tasks() {
        let task = |id: &str| proto::scheduler::v1::TaskInfo { task_id: id.into(), ..Default::default() };
        let good = "ab".repeat(32);
        let mut tasks = vec![task("../../etc/passwd"), task(""), task(&good.to_uppercase())];
        tasks.extend((0..400).map(|_| task(&good)));
        let message = pb::KeepAliveRequest {
            source_type: pb::SourceType::Scheduler as i32,
            hostname: "s".into(),
            ip: "10.0.0.1".into(),
            cluster_id: 1,
            tasks,
            ..Default::default()
        };
        let alive = KeepAlive::try_from(message).unwrap();
        assert!(alive.tasks.len() <= MAX_TASKS_PER_KEEPALIVE && !alive.tasks.is_empty());
        assert!(alive.tasks.iter().all(|t| t.task_id == good), "only task ids that are ones are kept");
    }
}

#[cfg(test)]
mod properties {
    use common::tls::Identity;
    use proptest::prelude::*;

    use super::*;

    fn hostname() -> impl Strategy<Value = String> {
        prop_oneof![3 => "[a-z0-9.-]{1,30}", 1 => any::<String>(), 1 => "[a-z]{250,260}"]
    }

    fn address() -> impl Strategy<Value = String> {
        prop_oneof![3 => any::<IpAddr>().prop_map(|ip| ip.to_string()), 1 => any::<String>(), 1 => "[0-9.:a-f%]{0,16}"]
    }

    fn a_port() -> impl Strategy<Value = u32> {
        prop_oneof![3 => 0..=65_536u32, 1 => any::<u32>()]
    }

    fn a_cluster() -> impl Strategy<Value = u64> {
        prop_oneof![3 => 0..4u64, 1 => any::<u64>(), 1 => Just(i64::MAX as u64 + 1)]
    }

    /// The key fields are what they must be: a cluster id in 1..=i64::MAX, an IP address, a
    /// hostname of 1–253 bytes.
    fn key_is_valid(cluster: u64, ip: &str, name: &str) -> bool {
        (1..=i64::MAX as u64).contains(&cluster)
            && ip.parse::<IpAddr>().is_ok()
            && (1..=HostId::MAX_LEN).contains(&name.len())
    }

    fn key_matches(key: &HostKey, cluster: u64, ip: &str, name: &str) -> bool {
        key.cluster_id as u64 == cluster && Some(key.ip) == ip.parse().ok() && key.hostname == name
    }

    fn refused_as_invalid(e: Error) -> bool {
        Status::from(e).code() == tonic::Code::InvalidArgument
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn a_scheduler_registration_is_within_bounds_or_refused(
            hostname in hostname(), ip in address(), port in a_port(), cluster_id in a_cluster(), idc in any::<String>(),
        ) {
            let r = pb::UpdateSchedulerRequest { hostname: hostname.clone(), ip: ip.clone(), port, cluster_id, idc, ..Default::default() };
            let valid = key_is_valid(cluster_id, &ip, &hostname) && (1..=65_535).contains(&port);
            match SchedulerRegistration::try_from(r) {
                Ok(reg) => {
                    prop_assert!(valid);
                    prop_assert!(key_matches(&reg.key, cluster_id, &ip, &hostname));
                    prop_assert_eq!(u32::from(reg.port), port);
                }
                Err(e) => prop_assert!(!valid && refused_as_invalid(e)),
            }
        }

        #[test]
        fn a_seed_peer_registration_is_within_bounds_or_refused(
            hostname in hostname(), ip in address(), port in a_port(), download_port in a_port(), cluster_id in a_cluster(),
            kind in prop_oneof![Just(String::new()), Just("super".to_owned()), Just("strong".to_owned()), Just("weak".to_owned()), any::<String>()],
        ) {
            let r = pb::UpdateSeedPeerRequest {
                hostname: hostname.clone(), ip: ip.clone(), port, download_port, r#type: kind.clone(), cluster_id, ..Default::default()
            };
            let valid = key_is_valid(cluster_id, &ip, &hostname)
                && (1..=65_535).contains(&port)
                && download_port <= 65_535
                && ["", "super", "strong", "weak"].contains(&kind.as_str());
            match SeedPeerRegistration::try_from(r) {
                Ok(reg) => {
                    prop_assert!(valid);
                    prop_assert!(key_matches(&reg.key, cluster_id, &ip, &hostname));
                    prop_assert_eq!((u32::from(reg.port), u32::from(reg.download_port)), (port, download_port));
                }
                Err(e) => prop_assert!(!valid && refused_as_invalid(e)),
            }
        }

        #[test]
        fn a_keepalive_is_within_bounds_or_refused(
            hostname in hostname(), ip in address(), cluster_id in a_cluster(), source_type in prop_oneof![0..5i32, any::<i32>()],
        ) {
            let r = pb::KeepAliveRequest { hostname: hostname.clone(), ip: ip.clone(), cluster_id, source_type, ..Default::default() };
            let valid = key_is_valid(cluster_id, &ip, &hostname) && (1..=3).contains(&source_type);
            match KeepAlive::try_from(r) {
                Ok(alive) => {
                    prop_assert!(valid);
                    prop_assert!(key_matches(&alive.key, cluster_id, &ip, &hostname));
                    let kind = [Component::Scheduler, Component::SeedPeer, Component::Peer][source_type as usize - 1];
                    prop_assert_eq!(alive.kind, kind);
                }
                Err(e) => prop_assert!(!valid && refused_as_invalid(e)),
            }
        }

        #[test]
        fn a_caller_speaks_only_for_the_host_and_cluster_its_certificate_names(
            role in prop_oneof![Just(Role::Scheduler), Just(Role::SeedPeer), Just(Role::Peer)],
            holder in prop_oneof![Just(Role::Manager), Just(Role::Scheduler), Just(Role::SeedPeer), Just(Role::Peer)],
            (cert_cluster, key_cluster) in prop_oneof![(1..3i64).prop_map(|c| (c, c)), (1..3i64, 1..3i64)],
            (cert_name, key_name) in prop_oneof![
                "[a-z]{1,6}".prop_map(|n| (n.clone(), n)),
                ("[a-z]{1,6}", prop_oneof!["[a-z]{1,6}", any::<String>()]),
            ],
            (cert_ip, key_ip) in prop_oneof![any::<IpAddr>().prop_map(|ip| (ip, ip)), (any::<IpAddr>(), any::<IpAddr>())],
        ) {
            let host_id = HostId::for_host(&cert_name, &cert_ip.to_string(), holder == Role::SeedPeer);
            let caller = Caller::Known(Identity { component: holder, cluster_id: cert_cluster, host_id });
            let key = HostKey { cluster_id: key_cluster, hostname: key_name.clone(), ip: key_ip };
            let same_host = HostId::for_host(&cert_name, &cert_ip.to_string(), false)
                == HostId::for_host(&key_name, &key_ip.to_string(), false);
            let allowed = holder == role && cert_cluster == key_cluster && same_host;
            prop_assert_eq!(speaks_for(&caller, role, &key).is_ok(), allowed);
        }
    }
}
