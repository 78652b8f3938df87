//! `seed_peers`: seed peers that registered with the manager.

use sea_orm::entity::prelude::*;

pub use super::schedulers::HostState;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "seed_peers")]
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
    pub r#type: String,
    pub download_port: i32,
    /// Bytes per second uploaded between its two latest keepalives.
    pub upload_rate: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
