//! Who may have a registry blob the P2P network holds: the registry decides, per requester.
//!
//! A blob in this host's cache, or in any peer's, was fetched once with someone's credentials;
//! handing it to whoever asks would turn the cache into a way around a private registry. So
//! before a blob GET (`/v2/<repository>/blobs/<digest>`) is served through P2P, cold or warm, the
//! registry is asked with a `HEAD` of the same URL carrying the requester's own headers
//! (`Authorization` or none: then the registry decides about anonymous callers). A 2xx, or a
//! redirect (to storage: the registry has said yes, and the storage URL may be signed for GET
//! only), lets the request through; any other answer is relayed as the registry sent it (status and
//! `WWW-Authenticate`) and no byte is served; a registry that cannot be asked refuses (a 502),
//! since there is no way to tell a private blob from a public one without it.
//!
//! An accepted verdict is kept for `[proxy] auth_cache_secs` per (credential, registry,
//! repository, digest): one `HEAD` per blob per requester per TTL on a warm pull. The digest is
//! part of the key because a task may be shared across repositories (blob-digest task ids): being
//! allowed to pull one repository says nothing about a blob another holds. The key is a keyed
//! BLAKE3 hash with a key drawn at start, so what is kept reveals no credential; credentials are
//! never logged.

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

/// The registry's accepted verdicts, by requester and blob.
#[derive(Debug)]
pub(super) struct Authorizer {
    /// How long an accepted verdict is reused; zero asks every time.
    ttl: Duration,
    /// The hash key of this process's lifetime.
    key: [u8; 32],
    /// Accepted verdicts: when each expires.
    accepted: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Authorizer {
    pub(super) fn new(ttl: Duration) -> Self {
        Self { ttl, key: rand::rng().random(), accepted: Mutex::default() }
    }

    /// The requester's credentials and the blob, hashed: what a verdict is kept under.
    fn verdict_key(&self, target: &url::Url, headers: &HeaderMap) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        for value in headers.get_all(header::AUTHORIZATION) {
            hasher.update(&(value.len() as u64).to_le_bytes());
            hasher.update(value.as_bytes());
        }
        hasher.update(b"\0");
        hasher.update(target.scheme().as_bytes());
        hasher.update(b"://");
        hasher.update(target.host_str().unwrap_or("").as_bytes());
        hasher.update(&target.port_or_known_default().unwrap_or(0).to_le_bytes());
        hasher.update(target.path().as_bytes());
        *hasher.finalize().as_bytes()
    }

    fn is_accepted(&self, key: &[u8; 32]) -> bool {
        let accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        accepted.get(key).is_some_and(|until| Instant::now() < *until)
    }

    fn accept(&self, key: [u8; 32]) {
        if self.ttl.is_zero() {
            return;
        }
        let mut accepted = self.accepted.lock().unwrap_or_else(|p| p.into_inner());
        if accepted.len() >= MAX_VERDICTS {
            let now = Instant::now();
            accepted.retain(|_, until| now < *until);
            if accepted.len() >= MAX_VERDICTS {
                accepted.clear();
            }
        }
        accepted.insert(key, Instant::now() + self.ttl);
    }

    /// `Ok` when the registry lets this requester have the blob at `target` (a verdict kept
    /// within the TTL counts, unless `fresh`); otherwise the answer to send instead.
    pub(super) async fn check(
        &self,
        client: &reqwest::Client,
        target: &url::Url,
        headers: &HeaderMap,
        fresh: bool,
    ) -> Result<(), Response> {
        let key = self.verdict_key(target, headers);
        if !fresh && self.is_accepted(&key) {
            return Ok(());
        }
        let mut head = client.head(target.clone());
        for (name, value) in origin_headers(headers) {
            head = head.header(name, value);
        }
        let answer = match head.send().await {
            Ok(answer) => answer,
            Err(e) => {
                return Err(match refusal_in(&e) {
                    Some(refusal) => error(StatusCode::FORBIDDEN, ErrorType::Proxy, refusal.to_string()),
                    None => error(
                        StatusCode::BAD_GATEWAY,
                        ErrorType::Backend,
                        format!(
                            "the registry could not be asked whether this requester may have the blob: {}",
                            e.without_url()
                        ),
                    ),
                });
            }
        };
        let status = answer.status();
        // A redirect (to storage, maybe signed for GET only) is the registry's go-ahead.
        if status.is_success() || status.is_redirection() {
            self.accept(key);
            return Ok(());
        }
        tracing::info!(url = %target, %status, "the registry refused a requester a blob");
        let mut response = if status.is_client_error() {
            error(status, ErrorType::Backend, format!("the registry answered {status}"))
        } else {
            error(StatusCode::BAD_GATEWAY, ErrorType::Backend, format!("the registry answered {status}"))
        };
        for name in [header::WWW_AUTHENTICATE, HeaderName::from_static("docker-distribution-api-version")] {
            for value in answer.headers().get_all(&name) {
                response.headers_mut().append(name.clone(), value.clone());
            }
        }
        Err(response)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn verdicts_are_kept_per_credential_and_blob_and_expire() {
        let authz = Authorizer::new(Duration::from_millis(50));
        let blob = url::Url::parse("http://reg.example/v2/a/blobs/sha256:aa?ns=reg.example").unwrap();
        let other_repo = url::Url::parse("http://reg.example/v2/b/blobs/sha256:aa").unwrap();
        let mut alice = HeaderMap::new();
        alice.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer alice"));
        let mut bob = HeaderMap::new();
        bob.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer bob"));
        let key = authz.verdict_key(&blob, &alice);
        assert_eq!(
            key,
            authz.verdict_key(&url::Url::parse("http://reg.example/v2/a/blobs/sha256:aa").unwrap(), &alice)
        );
        assert_ne!(key, authz.verdict_key(&blob, &bob));
        assert_ne!(key, authz.verdict_key(&blob, &HeaderMap::new()));
        assert_ne!(key, authz.verdict_key(&other_repo, &alice));
        assert_ne!(key, Authorizer::new(Duration::from_secs(1)).verdict_key(&blob, &alice), "keyed per process");
        authz.accept(key);
        assert!(authz.is_accepted(&key));
        assert!(!authz.is_accepted(&authz.verdict_key(&blob, &bob)));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!authz.is_accepted(&key), "expired");
        let never = Authorizer::new(Duration::ZERO);
        let key = never.verdict_key(&blob, &alice);
        never.accept(key);
        assert!(!never.is_accepted(&key), "a zero TTL asks every time");
    }
}
