//! `manager_secrets.value` as text: the generated cluster CA (certificate and key in PEM) is
//! kept there so every manager replica is the same CA, and it is longer than 512 characters.
//! SQLite does not bound `varchar` and cannot alter a column, so it is left as it is there.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ManagerSecrets {
    Table,
    Value,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DbBackend::Sqlite {
            return Ok(());
        }
        m.alter_table(
            Table::alter()
                .table(ManagerSecrets::Table)
                .modify_column(ColumnDef::new(ManagerSecrets::Value).text().not_null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() == DbBackend::Sqlite {
            return Ok(());
        }
        m.alter_table(
            Table::alter()
                .table(ManagerSecrets::Table)
                .modify_column(ColumnDef::new(ManagerSecrets::Value).string_len(512).not_null())
                .to_owned(),
        )
        .await
    }
}
