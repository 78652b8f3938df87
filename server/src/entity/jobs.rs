//! `jobs`: work the manager hands to scheduler clusters (preheat, get_task, delete_task…).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: i64,
    pub user_id: i64,
    pub r#type: String,
    pub state: JobState,
    pub args: Json,
    pub result: Option<Json>,
    pub bio: String,
    pub cluster_ids: Json,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    /// How many times a runner has claimed the job; a run's writes name the attempt it claimed.
    pub attempt: i64,
}

/// Where a job is in its run, stored as `PENDING`, `RUNNING`, `SUCCESS` or `FAILURE`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum JobState {
    /// Waiting for a runner to claim it.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// Claimed by a runner.
    #[sea_orm(string_value = "RUNNING")]
    Running,
    /// Done on every cluster.
    #[sea_orm(string_value = "SUCCESS")]
    Success,
    /// Failed on at least one cluster.
    #[sea_orm(string_value = "FAILURE")]
    Failure,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
