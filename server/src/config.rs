//! The manager's configuration: one TOML tree, every key documented with its default.
//!
//! Loading is parse → override → derive → validate. This module never reads the environment;
//! the `manager` binary maps flags and `DAMSELFLY_MANAGER_*` variables onto [`Overrides`].
//!
//! ```toml
//! # Directory for the SQLite database and other state. Default: /var/lib/damselfly/manager
//! data_dir = "/var/lib/damselfly/manager"
//!
//! [server]
//! # REST API, console, /healthy and /metrics. Default: 0.0.0.0:8080
//! http_addr = "0.0.0.0:8080"
//! # gRPC for schedulers and peers. Default: 0.0.0.0:65003
//! grpc_addr = "0.0.0.0:65003"
//! # Browsers reach the manager over HTTPS (through a TLS-terminating proxy): every cookie it sets
//! # is marked Secure. A proxy's "X-Forwarded-Proto: https" does the same per request. Default: false
//! secure_cookies = false
//! # Serve http_addr over HTTPS with this certificate chain (PEM, leaf first) and its key (PEM):
//! # HTTP/2 or HTTP/1.1, every cookie Secure. Both or neither. Default: "" (plain HTTP)
//! tls_cert = ""
//! tls_key = ""
//!
//! [database]
//! # sqlite://, postgres:// or mysql:// URL. Default: sqlite://<data_dir>/manager.db?mode=rwc
//! url = ""
//! # Maximum pooled connections. Default: 16
//! max_connections = 16
//! # Seconds to wait for a connection before failing. Default: 10
//! connect_timeout_secs = 10
//!
//! [console]
//! # Directory holding pkg/console.{js,wasm,css}. Default: <dir of the binary>/../site
//! site_root = ""
//!
//! [auth]
//! # Lifetime of a sign-in token (JWT); refresh before it ends. Default: 86400 (one day)
//! token_ttl_secs = 86400
//! # How long a sign-in session may be refreshed before signing in again. Default: 1209600 (14 days)
//! session_ttl_secs = 1209600
//! # Whether anyone may create an account with POST /api/v1/users/signup; platform
//! # administrators create accounts with POST /api/v1/users either way. Default: false
//! allow_signup = false
//!
//! # OAuth2 / OpenID Connect providers, listed on the sign-in page. Default: none
//! [[auth.oauth]]
//! # URL-safe id: /api/v1/users/signin/<name> starts a sign-in. Required
//! name = "corp"
//! # Shown on the sign-in page. Default: the name
//! display_name = "Corp SSO"
//! # Credentials registered at the provider. Required
//! client_id = "damselfly"
//! client_secret = "..."
//! # OpenID Connect issuer: endpoints left empty are discovered from
//! # <issuer>/.well-known/openid-configuration on the first sign-in. Default: none
//! issuer = ""
//! # The provider's endpoints (http or https). Required unless discovered from the issuer
//! authorize_url = "https://sso.example.com/oauth2/authorize"
//! token_url = "https://sso.example.com/oauth2/token"
//! userinfo_url = "https://sso.example.com/oauth2/userinfo"
//! # The manager's callback as the provider sees it. Required
//! redirect_url = "https://manager.example.com/api/v1/users/signin/corp/callback"
//! # Scopes asked for. Default: ["openid", "profile", "email"]
//! scopes = ["openid", "profile", "email"]
//! # Userinfo claim naming the user; "login", then "sub", are tried after it. Default: preferred_username
//! username_claim = "preferred_username"
//! # Create the user on its first sign-in. Default: true
//! allow_signup = true
//! # client_secret_post or client_secret_basic. Default: client_secret_post
//! token_auth_method = "client_secret_post"
//! # Seconds to wait for the token and userinfo endpoints. Default: 10
//! timeout_secs = 10
//!
//! [jobs]
//! # How often an idle runner looks for pending jobs, in milliseconds. Default: 1000
//! poll_interval_ms = 1000
//! # Deadline for one call to a scheduler, in seconds. Default: 10
//! scheduler_timeout_secs = 10
//! # A job RUNNING this long without a stamp (its runner stamps it every third of this; one that
//! # died does not) is handed back to PENDING and run again by any manager. Default: 120
//! stale_after_secs = 120
//! # Jobs one manager runs at once. Default: 16
//! concurrency = 16
//! # Seconds a preheat may take when its job says 0 (Harbor stops polling at 1801). Default: 1200
//! preheat_timeout_secs = 1200
//! # Deadline of each registry request while resolving an image to preheat. Default: 30
//! registry_timeout_secs = 30
//! # Older spelling of [redis] url, used when that is empty. Default: ""
//! redis_url = ""
//! # The Redis list carrying job ids; managers of one deployment share it. Default: damselfly:jobs
//! redis_key = "damselfly:jobs"
//!
//! [redis]
//! # redis:// URL of a Redis the manager replicas of one deployment share: new jobs travel over
//! # it so an idle runner on any replica starts them at once, and the sign-in and job-creation
//! # limits are counted there for all replicas together. Empty: the database alone, limits per
//! # manager (one machine loses nothing). A Redis that is down only falls back to that. Default: ""
//! url = ""
//! # Prefix of the keys of the shared limits. Default: damselfly
//! key_prefix = "damselfly"
//!
//! [grpc]
//! # A scheduler, seed peer or peer whose keepalive is silent this long is inactive. Default: 30
//! keepalive_timeout_secs = 30
//! # A scheduler's keepalive figures (tasks, peers, traffic) are kept at most this often, for the
//! # console's charts. Default: 60
//! sample_interval_secs = 60
//! # Samples older than this are deleted. Default: 7
//! sample_retention_days = 7
//!
//! [tls]
//! # "mtls": gRPC between the manager, schedulers and dfdaemons over mutual TLS, the manager
//! # being the cluster's CA; components enrol with a join token. "plaintext": no TLS and nobody
//! # authenticated, for debugging only (logged at every start). Default: mtls
//! mode = "mtls"
//! # The CA's certificate and key (PEM files), when an operator brings one; the replicas of one
//! # deployment must share it. Empty: a CA generated on first start and kept in the database for
//! # every replica, copied to <data_dir>/ca. Default: ""
//! ca_cert = ""
//! ca_key = ""
//! # Days a certificate issued at enrolment stays valid. Default: 90
//! certificate_validity_days = 90
//! # A host enrols from the address it names (its certificate's host id comes from that
//! # address), so a join token's holder cannot take another host's identity. Turn off only when
//! # a NAT or load balancer in front of the manager rewrites source addresses. Default: true
//! enrolment_address_check = true
//! ```

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::Error;

mod oauth;

pub use oauth::{OAuthProviderConfig, TokenAuthMethod};

/// The whole manager configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagerConfig {
    /// Directory for the SQLite database and other local state.
    pub data_dir: PathBuf,
    /// Listening addresses.
    pub server: ServerConfig,
    /// Database connection.
    pub database: DatabaseConfig,
    /// Where the console's static files are.
    pub console: ConsoleConfig,
    /// Sign-in tokens and accounts.
    pub auth: AuthConfig,
    /// The job runner.
    pub jobs: JobsConfig,
    /// Registration of schedulers, seed peers and peers.
    pub grpc: GrpcConfig,
    /// Mutual TLS and the cluster's CA.
    pub tls: TlsConfig,
    /// Redis shared by the replicas.
    pub redis: RedisConfig,
}

/// Redis shared by the manager replicas of one deployment.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://` URL; empty for none (the database alone, limits per manager).
    pub url: String,
    /// Prefix of the shared limits' keys.
    pub key_prefix: String,
}

impl ManagerConfig {
    /// The Redis replicas share: `[redis] url`, or its older spelling `[jobs] redis_url`;
    /// `None` without one.
    pub fn redis_url(&self) -> Option<&str> {
        [&self.redis.url, &self.jobs.redis_url].into_iter().find(|u| !u.is_empty()).map(String::as_str)
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self { url: String::new(), key_prefix: "damselfly".into() }
    }
}

/// Mutual TLS and the cluster's CA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// mTLS (default) or plaintext.
    pub mode: common::tls::Mode,
    /// An operator's CA certificate (PEM); empty: generated once and kept in the database.
    pub ca_cert: PathBuf,
    /// Its key (PEM).
    pub ca_key: PathBuf,
    /// Days an enrolled certificate stays valid.
    pub certificate_validity_days: u64,
    /// Whether an enrolling host must connect from the IP address it names.
    pub enrolment_address_check: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: common::tls::Mode::Mtls,
            ca_cert: PathBuf::new(),
            ca_key: PathBuf::new(),
            certificate_validity_days: 90,
            enrolment_address_check: true,
        }
    }
}

/// The job runner.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// How often an idle runner looks for pending jobs, in milliseconds.
    pub poll_interval_ms: u64,
    /// Deadline for one call to a scheduler, in seconds.
    pub scheduler_timeout_secs: u64,
    /// A job `RUNNING` this long without a stamp is handed back to `PENDING` (its runner stamps
    /// it every third of this while it runs).
    pub stale_after_secs: u64,
    /// Jobs one manager runs at once.
    pub concurrency: usize,
    /// Seconds a preheat may take when its job says 0: well inside the 1801 s Harbor polls.
    pub preheat_timeout_secs: u64,
    /// Deadline of each registry request while resolving an image, in seconds.
    pub registry_timeout_secs: u64,
    /// Older spelling of `[redis] url`, taken when that is empty.
    pub redis_url: String,
    /// The Redis list carrying job ids.
    pub redis_key: String,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            poll_interval_ms: 1000,
            scheduler_timeout_secs: 10,
            stale_after_secs: 120,
            concurrency: 16,
            preheat_timeout_secs: 1200,
            registry_timeout_secs: 30,
            redis_url: String::new(),
            redis_key: "damselfly:jobs".into(),
        }
    }
}

/// Registration of schedulers, seed peers and peers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcConfig {
    /// Seconds without a keepalive message after which a component counts as inactive.
    pub keepalive_timeout_secs: u64,
    /// Least seconds between two kept samples of one scheduler's keepalive figures.
    pub sample_interval_secs: u64,
    /// Days samples are kept.
    pub sample_retention_days: u64,
}

impl Default for GrpcConfig {
    fn default() -> Self {
        Self { keepalive_timeout_secs: 30, sample_interval_secs: 60, sample_retention_days: 7 }
    }
}

/// Sign-in tokens and accounts.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// Lifetime of a sign-in token (JWT), in seconds.
    pub token_ttl_secs: u64,
    /// How long a session may be refreshed, in seconds, before signing in again.
    pub session_ttl_secs: u64,
    /// Whether anyone may create an account.
    pub allow_signup: bool,
    /// OAuth2 / OpenID Connect providers (`[[auth.oauth]]`).
    pub oauth: Vec<OAuthProviderConfig>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self { token_ttl_secs: 86_400, session_ttl_secs: 14 * 86_400, allow_signup: false, oauth: Vec::new() }
    }
}

/// Listening addresses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// REST API, console, `/healthy` and `/metrics`.
    pub http_addr: SocketAddr,
    /// gRPC for schedulers and peers.
    pub grpc_addr: SocketAddr,
    /// Browsers reach the manager over HTTPS (a TLS-terminating proxy): cookies are `Secure`.
    pub secure_cookies: bool,
    /// The HTTPS certificate chain (PEM, leaf first); empty: plain HTTP.
    pub tls_cert: PathBuf,
    /// Its private key (PEM).
    pub tls_key: PathBuf,
}

impl ServerConfig {
    /// Whether `http_addr` speaks HTTPS itself.
    pub fn https(&self) -> bool {
        !self.tls_cert.as_os_str().is_empty()
    }
}

/// Database connection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://`, `postgres://` or `mysql://` URL; empty means SQLite in `data_dir`.
    pub url: String,
    /// Maximum pooled connections.
    pub max_connections: u32,
    /// Seconds to wait for a connection before failing.
    pub connect_timeout_secs: u64,
}

/// Where the console's static files are.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Directory holding `pkg/console.{js,wasm,css}`; empty means `<binary dir>/../site`.
    pub site_root: PathBuf,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/damselfly/manager"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            console: ConsoleConfig::default(),
            auth: AuthConfig::default(),
            jobs: JobsConfig::default(),
            grpc: GrpcConfig::default(),
            tls: TlsConfig::default(),
            redis: RedisConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http_addr: ([0, 0, 0, 0], 8080).into(),
            grpc_addr: ([0, 0, 0, 0], 65003).into(),
            secure_cookies: false,
            tls_cert: PathBuf::new(),
            tls_key: PathBuf::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self { url: String::new(), max_connections: 16, connect_timeout_secs: 10 }
    }
}

/// Values given on the command line or in the environment; they win over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub http_addr: Option<SocketAddr>,
    pub grpc_addr: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub site_root: Option<PathBuf>,
}

impl ManagerConfig {
    /// Reads `path` (if any), applies `overrides`, fills derived defaults and validates.
    pub fn load(path: Option<&Path>, overrides: Overrides) -> Result<Self, Error> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
                Self::parse(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))?
            }
            None => Self::default(),
        };
        config.apply(overrides);
        config.derive();
        config.validate()?;
        Ok(config)
    }

    /// Parses TOML; unknown keys are errors.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn apply(&mut self, o: Overrides) {
        if let Some(v) = o.data_dir {
            self.data_dir = v;
        }
        if let Some(v) = o.http_addr {
            self.server.http_addr = v;
        }
        if let Some(v) = o.grpc_addr {
            self.server.grpc_addr = v;
        }
        if let Some(v) = o.database_url {
            self.database.url = v;
        }
        if let Some(v) = o.site_root {
            self.console.site_root = v;
        }
    }

    fn derive(&mut self) {
        if self.database.url.is_empty() {
            self.database.url = format!("sqlite://{}?mode=rwc", self.data_dir.join("manager.db").display());
        }
        if self.console.site_root.as_os_str().is_empty() {
            self.console.site_root = std::env::current_exe()
                .ok()
                .and_then(|exe| Some(exe.parent()?.parent()?.join("site")))
                .unwrap_or_else(|| PathBuf::from("site"));
        }
        oauth::derive(&mut self.auth.oauth);
    }

    fn validate(&self) -> Result<(), Error> {
        let url = &self.database.url;
        if !["sqlite:", "postgres:", "postgresql:", "mysql:", "mariadb:"].iter().any(|scheme| url.starts_with(scheme)) {
            return Err(Error::Config(format!(
                "database.url must start with sqlite:, postgres: or mysql:, got {url:?}"
            )));
        }
        if self.database.max_connections == 0 {
            return Err(Error::Config("database.max_connections must be at least 1".into()));
        }
        if self.auth.token_ttl_secs == 0 || self.auth.token_ttl_secs > self.auth.session_ttl_secs {
            return Err(Error::Config("auth.token_ttl_secs must be between 1 and auth.session_ttl_secs".into()));
        }
        if self.grpc.keepalive_timeout_secs == 0 {
            return Err(Error::Config("grpc.keepalive_timeout_secs must be at least 1".into()));
        }
        if !(1..=86_400).contains(&self.grpc.sample_interval_secs) {
            return Err(Error::Config("grpc.sample_interval_secs must be between 1 and 86400".into()));
        }
        if !(1..=3650).contains(&self.grpc.sample_retention_days) {
            return Err(Error::Config("grpc.sample_retention_days must be between 1 and 3650".into()));
        }
        if !(1..=3650).contains(&self.tls.certificate_validity_days) {
            return Err(Error::Config("tls.certificate_validity_days must be between 1 and 3650".into()));
        }
        if self.tls.ca_cert.as_os_str().is_empty() != self.tls.ca_key.as_os_str().is_empty() {
            return Err(Error::Config("tls.ca_cert and tls.ca_key go together".into()));
        }
        if self.server.tls_cert.as_os_str().is_empty() != self.server.tls_key.as_os_str().is_empty() {
            return Err(Error::Config(
                "server.tls_cert and server.tls_key go together: give both for HTTPS, or neither".into(),
            ));
        }
        if self.server.http_addr == self.server.grpc_addr && self.server.http_addr.port() != 0 {
            return Err(Error::Config("server.http_addr and server.grpc_addr must differ".into()));
        }
        oauth::validate(&self.auth.oauth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected() {
        let err = ManagerConfig::parse("[server]\nhttp_adr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn defaults_derive_sqlite_in_the_data_dir() {
        let c =
            ManagerConfig::load(None, Overrides { data_dir: Some("/tmp/dfly".into()), ..Default::default() }).unwrap();
        assert_eq!(c.database.url, "sqlite:///tmp/dfly/manager.db?mode=rwc");
        assert_eq!(c.server.http_addr.port(), 8080);
        assert_eq!(c.server.grpc_addr.port(), 65003);
    }

    #[test]
    fn overrides_win_over_the_file_and_bad_urls_fail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        std::fs::write(&path, "[database]\nurl = \"postgres://db/x\"\n").unwrap();
        let c = ManagerConfig::load(
            Some(&path),
            Overrides { database_url: Some("mysql://root@db/y".into()), ..Default::default() },
        )
        .unwrap();
        assert_eq!(c.database.url, "mysql://root@db/y");
        let err = ManagerConfig::load(
            Some(&path),
            Overrides { database_url: Some("redis://x".into()), ..Default::default() },
        )
        .unwrap_err();
        assert!(err.to_string().contains("database.url"), "{err}");
    }

    #[test]
    fn oauth_providers_parse_with_defaults() {
        let c = ManagerConfig::parse(
            "[[auth.oauth]]\nname = \"corp\"\nclient_id = \"a\"\nclient_secret = \"b\"\n\
             authorize_url = \"https://i/a\"\ntoken_url = \"https://i/t\"\nuserinfo_url = \"https://i/u\"\n\
             redirect_url = \"https://m/cb\"\n",
        )
        .unwrap();
        let p = &c.auth.oauth[0];
        assert_eq!(p.scopes, ["openid", "profile", "email"]);
        assert_eq!(p.username_claim, "preferred_username");
        assert!(p.allow_signup);
        let err = ManagerConfig::parse("[[auth.oauth]]\nname = \"corp\"\nclient_secrt = \"b\"\n").unwrap_err();
        assert!(err.contains("unknown field"), "{err}");
    }

    #[test]
    fn an_https_certificate_needs_its_key_and_a_key_its_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.toml");
        for (given, missing) in [("tls_cert", "tls_key"), ("tls_key", "tls_cert")] {
            std::fs::write(&path, format!("[server]\n{given} = \"/etc/damselfly/web.pem\"\n")).unwrap();
            let err = ManagerConfig::load(Some(&path), Overrides::default()).unwrap_err().to_string();
            assert!(err.contains("server.tls_cert and server.tls_key go together"), "{given} without {missing}: {err}");
        }
        std::fs::write(&path, "[server]\ntls_cert = \"/c.pem\"\ntls_key = \"/k.pem\"\n").unwrap();
        let c = ManagerConfig::load(Some(&path), Overrides::default()).unwrap();
        assert!(c.server.https());
        assert!(!ManagerConfig::load(None, Overrides::default()).unwrap().server.https());
    }
}
