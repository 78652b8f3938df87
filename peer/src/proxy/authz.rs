//! Who may have content the P2P network holds: its origin decides, per requester.
//!
//! Content in this host's cache, or in any peer's, was fetched once with someone's credentials;
//! handing it to whoever asks would turn the cache into a way around a private registry or a
//! private origin. So before a GET is served through P2P, cold or warm, the origin is asked with
//! the requester's own headers (`Authorization`, cookies, a signed query, or none: then it
//! decides about anonymous callers), a [`Probe`]:
//! - a registry blob (`/v2/<repository>/blobs/<digest>`): a `HEAD` of the same URL;
//! - any other URL (`X-Dragonfly-Use-P2P: true`, or a rule): a `HEAD`, and when the origin
//!   refuses the `HEAD` itself (403, 405, 501: a URL signed for GET only, as S3 presigned URLs
//!   are, or a server without HEAD) a `GET` of its first byte (`Range: bytes=0-0`), whose answer
//!   decides; a 416 (an empty file) is a yes.
//!
//! A 2xx, or a redirect (to storage: the origin has said yes, and the storage URL may be signed
//! for GET only), lets the request through; any other answer is relayed as the origin sent it
//! (status and `WWW-Authenticate`) and no byte is served. An origin that cannot be asked (no
//! connection, a 502/503/504, or no answer within 30 s) refuses (a 502: fail closed), since there is no way to tell
//! private content from public without it; except a registry blob that the registry was seen
//! handing to an anonymous requester (no `Authorization`, no `Cookie`) in the last
//! [`PUBLIC_TTL`]: such a blob is public, and is served from the cache while the registry is
//! down (see `head` for `HEAD`s). That memory is this process's: after a restart, a registry
//! that is down gets nothing served until it was seen again.
//!
//! An accepted verdict is kept for `[proxy] auth_cache_secs`, under a key of the requester and
//! the content: one probe per content per requester per TTL on a warm pull. For a blob, the
//! requester is its `Authorization` (what registries authenticate) and the content its
//! registry, repository and digest (a task may be shared across repositories with blob-digest
//! task ids: being allowed to pull one repository says nothing about a blob another holds); for
//! any other URL, the requester is every header that reaches the origin and the content the
//! whole URL with its query (a signature in a filtered query parameter shares the task but
//! not the verdict). The key is a keyed BLAKE3 hash with a key drawn at start, so what is kept
//! reveals no credential; credentials are never logged.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    http::{HeaderMap, HeaderName, StatusCode, header},
    response::Response,
};
use rand::Rng;

use super::{ErrorType, error, origin_headers, refusal_in};

/// Verdicts kept at most; beyond it, expired ones are dropped, then all.
const MAX_VERDICTS: usize = 100_000;

/// How long a probe may take before the origin counts as one that cannot be asked.
const PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a registry blob seen served to an anonymous requester counts as public.
pub(super) const PUBLIC_TTL: Duration = Duration::from_secs(24 * 3600);

/// How the origin is asked about a requester, and what a verdict is kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Probe {
    /// A registry blob: `HEAD`; kept per `Authorization` and blob.
    Blob,
    /// Any other URL: `HEAD`, else a one-byte `GET`; kept per forwarded headers and whole URL.
    Url,
}

impl Probe {
    /// The probe for `target`: a registry blob's, or a plain URL's.
    pub(super) fn of(target: &url::Url) -> Self {
        if common::digest::Digest::from_oci_blob_path(target.path()).is_some() { Self::Blob } else { Self::Url }
    }
}

/// What an origin said to a probe.
enum Answer {
    /// It let the requester have the content.
    Accepted,
    /// It refused: the answer to relay.
    Refused(Response),
    /// It could not be asked (no connection, or a 502/503/504): the answer if nothing else allows.
    Unreachable(Response),
}

/// Kept verdicts: when each expires, at most [`MAX_VERDICTS`].
#[derive(Debug, Default)]
struct Kept(Mutex<HashMap<[u8; 32], Instant>>);

impl Kept {
    fn holds(&self, key: &[u8; 32]) -> bool {
        let kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        kept.get(key).is_some_and(|until| Instant::now() < *until)
    }

    fn keep(&self, key: [u8; 32], ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let mut kept = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= MAX_VERDICTS {
            let now = Instant::now();
            kept.retain(|_, until| now < *until);
            if kept.len() >= MAX_VERDICTS {
                kept.clear();
            }
        }
        kept.insert(key, Instant::now() + ttl);
    }
}

/// The origins' verdicts on who may have content served through P2P.
#[derive(Debug)]
pub(super) struct Authorizer {
    /// How long an accepted verdict is reused; zero asks every time.
    ttl: Duration,
    /// The hash key of this process's lifetime.
    key: [u8; 32],
    /// Accepted verdicts.
    accepted: Kept,
    /// Registry blobs seen served to an anonymous requester, by their anonymous key.
    public: Kept,
}

/// Whether a request carries no credential a registry reads.
fn anonymous(headers: &HeaderMap) -> bool {
    !headers.contains_key(header::AUTHORIZATION) && !headers.contains_key(header::COOKIE)
}

impl Authorizer {
    pub(super) fn new(ttl: Duration) -> Self {
        Self { ttl, key: rand::rng().random(), accepted: Kept::default(), public: Kept::default() }
    }

    /// The requester and the content, hashed: what a verdict is kept under.
    fn verdict_key(&self, probe: Probe, target: &url::Url, headers: &HeaderMap) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        let mut field = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        match probe {
            Probe::Blob => {
                field(b"blob");
                for value in headers.get_all(header::AUTHORIZATION) {
                    field(value.as_bytes());
                }
                field(b"\0");
                field(target.scheme().as_bytes());
                field(target.host_str().unwrap_or("").as_bytes());
                field(&target.port_or_known_default().unwrap_or(0).to_le_bytes());
                field(target.path().as_bytes());
            }
            Probe::Url => {
                field(b"url");
                let mut sent = origin_headers(headers);
                sent.sort();
                for (name, value) in &sent {
                    field(name.as_bytes());
                    field(value.as_bytes());
                }
                field(b"\0");
                field(target.as_str().as_bytes());
            }
        }
        *hasher.finalize().as_bytes()
    }

    /// Whether `headers`' requester may have `target` without asking its origin: a verdict
    /// kept within the TTL, or a registry blob known public. What a cached answer needs when
    /// the origin is down.
    pub(super) fn allows_offline(&self, target: &url::Url, headers: &HeaderMap) -> bool {
        let probe = Probe::of(target);
        self.accepted.holds(&self.verdict_key(probe, target, headers))
            || (probe == Probe::Blob && self.public.holds(&self.verdict_key(probe, target, &HeaderMap::new())))
    }

    /// The origin answered `status` to a request it was sent as is, with the requester's
    /// `headers` (a forwarded `HEAD` of a blob): the same verdict a probe would have had.
    pub(super) fn note(&self, target: &url::Url, headers: &HeaderMap, status: StatusCode) {
        if status.is_success() {
            self.accepted(Probe::of(target), target, headers);
        }
    }

    fn accepted(&self, probe: Probe, target: &url::Url, headers: &HeaderMap) {
        self.accepted.keep(self.verdict_key(probe, target, headers), self.ttl);
        if probe == Probe::Blob && anonymous(headers) {
            self.public.keep(self.verdict_key(probe, target, &HeaderMap::new()), PUBLIC_TTL);
        }
    }

    /// `Ok` when the origin lets this requester have `target` (a verdict kept within the TTL
    /// counts, unless `fresh`); otherwise the answer to send instead.
    pub(super) async fn check(
        &self,
        client: &reqwest::Client,
        target: &url::Url,
        headers: &HeaderMap,
        fresh: bool,
    ) -> Result<(), Response> {
        let probe = Probe::of(target);
        if !fresh && self.accepted.holds(&self.verdict_key(probe, target, headers)) {
            return Ok(());
        }
        let mut answer = ask(client, target, headers, false).await;
        if probe == Probe::Url
            && let Answer::Refused(refusal) = &answer
            && matches!(
                refusal.status(),
                StatusCode::FORBIDDEN | StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED
            )
        {
            answer = ask(client, target, headers, true).await;
        }
        match answer {
            Answer::Accepted => {
                self.accepted(probe, target, headers);
                Ok(())
            }
            Answer::Refused(response) => Err(response),
            Answer::Unreachable(_)
                if probe == Probe::Blob && self.public.holds(&self.verdict_key(probe, target, &HeaderMap::new())) =>
            {
                tracing::info!(url = %target, "the registry cannot be asked; the blob is public, served from the cache");
                Ok(())
            }
            Answer::Unreachable(response) => Err(response),
        }
    }
}

/// Asks the origin about `target` with the requester's `headers`: a `HEAD`, or a `GET` of the
/// first byte when `first_byte` (its body is never read).
async fn ask(client: &reqwest::Client, target: &url::Url, headers: &HeaderMap, first_byte: bool) -> Answer {
    let mut probe = if first_byte {
        client.get(target.clone()).header(header::RANGE, "bytes=0-0")
    } else {
        client.head(target.clone())
    };
    for (name, value) in origin_headers(headers) {
        probe = probe.header(name, value);
    }
    let answer = match probe.timeout(PROBE_TIMEOUT).send().await {
        Ok(answer) => answer,
        Err(e) => {
            return match refusal_in(&e) {
                Some(refusal) => Answer::Refused(error(StatusCode::FORBIDDEN, ErrorType::Proxy, refusal.to_string())),
                None => Answer::Unreachable(error(
                    StatusCode::BAD_GATEWAY,
                    ErrorType::Backend,
                    format!(
                        "the origin could not be asked whether this requester may have the content \
                         (refused while it cannot be asked): {}",
                        e.without_url()
                    ),
                )),
            };
        }
    };
    let status = answer.status();
    // A redirect (to storage, maybe signed for GET only) is the origin's go-ahead; a 416 to the
    // first byte is an empty file the requester may have.
    if status.is_success() || status.is_redirection() || (first_byte && status == StatusCode::RANGE_NOT_SATISFIABLE) {
        return Answer::Accepted;
    }
    let unreachable =
        matches!(status, StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT);
    if !unreachable {
        tracing::info!(url = %target, %status, "the origin refused a requester content served through P2P");
    }
    let mut response = if status.is_client_error() {
        error(status, ErrorType::Backend, format!("the origin answered {status}"))
    } else {
        error(
            StatusCode::BAD_GATEWAY,
            ErrorType::Backend,
            format!("the origin answered {status} when asked whether this requester may have the content"),
        )
    };
    for name in [header::WWW_AUTHENTICATE, HeaderName::from_static("docker-distribution-api-version")] {
        for value in answer.headers().get_all(&name) {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    if unreachable { Answer::Unreachable(response) } else { Answer::Refused(response) }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn blob_verdicts_are_kept_per_credential_and_blob_and_expire() {
        let authz = Authorizer::new(Duration::from_millis(50));
        let blob = url::Url::parse("http://reg.example/v2/a/blobs/sha256:aa?ns=reg.example").unwrap();
        let other_repo = url::Url::parse("http://reg.example/v2/b/blobs/sha256:aa").unwrap();
        let alice = with(&[("authorization", "Bearer alice")]);
        let bob = with(&[("authorization", "Bearer bob")]);
        let key = |target: &url::Url, headers: &HeaderMap| authz.verdict_key(Probe::Blob, target, headers);
        let alices = key(&blob, &alice);
        assert_eq!(alices, key(&url::Url::parse("http://reg.example/v2/a/blobs/sha256:aa").unwrap(), &alice));
        assert_eq!(alices, key(&blob, &with(&[("authorization", "Bearer alice"), ("user-agent", "x")])));
        assert_ne!(alices, key(&blob, &bob));
        assert_ne!(alices, key(&blob, &HeaderMap::new()));
        assert_ne!(alices, key(&other_repo, &alice));
        assert_ne!(alices, authz.verdict_key(Probe::Url, &blob, &alice), "a blob's verdict is not a URL's");
        let later = Authorizer::new(Duration::from_secs(1));
        assert_ne!(alices, later.verdict_key(Probe::Blob, &blob, &alice), "keyed per process");
        authz.accepted.keep(alices, authz.ttl);
        assert!(authz.accepted.holds(&alices));
        assert!(!authz.accepted.holds(&key(&blob, &bob)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!authz.accepted.holds(&alices), "expired");
        let never = Authorizer::new(Duration::ZERO);
        let key = never.verdict_key(Probe::Blob, &blob, &alice);
        never.accepted.keep(key, never.ttl);
        assert!(!never.accepted.holds(&key), "a zero TTL asks every time");
    }

    #[test]
    fn url_verdicts_are_kept_per_forwarded_header_and_whole_url() {
        let authz = Authorizer::new(Duration::from_secs(60));
        let signed = url::Url::parse("http://o.example/f?sig=good").unwrap();
        let forged = url::Url::parse("http://o.example/f?sig=bad").unwrap();
        let key = |target: &url::Url, headers: &HeaderMap| authz.verdict_key(Probe::Url, target, headers);
        let api = with(&[("x-api-key", "k1")]);
        assert_ne!(key(&signed, &HeaderMap::new()), key(&forged, &HeaderMap::new()), "the query is the requester's");
        assert_ne!(key(&signed, &api), key(&signed, &with(&[("x-api-key", "k2")])), "any header may be a credential");
        assert_eq!(
            key(&signed, &with(&[("x-api-key", "k1"), ("range", "bytes=0-9"), ("x-dragonfly-tag", "t")])),
            key(&signed, &api),
            "what never reaches the origin does not count"
        );
    }

    #[test]
    fn only_an_anonymous_acceptance_makes_a_blob_public() {
        let authz = Authorizer::new(Duration::ZERO);
        let blob = url::Url::parse(&format!("http://reg.example/v2/a/blobs/sha256:{}", "a".repeat(64))).unwrap();
        let alice = with(&[("authorization", "Bearer alice")]);
        authz.note(&blob, &alice, StatusCode::OK);
        assert!(!authz.allows_offline(&blob, &HeaderMap::new()), "alice's yes says nothing of anyone else");
        assert!(!authz.allows_offline(&blob, &alice), "a zero TTL keeps no verdict");
        authz.note(&blob, &with(&[("cookie", "s=1")]), StatusCode::OK);
        authz.note(&blob, &HeaderMap::new(), StatusCode::UNAUTHORIZED);
        assert!(!authz.allows_offline(&blob, &HeaderMap::new()), "a cookie is a credential; a 401 is no");
        authz.note(&blob, &HeaderMap::new(), StatusCode::OK);
        assert!(authz.allows_offline(&blob, &HeaderMap::new()));
        assert!(authz.allows_offline(&blob, &with(&[("authorization", "Bearer anyone")])), "public to everyone");
        let plain = url::Url::parse("http://o.example/file").unwrap();
        authz.note(&plain, &HeaderMap::new(), StatusCode::OK);
        assert!(!authz.allows_offline(&plain, &HeaderMap::new()), "only registry blobs are known public");
    }
}
