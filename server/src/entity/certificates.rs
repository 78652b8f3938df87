//! `certificates`: what the manager's CA issued to schedulers and dfdaemons, and which of those
//! an operator revoked.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "certificates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub cluster_id: i64,
    /// The certificate's serial number, lowercase hex.
    pub serial: String,
    pub host_id: String,
    /// `scheduler`, `seed-peer` or `peer`, as the certificate names it.
    pub component: String,
    /// What the holder named at enrolment (empty for a renewal, which names nothing new).
    pub hostname: String,
    pub ip: String,
    pub issued_at: DateTime,
    pub not_after: DateTime,
    pub revoked_at: Option<DateTime>,
    /// The user who revoked it; `None` if not revoked or that user is gone.
    pub revoked_by: Option<i64>,
    pub reason: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
