//! `task_records`: each task's last known graph, per cluster, as its schedulers reported it with
//! their keepalives. Schedulers keep tasks in memory only; this is the task's history after they
//! forget it (a restart, garbage collection), and the list of recent tasks operators pick from.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Clusters {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum TaskRecords {
    Table,
    Id,
    ClusterId,
    TaskId,
    Url,
    ContentLength,
    TotalPieces,
    Peers,
    FinishedPeers,
    State,
    Info,
    CreatedAt,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TaskRecords::Table)
                .if_not_exists()
                .col(ColumnDef::new(TaskRecords::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(TaskRecords::ClusterId).big_integer().not_null())
                .col(ColumnDef::new(TaskRecords::TaskId).string_len(128).not_null())
                .col(ColumnDef::new(TaskRecords::Url).string_len(4096).not_null())
                .col(ColumnDef::new(TaskRecords::ContentLength).big_integer().null())
                .col(ColumnDef::new(TaskRecords::TotalPieces).integer().not_null().default(0))
                .col(ColumnDef::new(TaskRecords::Peers).integer().not_null().default(0))
                .col(ColumnDef::new(TaskRecords::FinishedPeers).integer().not_null().default(0))
                .col(ColumnDef::new(TaskRecords::State).string_len(16).not_null())
                .col(ColumnDef::new(TaskRecords::Info).json().not_null())
                .col(ColumnDef::new(TaskRecords::CreatedAt).date_time().not_null().default(Expr::current_timestamp()))
                .col(ColumnDef::new(TaskRecords::UpdatedAt).date_time().not_null().default(Expr::current_timestamp()))
                .foreign_key(
                    ForeignKey::create()
                        .from(TaskRecords::Table, TaskRecords::ClusterId)
                        .to(Clusters::Table, Clusters::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uk_task_records_cluster_task")
                .table(TaskRecords::Table)
                .col(TaskRecords::ClusterId)
                .col(TaskRecords::TaskId)
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_task_records_cluster_updated")
                .table(TaskRecords::Table)
                .col(TaskRecords::ClusterId)
                .col(TaskRecords::UpdatedAt)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(TaskRecords::Table).to_owned()).await
    }
}
