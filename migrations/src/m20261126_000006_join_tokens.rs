//! `join_tokens`: the secrets a scheduler, seed peer or peer presents once to enrol in a
//! cluster. Only a SHA-256 of each secret is kept. A revoked token keeps its row (state
//! `revoked`), so who made it, for which role, and how often it was used stay on record.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clusters {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum JoinTokens {
    Table,
    Id,
    ClusterId,
    Role,
    Name,
    Bio,
    SecretHash,
    TokenPrefix,
    ExpiresAt,
    Uses,
    MaxUses,
    State,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    LastUsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(JoinTokens::Table)
                .if_not_exists()
                .col(ColumnDef::new(JoinTokens::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(JoinTokens::ClusterId).big_integer().not_null())
                .col(ColumnDef::new(JoinTokens::Role).string_len(16).not_null())
                .col(ColumnDef::new(JoinTokens::Name).string_len(256).not_null())
                .col(ColumnDef::new(JoinTokens::Bio).string_len(1024).not_null().default(""))
                .col(ColumnDef::new(JoinTokens::SecretHash).string_len(64).not_null().unique_key())
                .col(ColumnDef::new(JoinTokens::TokenPrefix).string_len(32).not_null())
                .col(ColumnDef::new(JoinTokens::ExpiresAt).date_time().not_null())
                .col(ColumnDef::new(JoinTokens::Uses).big_integer().not_null().default(0))
                .col(ColumnDef::new(JoinTokens::MaxUses).big_integer().null())
                .col(ColumnDef::new(JoinTokens::State).string_len(16).not_null().default("active"))
                .col(ColumnDef::new(JoinTokens::CreatedBy).big_integer().null())
                .col(ColumnDef::new(JoinTokens::CreatedAt).date_time().not_null().default(Expr::current_timestamp()))
                .col(ColumnDef::new(JoinTokens::UpdatedAt).date_time().not_null().default(Expr::current_timestamp()))
                .col(ColumnDef::new(JoinTokens::LastUsedAt).date_time().null())
                .foreign_key(
                    ForeignKey::create()
                        .from(JoinTokens::Table, JoinTokens::ClusterId)
                        .to(Clusters::Table, Clusters::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(JoinTokens::Table, JoinTokens::CreatedBy)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_join_tokens_cluster")
                .table(JoinTokens::Table)
                .col(JoinTokens::ClusterId)
                .col(JoinTokens::Id)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(JoinTokens::Table).to_owned()).await
    }
}
