//! Certificates the manager's CA issued to a cluster's schedulers and dfdaemons, as an operator
//! lists and revokes them. The console shows none of them yet, so they are not built for wasm32.

use serde::{Deserialize, Serialize};

use super::Timestamp;

/// Whether a certificate is honoured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CertificateState {
    /// Unexpired and not revoked.
    Valid,
    /// Revoked by an operator: every component of the cluster refuses it within one refresh.
    Revoked,
    /// Past its `not_after`: refused by its validity alone.
    Expired,
}

/// One certificate issued to a scheduler or dfdaemon of a cluster, at enrolment or renewal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Certificate {
    pub id: i64,
    pub cluster_id: i64,
    /// The cluster's tenant.
    pub tenant_id: i64,
    /// The certificate's serial number, lowercase hex.
    pub serial: String,
    /// The host it names (as peers and schedulers list it).
    pub host_id: String,
    /// `scheduler`, `seed-peer` or `peer`.
    pub component: String,
    /// The host name and address given at enrolment; empty for a renewal.
    pub hostname: String,
    pub ip: String,
    pub state: CertificateState,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub issued_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub not_after: Timestamp,
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub revoked_at: Option<Timestamp>,
    /// The user who revoked it.
    pub revoked_by: Option<i64>,
    /// Why, as the revoker wrote it.
    pub reason: String,
}

/// What to revoke: every unexpired certificate of one host, or one certificate by serial (one of
/// the two, not both).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RevokeCertificates {
    /// Revoke every unexpired certificate naming this host.
    #[cfg_attr(feature = "openapi", schema(max_length = 253))]
    pub host_id: Option<String>,
    /// Revoke the certificate with this serial (hex).
    #[cfg_attr(feature = "openapi", schema(max_length = 40))]
    pub serial: Option<String>,
    /// Kept with the record.
    #[cfg_attr(feature = "openapi", schema(max_length = 1024))]
    pub reason: Option<String>,
}

/// What a revocation did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevokedCertificates {
    /// The certificates revoked now (already revoked or expired ones are not counted again).
    pub revoked: Vec<Certificate>,
}
