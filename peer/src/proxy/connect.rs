//! `CONNECT host:port`: how `HTTPS_PROXY` clients (Docker, skopeo, curl, Go and Python
//! programs) reach HTTPS origins through the proxy.
//!
//! Every CONNECT target is held to the proxy's [`TargetPolicy`](crate::download::TargetPolicy)
//! first, exactly as a plain proxy request is: a refusal is a 403 with the JSON error naming the
//! rule, and nothing is connected to. Then one of two things happens:
//! - **Tunnel** (hosts no `[proxy.connect] intercept` pattern matches, the default for all): the
//!   target's name is resolved once by the policy, every address checked, and the tunnel
//!   connects to exactly those addresses (a DNS server answering differently on a second
//!   lookup gains nothing); the client gets `200` only once the upstream is connected, then bytes
//!   flow untouched both ways: the client sees the origin's own certificate.
//! - **Interception** (matching hosts): the client gets `200`, its TLS ends here with a leaf
//!   certificate for the CONNECT host (not the SNI it sends: the host checked is the host named)
//!   signed by the proxy's CA ([`leaves`]), and each request inside is answered by the proxy's
//!   own path as `https://host:port/<path>`: a blob GET through P2P and the cache, anything else
//!   forwarded by the guarded client, which checks the addresses it connects to again and
//!   verifies the upstream's certificate ([`roots`]: built-in, the system's, `upstream_ca_certs`;
//!   never skipped). HTTP/2 or HTTP/1.1, as ALPN settles.
//!
//! Bounds, so a client cannot hold the proxy: at most `max_connections` tunnels and intercepted
//! connections at once (a CONNECT beyond is a 503), a TLS handshake deadline, a connect
//! deadline for tunnels, and an idle timeout ([`idle`]): a tunnel with no byte either way, or an
//! intercepted connection with no byte and no request being answered, is closed; an HTTP/1.1
//! request head inside an interception must arrive within 30 s. Open connections end when the
//! dfdaemon stops.
//!
//! This module does not decide what is fetched or cached: intercepted requests go through the
//! same `fetch` as plain proxy requests.

mod idle;
mod leaves;
mod roots;

use std::{convert::Infallible, path::Path, sync::Arc, time::Duration};

use axum::{
    body::Body,
    extract::Request,
    http::{StatusCode, Uri},
    response::Response,
};
use common::tls::CertificateAuthority;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::{net::TcpStream, sync::Semaphore};
use tokio_util::sync::CancellationToken;

pub use self::roots::upstream_roots;
use self::{
    idle::{Activity, Watched},
    leaves::Leaves,
};
use super::{ErrorType, ProxyState, error};
use crate::{
    Error,
    config::ConnectConfig,
    download::{HostPatterns, ResolveError},
    metrics::ConnectMode,
};

/// How long an HTTP/1.1 request head inside an interception may take to arrive.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What the CA generated on first start is named.
const GENERATED_CA_NAME: &str = "Damselfly proxy CA";

/// The CONNECT side of the proxy: rules, the CA's leaves, and the bounds.
#[derive(Debug)]
pub struct Connect {
    /// `None`: nothing is intercepted (and no CA is loaded).
    interceptor: Option<Interceptor>,
    /// One permit per open tunnel or intercepted connection.
    slots: Arc<Semaphore>,
    limits: Limits,
    /// Open connections end with the dfdaemon (they outlive the HTTP connection they came on).
    shutdown: CancellationToken,
}

#[derive(Debug)]
struct Interceptor {
    /// Matched hosts are intercepted; `all` for `*`.
    hosts: HostPatterns,
    all: bool,
    leaves: Leaves,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    handshake: Duration,
    connect: Duration,
    idle: Duration,
}

impl Connect {
    /// From `[proxy.connect]`: the CA (the operator's, or the one in `<data_dir>/proxy-ca`, made
    /// there on first start) is loaded only when some host is intercepted.
    pub fn new(config: &ConnectConfig, data_dir: &Path, shutdown: CancellationToken) -> Result<Self, Error> {
        let all = config.intercept.iter().any(|p| p.trim() == "*");
        let patterns: Vec<String> = config.intercept.iter().filter(|p| p.trim() != "*").cloned().collect();
        let hosts =
            HostPatterns::parse(&patterns).map_err(|e| Error::Config(format!("proxy.connect.intercept: {e}")))?;
        let interceptor = if all || !hosts.is_empty() {
            Some(Interceptor { hosts, all, leaves: Leaves::new(load_ca(config, data_dir)?) })
        } else {
            None
        };
        Ok(Self {
            interceptor,
            slots: Arc::new(Semaphore::new(config.max_connections)),
            limits: Limits {
                handshake: Duration::from_secs(config.handshake_timeout_secs),
                connect: Duration::from_secs(config.connect_timeout_secs),
                idle: Duration::from_secs(config.idle_timeout_secs),
            },
            shutdown,
        })
    }

    fn intercepts(&self, target: &url::Url) -> Option<&Interceptor> {
        self.interceptor.as_ref().filter(|i| i.all || i.hosts.matches(target))
    }
}

/// The operator's CA, or the generated one (logged with its path, for trust stores).
fn load_ca(config: &ConnectConfig, data_dir: &Path) -> Result<CertificateAuthority, Error> {
    if let (Some(cert), Some(key)) = (&config.ca_cert, &config.ca_key) {
        return CertificateAuthority::load(cert, key)
            .map_err(|e| Error::Config(format!("proxy.connect.ca_cert / ca_key: {e}")));
    }
    let dir = data_dir.join("proxy-ca");
    let ca = CertificateAuthority::load_or_generate_named(&dir, GENERATED_CA_NAME)?;
    let cert = dir.join("ca.crt");
    tracing::info!(
        cert = %std::fs::canonicalize(&cert).unwrap_or(cert).display(),
        sha256 = %ca.fingerprint(),
        "HTTPS interception CA: clients of intercepted hosts must trust this certificate"
    );
    Ok(ca)
}

/// Where a CONNECT goes, as `https://host:port/`: the request target must be `host:port`.
fn destination(uri: &Uri) -> Result<url::Url, String> {
    let authority = uri.authority().ok_or("CONNECT needs a host:port target")?;
    if authority.port_u16().is_none() || authority.as_str().contains('@') {
        return Err(format!("CONNECT target {authority:?} is not host:port"));
    }
    let url =
        url::Url::parse(&format!("https://{authority}/")).map_err(|e| format!("CONNECT target {authority:?}: {e}"))?;
    if url.host().is_none() {
        return Err(format!("CONNECT target {authority:?} names no host"));
    }
    Ok(url)
}

/// Answers a CONNECT: 200 and a tunnel or an interception, or the error saying why not.
pub(super) async fn handle(state: &ProxyState, request: Request) -> Response {
    let (mode, response) = answer(state, request).await;
    state.downloader.metrics().connect(mode);
    response
}

async fn answer(state: &ProxyState, mut request: Request) -> (ConnectMode, Response) {
    let refused = |status, kind, message| (ConnectMode::Refused, error(status, kind, message));
    let connect = &state.connect;
    let target = match destination(request.uri()) {
        Ok(t) => t,
        Err(message) => return refused(StatusCode::BAD_REQUEST, ErrorType::Proxy, message),
    };
    let Ok(permit) = connect.slots.clone().try_acquire_owned() else {
        tracing::warn!(target = %target, "CONNECT refused: proxy.connect.max_connections are open");
        let message = "too many open tunnels (proxy.connect.max_connections); try again".into();
        return (ConnectMode::Busy, error(StatusCode::SERVICE_UNAVAILABLE, ErrorType::Proxy, message));
    };
    let upgrade = hyper::upgrade::on(&mut request);
    let (limits, shutdown) = (connect.limits, connect.shutdown.clone());
    let intercepted = connect.intercepts(&target);
    tracing::debug!(%target, intercepted = intercepted.is_some(), "CONNECT");
    let mode = if let Some(interceptor) = intercepted {
        if let Err(refusal) = state.origins.policy().check_target(&target).await {
            tracing::warn!(%target, %refusal, "CONNECT target refused");
            return refused(StatusCode::FORBIDDEN, ErrorType::Proxy, refusal.to_string());
        }
        let tls = match interceptor.leaves.server_config(&target) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(%target, error = %e, "no certificate for an intercepted host");
                return refused(StatusCode::INTERNAL_SERVER_ERROR, ErrorType::Dfdaemon, e.to_string());
            }
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match upgrade.await {
                Ok(io) => intercept(TokioIo::new(io), tls, state, target, limits, shutdown).await,
                Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
            }
        });
        ConnectMode::Intercept
    } else {
        let upstream = match open_tunnel(state, &target, limits.connect).await {
            Ok(s) => s,
            Err(response) => return (ConnectMode::Refused, response),
        };
        tokio::spawn(async move {
            let _permit = permit;
            match upgrade.await {
                Ok(io) => tunnel(TokioIo::new(io), upstream, limits.idle, shutdown).await,
                Err(e) => tracing::debug!(error = %e, "CONNECT upgrade failed"),
            }
        });
        ConnectMode::Tunnel
    };
    (mode, Response::builder().status(StatusCode::OK).body(Body::empty()).unwrap_or_default())
}

/// Connects to the addresses the policy checked for `target`, within `deadline`.
async fn open_tunnel(state: &ProxyState, target: &url::Url, deadline: Duration) -> Result<TcpStream, Response> {
    let addrs = match state.origins.policy().addresses(target).await {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => return Err(error(StatusCode::BAD_GATEWAY, ErrorType::Backend, format!("{target}: no address"))),
        Err(ResolveError::Refused(refusal)) => {
            tracing::warn!(%target, %refusal, "CONNECT target refused");
            return Err(error(StatusCode::FORBIDDEN, ErrorType::Proxy, refusal.to_string()));
        }
        Err(ResolveError::Lookup(e)) => {
            return Err(error(StatusCode::BAD_GATEWAY, ErrorType::Backend, format!("{target}: {e}")));
        }
    };
    match tokio::time::timeout(deadline, TcpStream::connect(&addrs[..])).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(error(StatusCode::BAD_GATEWAY, ErrorType::Backend, format!("{target}: {e}"))),
        Err(_) => Err(error(
            StatusCode::GATEWAY_TIMEOUT,
            ErrorType::Backend,
            format!("{target}: no connection within {deadline:?} (proxy.connect.connect_timeout_secs)"),
        )),
    }
}

/// Moves bytes both ways until either side closes, the tunnel idles, or the dfdaemon stops.
async fn tunnel<C>(client: C, mut upstream: TcpStream, idle: Duration, shutdown: CancellationToken)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let activity = Arc::new(Activity::new());
    // Every byte of a tunnel crosses the client's side, read or written.
    let mut client = Watched::new(client, activity.clone());
    tokio::select! {
        result = tokio::io::copy_bidirectional(&mut client, &mut upstream) => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "tunnel ended");
            }
        }
        () = activity.idle_for(idle) => tracing::debug!("tunnel idle; closed"),
        () = shutdown.cancelled() => {}
    }
}

/// Ends the client's TLS with `tls` and serves its requests for `base` on the proxy's path.
async fn intercept<C>(
    client: C,
    tls: Arc<rustls::ServerConfig>,
    state: ProxyState,
    base: url::Url,
    limits: Limits,
    shutdown: CancellationToken,
) where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let client = Watched::new(client, activity.clone());
    let stream = match tokio::time::timeout(limits.handshake, tokio_rustls::TlsAcceptor::from(tls).accept(client)).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            tracing::info!(target = %base, error = %e, "intercepted TLS handshake failed (does the client trust the proxy CA?)");
            return;
        }
        Err(_) => {
            tracing::info!(target = %base, "intercepted TLS handshake took too long (proxy.connect.handshake_timeout_secs)");
            return;
        }
    };
    let watch = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let (state, base, busy) = (state.clone(), base.clone(), watch.busy());
        async move {
            let response = inner(state, &base, request.map(Body::new)).await;
            drop(busy);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A request head trickled a byte at a time is not traffic worth keeping a slot for.
    builder.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        result = connection => {
            if let Err(e) = result {
                tracing::debug!(error = %e, "intercepted connection ended");
            }
        }
        () = activity.idle_for(limits.idle) => tracing::debug!("intercepted connection idle; closed"),
        () = shutdown.cancelled() => {}
    }
}

/// One request inside an intercepted connection, answered as a proxy request for
/// [`inner_target`].
async fn inner(state: ProxyState, base: &url::Url, mut request: Request) -> Response {
    if request.method() == axum::http::Method::CONNECT {
        return error(StatusCode::METHOD_NOT_ALLOWED, ErrorType::Proxy, "CONNECT inside a tunnel".into());
    }
    match inner_target(base, request.uri()) {
        Ok(absolute) => *request.uri_mut() = absolute,
        Err(message) => return error(StatusCode::BAD_REQUEST, ErrorType::Proxy, message),
    }
    super::fetch(state, request).await
}

/// `https://host:port` of the CONNECT + the request's path and query: whatever the request
/// line (an absolute URI naming another host) or `Host` say, the request stays on the host the
/// CONNECT named and the policy checked.
fn inner_target(base: &url::Url, uri: &Uri) -> Result<Uri, String> {
    let path = uri.path();
    if !path.starts_with('/') {
        return Err(format!("request target {uri} is not a path"));
    }
    let mut target = base.clone();
    target.set_path(path);
    target.set_query(uri.query());
    target.as_str().parse::<Uri>().map_err(|e| format!("request target {uri}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_connect_target_is_host_and_port_and_nothing_else() {
        let ok = |t: &str| destination(&t.parse().unwrap()).unwrap().to_string();
        assert_eq!(ok("registry.example:443"), "https://registry.example/");
        assert_eq!(ok("Registry.Example:5000"), "https://registry.example:5000/");
        assert_eq!(ok("127.0.0.1:8443"), "https://127.0.0.1:8443/");
        assert_eq!(ok("[::1]:443"), "https://[::1]/");
        for bad in ["registry.example", "user@registry.example:443", "/path", "*"] {
            let Ok(uri) = bad.parse::<Uri>() else { continue };
            assert!(destination(&uri).is_err(), "{bad}");
        }
    }

    fn ca_of(connect: &Connect) -> String {
        connect.interceptor.as_ref().unwrap().leaves.ca().fingerprint()
    }

    #[test]
    fn the_generated_ca_is_kept_for_later_starts_and_an_operators_ca_is_used_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let config = ConnectConfig { intercept: vec!["registry.example".into()], ..Default::default() };
        let first = Connect::new(&config, dir.path(), CancellationToken::new()).unwrap();
        let key = dir.path().join("proxy-ca").join("ca.key");
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        let again = Connect::new(&config, dir.path(), CancellationToken::new()).unwrap();
        assert_eq!(ca_of(&first), ca_of(&again), "a restart keeps the CA clients trust");

        // Nothing intercepted: no CA at all.
        let none = tempfile::tempdir().unwrap();
        let tunnels = Connect::new(&ConnectConfig::default(), none.path(), CancellationToken::new()).unwrap();
        assert!(tunnels.interceptor.is_none() && !none.path().join("proxy-ca").exists());

        // The operator's CA, as given; a file that is not there is an error naming the key.
        let (ca, key_pem) = CertificateAuthority::generate("operator CA").unwrap();
        let own = tempfile::tempdir().unwrap();
        std::fs::write(own.path().join("op.crt"), ca.cert_pem()).unwrap();
        std::fs::write(own.path().join("op.key"), key_pem).unwrap();
        let config = ConnectConfig {
            intercept: vec!["*".into()],
            ca_cert: Some(own.path().join("op.crt")),
            ca_key: Some(own.path().join("op.key")),
            ..Default::default()
        };
        let operator = Connect::new(&config, own.path(), CancellationToken::new()).unwrap();
        assert_eq!(ca_of(&operator), ca.fingerprint());
        assert!(!own.path().join("proxy-ca").exists());
        let missing = ConnectConfig { ca_key: Some(own.path().join("gone.key")), ..config };
        let err = Connect::new(&missing, own.path(), CancellationToken::new()).unwrap_err().to_string();
        assert!(err.contains("proxy.connect.ca_cert") && err.contains("gone.key"), "{err}");
    }

    #[test]
    fn a_request_inside_an_interception_stays_on_the_connect_host() {
        let base = destination(&"registry.example:5000".parse().unwrap()).unwrap();
        let inner = |t: &str| inner_target(&base, &t.parse().unwrap()).map(|u| u.to_string());
        assert_eq!(
            inner("/v2/lib/blobs/sha256:ab?x=1").unwrap(),
            "https://registry.example:5000/v2/lib/blobs/sha256:ab?x=1"
        );
        // An absolute URI, or a path that looks like another authority, names no other host.
        assert_eq!(inner("https://169.254.169.254/latest").unwrap(), "https://registry.example:5000/latest");
        assert_eq!(inner("http://other.example:80/a?b").unwrap(), "https://registry.example:5000/a?b");
        assert_eq!(inner("//other.example/a").unwrap(), "https://registry.example:5000//other.example/a");
        assert!(inner("*").is_err());
    }
}

/// A CONNECT's target and the request lines inside an interception come from the client: any of
/// them gives a host:port the policy can check, or a 400, and an inner request never leaves the
/// CONNECT's host and port.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Authority-form targets, near misses, and anything.
    fn connect_target() -> impl Strategy<Value = String> {
        prop_oneof![
            ("[a-zA-Z0-9.-]{0,20}", proptest::option::of(any::<u16>())).prop_map(|(h, p)| match p {
                Some(p) => format!("{h}:{p}"),
                None => h,
            }),
            "\\[[0-9a-f:.]{0,20}\\]:[0-9]{0,6}",
            "[!-~]{0,30}",
            any::<String>(),
        ]
    }

    /// Request targets inside a tunnel: paths, absolute URIs of other hosts, odd forms.
    fn request_target() -> impl Strategy<Value = String> {
        prop_oneof![
            "/[!-~]{0,30}",
            "(http|https)://[a-z0-9.:@\\[\\]-]{0,20}(/[!-~]{0,20})?",
            "(//|/\\.\\./|\\*)[!-~]{0,20}",
            any::<String>(),
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn a_connect_target_is_its_host_and_port_or_refused(target in connect_target()) {
            let Ok(uri) = target.parse::<Uri>() else { return Ok(()) };
            let Ok(url) = destination(&uri) else { return Ok(()) };
            let authority = uri.authority().unwrap();
            prop_assert_eq!(url.port_or_known_default(), authority.port_u16());
            prop_assert_eq!(url.scheme(), "https");
            prop_assert_eq!(url.path(), "/");
            prop_assert!(url.username().is_empty() && url.password().is_none());
            let host = url.host_str().unwrap().to_owned();
            prop_assert!(!host.is_empty());
            prop_assert!(authority.host().eq_ignore_ascii_case(&host) || url.host().is_some_and(|h| !matches!(h, url::Host::Domain(_))),
                "{} from {}", host, target);
        }

        #[test]
        fn an_inner_request_stays_on_the_connect_host(
            connect in "[a-z0-9.-]{1,12}:[0-9]{1,5}",
            target in request_target(),
        ) {
            let Ok(base) = destination(&connect.parse().unwrap()) else { return Ok(()) };
            let Ok(uri) = target.parse::<Uri>() else { return Ok(()) };
            let Ok(inner) = inner_target(&base, &uri) else { return Ok(()) };
            let url = url::Url::parse(&inner.to_string()).unwrap();
            prop_assert_eq!(
                (url.scheme(), url.host_str(), url.port_or_known_default()),
                (base.scheme(), base.host_str(), base.port_or_known_default()),
                "{} from {}", inner, target
            );
        }
    }
}
