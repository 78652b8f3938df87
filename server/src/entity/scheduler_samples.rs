//! `scheduler_samples`: a scheduler's keepalive report, kept at most once per sample interval.
//! Gauges (`tasks`, `peers`, `running_peers`) are what it held then; the other columns count up
//! from the scheduler's start, so traffic is the difference between consecutive samples.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scheduler_samples")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub cluster_id: i64,
    pub scheduler_id: i64,
    pub at: DateTime,
    pub tasks: i64,
    pub peers: i64,
    pub running_peers: i64,
    pub back_to_source_bytes: i64,
    pub peer_bytes: i64,
    pub succeeded: i64,
    pub failed: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
