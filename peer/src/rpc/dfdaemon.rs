//! The local API (`damselfly.dfdaemon.v1`) served on a unix socket, and how clients such as
//! dfget and dfctl connect to it: downloads, and the tasks of this host's cache (list, stat,
//! delete). Who may do what is [`Caller`]'s to say.

use std::{path::PathBuf, pin::Pin, time::Duration};

use common::ids::TaskId;
use futures::Stream;
use hyper_util::rt::TokioIo;
use proto::dfdaemon::v1 as pb;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, transport::Channel};

use super::caller::Caller;
use crate::{
    Error,
    download::{DownloadRequest, Downloader, Event, EventSink, TaskShape},
    metrics::{Outcome, OutcomeLabels},
    storage::{Removal, TaskSummary},
};

/// The local API.
#[derive(Debug, Clone)]
pub struct DfdaemonService {
    pub downloader: Downloader,
    /// The user the dfdaemon runs as: it and root manage the cache (see [`Caller`]).
    pub daemon_uid: u32,
}

impl DfdaemonService {
    /// The API over `downloader`, for a daemon running as the current effective user.
    pub fn new(downloader: Downloader) -> Self {
        Self { downloader, daemon_uid: nix::unistd::geteuid().as_raw() }
    }
}

fn task_id(raw: &str) -> Result<TaskId, Error> {
    TaskId::parse(raw).map_err(|e| Error::InvalidRequest(e.to_string()))
}

/// A task as `caller` may see it.
fn task_info(t: TaskSummary, caller: &Caller, daemon_uid: u32) -> pb::TaskInfo {
    let state = if t.complete { pb::TaskState::Complete } else { pb::TaskState::Partial };
    pb::TaskInfo {
        url: caller.shown_url(daemon_uid, &t.url),
        task_id: t.task_id.0,
        content_length: t.layout.map(|l| l.content_length),
        piece_length: t.layout.map(|l| l.piece_length),
        finished_pieces: t.finished_pieces,
        total_pieces: t.layout.map_or(0, |l| l.count()),
        state: state.into(),
        disk_bytes: t.disk_bytes,
        last_access_unix_secs: t.last_used,
        in_use: t.in_use,
    }
}

impl TryFrom<pb::DownloadRequest> for DownloadRequest {
    type Error = Error;

    fn try_from(r: pb::DownloadRequest) -> Result<Self, Error> {
        let url = url::Url::parse(&r.url).map_err(|e| Error::InvalidRequest(format!("url {:?}: {e}", r.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::InvalidRequest(format!(
                "url scheme {:?} is not supported (use http or https)",
                url.scheme()
            )));
        }
        let output = PathBuf::from(&r.output_path);
        if !output.is_absolute() {
            return Err(Error::InvalidRequest(format!("output_path {:?} must be absolute", r.output_path)));
        }
        let digest = r
            .digest
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: common::digest::DigestError| Error::InvalidRequest(e.to_string()))?;
        Ok(Self {
            url,
            output,
            headers: r.request_headers.into_iter().collect(),
            digest,
            overwrite: r.overwrite,
            force_hard_link: r.force_hard_link,
            disable_back_to_source: r.disable_back_to_source,
            timeout: (r.timeout_ms > 0).then(|| Duration::from_millis(r.timeout_ms)),
            shape: TaskShape {
                tag: r.tag,
                application: r.application,
                filtered_query_params: r.filtered_query_params,
                piece_length: r.piece_length,
                blob_digest: false,
            },
        })
    }
}

fn to_pb(event: Event) -> pb::DownloadResponse {
    use pb::download_response::Event as E;
    let event = match event {
        Event::Started { task_id, content_length, piece_length } => {
            E::Started(pb::Started { task_id: task_id.0, content_length, piece_length })
        }
        Event::Progress { finished_bytes, finished_pieces } => {
            E::Progress(pb::Progress { finished_bytes, finished_pieces })
        }
        Event::Finished { content_length, digest } => {
            E::Finished(pb::Finished { content_length, digest: digest.map(|d| d.to_string()).unwrap_or_default() })
        }
    };
    pb::DownloadResponse { event: Some(event) }
}

type DownloadStream = Pin<Box<dyn Stream<Item = Result<pb::DownloadResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::dfdaemon_server::Dfdaemon for DfdaemonService {
    type DownloadStream = DownloadStream;

    async fn download(&self, request: Request<pb::DownloadRequest>) -> Result<Response<Self::DownloadStream>, Status> {
        let caller = Caller::of(&request)?;
        let request = DownloadRequest::try_from(request.into_inner())?;
        caller.may_write(&request.output, request.overwrite)?;
        tracing::info!(url = %request.url, output = %request.output.display(), "download requested");
        let (out_tx, out_rx) = mpsc::channel(64);
        let downloader = self.downloader.clone();
        tokio::spawn(async move {
            let (ev_tx, mut ev_rx) = mpsc::channel(64);
            let forward_to = out_tx.clone();
            let forward = tokio::spawn(async move {
                while let Some(ev) = ev_rx.recv().await {
                    if forward_to.send(Ok(to_pb(ev))).await.is_err() {
                        break;
                    }
                }
            });
            let result = downloader.download(request, EventSink::to(ev_tx)).await;
            let outcome = if result.is_ok() { Outcome::Success } else { Outcome::Failure };
            downloader.metrics().downloads.get_or_create(&OutcomeLabels { result: outcome }).inc();
            let _ = forward.await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "download failed");
                let _ = out_tx.send(Err(Status::from(e))).await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn list_tasks(
        &self,
        request: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let caller = Caller::of(&request)?;
        Ok(Response::new(DfdaemonService::list_tasks(self, &caller)))
    }

    async fn stat_task(&self, request: Request<pb::StatTaskRequest>) -> Result<Response<pb::TaskInfo>, Status> {
        let caller = Caller::of(&request)?;
        Ok(Response::new(DfdaemonService::stat_task(self, &caller, &request.get_ref().task_id)?))
    }

    async fn delete_task(
        &self,
        request: Request<pb::DeleteTaskRequest>,
    ) -> Result<Response<pb::DeleteTaskResponse>, Status> {
        let caller = Caller::of(&request)?;
        Ok(Response::new(DfdaemonService::delete_task(self, &caller, &request.get_ref().task_id)?))
    }
}

impl DfdaemonService {
    fn list_tasks(&self, caller: &Caller) -> pb::ListTasksResponse {
        let mut tasks: Vec<_> = self.downloader.storage().tasks().iter().map(|t| t.summary()).collect();
        tasks.sort_by(|a, b| b.last_used.cmp(&a.last_used).then_with(|| a.task_id.cmp(&b.task_id)));
        pb::ListTasksResponse { tasks: tasks.into_iter().map(|t| task_info(t, caller, self.daemon_uid)).collect() }
    }

    fn stat_task(&self, caller: &Caller, raw: &str) -> Result<pb::TaskInfo, Error> {
        let id = task_id(raw)?;
        let task = self.downloader.storage().get(&id).ok_or(Error::TaskNotFound(id))?;
        Ok(task_info(task.summary(), caller, self.daemon_uid))
    }

    fn delete_task(&self, caller: &Caller, raw: &str) -> Result<pb::DeleteTaskResponse, Error> {
        let id = task_id(raw)?;
        if !caller.manages_cache(self.daemon_uid) {
            return Err(Error::Forbidden(format!(
                "uid {} may not delete cached tasks (root and the dfdaemon's user may)",
                caller.uid
            )));
        }
        match self.downloader.storage().remove_unused(&id)? {
            Removal::Removed { freed_bytes } => {
                tracing::info!(task_id = %id, uid = caller.uid, freed_bytes, "task deleted on the local API");
                Ok(pb::DeleteTaskResponse { freed_bytes })
            }
            Removal::InUse => Err(Error::TaskInUse(id)),
            Removal::Absent => Err(Error::TaskNotFound(id)),
        }
    }
}

/// A channel to a dfdaemon's download API on the unix socket at `path`.
pub async fn connect_unix(path: PathBuf) -> Result<Channel, Error> {
    let channel = tonic::transport::Endpoint::from_static("http://dfdaemon.local")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) }
        }))
        .await?;
    Ok(channel)
}
