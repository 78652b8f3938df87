//! The manager as a client of schedulers: the gRPC edge the job runner and the task reads use.
//! Proto types stop here.

use std::{sync::Arc, time::Duration};

use proto::scheduler::v1 as pb;
use tonic::{Code, transport::Endpoint};

use crate::pki::Pki;

/// How the manager reaches schedulers: over mutual TLS with its own certificate, expecting a
/// scheduler of the cluster it looked up, or in plain text when TLS is off.
#[derive(Debug, Clone, Default)]
pub struct Dialer {
    pki: Option<Arc<Pki>>,
}

impl Dialer {
    pub fn new(pki: Option<Arc<Pki>>) -> Self {
        Self { pki }
    }
}

use super::tasks::{PieceSource, TaskInfo, TaskPeer};

/// A scheduler's answer in the API's shape.
pub fn task_info(info: pb::TaskInfo) -> TaskInfo {
    TaskInfo {
        task_id: info.task_id,
        url: info.url,
        content_length: info.content_length,
        piece_length: info.piece_length,
        total_pieces: info.total_pieces,
        peers: info
            .peers
            .into_iter()
            .map(|p| TaskPeer {
                host_id: p.host_id,
                hostname: p.hostname,
                ip: p.ip,
                peer_id: p.peer_id,
                state: p.state,
                finished_pieces: p.finished_pieces,
                origin_pieces: p.origin_pieces,
                inline_pieces: p.inline_pieces,
                sources: p
                    .sources
                    .into_iter()
                    .map(|s| PieceSource { parent_id: s.parent_id, pieces: s.pieces })
                    .collect(),
            })
            .collect(),
        recorded_at: None,
    }
}

/// A host told to delete a task, and whether the order reached it.
#[derive(Debug, Clone)]
pub struct Notice {
    pub host_id: String,
    pub hostname: String,
    pub ip: String,
    pub notified: bool,
}

/// A connection to one scheduler.
pub struct SchedulerClient {
    inner: pb::scheduler_client::SchedulerClient<tonic::transport::Channel>,
    /// Deadline of each call, when the channel does not set one.
    timeout: Option<Duration>,
}

impl SchedulerClient {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(t) = self.timeout {
            request.set_timeout(t);
        }
        request
    }
}

impl SchedulerClient {
    /// Connects to the scheduler at `ip:port`, which must be one of `cluster_id`.
    pub async fn connect(
        dialer: &Dialer,
        cluster_id: i64,
        ip: &str,
        port: i32,
        timeout: Duration,
    ) -> Result<Self, String> {
        let host = if ip.contains(':') { format!("[{ip}]") } else { ip.to_owned() };
        if let Some(pki) = &dialer.pki {
            let tls = pki.scheduler_client(cluster_id).map_err(|e| e.to_string())?;
            let channel = common::tls::channel(&format!("{host}:{port}"), tls, timeout)
                .map_err(|e| format!("bad scheduler address {ip}:{port}: {e}"))?;
            let client = pb::scheduler_client::SchedulerClient::new(channel);
            return Ok(Self { inner: client, timeout: Some(timeout) });
        }
        let endpoint = Endpoint::from_shared(format!("http://{host}:{port}"))
            .map_err(|e| format!("bad scheduler address {ip}:{port}: {e}"))?
            .connect_timeout(timeout)
            .timeout(timeout);
        let channel = endpoint.connect().await.map_err(|e| format!("cannot reach scheduler {ip}:{port}: {e}"))?;
        Ok(Self { inner: pb::scheduler_client::SchedulerClient::new(channel), timeout: None })
    }

    /// Peers holding the task; none when the scheduler does not know it.
    pub async fn task_peers(&mut self, task_id: &str) -> Result<Vec<TaskPeer>, String> {
        Ok(self.stat_task(task_id).await?.map(|t| t.peers).unwrap_or_default())
    }

    /// The task with its peers and where their pieces came from; `None` when not known here.
    pub async fn stat_task(&mut self, task_id: &str) -> Result<Option<TaskInfo>, String> {
        let request = self.request(pb::StatTaskRequest { task_id: task_id.to_owned() });
        let info = match self.inner.stat_task(request).await {
            Ok(info) => info.into_inner(),
            Err(s) if s.code() == Code::NotFound => return Ok(None),
            Err(s) => return Err(format!("StatTask failed: {}", s.message())),
        };
        Ok(Some(task_info(info)))
    }

    /// Deletes the task on the scheduler and the hosts holding it.
    pub async fn delete_task(&mut self, task_id: &str) -> Result<Vec<Notice>, String> {
        let request = self.request(pb::DeleteTaskRequest { task_id: task_id.to_owned() });
        match self.inner.delete_task(request).await {
            Ok(resp) => Ok(resp
                .into_inner()
                .hosts
                .into_iter()
                .map(|h| Notice { host_id: h.host_id, hostname: h.hostname, ip: h.ip, notified: h.notified })
                .collect()),
            Err(s) if s.code() == Code::NotFound => Ok(vec![]),
            Err(s) => Err(format!("DeleteTask failed: {}", s.message())),
        }
    }
}

/// One task of a preheat, as the scheduler is asked to warm it.
#[derive(Debug, Clone)]
pub struct PreheatTask {
    pub url: String,
    pub tag: String,
    pub application: String,
    pub filtered_query_params: Vec<String>,
    pub piece_length: Option<u64>,
    pub headers: std::collections::BTreeMap<String, String>,
    /// An OCI blob's task id from its digest alone (the blob-digest mode of dfdaemons).
    pub blob_digest_task_id: bool,
}

/// What a preheat asks of one cluster's scheduler.
#[derive(Debug, Clone)]
pub struct PreheatCall {
    pub tasks: Vec<PreheatTask>,
    pub scope: super::preheat::PreheatScope,
    pub ips: Vec<std::net::IpAddr>,
    pub count: Option<u32>,
    pub percentage: Option<u32>,
    pub concurrent_count: u32,
    pub timeout_secs: u64,
}

/// A host a preheat reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreheatHost {
    pub host_id: String,
    pub hostname: String,
    pub ip: String,
}

/// What the scheduler tells of a preheat as it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreheatEvent {
    /// The hosts it picked (first, once).
    Hosts(Vec<PreheatHost>),
    /// One host's result for one task.
    Result { host_id: String, task_id: String, outcome: Result<u64, String> },
}

impl SchedulerClient {
    /// Starts a preheat; the stream carries its events until every result is in. Dropping it
    /// cancels what has not started.
    pub async fn preheat(
        &mut self,
        call: PreheatCall,
    ) -> Result<impl futures::Stream<Item = Result<PreheatEvent, String>> + use<>, String> {
        use futures::StreamExt;
        let scope = match call.scope {
            super::preheat::PreheatScope::SingleSeedPeer => pb::PreheatScope::SingleSeedPeer,
            super::preheat::PreheatScope::AllSeedPeers => pb::PreheatScope::AllSeedPeers,
            super::preheat::PreheatScope::AllPeers => pb::PreheatScope::AllPeers,
        };
        let request = pb::PreheatRequest {
            tasks: call
                .tasks
                .into_iter()
                .map(|t| pb::TaskSpec {
                    task_id: String::new(),
                    url: t.url,
                    request_headers: t.headers.into_iter().collect(),
                    piece_length: t.piece_length,
                    tag: t.tag,
                    application: t.application,
                    filtered_query_params: t.filtered_query_params,
                    blob_digest_task_id: t.blob_digest_task_id,
                })
                .collect(),
            scope: scope.into(),
            ips: call.ips.iter().map(ToString::to_string).collect(),
            count: call.count,
            percentage: call.percentage,
            concurrent_count: call.concurrent_count,
            timeout_secs: call.timeout_secs,
        };
        // No deadline on the call itself: it lasts as long as the preheat.
        let stream = self.inner.preheat(request).await.map_err(|s| format!("Preheat refused: {}", s.message()))?;
        Ok(stream.into_inner().map(|event| {
            let event = event.map_err(|s| format!("the scheduler's preheat stream broke: {}", s.message()))?;
            match event.event {
                Some(pb::preheat_event::Event::Hosts(h)) => Ok(PreheatEvent::Hosts(
                    h.hosts
                        .into_iter()
                        .map(|h| PreheatHost { host_id: h.host_id, hostname: h.hostname, ip: h.ip })
                        .collect(),
                )),
                Some(pb::preheat_event::Event::Result(r)) => Ok(PreheatEvent::Result {
                    host_id: r.host_id,
                    task_id: r.task_id,
                    outcome: if r.success { Ok(r.content_length) } else { Err(r.description) },
                }),
                None => Err("the scheduler sent an empty preheat event".into()),
            }
        }))
    }
}
