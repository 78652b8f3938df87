//! `schedulers`: schedulers that registered with the manager.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedulers")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub cluster_id: i64,
    pub hostname: String,
    pub ip: String,
    pub port: i32,
    pub idc: String,
    pub location: String,
    /// `active` while its keepalive stream is open and fresh, else `inactive`.
    pub state: HostState,
    pub version: String,
    pub last_keep_alive_at: Option<DateTime>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub features: Json,
}

/// Whether a scheduler, seed peer or peer keeps alive, stored as `active` or `inactive` in the
/// `state` column of all three tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum HostState {
    /// Its keepalive is fresh.
    #[sea_orm(string_value = "active")]
    Active,
    /// It never kept alive, or stopped.
    #[sea_orm(string_value = "inactive")]
    Inactive,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
