//! `clusters`: a scheduler cluster paired with its seed-peer cluster, owned by a tenant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "clusters")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub bio: String,
    pub scopes: Json,
    pub scheduler_cluster_config: Json,
    pub seed_peer_cluster_config: Json,
    pub peer_cluster_config: Json,
    pub is_default: bool,
    pub is_del: i64,
    pub created_at: DateTime,
    pub updated_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
