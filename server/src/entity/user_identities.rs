//! `user_identities`: the provider account (`provider`, `subject`) an OAuth-created user signs in with.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "user_identities")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The `name` of an `[[auth.oauth]]` provider.
    pub provider: String,
    /// The provider's stable id for the account (`sub`, or GitHub's `id`).
    pub subject: String,
    pub user_id: i64,
    pub created_at: DateTime,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
