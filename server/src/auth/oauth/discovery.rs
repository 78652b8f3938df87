//! OpenID Connect discovery: a provider configured with only an `issuer` gets its endpoints from
//! `<issuer>/.well-known/openid-configuration`, fetched on its first sign-in, not at start, so
//! a provider that is down never keeps the manager from starting. Explicit URLs win.

use std::time::Duration;

use reqwest::header::ACCEPT;
use serde::Deserialize;
use url::Url;

use crate::{Error, config::OAuthProviderConfig};

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
}

/// `p` with every endpoint filled in, asking the issuer only when one is missing.
pub async fn resolve(http: &reqwest::Client, p: &OAuthProviderConfig) -> Result<OAuthProviderConfig, Error> {
    if [&p.authorize_url, &p.token_url, &p.userinfo_url].iter().all(|u| !u.is_empty()) {
        return Ok(p.clone());
    }
    let issuer = p.issuer.trim_end_matches('/');
    let fail = |why: String| Error::BadGateway(format!("OpenID discovery for {} failed: {why}", p.name));
    let res = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .timeout(Duration::from_secs(p.timeout_secs))
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| fail(e.without_url().to_string()))?;
    if !res.status().is_success() {
        return Err(fail(format!("the issuer answered {}", res.status())));
    }
    let meta: Metadata = res.json().await.map_err(|_| fail("the answer is not provider metadata".into()))?;
    // OpenID Connect Discovery §4.3: the metadata must name the issuer it was fetched from.
    if meta.issuer.trim_end_matches('/') != issuer {
        return Err(fail(format!("the metadata names issuer {:?}", meta.issuer.chars().take(200).collect::<String>())));
    }
    let mut resolved = p.clone();
    for (field, found) in [
        (&mut resolved.authorize_url, Some(meta.authorization_endpoint)),
        (&mut resolved.token_url, Some(meta.token_endpoint)),
        (&mut resolved.userinfo_url, meta.userinfo_endpoint),
    ] {
        if field.is_empty() {
            let found = found
                .filter(|u| Url::parse(u).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
                .ok_or_else(|| fail("the metadata lacks an endpoint, or it is not an http(s) URL".into()))?;
            *field = found;
        }
    }
    Ok(resolved)
}
