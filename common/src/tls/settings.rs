//! How a scheduler or dfdaemon gets its credentials (`[tls]` in its configuration), and the join
//! token it enrols with.
//!
//! In order: plaintext mode has none (a debugging mode, logged loudly at every start); files an
//! operator named are used as they are; else credentials kept in `dir` from an earlier
//! enrolment, while they are valid (the running component renews them); else a new key is made and enrolled with the
//! join token, and the result kept in `dir` for the next start.

use std::{future::Future, path::PathBuf};

use serde::{Deserialize, Serialize};

use super::{Component, Credentials, Error, credentials::KeyRequest};
use crate::ids::HostId;

/// Whether the gRPC hops are authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Mutual TLS with the cluster's CA (the default).
    #[default]
    Mtls,
    /// No TLS, nobody authenticated: for debugging only.
    Plaintext,
}

/// `[tls]` of a scheduler or dfdaemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSettings {
    pub mode: Mode,
    /// Where enrolled credentials are kept (`key.pem` 0600, `cert.pem`, `ca.pem`); each binary
    /// fills in its own default.
    pub dir: PathBuf,
    /// An operator's own certificate (PEM, leaf first), key and CA; all three or none.
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
}

impl Default for TlsSettings {
    fn default() -> Self {
        Self { mode: Mode::Mtls, dir: PathBuf::new(), cert: None, key: None, ca: None }
    }
}

/// A join token as handed to a component: `dfj1.<id>.<secret>.<sha256 of the CA>`. The manager
/// checks the first three parts; the component pins the manager's CA with the fourth.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    token: String,
    ca_sha256: String,
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken").field("ca_sha256", &self.ca_sha256).finish_non_exhaustive()
    }
}

impl JoinToken {
    /// Longest token accepted.
    pub const MAX_LEN: usize = 256;

    pub fn parse(s: &str) -> Result<Self, Error> {
        let bad = |detail: &str| Error::Malformed { what: "join token", detail: detail.into() };
        let s = s.trim();
        if s.len() > Self::MAX_LEN {
            return Err(bad("too long"));
        }
        let parts: Vec<&str> = s.split('.').collect();
        let [version, id, secret, ca] = parts[..] else {
            return Err(bad("expected dfj1.<id>.<secret>.<CA sha256>"));
        };
        if version != "dfj1" || id.is_empty() || secret.is_empty() {
            return Err(bad("expected dfj1.<id>.<secret>.<CA sha256>"));
        }
        if ca.len() != 64 || !ca.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad("the CA fingerprint is not 64 lower-case hex digits"));
        }
        Ok(Self { token: s.to_owned(), ca_sha256: ca.to_owned() })
    }

    /// The whole token, as sent to the manager.
    pub fn secret(&self) -> &str {
        &self.token
    }

    /// The CA the manager must present.
    pub fn ca_sha256(&self) -> &str {
        &self.ca_sha256
    }
}

/// What a component's credentials must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub component: Component,
    pub host_id: HostId,
    /// `None`: whichever cluster the join token names.
    pub cluster_id: Option<i64>,
}

impl Expected {
    fn check(&self, c: Credentials) -> Result<Credentials, Error> {
        let id = &c.identity;
        let cluster_ok = self.cluster_id.is_none_or(|want| want == id.cluster_id);
        if id.component == self.component && id.host_id == self.host_id && cluster_ok {
            return Ok(c);
        }
        let cluster = self.cluster_id.map(|c| format!(" of cluster {c}")).unwrap_or_default();
        Err(Error::Identity(format!(
            "the certificate is of {id}; this is {} {}{cluster}",
            self.component, self.host_id
        )))
    }
}

/// The credentials a component runs with (`None` in plaintext mode). `enrol` is called with a
/// fresh key's request when enrolment is needed, and answers the certificate chain and the CA
/// (PEM); `expected` is what the credentials must name, whichever way they came. Kept
/// credentials that name something else (the host was renamed) are replaced by enrolling again.
pub async fn obtain<F, Fut>(
    settings: &TlsSettings,
    join_token: Option<&str>,
    expected: &Expected,
    enrol: F,
) -> Result<Option<Credentials>, Error>
where
    F: FnOnce(JoinToken, KeyRequest) -> Fut,
    Fut: Future<Output = Result<(String, String), Error>>,
{
    if settings.mode == Mode::Plaintext {
        tracing::warn!(
            "TLS IS OFF ([tls] mode = \"plaintext\"): every gRPC call is unauthenticated and readable on the wire; use only for debugging"
        );
        return Ok(None);
    }
    let check = |c: Credentials| expected.check(c);
    match (&settings.cert, &settings.key, &settings.ca) {
        (Some(cert), Some(key), Some(ca)) => {
            let read =
                |p: &PathBuf| std::fs::read_to_string(p).map_err(|source| Error::File { path: p.clone(), source });
            return check(Credentials::from_pem(&read(cert)?, &read(key)?, &read(ca)?)?).map(Some);
        }
        (None, None, None) => {}
        _ => return Err(Error::Malformed { what: "[tls]", detail: "cert, key and ca go together".into() }),
    }
    let kept = match Credentials::load(&settings.dir) {
        Ok(kept) => kept,
        Err(e) => {
            tracing::warn!(error = %e, dir = %settings.dir.display(), "kept credentials are unusable; enrolling again");
            None
        }
    };
    // Kept credentials serve while they are valid (an expired one does not load): the running
    // component renews them (`proto::enrol::keep_renewed`), and the join token that made them is
    // usually spent.
    if let Some(kept) = kept.filter(|c| expected.check(c.clone()).is_ok()) {
        tracing::info!(identity = %kept.identity, "using kept credentials");
        return Ok(Some(kept));
    }
    let Some(token) = join_token.filter(|t| !t.trim().is_empty()) else {
        return Err(Error::Identity(format!(
            "no usable credentials in {} and no join token to enrol with: set [manager] join_token, or [tls] cert/key/ca, or [tls] mode = \"plaintext\" to debug",
            settings.dir.display()
        )));
    };
    let token = JoinToken::parse(token)?;
    let request = KeyRequest::generate()?;
    let key_pem = request.key_pem().to_owned();
    let (chain, ca) = enrol(token, request).await?;
    let credentials = check(Credentials::from_pem(&chain, &key_pem, &ca)?)?;
    credentials.store(&settings.dir)?;
    tracing::info!(identity = %credentials.identity, dir = %settings.dir.display(), "enrolled");
    Ok(Some(credentials))
}

/// A join token is pasted by an operator: any string either is refused, or holds its four parts
/// with a pinned CA fingerprint, and parses again to itself.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn hex64() -> impl Strategy<Value = String> {
        "[0-9a-f]{64}"
    }

    /// Any string, and tokens with one part changed or whitespace around them.
    fn token_ish() -> impl Strategy<Value = String> {
        let version = prop_oneof![3 => Just("dfj1".to_owned()), 1 => "[a-z0-9]{0,5}"];
        let part = prop_oneof![3 => "[A-Za-z0-9_-]{1,60}", 1 => "[^.]{0,10}"];
        let ca = prop_oneof![3 => hex64(), 1 => "[0-9a-fA-F]{62,66}"];
        let space = "[ \t\n]{0,3}";
        prop_oneof![
            1 => any::<String>(),
            3 => (space, version, part.clone(), part, ca, "(\\.[a-z]{0,3})?", space).prop_map(
                |(before, version, id, secret, ca, extra, after)| format!("{before}{version}.{id}.{secret}.{ca}{extra}{after}")
            ),
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn a_join_token_parses_into_its_parts_or_is_refused(s in token_ish()) {
            let Ok(token) = JoinToken::parse(&s) else { return Ok(()) };
            prop_assert_eq!(token.secret(), s.trim());
            prop_assert!(token.secret().len() <= JoinToken::MAX_LEN);
            let parts: Vec<&str> = token.secret().split('.').collect();
            prop_assert_eq!(parts.len(), 4);
            prop_assert!(parts[0] == "dfj1" && !parts[1].is_empty() && !parts[2].is_empty());
            prop_assert_eq!(token.ca_sha256(), parts[3]);
            prop_assert!(token.ca_sha256().len() == 64 && token.ca_sha256().bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
            prop_assert_eq!(JoinToken::parse(token.secret()).ok(), Some(token));
        }

        #[test]
        fn a_well_formed_join_token_parses(id in "[0-9]{1,10}", secret in "[A-Za-z0-9_-]{43}", ca in hex64(), space in "[ \t\n]{0,3}") {
            let text = format!("{space}dfj1.{id}.{secret}.{ca}{space}");
            let token = JoinToken::parse(&text).unwrap();
            prop_assert_eq!(token.secret(), text.trim());
            prop_assert_eq!(token.ca_sha256(), ca.as_str());
        }
    }
}
