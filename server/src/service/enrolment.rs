//! Enrolment: a join token and a certificate request become a certificate.
//!
//! What the certificate says comes from the token (component, cluster) and from the host the
//! caller names (its id is derived here, as the host will announce itself); the request
//! contributes only its public key. A token that is unknown, revoked, expired or used up is
//! refused with one answer, so probing learns nothing.

use std::net::IpAddr;

use common::{
    ids::HostId,
    tls::{Component, Identity},
};
use sea_orm::DatabaseConnection;

use super::join_tokens::{self, JoinRole};
use crate::{Error, pki::Pki};

/// What a component asks for.
#[derive(Debug)]
pub struct Enrolment {
    pub join_token: String,
    pub csr_der: Vec<u8>,
    pub hostname: String,
    pub ip: IpAddr,
    /// The address the request came from, when it must match `ip`
    /// (`[tls] enrolment_address_check`).
    pub from: Option<IpAddr>,
}

/// What it gets.
#[derive(Debug)]
pub struct Enrolled {
    pub identity: Identity,
    /// PEM: the certificate, then the CA.
    pub chain: String,
    /// PEM: the CA.
    pub ca: String,
}

/// Checks the request, then redeems the token and signs: a request refused for its own sake
/// does not use the token up.
pub async fn enrol(db: &DatabaseConnection, pki: &Pki, e: Enrolment) -> Result<Enrolled, Error> {
    common::tls::ca::parse_request(&e.csr_der).map_err(|err| Error::invalid("certificate_request", err.to_string()))?;
    if let Some(from) = e.from
        && canonical(from) != canonical(e.ip)
    {
        return Err(Error::Forbidden(format!(
            "the enrolment names {} but comes from {from}: a host enrols from the address it names (behind a NAT or a load balancer that rewrites source addresses, set [tls] enrolment_address_check = false on the manager)",
            e.ip
        )));
    }
    // Either id the token's role may give the host must be one.
    let host_id = |seed| {
        let derived = HostId::for_host(&e.hostname, &e.ip.to_string(), seed);
        HostId::parse(&derived.0).map_err(|err| Error::invalid("hostname", err.to_string()))
    };
    let (as_seed, as_other) = (host_id(true)?, host_id(false)?);
    let grant = join_tokens::redeem(db, &e.join_token).await?;
    let component = match grant.role {
        JoinRole::Scheduler => Component::Scheduler,
        JoinRole::SeedPeer => Component::SeedPeer,
        JoinRole::Peer => Component::Peer,
    };
    let host_id = if component == Component::SeedPeer { as_seed } else { as_other };
    let identity = Identity { component, cluster_id: grant.cluster_id, host_id };
    let chain = pki.issue(&e.csr_der, &identity, &e.hostname, e.ip)?;
    super::certificates::record(db, &identity, Some((&e.hostname, e.ip)), &chain).await?;
    tracing::info!(%identity, token_id = grant.token_id, "enrolled");
    Ok(Enrolled { identity, chain, ca: pki.ca_pem().to_owned() })
}

/// `ip` with an IPv4-mapped IPv6 address (a dual-stack listener's view of an IPv4 client) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// A new certificate for what the caller's current certificate names, over the request's key.
/// The caller proved that identity in its handshake (with a certificate not revoked); nothing in
/// the request can change it.
pub async fn renew(db: &DatabaseConnection, pki: &Pki, identity: Identity, csr_der: &[u8]) -> Result<Enrolled, Error> {
    let chain = pki.issue_for(csr_der, &identity)?;
    super::certificates::record(db, &identity, None, &chain).await?;
    tracing::info!(%identity, "renewed");
    Ok(Enrolled { identity, chain, ca: pki.ca_pem().to_owned() })
}
