//! `certificates`: every certificate the manager's CA issued to a scheduler or dfdaemon
//! (enrolment and renewal), so an operator can see who holds one and revoke them. A revoked row
//! keeps its place (when, by whom, why); rows are dropped a while after the certificate expires,
//! when revoking it no longer matters.

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
enum Certificates {
    Table,
    Id,
    ClusterId,
    Serial,
    HostId,
    Component,
    Hostname,
    Ip,
    IssuedAt,
    NotAfter,
    RevokedAt,
    RevokedBy,
    Reason,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Certificates::Table)
                .if_not_exists()
                .col(ColumnDef::new(Certificates::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(Certificates::ClusterId).big_integer().not_null())
                .col(ColumnDef::new(Certificates::Serial).string_len(40).not_null().unique_key())
                .col(ColumnDef::new(Certificates::HostId).string_len(256).not_null())
                .col(ColumnDef::new(Certificates::Component).string_len(16).not_null())
                .col(ColumnDef::new(Certificates::Hostname).string_len(256).not_null().default(""))
                .col(ColumnDef::new(Certificates::Ip).string_len(64).not_null().default(""))
                .col(ColumnDef::new(Certificates::IssuedAt).date_time().not_null())
                .col(ColumnDef::new(Certificates::NotAfter).date_time().not_null())
                .col(ColumnDef::new(Certificates::RevokedAt).date_time().null())
                .col(ColumnDef::new(Certificates::RevokedBy).big_integer().null())
                .col(ColumnDef::new(Certificates::Reason).string_len(1024).not_null().default(""))
                .foreign_key(
                    ForeignKey::create()
                        .from(Certificates::Table, Certificates::ClusterId)
                        .to(Clusters::Table, Clusters::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Certificates::Table, Certificates::RevokedBy)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_certificates_cluster_host")
                .table(Certificates::Table)
                .col(Certificates::ClusterId)
                .col(Certificates::HostId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Certificates::Table).to_owned()).await
    }
}
