//! `task_records`: a task's last known graph in a cluster, from its schedulers' keepalives.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "task_records")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub cluster_id: i64,
    pub task_id: String,
    pub url: String,
    pub content_length: Option<i64>,
    pub total_pieces: i32,
    /// How many peers the task had.
    pub peers: i32,
    /// How many of them had the whole content.
    pub finished_peers: i32,
    /// `running` while any peer downloads, then `succeeded` (some peer has it) or `failed`;
    /// `deleted` once a `delete_task` job removed it.
    pub state: String,
    /// The task's graph (`service::tasks::TaskInfo`), with at most [`MAX_PEERS`] peers.
    pub info: Json,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

/// Peers kept in a record's graph.
pub const MAX_PEERS: usize = 1000;

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
