//! The manager as the cluster's certificate authority.
//!
//! On start it loads the operator's CA (`[tls] ca_cert`/`ca_key`) or the generated one the
//! database keeps for every replica ([`stored`], copied to `<data_dir>/ca`), making it on the
//! first start, and issues itself a certificate naming the manager. Its gRPC listener asks clients for certificates without requiring one, since
//! enrolment comes before a component has any; each RPC then checks its
//! [`Caller`](common::tls::Caller). Its own certificate is also what it shows schedulers when it
//! calls them (task look-ups and deletions).

use std::{net::IpAddr, sync::Arc, time::Duration};

use common::{
    ids::HostId,
    tls::{
        CertificateAuthority, ClientAuth, Component, Credentials, Expect, Identity, Mode,
        ca::{AltNames, fingerprint},
    },
};

use sea_orm::DatabaseConnection;

use crate::{Error, config::ManagerConfig};

mod stored;

/// The manager's own certificate lasts this long; it is made again at every start.
const OWN_VALIDITY: Duration = Duration::from_secs(365 * 86_400);

/// The CA, the manager's own credentials, and how long enrolled certificates last.
#[derive(Debug)]
pub struct Pki {
    ca: CertificateAuthority,
    own: Credentials,
    validity: Duration,
    /// TLS for calling each cluster's schedulers, made once per cluster.
    scheduler_clients: std::sync::Mutex<std::collections::HashMap<i64, Arc<common::tls::ClientConfig>>>,
}

impl Pki {
    /// The manager's CA per `[tls]`; `None` in plaintext mode (logged loudly).
    pub async fn open(
        config: &ManagerConfig,
        db: &DatabaseConnection,
        hostname: &str,
    ) -> Result<Option<Arc<Self>>, Error> {
        if config.tls.mode == Mode::Plaintext {
            tracing::warn!(
                "TLS IS OFF ([tls] mode = \"plaintext\"): any client may register schedulers and seed peers and call every gRPC method; use only for debugging"
            );
            return Ok(None);
        }
        let tls_error = |e: common::tls::Error| Error::Config(format!("tls: {e}"));
        let ca = if config.tls.ca_cert.as_os_str().is_empty() {
            stored::shared_ca(db, &config.data_dir.join("ca")).await?
        } else {
            CertificateAuthority::load(&config.tls.ca_cert, &config.tls.ca_key).map_err(tls_error)?
        };
        let host_id = HostId::parse(hostname).unwrap_or_else(|_| HostId("manager".into()));
        let me = Identity { component: Component::Manager, cluster_id: 0, host_id };
        let names = AltNames { dns: vec![hostname.to_owned(), "localhost".into()], ips: local_ips() };
        let own = ca.issue(&me, &names, OWN_VALIDITY).map_err(tls_error)?;
        tracing::info!(ca_sha256 = %ca.fingerprint(), "gRPC is mutual TLS; the manager is the cluster's CA");
        let validity = Duration::from_secs(config.tls.certificate_validity_days.saturating_mul(86_400));
        Ok(Some(Arc::new(Self { ca, own, validity, scheduler_clients: Default::default() })))
    }

    /// The CA's SHA-256 (hex), which join tokens carry so components can pin it.
    pub fn ca_sha256(&self) -> String {
        fingerprint(self.ca.cert())
    }

    /// The CA certificate (PEM).
    pub fn ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    /// The serials the manager refuses, loaded from the certificate record
    /// ([`crate::service::certificates`]) and refreshed while it runs.
    pub fn revocations(&self) -> &common::tls::Revocations {
        self.own.revocations()
    }

    /// The gRPC server's TLS: the manager's certificate; client certificates asked, not required.
    pub fn server_config(&self) -> Result<Arc<common::tls::ServerConfig>, Error> {
        self.own.server_config(ClientAuth::Optional).map_err(|e| Error::Config(format!("tls: {e}")))
    }

    /// TLS for calling a scheduler of `cluster_id`, as the manager.
    pub fn scheduler_client(&self, cluster_id: i64) -> Result<Arc<common::tls::ClientConfig>, Error> {
        let mut made = self.scheduler_clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(config) = made.get(&cluster_id) {
            return Ok(config.clone());
        }
        let config = self
            .own
            .client_config(Expect::scheduler(Some(cluster_id)))
            .map_err(|e| Error::Internal(format!("tls: {e}")))?;
        made.insert(cluster_id, config.clone());
        Ok(config)
    }

    /// Signs `csr_der` for `identity`, naming `hostname` and `ip` too; PEM, leaf then CA.
    pub fn issue(&self, csr_der: &[u8], identity: &Identity, hostname: &str, ip: IpAddr) -> Result<String, Error> {
        self.sign(csr_der, identity, &AltNames { dns: vec![hostname.to_owned()], ips: vec![ip] })
    }

    /// Signs `csr_der` for `identity` alone (a renewal).
    pub fn issue_for(&self, csr_der: &[u8], identity: &Identity) -> Result<String, Error> {
        self.sign(csr_der, identity, &AltNames::default())
    }

    fn sign(&self, csr_der: &[u8], identity: &Identity, names: &AltNames) -> Result<String, Error> {
        self.ca.issue_for_request(csr_der, identity, names, self.validity).map_err(|e| match e {
            common::tls::Error::Malformed { .. } => Error::invalid("certificate_request", e.to_string()),
            other => Error::Internal(other.to_string()),
        })
    }
}

/// Addresses this machine answers on (its certificate names them, for operators' tools).
fn local_ips() -> Vec<IpAddr> {
    vec![std::net::Ipv4Addr::LOCALHOST.into(), std::net::Ipv6Addr::LOCALHOST.into()]
}
