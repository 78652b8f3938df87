//! Enrolment, which schedulers and dfdaemons make alike before they hold a certificate: a join
//! token and a fresh key's request go to the manager, over TLS that trusts only a manager of
//! the CA the token pins.

use std::{net::IpAddr, time::Duration};

use ::common::tls::{self, JoinToken, KeyRequest, verify::PinnedManager};

use crate::manager::v1 as pb;

/// Deadline of one exchange.
const TIMEOUT: Duration = Duration::from_secs(10);

/// How long an unreachable manager is waited for (a component started before it, a manager
/// restarting); then the component stops and says why, for its supervisor to start it again.
const PATIENCE: Duration = Duration::from_secs(120);

/// Asks the manager at `manager_addr` for a certificate for this host; answers the chain and
/// the CA (PEM).
pub async fn enrol(
    manager_addr: &str,
    token: JoinToken,
    request: KeyRequest,
    hostname: &str,
    ip: IpAddr,
) -> Result<(String, String), tls::Error> {
    let config = PinnedManager::new(token.ca_sha256())?.client_config()?;
    let channel = tls::channel(manager_addr, config, TIMEOUT)?;
    let mut client = pb::manager_client::ManagerClient::new(channel);
    let message = pb::EnrollRequest {
        join_token: token.secret().to_owned(),
        certificate_request: request.csr_der.clone(),
        hostname: hostname.to_owned(),
        ip: ip.to_string(),
    };
    let give_up = tokio::time::Instant::now() + PATIENCE;
    let mut backoff = Duration::from_millis(500);
    let answer = loop {
        let mut call = tonic::Request::new(message.clone());
        call.set_timeout(TIMEOUT);
        match client.enroll(call).await {
            Err(s) if unreachable(&s) && tokio::time::Instant::now() + backoff < give_up => {
                tracing::warn!(manager = %manager_addr, error = %s.message(), "the manager is unreachable; enrolling again soon");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(15));
            }
            other => break other,
        }
    };
    let answer = answer
        .map_err(|s| {
            use tonic::Code::*;
            match s.code() {
                Unauthenticated | PermissionDenied | InvalidArgument | NotFound | FailedPrecondition => {
                    tls::Error::Enrolment(format!("the manager at {manager_addr} refused: {}", s.message()))
                }
                // Unreachable, or its certificate is not of the CA the token pins.
                _ => tls::Error::Enrolment(format!(
                    "no TLS connection to a manager of the token's CA at {manager_addr}: {}",
                    std::error::Error::source(&s).map_or_else(|| s.message().to_owned(), |e| format!("{e:?}"))
                )),
            }
        })?
        .into_inner();
    Ok((answer.certificate_chain, answer.ca_certificate))
}

/// Whether the manager was not reached at all (worth waiting for), as opposed to reached and
/// refused, or reached with a certificate the token's CA did not sign (TLS refusals surface as
/// `InvalidData` I/O errors, and waiting would not change them).
fn unreachable(s: &tonic::Status) -> bool {
    if s.code() != tonic::Code::Unavailable {
        return false;
    }
    let mut source = std::error::Error::source(s);
    while let Some(e) = source {
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData) {
            return false;
        }
        source = e.source();
    }
    true
}

/// Renews `current` whenever two thirds of its certificate's life have passed, until
/// `shutdown`: a new key, a certificate for the same identity from the manager at
/// `manager_addr` (asked over mutual TLS with the current one), kept in `dir`, and installed
/// so that live servers and channels present it from their next handshake. Failures are
/// retried with backoff while the current certificate lasts.
pub async fn keep_renewed(
    manager_addr: String,
    current: tls::Credentials,
    dir: std::path::PathBuf,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let channel =
        match current.client_config(tls::Expect::MANAGER).and_then(|c| tls::channel(&manager_addr, c, TIMEOUT)) {
            Ok(channel) => channel,
            Err(e) => return tracing::error!(error = %e, "cannot renew certificates"),
        };
    let mut client = pb::manager_client::ManagerClient::new(channel);
    let mut latest = current.clone();
    let mut backoff = Duration::from_secs(5);
    loop {
        let life = latest.not_after.duration_since(latest.not_before).unwrap_or_default();
        let due = latest.not_before + life.mul_f64(2.0 / 3.0);
        let wait = due.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        match renew_once(&mut client, &current).await {
            Ok(renewed) => {
                if let Err(e) = renewed.store(&dir) {
                    tracing::warn!(error = %e, "the renewed certificate could not be kept; it is used until the next start");
                }
                tracing::info!(identity = %renewed.identity, "certificate renewed");
                latest = renewed;
                backoff = Duration::from_secs(5);
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff, "renewing the certificate failed");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(600));
            }
        }
    }
}

/// One renewal: a new key, the manager's certificate for it, installed into `current`.
async fn renew_once(
    client: &mut pb::manager_client::ManagerClient<tonic::transport::Channel>,
    current: &tls::Credentials,
) -> Result<tls::Credentials, tls::Error> {
    let request = KeyRequest::generate()?;
    let mut call = tonic::Request::new(pb::RenewRequest { certificate_request: request.csr_der.clone() });
    call.set_timeout(TIMEOUT);
    let answer =
        client.renew(call).await.map_err(|s| tls::Error::Enrolment(format!("renewal refused: {}", s.message())))?;
    let answer = answer.into_inner();
    let renewed = tls::Credentials::from_pem(&answer.certificate_chain, request.key_pem(), &answer.ca_certificate)?;
    current.install(&renewed)?;
    Ok(renewed)
}
