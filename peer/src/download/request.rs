//! What a download is asked to do, and what it reports back.
//!
//! A task's id is derived here and nowhere else in the peer ([`TaskRequest::new`]): every way
//! in (the local API, the proxy) describes the task by its URL and [`TaskShape`], and two
//! downloads of the same content must meet on the same id. A seed order names its id too, and
//! [`TaskRequest::ordered`] derives it again and refuses a mismatch.
//!
//! Whose request it is travels with it ([`Requester`]): a download from the local API is the local
//! user's, anything else (a proxy request, a seed order) is remote, and its origin fetch is held
//! to the `[proxy]` target policy (see `origin::guard`).
//!
//! Events go to an [`EventSink`], which may be empty: a caller that only wants the content in the
//! cache (the proxy, a seed order) asks for none instead of draining a channel.

use std::{path::PathBuf, time::Duration};

use common::{
    digest::Digest,
    ids::TaskId,
    piece::PieceLayout,
    task_id::{TaskSpec, task_id},
};
use tokio::sync::mpsc;
use url::Url;

use super::Requester;
use crate::Error;

/// What, besides its URL, decides a task's id: dfget's flags, the proxy's `X-Dragonfly-*`
/// headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskShape {
    /// The user's tag ("" for none).
    pub tag: String,
    /// The calling application ("" for none).
    pub application: String,
    /// Query parameters left out of the id; empty means the defaults (signing parameters).
    pub filtered_query_params: Vec<String>,
    /// An explicit piece length; `None` for the default for the content length.
    pub piece_length: Option<u64>,
    /// An OCI blob URL's id is its digest's: the same blob from any registry is one task.
    pub blob_digest: bool,
}

/// A download as the daemon understands it (converted from the RPC at the edge).
#[derive(Debug, Clone)]
pub struct DownloadRequest {
    /// Where the content lives.
    pub url: Url,
    /// Absolute path of the file to produce.
    pub output: PathBuf,
    /// Headers for the origin (authorization and the like).
    pub headers: Vec<(String, String)>,
    /// Whole-content digest to verify, if known.
    pub digest: Option<Digest>,
    /// Replace an existing output file.
    pub overwrite: bool,
    /// Hard-link the output to the cache instead of copying it.
    pub force_hard_link: bool,
    /// Refuse to fetch from the origin.
    pub disable_back_to_source: bool,
    /// Give up after this long.
    pub timeout: Option<Duration>,
    /// Task identity: tag, application, filtered query parameters, piece length.
    pub shape: TaskShape,
}

/// The part of a request that identifies and fetches the content (no output file).
#[derive(Debug, Clone)]
pub struct TaskRequest {
    pub task_id: TaskId,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub piece_length: Option<u64>,
    pub disable_back_to_source: bool,
    /// The user's tag and application (part of the task id), for the cluster's block list.
    pub tag: String,
    pub application: String,
    /// Query parameters left out of the id, so the scheduler can derive it again.
    pub filtered_query_params: Vec<String>,
    /// The id of a blob URL is its digest's, so the scheduler can derive it again.
    pub blob_digest: bool,
    /// Whose request it is, which decides what its origin fetch may reach; remote unless
    /// [`requested_by`](Self::requested_by) says otherwise.
    pub requester: Requester,
}

impl TaskRequest {
    /// The task `url` names in `shape`, its id derived from both; back-to-source allowed.
    pub fn new(url: Url, shape: TaskShape, headers: Vec<(String, String)>) -> Result<Self, Error> {
        let spec = TaskSpec {
            url: url.as_str(),
            tag: &shape.tag,
            application: &shape.application,
            piece_length: shape.piece_length,
            filtered_query_params: &shape.filtered_query_params,
            blob_digest: shape.blob_digest,
        };
        let task_id = task_id(&spec).map_err(|e| Error::InvalidRequest(e.to_string()))?;
        Ok(Self::unchecked(task_id, url, shape, headers))
    }

    /// A task whose id the scheduler already derived (a seed order); back-to-source allowed.
    /// The id is derived here again and must match: it names files in the cache, and a
    /// scheduler must not bind one task's id to another URL.
    pub fn ordered(task_id: &str, url: Url, shape: TaskShape, headers: Vec<(String, String)>) -> Result<Self, Error> {
        let derived = Self::new(url, shape, headers)?;
        if derived.task_id.0 != task_id {
            let shown: String = task_id.chars().take(80).collect();
            return Err(Error::InvalidRequest(format!("ordered task id {shown:?} is not the id of its URL and shape")));
        }
        Ok(derived)
    }

    fn unchecked(task_id: TaskId, url: Url, shape: TaskShape, headers: Vec<(String, String)>) -> Self {
        let TaskShape { tag, application, filtered_query_params, piece_length, blob_digest } = shape;
        Self {
            task_id,
            url,
            headers,
            piece_length,
            disable_back_to_source: false,
            tag,
            application,
            filtered_query_params,
            blob_digest,
            requester: Requester::Remote,
        }
    }

    /// The same request, made by `requester`.
    pub fn requested_by(self, requester: Requester) -> Self {
        Self { requester, ..self }
    }

    /// The same request, refusing the origin when `disable` is set.
    pub fn back_to_source_disabled(self, disable: bool) -> Self {
        Self { disable_back_to_source: disable, ..self }
    }
}

/// What a running download reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The task is identified and its size known (when the source says).
    Started { task_id: TaskId, content_length: Option<u64>, piece_length: u64 },
    /// This many bytes are in place so far.
    Progress { finished_bytes: u64, finished_pieces: u32 },
    /// The file is complete and verified; `digest` is the whole-content digest it was checked
    /// against, when one was given or implied (every piece is verified either way).
    Finished { content_length: u64, digest: Option<Digest> },
}

/// Where a download's [`Event`]s go, if anywhere. A listener that went away is not an error.
#[derive(Debug, Clone, Default)]
pub struct EventSink(Option<mpsc::Sender<Event>>);

impl EventSink {
    /// Events go to `tx`.
    pub fn to(tx: mpsc::Sender<Event>) -> Self {
        Self(Some(tx))
    }

    /// No events: for callers that only want the content.
    pub fn none() -> Self {
        Self(None)
    }

    /// Sends `event`, waiting for room (for the few events a listener must not miss).
    pub(crate) async fn send(&self, event: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(event).await;
        }
    }

    /// Sends `event` if there is room now: progress, which the next report supersedes.
    pub(crate) fn try_send(&self, event: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.try_send(event);
        }
    }

    /// Sends `Started` for a task whose layout is known.
    pub(crate) async fn started(&self, req: &TaskRequest, layout: PieceLayout) {
        self.send(Event::Started {
            task_id: req.task_id.clone(),
            content_length: Some(layout.content_length),
            piece_length: layout.piece_length,
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_comes_from_url_and_shape_and_an_ordered_id_is_derived_again() -> Result<(), Box<dyn std::error::Error>> {
        let url = Url::parse("http://origin.test/a?X-Amz-Date=1&v=2")?;
        let shape = TaskShape { tag: "t".into(), piece_length: Some(4 << 20), ..TaskShape::default() };
        let headers = vec![("authorization".to_owned(), "x".to_owned())];
        let req = TaskRequest::new(url.clone(), shape.clone(), headers.clone())?;
        let spec = TaskSpec { url: url.as_str(), tag: "t", piece_length: Some(4 << 20), ..TaskSpec::default() };
        assert_eq!(req.task_id, task_id(&spec)?);
        assert_eq!((req.tag.as_str(), req.piece_length, &req.headers), ("t", Some(4 << 20), &headers));
        assert!(!req.disable_back_to_source);
        assert!(req.clone().back_to_source_disabled(true).disable_back_to_source);

        // Another shape is another task.
        let other = TaskRequest::new(url.clone(), TaskShape { tag: "u".into(), ..shape.clone() }, vec![])?;
        assert_ne!(other.task_id, req.task_id);
        // An ordered id is derived again and must match; one that could not have been derived,
        // another URL's, or a piece length no download may ask for is refused.
        let ordered = TaskRequest::ordered(&req.task_id.0, url.clone(), shape.clone(), vec![])?;
        assert_eq!(ordered.task_id, req.task_id);
        for bad in ["../../etc/cron.d/x".to_string(), "t".into(), String::new(), other.task_id.0.clone()] {
            assert!(TaskRequest::ordered(&bad, url.clone(), shape.clone(), vec![]).is_err(), "{bad:?}");
        }
        let huge = TaskShape { piece_length: Some(100_000_000_000), ..shape.clone() };
        assert!(TaskRequest::ordered(&req.task_id.0, url.clone(), huge.clone(), vec![]).is_err());
        assert!(TaskRequest::new(url, huge, vec![]).is_err());
        Ok(())
    }
}
