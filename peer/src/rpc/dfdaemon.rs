//! The local download API (`damselfly.dfdaemon.v1`) served on a unix socket, and how clients
//! such as dfget connect to it.

use std::{path::PathBuf, pin::Pin, time::Duration};

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
};

/// The local download API.
#[derive(Debug, Clone)]
pub struct DfdaemonService {
    pub downloader: Downloader,
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
