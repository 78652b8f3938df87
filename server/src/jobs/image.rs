//! Turns a preheat's image (a manifest URL) into the blobs the peers should warm, the way a
//! container runtime resolves an image: content negotiation, the registry's token challenge,
//! an index narrowed to one platform, then the config and layers as blob URLs. The manifest is
//! hostile input, so every read is bounded and every digest checked before it becomes a URL.
//!
//! Only HTTP through the caller's client (its timeout and redirect policy apply); no database,
//! no scheduler. Credentials end up in [`Resolved::headers`] because the registry wants the
//! same `Authorization` on the blob GETs the peers will make.

use std::{collections::BTreeMap, fmt};

use base64::Engine as _;
use reqwest::{StatusCode, header};
use serde::Deserialize;
use sha2::Digest as _;

pub use crate::service::image_ref::{DEFAULT_PLATFORM, ManifestUrl, Platform, parse_platform, valid_digest};

/// Largest manifest or index body read (the distribution spec's own limit is 4 MiB).
const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Largest token-service answer read.
const MAX_TOKEN_BYTES: usize = 64 << 10;
/// Largest registry error body read, only to quote its message.
const MAX_ERROR_BYTES: usize = 16 << 10;
/// Most blobs one image may name.
const MAX_BLOBS: usize = 10_000;

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Every manifest kind understood, as a runtime asks for them.
const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// Whether `body` hashes to `digest` (already [`valid_digest`]).
fn digest_matches(digest: &str, body: &[u8]) -> bool {
    match digest.split_once(':') {
        Some(("sha256", hex)) => hex::encode(sha2::Sha256::digest(body)) == hex,
        Some(("sha512", hex)) => hex::encode(sha2::Sha512::digest(body)) == hex,
        _ => false,
    }
}

/// What to resolve, as a preheat job carries it.
#[derive(Debug, Clone, Default)]
pub struct ImageRequest {
    /// The manifest URL.
    pub url: String,
    /// `os/arch[/variant]`, [`DEFAULT_PLATFORM`] when absent.
    pub platform: Option<String>,
    /// Sent with every registry request; an `Authorization` here is used as is.
    pub headers: BTreeMap<String, String>,
    /// For the token service (or a `Basic` challenge) when no `Authorization` is given.
    pub username: Option<String>,
    pub password: Option<String>,
}

/// One blob to warm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub url: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
}

/// The image's blobs and how to fetch them.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Config first, then the layers in order, each digest once.
    pub blobs: Vec<Blob>,
    /// Headers the peers must send to fetch the blobs (the given headers, plus the
    /// Authorization obtained, if any).
    pub headers: BTreeMap<String, String>,
}

/// Why an image could not be resolved; the messages are shown to operators (and Harbor).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The request itself is wrong (URL, platform, a header).
    #[error("{0}")]
    Invalid(String),
    /// The registry or token service could not be reached or broke off.
    #[error("could not fetch {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The registry (or token service) answered an unexpected status.
    #[error("registry answered {status} for {what} {url}{detail}")]
    Status { what: &'static str, url: String, status: StatusCode, detail: String },
    /// The credentials were refused, or none were given and the registry wants some.
    #[error("{0}")]
    Unauthorized(String),
    /// An answer was not what the protocol promises (bad JSON, a bad digest, too large).
    #[error("invalid {what} from {url}: {reason}")]
    Malformed { what: &'static str, url: String, reason: String },
    /// The index has no manifest for the wanted platform.
    #[error("no manifest for platform {wanted} in the index {url} (has: {available})")]
    NoPlatform { wanted: Platform, url: String, available: String },
}

/// Resolves `req` into the blobs to warm and the headers to fetch them with.
pub async fn resolve(client: &reqwest::Client, req: &ImageRequest) -> Result<Resolved, ImageError> {
    let url = ManifestUrl::parse(&req.url)
        .map_err(|e| ImageError::Invalid(format!("invalid image URL {:?}: {e}", req.url)))?;
    let platform = parse_platform(req.platform.as_deref().unwrap_or(DEFAULT_PLATFORM)).map_err(ImageError::Invalid)?;
    let mut session = Session::new(client, req, &url.repository)?;

    let top_url = url.to_string();
    let top = session.manifest(&top_url, &url.reference).await?;
    let manifest = match top {
        Document::Image(m) => m,
        Document::Index(index) => {
            let entry = choose(&index, &platform).map_err(|available| ImageError::NoPlatform {
                wanted: platform.clone(),
                url: top_url.clone(),
                available,
            })?;
            let child_url = url.manifest_url(&entry.digest);
            match session.manifest(&child_url, &entry.digest).await? {
                Document::Image(m) => m,
                Document::Index(_) => {
                    return Err(malformed("manifest", &child_url, "an index inside an index is not supported"));
                }
            }
        }
    };

    let blobs = blobs_of(&url, &manifest).map_err(|reason| malformed("manifest", &top_url, reason))?;
    let mut headers = req.headers.clone();
    if let Auth::Obtained(value) = session.auth {
        headers.insert("Authorization".into(), value);
    }
    Ok(Resolved { blobs, headers })
}

/// Config then layers as blob URLs, each digest once, all digests checked.
fn blobs_of(url: &ManifestUrl, manifest: &ImageManifest) -> Result<Vec<Blob>, String> {
    let mut seen = std::collections::HashSet::new();
    let mut blobs = Vec::new();
    for d in std::iter::once(&manifest.config).chain(&manifest.layers) {
        if !valid_digest(&d.digest) {
            return Err(format!("digest {:?} is not sha256:<64 hex> or sha512:<128 hex>", truncate(&d.digest)));
        }
        if seen.insert(d.digest.clone()) {
            if blobs.len() == MAX_BLOBS {
                return Err(format!("it names more than {MAX_BLOBS} blobs"));
            }
            blobs.push(Blob {
                url: url.blob_url(&d.digest),
                digest: d.digest.clone(),
                media_type: d.media_type.clone().unwrap_or_default(),
                size: d.size,
            });
        }
    }
    Ok(blobs)
}

/// The index entry for `platform`, or the list of platforms the index has.
fn choose<'a>(index: &'a Index, platform: &Platform) -> Result<&'a Descriptor, String> {
    let offered = || {
        index.manifests.iter().filter_map(|d| d.platform.as_ref().map(|p| (d, p))).filter(|(_, p)| !p.is_attestation())
    };
    let os_arch = |p: &&IndexPlatform| p.os == platform.os && p.architecture == platform.architecture;
    let chosen = match &platform.variant {
        Some(wanted) => {
            offered().find(|(_, p)| os_arch(p) && p.variant_or_default().as_deref() == Some(wanted.as_str()))
        }
        None => {
            offered().find(|(_, p)| os_arch(p) && p.variant.is_none()).or_else(|| offered().find(|(_, p)| os_arch(p)))
        }
    };
    match chosen {
        Some((d, _)) if valid_digest(&d.digest) => Ok(d),
        Some((d, _)) => Err(format!("the entry for it has an invalid digest {:?}", truncate(&d.digest))),
        None => {
            let available: Vec<String> = offered().map(|(_, p)| p.to_string()).collect();
            Err(if available.is_empty() { "no platforms".into() } else { available.join(", ") })
        }
    }
}

/// What the registry answered for a manifest URL.
enum Document {
    Image(ImageManifest),
    Index(Index),
}

/// A Docker v2 or OCI image manifest; CNAI/ModelPack artifacts are one too. Unknown fields
/// and media types are fine: only the descriptors matter.
#[derive(Debug, Deserialize)]
struct ImageManifest {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Index {
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType")]
    media_type: Option<String>,
    digest: String,
    size: u64,
    platform: Option<IndexPlatform>,
}

#[derive(Debug, Deserialize)]
struct IndexPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl IndexPlatform {
    /// BuildKit's attestation manifests sit in the index as `unknown/unknown`.
    fn is_attestation(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }

    /// `arm64` without a variant is `arm64/v8`, as runtimes normalise it.
    fn variant_or_default(&self) -> Option<String> {
        match (&self.variant, self.architecture.as_str()) {
            (Some(v), _) => Some(v.to_ascii_lowercase()),
            (None, "arm64") => Some("v8".into()),
            (None, _) => None,
        }
    }
}

impl fmt::Display for IndexPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// Parses a manifest body: the `Content-Type` decides, then the body's own `mediaType`, then
/// its shape (old OCI manifests carry neither).
fn parse_document(content_type: Option<&str>, body: &[u8]) -> Result<Document, String> {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
    }
    let probe: Probe = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if probe.schema_version != Some(2) {
        return Err(format!("schemaVersion {:?} is not 2 (Docker schema 1 is not supported)", probe.schema_version));
    }
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or_default().trim().to_ascii_lowercase())
        .filter(|c| c.starts_with("application/vnd."))
        .or(probe.media_type);
    let is_index = match declared.as_deref() {
        Some(DOCKER_LIST | OCI_INDEX) => true,
        Some(DOCKER_MANIFEST | OCI_MANIFEST) => false,
        Some(other) => return Err(format!("media type {other:?} is not a Docker v2 or OCI manifest or index")),
        None => probe.manifests.is_some(),
    };
    if is_index {
        serde_json::from_slice(body).map(Document::Index).map_err(|e| format!("bad index: {e}"))
    } else {
        serde_json::from_slice(body).map(Document::Image).map_err(|e| format!("bad manifest: {e}"))
    }
}

/// The `Authorization` state of one resolution.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Auth {
    /// The caller's own header; a 401 with it is final.
    Given,
    /// Nothing yet: anonymous until a challenge says otherwise.
    Anonymous,
    /// Obtained by answering a challenge; the peers need it too.
    Obtained(String),
}

/// One `scheme param=value, …` out of a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Challenge {
    /// Lower-case: `bearer`, `basic`.
    scheme: String,
    /// Lower-case names.
    params: BTreeMap<String, String>,
}

/// Parses a `WWW-Authenticate` value into its challenges. Quoted values may hold commas and
/// escaped quotes; a bare token after a comma starts the next challenge.
fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([',', ' ', '\t']);
        let end = rest.find(|c: char| c == '=' || c == ',' || c.is_whitespace()).unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        if word.is_empty() {
            break;
        }
        let after_ws = after.trim_start();
        if let Some(value_part) = after_ws.strip_prefix('=').filter(|_| !out.is_empty()) {
            let value_part = value_part.trim_start();
            let (value, remaining) = if let Some(quoted) = value_part.strip_prefix('"') {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let mut consumed = quoted.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, escaped)) = chars.next() {
                                value.push(escaped);
                            }
                        }
                        '"' => {
                            consumed = i + 1;
                            break;
                        }
                        c => value.push(c),
                    }
                }
                (value, &quoted[consumed..])
            } else {
                let end = value_part.find(|c: char| c == ',' || c.is_whitespace()).unwrap_or(value_part.len());
                (value_part[..end].to_owned(), &value_part[end..])
            };
            if let Some(last) = out.last_mut() {
                last.params.insert(word.to_ascii_lowercase(), value);
            }
            rest = remaining;
        } else if after_ws.starts_with('=') {
            // A parameter before any scheme: nothing to attach it to.
            break;
        } else {
            out.push(Challenge { scheme: word.to_ascii_lowercase(), params: BTreeMap::new() });
            rest = after;
        }
    }
    out
}

/// The requests of one resolution, sharing what the auth challenge yielded.
struct Session<'a> {
    client: &'a reqwest::Client,
    headers: header::HeaderMap,
    auth: Auth,
    /// For the token scope when the challenge names none.
    repository: String,
    username: Option<&'a str>,
    password: Option<&'a str>,
}

impl<'a> Session<'a> {
    fn new(client: &'a reqwest::Client, req: &'a ImageRequest, repository: &str) -> Result<Self, ImageError> {
        let mut headers = header::HeaderMap::new();
        let mut auth = Auth::Anonymous;
        for (name, value) in &req.headers {
            let name = header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ImageError::Invalid(format!("header name {name:?} is not valid")))?;
            let value = header::HeaderValue::from_str(value)
                .map_err(|_| ImageError::Invalid(format!("header {name} has an invalid value")))?;
            if name == header::AUTHORIZATION {
                auth = Auth::Given;
            }
            headers.insert(name, value);
        }
        Ok(Self {
            client,
            headers,
            auth,
            repository: repository.to_owned(),
            username: req.username.as_deref(),
            password: req.password.as_deref(),
        })
    }

    /// GETs and parses the manifest at `url`, answering one auth challenge on the way.
    /// A digest `reference` is checked against the body.
    async fn manifest(&mut self, url: &str, reference: &str) -> Result<Document, ImageError> {
        let mut response = self.get(url).await?;
        if response.status() == StatusCode::UNAUTHORIZED && self.auth == Auth::Anonymous {
            let challenges: Vec<Challenge> = response
                .headers()
                .get_all(header::WWW_AUTHENTICATE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(parse_challenges)
                .collect();
            self.answer(url, &challenges).await?;
            response = self.get(url).await?;
        }
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            let why = match (&self.auth, self.username) {
                (Auth::Given, _) => "the given Authorization header was refused",
                (Auth::Obtained(v), _) if v.starts_with("Basic ") => "the username and password were refused",
                (Auth::Obtained(_), Some(_)) => {
                    "the token obtained does not grant pull on this repository to that user"
                }
                (Auth::Obtained(_), None) => {
                    "the anonymous token does not grant pull on this repository (give a username and password)"
                }
                (Auth::Anonymous, _) => "anonymous access was refused",
            };
            return Err(ImageError::Unauthorized(format!("registry answered 401 for manifest {url}: {why}")));
        }
        if !status.is_success() {
            let detail = error_detail(response).await;
            return Err(ImageError::Status { what: "manifest", url: url.into(), status, detail });
        }
        let content_type =
            response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let body = read_capped(response, MAX_MANIFEST_BYTES, "manifest", url).await?;
        if reference.contains(':') && !digest_matches(reference, &body) {
            return Err(malformed("manifest", url, format!("its content does not match the digest {reference}")));
        }
        parse_document(content_type.as_deref(), &body).map_err(|reason| malformed("manifest", url, reason))
    }

    async fn get(&self, url: &str) -> Result<reqwest::Response, ImageError> {
        let mut request = self.client.get(url).headers(self.headers.clone()).header(header::ACCEPT, ACCEPT);
        if let Auth::Obtained(value) = &self.auth {
            request = request.header(header::AUTHORIZATION, value);
        }
        request.send().await.map_err(|e| unreachable(url, &e))
    }

    /// Answers a 401's challenges: a Bearer token from the realm, or Basic credentials.
    async fn answer(&mut self, url: &str, challenges: &[Challenge]) -> Result<(), ImageError> {
        if let Some(bearer) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.token(url, bearer).await?;
            self.auth = Auth::Obtained(format!("Bearer {token}"));
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic") {
            let Some(username) = self.username else {
                return Err(ImageError::Unauthorized(format!(
                    "registry answered 401 for manifest {url}: it wants a username and password (Basic) and none were given"
                )));
            };
            let pair = format!("{username}:{}", self.password.unwrap_or_default());
            self.auth = Auth::Obtained(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair)));
            return Ok(());
        }
        Err(ImageError::Unauthorized(format!(
            "registry answered 401 for manifest {url} without a Bearer or Basic challenge"
        )))
    }

    /// Asks the challenge's realm for a pull token, with the credentials if any.
    async fn token(&self, url: &str, challenge: &Challenge) -> Result<String, ImageError> {
        let realm = challenge.params.get("realm").map(String::as_str).unwrap_or_default();
        let mut token_url =
            url::Url::parse(realm).ok().filter(|u| matches!(u.scheme(), "http" | "https")).ok_or_else(|| {
                malformed("auth challenge", url, format!("realm {:?} is not an http(s) URL", truncate(realm)))
            })?;
        {
            let mut query = token_url.query_pairs_mut();
            if let Some(service) = challenge.params.get("service") {
                query.append_pair("service", service);
            }
            match challenge.params.get("scope") {
                Some(scope) => {
                    for scope in scope.split(' ').filter(|s| !s.is_empty()) {
                        query.append_pair("scope", scope);
                    }
                }
                None => {
                    query.append_pair("scope", &format!("repository:{}:pull", self.repository));
                }
            }
            if let Some(username) = self.username {
                query.append_pair("account", username);
            }
        }
        let realm = token_url.as_str().split('?').next().unwrap_or_default().to_owned();
        let mut request = self.client.get(token_url);
        if let Some(username) = self.username {
            request = request.basic_auth(username, self.password);
        }
        let response = request.send().await.map_err(|e| unreachable(&realm, &e))?;
        let status = response.status();
        if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
            let who = match self.username {
                Some(u) => format!("the username {u:?} and its password"),
                None => "anonymous access".into(),
            };
            return Err(ImageError::Unauthorized(format!(
                "token service {realm} answered {status} for manifest {url}: it refused {who}"
            )));
        }
        if !status.is_success() {
            let detail = error_detail(response).await;
            return Err(ImageError::Status { what: "token request", url: realm, status, detail });
        }
        #[derive(Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = read_capped(response, MAX_TOKEN_BYTES, "token answer", &realm).await?;
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| malformed("token answer", &realm, format!("not JSON: {e}")))?;
        let token = answer.token.filter(|t| !t.is_empty()).or(answer.access_token).filter(|t| !t.is_empty());
        let token = token.ok_or_else(|| malformed("token answer", &realm, "it has no token"))?;
        if header::HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(malformed("token answer", &realm, "the token is not a valid header value"));
        }
        Ok(token)
    }
}

/// Reads at most `cap` bytes of `response`'s body; more is an error, not a truncation.
async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    what: &'static str,
    url: &str,
) -> Result<Vec<u8>, ImageError> {
    let too_large = || malformed(what, url, format!("it is larger than {cap} bytes"));
    if response.content_length().is_some_and(|n| n > cap as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(url, &e))? {
        if body.len() + chunk.len() > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// ` (CODE: message)` from a registry's JSON error body, when it has one.
async fn error_detail(response: reqwest::Response) -> String {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<RegistryError>,
    }
    #[derive(Deserialize)]
    struct RegistryError {
        code: Option<String>,
        message: Option<String>,
    }
    let url = response.url().to_string();
    let Ok(body) = read_capped(response, MAX_ERROR_BYTES, "error", &url).await else {
        return String::new();
    };
    let Ok(errors) = serde_json::from_slice::<Errors>(&body) else {
        return String::new();
    };
    let parts: Vec<String> = errors
        .errors
        .iter()
        .take(3)
        .map(|e| match (&e.code, &e.message) {
            (Some(c), Some(m)) => format!("{}: {}", truncate(c), truncate(m)),
            (Some(x), None) | (None, Some(x)) => truncate(x).to_owned(),
            (None, None) => String::new(),
        })
        .filter(|s| !s.is_empty())
        .collect();
    if parts.is_empty() { String::new() } else { format!(" ({})", parts.join("; ")) }
}

fn unreachable(url: &str, e: &reqwest::Error) -> ImageError {
    let reason = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_redirect() {
        "too many redirects".to_owned()
    } else {
        // The source chain names the cause (connection refused, DNS, TLS).
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            reason = format!("{reason}: {s}");
            source = s.source();
        }
        reason
    };
    ImageError::Unreachable { url: url.into(), reason }
}

fn malformed(what: &'static str, url: &str, reason: impl Into<String>) -> ImageError {
    ImageError::Malformed { what, url: url.into(), reason: reason.into() }
}

/// Registry-supplied text quoted in a message, kept short.
fn truncate(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn manifest_urls_split_and_rebuild() {
        let u = ManifestUrl::parse("https://registry-1.docker.io/v2/library/nginx/manifests/1.27").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.registry.as_str(), u.repository.as_str(), u.reference.as_str()),
            ("https", "registry-1.docker.io", "library/nginx", "1.27")
        );
        assert_eq!(u.blob_url(&sha('a')), format!("https://registry-1.docker.io/v2/library/nginx/blobs/{}", sha('a')));
        assert_eq!(u.to_string(), "https://registry-1.docker.io/v2/library/nginx/manifests/1.27");

        let u = ManifestUrl::parse(&format!("http://127.0.0.1:5000/v2/a/b/c/manifests/{}", sha('b'))).unwrap();
        assert_eq!((u.registry.as_str(), u.repository.as_str()), ("127.0.0.1:5000", "a/b/c"));
        assert_eq!(u.reference, sha('b'));
        // A repository may itself be called "manifests"; the last segment is the reference.
        let u = ManifestUrl::parse("http://[::1]:5000/v2/x/manifests/manifests/latest").unwrap();
        assert_eq!(
            (u.registry.as_str(), u.repository.as_str(), u.reference.as_str()),
            ("[::1]:5000", "x/manifests", "latest")
        );
    }

    #[test]
    fn bad_manifest_urls_are_refused() {
        for bad in [
            "",
            "registry.example/v2/x/manifests/latest",
            "ftp://registry.example/v2/x/manifests/latest",
            "https:///v2/x/manifests/latest",
            "https://registry.example",
            "https://registry.example/v1/x/manifests/latest",
            "https://registry.example/v2/x/blobs/latest",
            "https://registry.example/v2/manifests/latest",
            "https://registry.example/v2//manifests/latest",
            "https://registry.example/v2/x//y/manifests/latest",
            "https://registry.example/v2/Upper/manifests/latest",
            "https://registry.example/v2/-x/manifests/latest",
            "https://registry.example/v2/x/manifests/",
            "https://registry.example/v2/x/manifests/a/b",
            "https://registry.example/v2/x/manifests/.hidden",
            "https://registry.example/v2/x/manifests/sha256:abc",
            "https://registry.example/v2/x/manifests/md5:0123456789abcdef0123456789abcdef",
            "https://registry.example/v2/x/manifests/latest?ns=docker.io",
            "https://registry.example/v2/x/manifests/latest#frag",
            "https://user:pw@registry.example/v2/x/manifests/latest",
            "https://registry.example/v2/x y/manifests/latest",
        ] {
            assert!(ManifestUrl::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let long_tag = "t".repeat(129);
        assert!(ManifestUrl::parse(&format!("https://r.example/v2/x/manifests/{long_tag}")).is_err());
        assert!(ManifestUrl::parse(&format!("https://r.example/v2/x/manifests/{}", &long_tag[1..])).is_ok());
    }

    #[test]
    fn digests_must_be_exact() {
        assert!(valid_digest(&sha('0')));
        assert!(valid_digest(&format!("sha512:{}", "f".repeat(128))));
        for bad in [
            String::new(),
            "sha256:".into(),
            format!("sha256:{}", "A".repeat(64)),
            format!("sha256:{}", "a".repeat(63)),
            format!("sha256:{}", "a".repeat(65)),
            format!("sha256:{}", "g".repeat(64)),
            format!("SHA256:{}", "a".repeat(64)),
            format!("sha512:{}", "a".repeat(64)),
            format!("sha256:{}/../x", "a".repeat(60)),
            format!("blake3:{}", "a".repeat(64)),
            format!("sha256:{} ", "a".repeat(64)),
        ] {
            assert!(!valid_digest(&bad), "{bad:?} was accepted");
        }
        assert!(digest_matches("sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", b""));
        assert!(!digest_matches(&sha('a'), b""));
    }

    #[test]
    fn platforms_parse() {
        assert_eq!(
            parse_platform("linux/amd64").unwrap(),
            Platform { os: "linux".into(), architecture: "amd64".into(), variant: None }
        );
        let p = parse_platform("Linux/ARM64/v8").unwrap();
        assert_eq!((p.os.as_str(), p.architecture.as_str(), p.variant.as_deref()), ("linux", "arm64", Some("v8")));
        assert_eq!(p.to_string(), "linux/arm64/v8");
        for bad in ["", "linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/amd 64", "linux//v8"] {
            assert!(parse_platform(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn challenges_parse_with_quoted_commas() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.example/token");
        assert_eq!(c[0].params["service"], "registry.example");
        assert_eq!(c[0].params["scope"], "repository:a/b:pull,push");

        let c = parse_challenges(
            r#"Basic realm="say \"hi\", friend", Bearer Realm=http://t.example/token , error=insufficient_scope"#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].scheme.as_str(), c[0].params["realm"].as_str()), ("basic", r#"say "hi", friend"#));
        assert_eq!(c[1].params["realm"], "http://t.example/token");
        assert_eq!(c[1].params["error"], "insufficient_scope");

        assert_eq!(parse_challenges("Basic").len(), 1);
        assert!(parse_challenges("").is_empty());
        assert!(parse_challenges(r#"realm="x""#).is_empty());
        // An unterminated quote ends the value at the end of the header.
        assert_eq!(parse_challenges(r#"Bearer realm="http://t"#)[0].params["realm"], "http://t");
    }

    fn index(entries: &[(&str, &str, Option<&str>, char)]) -> Index {
        Index {
            manifests: entries
                .iter()
                .map(|(os, arch, variant, c)| Descriptor {
                    media_type: Some(OCI_MANIFEST.into()),
                    digest: sha(*c),
                    size: 1,
                    platform: Some(IndexPlatform {
                        os: (*os).into(),
                        architecture: (*arch).into(),
                        variant: variant.map(Into::into),
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn index_entries_are_chosen_by_platform() {
        let idx = index(&[
            ("linux", "amd64", None, '1'),
            ("unknown", "unknown", None, '2'),
            ("linux", "arm", Some("v6"), '3'),
            ("linux", "arm", Some("v7"), '4'),
            ("linux", "arm64", None, '5'),
            ("windows", "amd64", None, '6'),
        ]);
        let pick = |p: &str| choose(&idx, &parse_platform(p).unwrap()).map(|d| d.digest.clone());
        assert_eq!(pick("linux/amd64").unwrap(), sha('1'));
        assert_eq!(pick("linux/arm/v7").unwrap(), sha('4'));
        assert_eq!(pick("linux/arm").unwrap(), sha('3'), "no variant asked: the first one");
        assert_eq!(pick("linux/arm64/v8").unwrap(), sha('5'), "arm64 without variant is v8");
        assert_eq!(pick("linux/arm64").unwrap(), sha('5'));
        assert_eq!(pick("windows/amd64").unwrap(), sha('6'));
        let none = pick("linux/s390x").unwrap_err();
        assert_eq!(none, "linux/amd64, linux/arm/v6, linux/arm/v7, linux/arm64, windows/amd64");
        assert!(pick("unknown/unknown").is_err(), "attestations are never chosen");

        // No variant asked: one without is preferred over an earlier one with.
        let idx = index(&[("linux", "arm", Some("v7"), 'a'), ("linux", "arm", None, 'b')]);
        assert_eq!(choose(&idx, &parse_platform("linux/arm").unwrap()).unwrap().digest, sha('b'));

        let mut idx = index(&[("linux", "amd64", None, 'a')]);
        idx.manifests[0].digest = "sha256:../../etc".into();
        assert!(choose(&idx, &parse_platform("linux/amd64").unwrap()).unwrap_err().contains("invalid digest"));
    }

    #[test]
    fn documents_are_told_apart_by_content_type_then_media_type() {
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"x","digest":"{}","size":2}},"layers":[]}}"#,
            sha('a')
        );
        let index = format!(r#"{{"schemaVersion":2,"manifests":[{{"digest":"{}","size":3}}]}}"#, sha('b'));
        assert!(matches!(parse_document(Some(OCI_MANIFEST), manifest.as_bytes()), Ok(Document::Image(_))));
        assert!(matches!(
            parse_document(Some("application/json; charset=utf-8"), manifest.as_bytes()),
            Ok(Document::Image(_))
        ));
        assert!(matches!(parse_document(None, index.as_bytes()), Ok(Document::Index(_))));
        assert!(matches!(
            parse_document(Some(&format!("{DOCKER_LIST}; x=y")), index.as_bytes()),
            Ok(Document::Index(_))
        ));
        assert!(
            parse_document(Some("application/vnd.docker.distribution.manifest.v1+prettyjws"), manifest.as_bytes())
                .is_err()
        );
        assert!(parse_document(None, br#"{"schemaVersion":1,"fsLayers":[]}"#).is_err());
        assert!(parse_document(None, b"not json").is_err());
    }

    #[test]
    fn blobs_are_config_then_layers_deduplicated_and_any_media_type_goes() {
        let url = ManifestUrl::parse("http://r.example/v2/models/llama/manifests/v1").unwrap();
        // A CNAI/ModelPack artifact: its own config and layer media types.
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","artifactType":"application/vnd.cncf.model.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.cncf.model.config.v1+json","digest":"{c}","size":10}},
            "layers":[{{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"{w}","size":100}},
                      {{"mediaType":"application/vnd.cncf.model.doc.v1.raw","digest":"{d}","size":5}},
                      {{"mediaType":"application/vnd.cncf.model.weight.v1.raw","digest":"{w}","size":100}}]}}"#,
            c = sha('c'),
            w = sha('e'),
            d = sha('d')
        );
        let Ok(Document::Image(m)) = parse_document(Some(OCI_MANIFEST), body.as_bytes()) else {
            panic!("not a manifest")
        };
        let blobs = blobs_of(&url, &m).unwrap();
        let digests: Vec<&str> = blobs.iter().map(|b| b.digest.as_str()).collect();
        assert_eq!(digests, [sha('c'), sha('e'), sha('d')]);
        assert_eq!(blobs[1].url, format!("http://r.example/v2/models/llama/blobs/{}", sha('e')));
        assert_eq!(blobs[1].media_type, "application/vnd.cncf.model.weight.v1.raw");
        assert_eq!(blobs[1].size, 100);

        let hostile = body.replace(&sha('d'), "sha256:../../../v2/other/blobs/x");
        let Ok(Document::Image(m)) = parse_document(None, hostile.as_bytes()) else { panic!("not a manifest") };
        assert!(blobs_of(&url, &m).unwrap_err().contains("is not sha256"));
    }

    #[test]
    fn too_many_blobs_are_refused() {
        let layers = (0..=MAX_BLOBS)
            .map(|i| Descriptor { media_type: None, digest: format!("sha256:{i:064x}"), size: 1, platform: None })
            .collect();
        let m = ImageManifest {
            config: Descriptor { media_type: None, digest: sha('f'), size: 1, platform: None },
            layers,
        };
        let url = ManifestUrl::parse("http://r.example/v2/x/manifests/v1").unwrap();
        assert!(blobs_of(&url, &m).unwrap_err().contains("more than"));
    }
}
