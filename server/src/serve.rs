//! Running the manager: HTTP or HTTPS (API + console, [`crate::https`]) and gRPC on listeners
//! the caller bound.

use std::{net::SocketAddr, sync::Arc, time::Instant};

use axum::{middleware::from_fn_with_state, serve::ListenerExt};

use axum::http::{HeaderName, Request};
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

use common::tls::{TlsIncoming, WebIdentity};

use crate::{
    Error,
    api::{self, ApiState},
    auth::{Keys, OAuth, Sessions},
    config::ManagerConfig,
    console,
    db::{self, RootUser},
    grpc, https,
    metrics::{self, Metrics},
    pki::Pki,
    rbac::Rbac,
    service::job_queue::RedisQueue,
    service::jobs::JobRateLimiter,
    service::scheduler_rpc::Dialer,
    service::shared_limits::SharedLimits,
    service::throttle::SignInThrottle,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The sockets the manager serves on, bound by the caller (port 0 is fine).
#[derive(Debug)]
pub struct Listeners {
    /// REST API, console, `/healthy`.
    pub http: TcpListener,
    /// gRPC for schedulers and peers.
    pub grpc: TcpListener,
}

/// A manager whose database is connected and migrated, ready to serve.
#[derive(Debug)]
pub struct Manager {
    config: ManagerConfig,
    db: DatabaseConnection,
    /// The HTTPS certificate and key, when `[server] tls_cert` is set.
    web: Option<WebIdentity>,
}

impl Manager {
    /// Connects to the database, applies migrations and makes sure the `root` user exists
    /// (with `root_password`, or a generated one that the returned [`RootUser`] carries).
    pub async fn open(config: ManagerConfig, root_password: Option<&str>) -> Result<(Self, RootUser), Error> {
        let web =
            config.server.https().then(|| https::load(&config.server.tls_cert, &config.server.tls_key)).transpose()?;
        if config.database.url.starts_with("sqlite:") {
            std::fs::create_dir_all(&config.data_dir)?;
        }
        let db = db::connect(&config.database).await?;
        let root = db::ensure_root(&db, root_password).await?;
        db::ensure_defaults(&db).await?;
        Ok((Self { config, db, web }, root))
    }

    /// Serves until `shutdown` is cancelled, then finishes in-flight requests and returns.
    pub async fn serve(self, listeners: Listeners, shutdown: CancellationToken) -> Result<(), Error> {
        let http_addr = loopback_reachable(listeners.http.local_addr()?);
        let http_listener = match &self.web {
            Some(web) => HttpListener::Tls(https::HttpsListener::new(listeners.http, web)?),
            None => HttpListener::Plain(listeners.http),
        };
        let metrics = Arc::new(Metrics::default());
        let redis = self.config.redis_url();
        let queue =
            redis.map(|url| RedisQueue::new(url, &self.config.jobs.redis_key)).transpose().map_err(Error::Config)?;
        // Without Redis each manager counts its own limits, which on one machine is all of them.
        let shared_limits = redis
            .map(|url| SharedLimits::new(url, &self.config.redis.key_prefix).map(Arc::new))
            .transpose()
            .map_err(Error::Config)?;
        let keys = Keys::load_or_create(&self.db).await?;
        let pki = Pki::open(&self.config, &self.db, &common::runtime::hostname()).await?;
        // Revoked certificates are refused from the first handshake on, then kept current.
        let revocations = match &pki {
            Some(pki) => {
                crate::service::certificates::refresh(&self.db, pki.revocations()).await?;
                Some(tokio::spawn(crate::service::certificates::keep_fresh(
                    self.db.clone(),
                    pki.revocations().clone(),
                    shutdown.clone(),
                )))
            }
            None => None,
        };
        let dialer = Dialer::new(pki.clone());
        let state = ApiState {
            db: self.db.clone(),
            started: Instant::now(),
            rbac: Rbac::new().await?,
            sessions: Sessions::new(keys.clone(), &self.config.auth),
            oauth: Arc::new(OAuth::new(self.config.auth.oauth.clone(), keys)?),
            allow_signup: self.config.auth.allow_signup,
            metrics: metrics.clone(),
            sign_in_throttle: Arc::new(match &shared_limits {
                Some(shared) => SignInThrottle::default().shared_through(shared.clone()),
                None => SignInThrottle::default(),
            }),
            job_limiter: Arc::new(match &shared_limits {
                Some(shared) => JobRateLimiter::shared(shared.clone()),
                None => JobRateLimiter::default(),
            }),
            job_queue: queue.clone(),
            keepalive_timeout: std::time::Duration::from_secs(self.config.grpc.keepalive_timeout_secs),
            sample_interval: std::time::Duration::from_secs(self.config.grpc.sample_interval_secs),
            pki: pki.clone(),
            dialer: dialer.clone(),
        };
        let (api, _) = api::router(state.clone());
        // The console's server functions call this listener as the visitor ([`crate::https`]).
        let (api_base, loopback) = match &self.web {
            Some(web) => (format!("https://{http_addr}"), https::loopback_client(web)?),
            None => (format!("http://{http_addr}"), reqwest::Client::new()),
        };
        let app = api
            .route_layer(from_fn_with_state(metrics.clone(), metrics::track))
            .merge(console::router(&self.config.console.site_root, api_base, loopback, state, shutdown.clone()))
            .layer(from_fn_with_state(
                // Over HTTPS every cookie is `Secure`, as behind a TLS-terminating proxy.
                crate::browser::Policy { secure_cookies: self.config.server.secure_cookies || self.web.is_some() },
                crate::browser::guard,
            ))
            // Every request gets an `x-request-id` (kept if the client sent one), logged on its
            // span and echoed in the answer, so a user's report can be found in the log.
            .layer(PropagateRequestIdLayer::new(REQUEST_ID))
            .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %req.method(), uri = %redacted(req.uri()), request_id = %id)
            }))
            .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid));

        let (_, health_service) = tonic_health::server::health_reporter();
        let registration = grpc::Registration::new(
            self.db.clone(),
            &self.config.grpc,
            pki.clone(),
            self.config.tls.enrolment_address_check,
            shutdown.clone(),
        );
        let sweeper = tokio::spawn(registration.clone().sweep(metrics.clone()));
        let router =
            tonic::transport::Server::builder().add_service(health_service).add_service(registration.service());
        let stop = shutdown.clone().cancelled_owned();
        let grpc: std::pin::Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> = match &pki {
            Some(pki) => {
                let incoming = TlsIncoming::new(listeners.grpc, pki.server_config()?, pki.revocations().clone());
                Box::pin(router.serve_with_incoming_shutdown(incoming, stop))
            }
            None => Box::pin(router.serve_with_incoming_shutdown(TcpListenerStream::new(listeners.grpc), stop)),
        };
        // The client's address reaches handlers (sign-in is throttled per address).
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let stop = shutdown.clone().cancelled_owned();
        let http: std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>> = match http_listener {
            HttpListener::Tls(listener) => {
                // `tap_io` changes nothing on the connection; it is how axum hands a custom
                // listener's address to `ConnectInfo<SocketAddr>` (sign-in throttles by it).
                let listener = listener.tap_io(|_| {});
                Box::pin(axum::serve(listener, app).with_graceful_shutdown(stop).into_future())
            }
            HttpListener::Plain(listener) => {
                Box::pin(axum::serve(listener, app).with_graceful_shutdown(stop).into_future())
            }
        };

        let runner = tokio::spawn(crate::jobs::run(
            self.db.clone(),
            self.config.jobs.clone(),
            crate::jobs::Reach {
                keepalive: std::time::Duration::from_secs(self.config.grpc.keepalive_timeout_secs),
                dialer,
            },
            queue,
            shutdown.clone(),
        ));
        tracing::info!(%http_addr, https = self.web.is_some(), "manager serving");
        let (http, grpc) = tokio::join!(http, grpc);
        let _ = sweeper.await;
        let _ = runner.await;
        if let Some(revocations) = revocations {
            let _ = revocations.await;
        }
        http?;
        grpc.map_err(|e| Error::Io(std::io::Error::other(e)))?;
        self.db.close().await?;
        Ok(())
    }
}

/// The REST API and console's listener: plain, or HTTPS when given a certificate.
enum HttpListener {
    Plain(TcpListener),
    Tls(https::HttpsListener),
}

/// Query parameters whose values are credentials: never written to the log.
const SECRET_PARAMS: &[&str] = &["access_token", "token", "code", "state", "password", "client_secret"];

/// A request's URI as it may be logged: credentials in its query replaced.
fn redacted(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else { return uri.to_string() };
    let query: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if SECRET_PARAMS.iter().any(|s| key.eq_ignore_ascii_case(s)) => format!("{key}=REDACTED"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{}?{}", uri.path(), query.join("&"))
}

/// The address a local client should use: an unspecified bind address becomes loopback.
fn loopback_reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() { SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port()) } else { addr }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_query_never_reach_the_log() {
        let uri: axum::http::Uri =
            "/api/v1/clusters?page=2&access_token=eyJsecret&Code=abc&state=xyz&per_page=10".parse().unwrap();
        let logged = redacted(&uri);
        assert_eq!(logged, "/api/v1/clusters?page=2&access_token=REDACTED&Code=REDACTED&state=REDACTED&per_page=10");
        for secret in ["eyJsecret", "abc", "xyz"] {
            assert!(!logged.contains(secret), "{logged}");
        }
        assert_eq!(redacted(&"/healthy".parse().unwrap()), "/healthy");
    }
}
