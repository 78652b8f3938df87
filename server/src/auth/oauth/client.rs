//! The manager's side of talking to a provider: trade the code for an access token, then ask
//! the userinfo endpoint who it belongs to.
//!
//! Every failure becomes [`Error::BadGateway`] naming the endpoint and the provider's own error
//! code; tokens, secrets and codes never appear in messages or logs.

use std::time::Duration;

use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    Error,
    config::{OAuthProviderConfig, TokenAuthMethod},
};

/// The provider account, as the userinfo endpoint describes it.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The provider's stable id (`sub`, or GitHub's numeric `id`).
    pub subject: String,
    /// Candidate user names, best first: the configured claim, `login`, `sub`.
    pub names: Vec<String>,
    pub email: Option<String>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(Deserialize)]
struct ProviderError {
    error: String,
    error_description: Option<String>,
}

/// At most 200 printable characters of text a provider sent, for error messages.
pub fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn describe(body: &[u8]) -> String {
    match serde_json::from_slice::<ProviderError>(body) {
        Ok(ProviderError { error, error_description: Some(d) }) => format!("{}: {}", printable(&error), printable(&d)),
        Ok(ProviderError { error, error_description: None }) => printable(&error),
        Err(_) => "no OAuth error in the answer".into(),
    }
}

/// Trades `code` (with the PKCE `verifier`) for an access token at the token endpoint.
pub async fn exchange(
    http: &reqwest::Client,
    p: &OAuthProviderConfig,
    code: &str,
    verifier: &str,
) -> Result<String, Error> {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", p.redirect_url.as_str()),
        ("code_verifier", verifier),
    ];
    let mut req =
        http.post(&p.token_url).timeout(Duration::from_secs(p.timeout_secs)).header(ACCEPT, "application/json");
    match p.token_auth_method {
        TokenAuthMethod::ClientSecretPost => {
            form.push(("client_id", p.client_id.as_str()));
            form.push(("client_secret", p.client_secret.as_str()));
        }
        TokenAuthMethod::ClientSecretBasic => {
            // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            req = req.basic_auth(enc(&p.client_id), Some(enc(&p.client_secret)));
        }
    }
    let res = req.form(&form).send().await.map_err(|e| {
        Error::BadGateway(format!("could not reach the token endpoint of {}: {}", p.name, e.without_url()))
    })?;
    let status = res.status();
    let body = res
        .bytes()
        .await
        .map_err(|e| Error::BadGateway(format!("reading the token answer of {}: {}", p.name, e.without_url())))?;
    if !status.is_success() {
        return Err(Error::BadGateway(format!(
            "the token endpoint of {} refused the sign-in ({status}): {}",
            p.name,
            describe(&body)
        )));
    }
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|_| Error::BadGateway(format!("the token endpoint of {} answered no access_token", p.name)))?;
    Ok(answer.access_token)
}

/// Asks the userinfo endpoint who `access_token` belongs to.
pub async fn userinfo(http: &reqwest::Client, p: &OAuthProviderConfig, access_token: &str) -> Result<Identity, Error> {
    let res = http
        .get(&p.userinfo_url)
        .timeout(Duration::from_secs(p.timeout_secs))
        .header(ACCEPT, "application/json")
        .bearer_auth(access_token)
        .send()
        .await
        .map_err(|e| {
            Error::BadGateway(format!("could not reach the userinfo endpoint of {}: {}", p.name, e.without_url()))
        })?;
    let status = res.status();
    if !status.is_success() {
        return Err(Error::BadGateway(format!("the userinfo endpoint of {} answered {status}", p.name)));
    }
    let claims: Value = res
        .json()
        .await
        .map_err(|_| Error::BadGateway(format!("the userinfo endpoint of {} answered no JSON object", p.name)))?;
    identity(p, &claims)
}

/// A claim as text: strings as they are, numbers (GitHub's `id`) in decimal.
fn claim(claims: &Value, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn identity(p: &OAuthProviderConfig, claims: &Value) -> Result<Identity, Error> {
    let subject = claim(claims, "sub")
        .or_else(|| claim(claims, "id"))
        .filter(|s| s.len() <= 255)
        .ok_or_else(|| Error::BadGateway(format!("the userinfo of {} has no usable sub or id", p.name)))?;
    let mut names = Vec::new();
    for key in [p.username_claim.as_str(), "login", "sub"] {
        if let Some(name) = claim(claims, key).filter(|n| !names.contains(n)) {
            names.push(name);
        }
    }
    let verified = claims.get("email_verified").and_then(Value::as_bool).unwrap_or(true);
    let email = claim(claims, "email").filter(|_| verified);
    Ok(Identity { subject, names, email })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn github_and_oidc_userinfo_both_work() {
        let p = OAuthProviderConfig { name: "x".into(), ..Default::default() };
        let gh = identity(&p, &json!({"id": 42, "login": "octo", "email": null})).unwrap();
        assert_eq!((gh.subject.as_str(), gh.names.as_slice(), gh.email), ("42", &["octo".to_owned()][..], None));
        let oidc = identity(
            &p,
            &json!({"sub": "u-1", "preferred_username": "alice", "email": "a@x.io", "email_verified": false}),
        )
        .unwrap();
        assert_eq!(oidc.names, ["alice", "u-1"]);
        assert_eq!(oidc.email, None);
        assert!(identity(&p, &json!({"login": "nobody"})).is_err());
    }
}
