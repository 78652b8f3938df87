//! Producing a file for a local client.
//!
//! Today every download goes back to the origin over HTTP(S); pieces from parent peers arrive
//! with the data plane. Whatever the source, the contract is the same: bytes go to a temporary
//! file beside the target, the digest is checked, and only a complete, verified file appears
//! under the target name (hard link, so an existing file is never clobbered unless asked).

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use common::digest::{Algorithm, Digest};
use futures::StreamExt;
use sha2::Digest as _;
use tokio::{fs, io::AsyncWriteExt, sync::mpsc};
use url::Url;

use crate::Error;

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
    /// Refuse to fetch from the origin.
    pub disable_back_to_source: bool,
    /// Give up after this long.
    pub timeout: Option<Duration>,
}

/// What a running download reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The source answered; the length is known when the origin sent one.
    Started { content_length: Option<u64> },
    /// This many bytes are written so far.
    Progress { finished_bytes: u64 },
    /// The file is complete and verified; `digest` is its BLAKE3.
    Finished { content_length: u64, digest: Digest },
}

/// How often the origin is tried before the download fails.
const ORIGIN_ATTEMPTS: u32 = 3;

/// Runs `request`, sending events to `events`, and returns once the file is in place.
pub async fn run(
    client: &reqwest::Client,
    request: DownloadRequest,
    events: mpsc::Sender<Event>,
) -> Result<(), Error> {
    if !request.overwrite && fs::try_exists(&request.output).await? {
        return Err(Error::OutputExists(request.output.display().to_string()));
    }
    if request.disable_back_to_source {
        return Err(Error::NoSource(request.url.to_string()));
    }
    let work = back_to_source(client, &request, &events);
    match request.timeout {
        Some(limit) => tokio::time::timeout(limit, work)
            .await
            .map_err(|_| Error::Timeout(limit))?,
        None => work.await,
    }
}

async fn back_to_source(
    client: &reqwest::Client,
    request: &DownloadRequest,
    events: &mpsc::Sender<Event>,
) -> Result<(), Error> {
    let response = fetch_with_retries(client, request).await?;
    let content_length = response.content_length();
    let _ = events.send(Event::Started { content_length }).await;

    let part = PartFile::create(&request.output).await?;
    let mut file = fs::File::create(&part.path).await?;
    let mut blake = blake3::Hasher::new();
    let mut sha = matches!(
        request.digest,
        Some(Digest {
            algorithm: Algorithm::Sha256,
            ..
        })
    )
    .then(sha2::Sha256::new);
    let mut written = 0u64;
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Error::OriginUnavailable {
            url: request.url.to_string(),
            reason: format!("body interrupted after {written} bytes: {e}"),
        })?;
        file.write_all(&chunk).await?;
        blake.update(&chunk);
        if let Some(sha) = sha.as_mut() {
            sha.update(&chunk);
        }
        written += chunk.len() as u64;
        let _ = events.try_send(Event::Progress {
            finished_bytes: written,
        });
    }
    if let Some(expected) = content_length.filter(|len| *len != written) {
        return Err(Error::Integrity(format!(
            "origin announced {expected} bytes but sent {written}"
        )));
    }
    file.sync_all().await?;
    drop(file);

    let blake_hex = blake.finalize().to_hex().to_string();
    if let Some(expected) = &request.digest {
        let actual = match expected.algorithm {
            Algorithm::Blake3 => blake_hex.clone(),
            Algorithm::Sha256 => hex::encode(sha.take().unwrap_or_default().finalize()),
        };
        if actual != expected.hex {
            return Err(Error::Integrity(format!(
                "expected {expected}, got {}",
                Digest {
                    algorithm: expected.algorithm,
                    hex: actual
                }
            )));
        }
    }
    part.publish(&request.output, request.overwrite).await?;
    let _ = events
        .send(Event::Finished {
            content_length: written,
            digest: Digest {
                algorithm: Algorithm::Blake3,
                hex: blake_hex,
            },
        })
        .await;
    Ok(())
}

async fn fetch_with_retries(
    client: &reqwest::Client,
    request: &DownloadRequest,
) -> Result<reqwest::Response, Error> {
    let mut last = String::new();
    for attempt in 1..=ORIGIN_ATTEMPTS {
        let mut builder = client.get(request.url.clone());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        match builder.send().await {
            Ok(resp) if resp.status().is_success() => return Ok(resp),
            Ok(resp) if resp.status().is_server_error() => {
                last = format!("answered {}", resp.status());
            }
            Ok(resp) => {
                return Err(Error::OriginRejected {
                    status: resp.status().as_u16(),
                    url: request.url.to_string(),
                });
            }
            Err(e) => last = e.to_string(),
        }
        tracing::warn!(url = %request.url, attempt, reason = %last, "origin attempt failed");
        if attempt < ORIGIN_ATTEMPTS {
            tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
        }
    }
    Err(Error::OriginUnavailable {
        url: request.url.to_string(),
        reason: format!("{last} (after {ORIGIN_ATTEMPTS} attempts)"),
    })
}

/// A temporary file beside the target; removed on drop unless published.
struct PartFile {
    path: PathBuf,
    published: bool,
}

impl PartFile {
    async fn create(target: &Path) -> Result<Self, Error> {
        let dir = target.parent().ok_or_else(|| {
            Error::InvalidRequest(format!("{} has no parent directory", target.display()))
        })?;
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let path = dir.join(format!(
            ".{name}.{}.dfpart",
            std::process::id() ^ rand_suffix()
        ));
        Ok(Self {
            path,
            published: false,
        })
    }

    /// Moves the verified file under its final name. Without `overwrite` a hard link is used,
    /// which fails rather than replace a file that appeared meanwhile.
    async fn publish(mut self, target: &Path, overwrite: bool) -> Result<(), Error> {
        if overwrite {
            fs::rename(&self.path, target).await?;
        } else {
            fs::hard_link(&self.path, target)
                .await
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::AlreadyExists => {
                        Error::OutputExists(target.display().to_string())
                    }
                    _ => Error::Io(e),
                })?;
            fs::remove_file(&self.path).await?;
        }
        self.published = true;
        Ok(())
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.published {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn rand_suffix() -> u32 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}
