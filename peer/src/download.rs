//! Producing content on this host: from the cache, from parent peers, or from the origin.
//!
//! [`Downloader::fetch_task`] brings a task's pieces into storage (the scheduler decides where
//! from: parents via [`p2p`], or the origin via [`origin`]; without a scheduler, or when it is
//! unreachable, the origin is used unless back-to-source is disabled). [`Downloader::download`]
//! then checks the whole-content digest and exports a copy under the user's path, atomically.

mod follow;
mod origin;
mod p2p;
mod request;

pub use origin::{
    AddressClass, HostPatterns, OriginClients, Refusal, Requester, ResolveError, TargetPolicy, classify, refusal_in,
};
pub use request::{DownloadRequest, Event, EventSink, TaskRequest, TaskShape};

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use common::{
    digest::{Algorithm, Digest},
    ids::{HostId, TaskId},
};
use sha2::Digest as _;

use crate::{
    Error,
    limiter::RateLimiter,
    metrics::{Metrics, TrafficType},
    rpc::scheduler_set::SchedulerSet,
    storage::{Link, Storage, TaskStore},
};

/// Settings of the downloader.
#[derive(Debug, Clone)]
pub struct DownloaderConfig {
    pub host_id: HostId,
    /// Pieces fetched at once per task.
    pub concurrency: usize,
    /// Host-wide download limit in bytes/s from parents (0 = unlimited).
    pub download_rate: u64,
    /// Host-wide limit in bytes/s from origins (0 = unlimited).
    pub back_to_source_rate: u64,
    /// Range requests to the origin at once per task (1 = one streaming GET).
    pub back_to_source_concurrency: usize,
    /// How parents are reached on the piece transport.
    pub dialer: crate::transport::client::Dialer,
}

/// Fetches tasks into storage and exports them.
#[derive(Debug, Clone)]
pub struct Downloader {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    storage: Arc<Storage>,
    /// Origin requests: the local user's client, or the one held to the target policy.
    http: OriginClients,
    scheduler: Option<SchedulerSet>,
    config: DownloaderConfig,
    download_limiter: Arc<RateLimiter>,
    source_limiter: Arc<RateLimiter>,
    metrics: Arc<Metrics>,
    /// One fetch per task on this host at a time; later callers wait and reuse the result.
    running: Mutex<HashMap<TaskId, Arc<tokio::sync::Mutex<()>>>>,
    /// Cancelled when the daemon stops: running fetches end at once instead of falling back to
    /// the origin after the host left the scheduler.
    shutdown: tokio_util::sync::CancellationToken,
}

impl Downloader {
    /// A downloader over `storage`; `scheduler` is `None` when the host runs without schedulers.
    pub fn new(
        storage: Arc<Storage>,
        http: OriginClients,
        scheduler: Option<SchedulerSet>,
        config: DownloaderConfig,
        metrics: Arc<Metrics>,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                http,
                scheduler,
                download_limiter: Arc::new(RateLimiter::new(config.download_rate)),
                source_limiter: Arc::new(RateLimiter::new(config.back_to_source_rate)),
                config,
                metrics,
                running: Mutex::default(),
                shutdown,
            }),
        }
    }

    /// Its metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// The storage it fills.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.inner.storage
    }

    /// Runs `request` to a verified file at `request.output`, reporting to `events`. A
    /// [`DownloadRequest`] comes from a user of this host (the download socket), so its origin is
    /// fetched as they could fetch it ([`Requester::LocalUser`]).
    pub async fn download(&self, request: DownloadRequest, events: EventSink) -> Result<(), Error> {
        if !request.overwrite && tokio::fs::try_exists(&request.output).await? {
            return Err(Error::OutputExists(request.output.display().to_string()));
        }
        let task_request = TaskRequest::new(request.url.clone(), request.shape.clone(), request.headers.clone())?
            .back_to_source_disabled(request.disable_back_to_source)
            .requested_by(Requester::LocalUser);
        let expected = request.digest.clone().or_else(|| Digest::from_oci_blob_path(request.url.path()));
        let work = async {
            // The task stays in use until the output is written, so `dfctl task rm` cannot take
            // its content away between the last piece and the export.
            let (task, _in_use) = self.inner.storage.task_in_use(&task_request.task_id, task_request.url.as_str())?;
            // Follow the pieces in order while they arrive: hash them when a digest is to be
            // checked, and write the output's temporary copy when the output cannot share the
            // cache's inode, so little is left to do once the last piece is in.
            let link = self.inner.storage.link_mode(&request.output, request.force_hard_link);
            let temp = (link == Link::Never).then(|| follow::TempOutput::create(&request.output)).flatten();
            let follower = match (&expected, &temp) {
                (None, None) => None,
                _ => Some(follow::Follower::start(task.clone(), expected.as_ref().map(|d| d.algorithm), temp.as_ref())),
            };
            let task = self.fetch_task(&task_request, &events).await?;
            let fetched = std::time::Instant::now();
            let followed = match follower {
                Some(f) => f.finish().await,
                None => None,
            };
            // Every piece is already checked against the scheduler's digest; the whole content
            // is checked only when the caller named (or the URL implies) a digest. A hash that
            // followed the pieces and matches settles it; anything else (it could not follow,
            // or disagrees) is decided by hashing the stored file again.
            let (content_length, checked, copy_ok) = match &expected {
                Some(d) => match followed.as_ref().filter(|f| f.hex.as_deref() == Some(d.hex.as_str())) {
                    Some(f) => (f.len, Some(d.clone()), true),
                    None => (verify_whole(&task, Some(d)).await?.0, Some(d.clone()), false),
                },
                None => {
                    let len = task.layout().map(|l| l.content_length).unwrap_or(0);
                    (len, None, followed.as_ref().is_some_and(|f| f.len == len))
                }
            };
            let verified_ms = fetched.elapsed().as_millis() as u64;
            let (t, out, overwrite) = (task.clone(), request.output.clone(), request.overwrite);
            match temp.filter(|t| copy_ok && t.written()) {
                Some(temp) => tokio::task::spawn_blocking(move || temp.publish(&t, &out, overwrite)).await,
                None => tokio::task::spawn_blocking(move || t.export(&out, overwrite, link)).await,
            }
            .map_err(|e| Error::Io(std::io::Error::other(e)))??;
            tracing::info!(task_id = %task_request.task_id, verified_ms, written_ms = fetched.elapsed().as_millis() as u64, "output written");
            events.send(Event::Finished { content_length, digest: checked }).await;
            Ok(())
        };
        match request.timeout {
            Some(limit) => tokio::time::timeout(limit, work).await.map_err(|_| Error::Timeout(limit))?,
            None => work.await,
        }
    }

    /// Brings every piece of the task into storage; ends with [`Error::ShuttingDown`] when the
    /// daemon stops first.
    pub async fn fetch_task(&self, req: &TaskRequest, events: &EventSink) -> Result<Arc<TaskStore>, Error> {
        tokio::select! {
            result = self.fetch_task_inner(req, events) => result,
            _ = self.inner.shutdown.cancelled() => Err(Error::ShuttingDown),
        }
    }

    async fn fetch_task_inner(&self, req: &TaskRequest, events: &EventSink) -> Result<Arc<TaskStore>, Error> {
        let gate = {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.entry(req.task_id.clone()).or_default().clone()
        };
        let _guard = gate.lock().await;
        let (task, _busy) = self.inner.storage.task_in_use(&req.task_id, req.url.as_str())?;
        task.touch();
        if task.is_complete() && !task.intact() {
            // An output linked to the cache was edited: the cache's copy is no longer the content.
            tracing::warn!(task_id = %req.task_id, "cached content was changed outside the cache; fetching it again");
            task.reset()?;
        }
        if let Some(layout) = task.layout().filter(|_| task.is_complete()) {
            self.inner.metrics.downloaded(TrafficType::LocalPeer, layout.content_length);
            events.started(req, layout).await;
            tracing::info!(task_id = %req.task_id, "served from the local cache");
            return Ok(task);
        }
        // The task's scheduler; none while the manager has named none and no static one is set.
        let scheduler = self.inner.scheduler.as_ref().and_then(|set| Some((set, set.for_task(&req.task_id.0)?)));
        let result = match scheduler {
            Some((set, addr)) => match p2p::run(&self.inner, &task, req, set, addr, events).await {
                Err(Error::SchedulerLost(why)) if !req.disable_back_to_source => {
                    tracing::warn!(task_id = %req.task_id, %why, "scheduler unavailable; fetching from the origin");
                    origin::fetch(&self.inner, &task, req, None, events).await
                }
                Err(Error::SchedulerLost(why)) => {
                    Err(Error::NoSource(format!("{} (scheduler unavailable: {why})", req.url)))
                }
                other => other,
            },
            None if req.disable_back_to_source => Err(Error::NoSource(req.url.to_string())),
            None => origin::fetch(&self.inner, &task, req, None, events).await,
        };
        match result {
            Ok(()) if task.is_complete() => {
                task.persist()?;
                Ok(task)
            }
            Ok(()) => Err(Error::Integrity(format!("task {} ended incomplete", req.task_id))),
            Err(e) => {
                let _ = task.persist();
                Err(e)
            }
        }
    }
}

/// Hashes the stored content once: BLAKE3 always (reported), SHA-256 when that is expected.
pub(crate) async fn verify_whole(task: &Arc<TaskStore>, expected: Option<&Digest>) -> Result<(u64, Digest), Error> {
    let task = task.clone();
    let want_sha = matches!(expected, Some(Digest { algorithm: Algorithm::Sha256, .. }));
    let (len, blake, sha) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
        use std::io::Read;
        let mut file = task.reader()?;
        let mut blake = blake3::Hasher::new();
        let mut sha = want_sha.then(sha2::Sha256::new);
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            blake.update(&buf[..n]);
            if let Some(s) = sha.as_mut() {
                s.update(&buf[..n]);
            }
            len += n as u64;
        }
        Ok((len, blake.finalize().to_hex().to_string(), sha.map(|s| hex::encode(s.finalize()))))
    })
    .await
    .map_err(|e| Error::Io(std::io::Error::other(e)))??;
    if let Some(expected) = expected {
        let actual = match expected.algorithm {
            Algorithm::Blake3 => blake.clone(),
            Algorithm::Sha256 => sha.unwrap_or_default(),
        };
        if actual != expected.hex {
            return Err(Error::Integrity(format!(
                "expected {expected}, got {}",
                Digest { algorithm: expected.algorithm, hex: actual }
            )));
        }
    }
    Ok((len, Digest { algorithm: Algorithm::Blake3, hex: blake }))
}
