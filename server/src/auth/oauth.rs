//! Sign-in through OAuth2 / OpenID Connect providers (`[[auth.oauth]]`): the authorization-code
//! flow with PKCE, ending in an ordinary sign-in session.
//!
//! [`OAuth::begin`] answers where to send the browser and a signed flow cookie
//! ([`flow`]); [`OAuth::finish`] checks the callback against that cookie, trades the code for
//! an access token, reads userinfo ([`client`]) and resolves the local user ([`account`]).
//! Whoever finishes gets a session exactly like a password sign-in; this module never issues
//! tokens itself. ID tokens are not checked: the userinfo endpoint, reached over the provider's
//! own TLS with the access token, is the source of truth, which also covers plain OAuth2
//! providers such as GitHub. Providers given only an `issuer` are completed by [`discovery`].

mod account;
mod client;
mod discovery;
mod flow;

use url::Url;

use super::Keys;
use crate::{Error, config::OAuthProviderConfig, entity::users};

pub use flow::TTL_SECS as FLOW_TTL_SECS;

/// The configured providers, and what a sign-in needs to talk to them.
#[derive(Debug)]
pub struct OAuth {
    providers: Vec<Provider>,
    http: reqwest::Client,
    keys: Keys,
}

#[derive(Debug)]
struct Provider {
    config: OAuthProviderConfig,
    /// `config` with discovered endpoints filled in, once discovery has succeeded.
    resolved: tokio::sync::OnceCell<OAuthProviderConfig>,
}

/// A sign-in just started.
#[derive(Debug)]
pub struct Started {
    /// The provider's authorize URL with this flow's parameters.
    pub authorize_url: Url,
    /// The signed flow, for the flow cookie.
    pub flow: String,
}

/// What the provider sent back to the callback.
#[derive(Debug, Default)]
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
}

/// A finished sign-in.
#[derive(Debug)]
pub struct Finished {
    pub user: users::Model,
    /// Local path to send the browser to.
    pub return_to: String,
}

impl OAuth {
    /// `keys` signs the flow cookies, so every replica can finish any replica's flows.
    pub fn new(providers: Vec<OAuthProviderConfig>, keys: Keys) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("damselfly-manager/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Internal(format!("building the OAuth HTTP client: {e}")))?;
        let providers =
            providers.into_iter().map(|config| Provider { config, resolved: tokio::sync::OnceCell::new() }).collect();
        Ok(Self { providers, http, keys })
    }

    /// Every provider as configured, in configuration order.
    pub fn providers(&self) -> impl Iterator<Item = &OAuthProviderConfig> {
        self.providers.iter().map(|p| &p.config)
    }

    /// The provider called `name` as configured, or `NotFound`.
    pub fn provider(&self, name: &str) -> Result<&OAuthProviderConfig, Error> {
        self.providers().find(|p| p.name == name).ok_or_else(|| Error::not_found("OAuth provider"))
    }

    /// The provider called `name` with all its endpoints (discovered when not configured).
    async fn resolved(&self, name: &str) -> Result<&OAuthProviderConfig, Error> {
        let p =
            self.providers.iter().find(|p| p.config.name == name).ok_or_else(|| Error::not_found("OAuth provider"))?;
        p.resolved.get_or_try_init(|| discovery::resolve(&self.http, &p.config)).await
    }

    /// Starts a sign-in at `name`, coming back to `return_to` (a local path) afterwards.
    pub async fn begin(&self, name: &str, return_to: Option<&str>) -> Result<Started, Error> {
        let p = self.resolved(name).await?;
        let flow = flow::FlowClaims::new(&p.name, return_to);
        let mut authorize_url =
            Url::parse(&p.authorize_url).map_err(|e| Error::Config(format!("the authorize_url of {}: {e}", p.name)))?;
        authorize_url
            .query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &p.client_id)
            .append_pair("redirect_uri", &p.redirect_url)
            .append_pair("scope", &p.scopes.join(" "))
            .append_pair("state", &flow.state)
            .append_pair("code_challenge", &flow.challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(Started { authorize_url, flow: self.keys.sign_other(&flow)? })
    }

    /// Finishes a sign-in at `name`: `signed_flow` is the flow cookie [`OAuth::begin`] set.
    pub async fn finish(
        &self,
        db: &sea_orm::DatabaseConnection,
        name: &str,
        callback: Callback,
        signed_flow: Option<&str>,
    ) -> Result<Finished, Error> {
        let p = self.resolved(name).await?;
        if let Some(error) = callback.error {
            let detail =
                callback.error_description.map(|d| format!(" ({})", client::printable(&d))).unwrap_or_default();
            return Err(Error::invalid(
                "error",
                format!("{} refused the sign-in: {}{detail}", p.name, client::printable(&error)),
            ));
        }
        let flow = signed_flow
            .and_then(|f| self.keys.verify_other::<flow::FlowClaims>(f, flow::AUDIENCE))
            .filter(|f| f.provider == p.name)
            .ok_or_else(|| {
                Error::invalid(
                    "state",
                    format!(
                        "this sign-in has expired or was started elsewhere; start again at /api/v1/users/signin/{}",
                        p.name
                    ),
                )
            })?;
        let state = callback.state.ok_or_else(|| Error::invalid("state", "the callback has no state"))?;
        if state != flow.state {
            return Err(Error::invalid("state", "the state does not match this browser's sign-in; start again"));
        }
        let code = callback
            .code
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::invalid("code", "the callback has no code"))?;
        let access_token = client::exchange(&self.http, p, &code, &flow.verifier).await?;
        let identity = client::userinfo(&self.http, p, &access_token).await?;
        let user = account::find_or_create(db, p, &identity).await?;
        Ok(Finished { user, return_to: flow.return_to })
    }
}
