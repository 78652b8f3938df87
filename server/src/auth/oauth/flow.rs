//! One sign-in in flight: the `state`, the PKCE verifier and where to go afterwards, kept in a
//! short-lived cookie signed with the manager's JWT key.
//!
//! The cookie, not a table, holds the flow so that any replica can finish a sign-in another one
//! started, and nothing needs cleaning up when people walk away from the provider's page. It is
//! signed, not encrypted: the PKCE verifier in it only helps whoever also holds the code, and
//! the cookie is HttpOnly and scoped to the callback path.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The `aud` of flow cookies; session checks refuse any token that has one.
pub const AUDIENCE: &str = "damselfly-oauth-flow";

/// How long someone may spend at the provider before the sign-in must start over.
pub const TTL_SECS: i64 = 600;

/// What the flow cookie says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowClaims {
    pub aud: String,
    pub exp: i64,
    /// The provider the flow was started for; another provider's callback refuses it.
    pub provider: String,
    /// Echoed by the provider; proves the callback answers this browser's request (CSRF).
    pub state: String,
    /// PKCE: the provider only hands out a token to whoever knows this.
    pub verifier: String,
    /// A path on this manager (already checked by [`safe_return_to`]).
    pub return_to: String,
}

impl FlowClaims {
    /// A fresh flow for `provider`, returning to `return_to` when that is a local path.
    pub fn new(provider: &str, return_to: Option<&str>) -> Self {
        Self {
            aud: AUDIENCE.into(),
            exp: chrono::Utc::now().timestamp() + TTL_SECS,
            provider: provider.into(),
            state: random(24),
            verifier: random(32),
            return_to: safe_return_to(return_to),
        }
    }

    /// The PKCE `S256` challenge for this flow's verifier.
    pub fn challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.verifier.as_bytes()))
    }
}

/// `bytes` random bytes, base64url (so a 32-byte verifier is 43 characters, as RFC 7636 asks).
fn random(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// `return_to` when it is a path on this manager, else `/`. Anything that a browser could read
/// as another origin (`//host`, `/\host`, `https://…`) or that holds control characters falls
/// back, so the callback is never an open redirect.
pub fn safe_return_to(return_to: Option<&str>) -> String {
    match return_to {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 2048
                && !path.chars().any(|c| c.is_control() || c == '\\') =>
        {
            path.to_owned()
        }
        _ => "/".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_kept() {
        for (given, kept) in [
            (None, "/"),
            (Some("/clusters?page=2"), "/clusters?page=2"),
            (Some("https://evil.example/"), "/"),
            (Some("//evil.example/"), "/"),
            (Some("/\\evil.example/"), "/"),
            (Some("/a\\b"), "/"),
            (Some("/a\r\nSet-Cookie: x=y"), "/"),
            (Some("relative"), "/"),
            (Some(""), "/"),
        ] {
            assert_eq!(safe_return_to(given), kept, "{given:?}");
        }
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        let mut flow = FlowClaims::new("corp", None);
        assert_eq!(flow.verifier.len(), 43);
        assert_ne!(flow.state, FlowClaims::new("corp", None).state);
        flow.verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk".into();
        assert_eq!(flow.challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }
}
