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
            Err(s) if s.code() == tonic::Code::Unavailable && tokio::time::Instant::now() + backoff < give_up => {
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
