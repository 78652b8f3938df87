//! `user_identities`: which account at which OAuth2/OIDC provider signs in as which user.
//!
//! A row is written only when the manager itself creates a user on a first OAuth sign-in, so an
//! existing password user can never be taken over by someone who registers the same name at a
//! provider. `(provider, subject)` is unique: one provider account maps to one user.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum UserIdentities {
    Table,
    Id,
    Provider,
    Subject,
    UserId,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(UserIdentities::Table)
                .if_not_exists()
                .col(ColumnDef::new(UserIdentities::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(UserIdentities::Provider).string_len(64).not_null())
                .col(ColumnDef::new(UserIdentities::Subject).string_len(255).not_null())
                .col(ColumnDef::new(UserIdentities::UserId).big_integer().not_null())
                .col(
                    ColumnDef::new(UserIdentities::CreatedAt).date_time().not_null().default(Expr::current_timestamp()),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(UserIdentities::Table, UserIdentities::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uk_user_identities")
                .table(UserIdentities::Table)
                .col(UserIdentities::Provider)
                .col(UserIdentities::Subject)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(UserIdentities::Table).to_owned()).await
    }
}
