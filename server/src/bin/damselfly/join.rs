//! Join tokens for the local cluster's own components.
//!
//! The manager runs mutual TLS by default and is the cluster's CA (`<data dir>/manager/ca`). A
//! scheduler or dfdaemon without a kept certificate needs a join token to enrol; the launcher
//! signs in as root and asks for a single-use one per component, handed over in the component's
//! environment (never on its command line). Components that enrolled on an earlier start keep
//! their certificates in their `tls` directories and need none.

use std::path::Path;

use anyhow::Context as _;
use serde_json::{Value, json};

/// Makes join tokens, signing in once on first need.
pub struct Joiner<'a> {
    client: &'a reqwest::Client,
    base: String,
    password: Option<String>,
    session: Option<String>,
}

impl<'a> Joiner<'a> {
    /// For the manager at `base` (its REST base URL); `password` is root's, if known.
    pub fn new(client: &'a reqwest::Client, base: String, password: Option<String>) -> Self {
        Self { client, base, password, session: None }
    }

    /// The environment a component with credentials in `tls_dir` needs: a fresh single-use token
    /// for `role` in cluster 1 when it has no certificate yet, else nothing.
    pub async fn env_for(
        &mut self,
        tls_dir: &Path,
        role: &str,
        name: &str,
    ) -> anyhow::Result<Vec<(&'static str, String)>> {
        if tls_dir.join("cert.pem").exists() {
            return Ok(Vec::new());
        }
        let token = self.token(role, name).await?;
        Ok(vec![("DAMSELFLY_JOIN_TOKEN", token)])
    }

    async fn token(&mut self, role: &str, name: &str) -> anyhow::Result<String> {
        if self.session.is_none() {
            let password = self.password.clone().context(
                "a component needs a join token and root's password is not known to this start: \
                 pass --root-password (or DAMSELFLY_ROOT_PASSWORD)",
            )?;
            let answer: Value = self
                .client
                .post(format!("{}/api/v1/users/signin", self.base))
                .json(&json!({"name": "root", "password": password}))
                .send()
                .await?
                .error_for_status()
                .context("signing in as root to make join tokens")?
                .json()
                .await?;
            self.session = answer["token"].as_str().map(str::to_owned);
        }
        let session = self.session.as_deref().context("the sign-in answer had no token")?;
        let answer: Value = self
            .client
            .post(format!("{}/api/v1/clusters/1/join-tokens", self.base))
            .bearer_auth(session)
            .json(&json!({"role": role, "name": format!("damselfly up: {name}"), "max_uses": 1}))
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("making a join token for {name}"))?
            .json()
            .await?;
        answer["token"].as_str().map(str::to_owned).context("the join token answer had no token")
    }
}
