//! `join_tokens`: the secrets schedulers and peers enrol in a cluster with; only a hash of each
//! secret is kept, and a revoked token keeps its row.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "join_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub cluster_id: i64,
    pub role: JoinTokenRole,
    pub name: String,
    pub bio: String,
    /// SHA-256 (hex) of the secret part of the token.
    pub secret_hash: String,
    /// The first characters of the token, shown in lists so people can tell tokens apart.
    pub token_prefix: String,
    pub expires_at: DateTime,
    /// How many times the token was redeemed.
    pub uses: i64,
    /// How many redemptions the token allows; `None` for no limit.
    pub max_uses: Option<i64>,
    pub state: JoinTokenState,
    /// The user who made the token; `None` once that user is gone.
    pub created_by: Option<i64>,
    pub created_at: DateTime,
    pub updated_at: DateTime,
    pub last_used_at: Option<DateTime>,
}

/// What a token enrols, stored as `scheduler`, `seed_peer` or `peer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum JoinTokenRole {
    #[sea_orm(string_value = "scheduler")]
    Scheduler,
    #[sea_orm(string_value = "seed_peer")]
    SeedPeer,
    #[sea_orm(string_value = "peer")]
    Peer,
}

/// Whether a token may still be redeemed, stored as `active` or `revoked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum JoinTokenState {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "revoked")]
    Revoked,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
