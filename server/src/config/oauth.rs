//! `[[auth.oauth]]`: the OAuth2 / OpenID Connect providers people may sign in with.
//!
//! Endpoints are given explicitly (no discovery), so any OAuth2 provider with a userinfo
//! endpoint works, GitHub included. Validation happens at load so that a typo fails the start
//! with the key named, not the first sign-in.

use std::collections::HashSet;

use serde::Deserialize;
use url::Url;

use crate::Error;

/// How the manager authenticates itself at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuthMethod {
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// HTTP Basic with `client_id:client_secret`.
    ClientSecretBasic,
}

/// One provider.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OAuthProviderConfig {
    /// URL-safe id used in paths (`/api/v1/users/signin/{name}`) and stored with linked users.
    pub name: String,
    /// What the console's sign-in page shows; empty means `name`.
    pub display_name: String,
    pub client_id: String,
    /// Never logged, never answered by the API.
    pub client_secret: String,
    /// OpenID Connect issuer; endpoints left empty are discovered from its
    /// `.well-known/openid-configuration`.
    pub issuer: String,
    pub authorize_url: String,
    pub token_url: String,
    pub userinfo_url: String,
    pub scopes: Vec<String>,
    /// The manager's callback as the provider sees it: `…/api/v1/users/signin/{name}/callback`.
    pub redirect_url: String,
    /// Userinfo claim naming the user; `login`, then `sub`, are tried after it.
    pub username_claim: String,
    /// Create a user on its first sign-in; when false, only already-linked users get in.
    pub allow_signup: bool,
    pub token_auth_method: TokenAuthMethod,
    /// Seconds to wait for the token and userinfo endpoints.
    pub timeout_secs: u64,
}

impl std::fmt::Debug for OAuthProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuthProviderConfig")
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("issuer", &self.issuer)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("userinfo_url", &self.userinfo_url)
            .field("redirect_url", &self.redirect_url)
            .finish_non_exhaustive()
    }
}

impl Default for OAuthProviderConfig {
    fn default() -> Self {
        Self {
            name: String::new(),
            display_name: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            issuer: String::new(),
            authorize_url: String::new(),
            token_url: String::new(),
            userinfo_url: String::new(),
            scopes: ["openid", "profile", "email"].map(String::from).to_vec(),
            redirect_url: String::new(),
            username_claim: "preferred_username".into(),
            allow_signup: true,
            token_auth_method: TokenAuthMethod::ClientSecretPost,
            timeout_secs: 10,
        }
    }
}

/// Fills `display_name` from `name` where it is empty.
pub(super) fn derive(providers: &mut [OAuthProviderConfig]) {
    for p in providers {
        if p.display_name.is_empty() {
            p.display_name = p.name.clone();
        }
    }
}

/// Checks every provider; the error names the offending key.
pub(super) fn validate(providers: &[OAuthProviderConfig]) -> Result<(), Error> {
    let mut seen = HashSet::new();
    for (i, p) in providers.iter().enumerate() {
        let key = |field: &str| format!("auth.oauth[{i}].{field}");
        let url_safe = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_';
        if p.name.is_empty() || p.name.len() > 64 || !p.name.chars().all(url_safe) {
            return Err(Error::Config(format!(
                "{} must be 1 to 64 of a-z, 0-9, '-' or '_', got {:?}",
                key("name"),
                p.name
            )));
        }
        if !seen.insert(p.name.as_str()) {
            return Err(Error::Config(format!("{} {:?} is used by two providers", key("name"), p.name)));
        }
        for (field, value) in [("client_id", &p.client_id), ("client_secret", &p.client_secret)] {
            if value.is_empty() {
                return Err(Error::Config(format!("{} must not be empty", key(field))));
            }
        }
        for (field, value) in [
            ("issuer", &p.issuer),
            ("authorize_url", &p.authorize_url),
            ("token_url", &p.token_url),
            ("userinfo_url", &p.userinfo_url),
            ("redirect_url", &p.redirect_url),
        ] {
            if value.is_empty() && field != "redirect_url" && (field == "issuer" || !p.issuer.is_empty()) {
                continue;
            }
            if value.is_empty() {
                return Err(Error::Config(format!("{} must be set (or set issuer to discover it)", key(field))));
            }
            let parsed = Url::parse(value).map_err(|e| Error::Config(format!("{} {value:?}: {e}", key(field))))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
                return Err(Error::Config(format!("{} must be an http(s) URL with a host, got {value:?}", key(field))));
            }
        }
        if p.scopes.iter().any(|s| s.is_empty() || s.contains(char::is_whitespace)) {
            return Err(Error::Config(format!("{} must be words without spaces", key("scopes"))));
        }
        if p.username_claim.is_empty() {
            return Err(Error::Config(format!("{} must not be empty", key("username_claim"))));
        }
        if p.timeout_secs == 0 {
            return Err(Error::Config(format!("{} must be at least 1", key("timeout_secs"))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str) -> OAuthProviderConfig {
        OAuthProviderConfig {
            name: name.into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
            authorize_url: "https://idp.example/authorize".into(),
            token_url: "https://idp.example/token".into(),
            userinfo_url: "https://idp.example/userinfo".into(),
            redirect_url: "https://manager.example/api/v1/users/signin/corp/callback".into(),
            ..Default::default()
        }
    }

    #[test]
    fn errors_name_the_key() {
        assert!(validate(&[provider("corp"), provider("github")]).is_ok());
        let err = validate(&[provider("corp"), provider("corp")]).unwrap_err().to_string();
        assert!(err.contains("auth.oauth[1].name"), "{err}");
        let err = validate(&[provider("Corp Login")]).unwrap_err().to_string();
        assert!(err.contains("auth.oauth[0].name"), "{err}");
        let err = validate(&[OAuthProviderConfig { token_url: "not a url".into(), ..provider("corp") }])
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.oauth[0].token_url"), "{err}");
        let err =
            validate(&[OAuthProviderConfig { client_id: String::new(), ..provider("corp") }]).unwrap_err().to_string();
        assert!(err.contains("auth.oauth[0].client_id"), "{err}");
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        assert!(!format!("{:?}", provider("corp")).contains("\"secret\""));
    }
}
