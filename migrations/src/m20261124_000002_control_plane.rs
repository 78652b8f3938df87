//! The control plane: tenants and who belongs to them, sign-in sessions, clusters and the
//! schedulers, seed peers and peers that register with them, applications, configs, jobs,
//! personal access tokens and the audit log.
//!
//! Conventions, so every table reads the same on SQLite, PostgreSQL and MySQL/MariaDB:
//! - times are `date_time` (UTC by convention): MySQL's `TIMESTAMP` ends in 2038, and a token
//!   may well expire after that;
//! - structured settings are JSON columns, read and written whole;
//! - soft-deleted rows keep their data and set `is_del` to their own id, so a unique index over
//!   `(…, name, is_del)` lets a deleted name be reused while two live rows can never share it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Name,
    PlatformRole,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    Bio,
    IsDel,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Members {
    Table,
    Id,
    TenantId,
    UserId,
    Role,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum ManagerSecrets {
    Table,
    Name,
    Value,
}

#[derive(DeriveIden)]
enum Clusters {
    Table,
    Id,
    TenantId,
    Name,
    Bio,
    Scopes,
    SchedulerClusterConfig,
    SeedPeerClusterConfig,
    PeerClusterConfig,
    IsDefault,
    IsDel,
    CreatedAt,
    UpdatedAt,
}

/// Schedulers, seed peers and peers share a shape: one row per (cluster, hostname, ip).
#[derive(DeriveIden)]
enum Hosts {
    Id,
    ClusterId,
    Hostname,
    Ip,
    Port,
    Idc,
    Location,
    State,
    Version,
    LastKeepAliveAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone)]
enum Schedulers {
    Table,
    Features,
}

#[derive(DeriveIden, Clone)]
enum SeedPeers {
    Table,
    Type,
    DownloadPort,
}

#[derive(DeriveIden, Clone)]
enum Peers {
    Table,
    Type,
    DownloadPort,
    Os,
    Platform,
}

#[derive(DeriveIden)]
enum Applications {
    Table,
    Id,
    TenantId,
    Name,
    Url,
    Bio,
    Priority,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Configs {
    Table,
    Id,
    Name,
    Value,
    Bio,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    TenantId,
    UserId,
    Type,
    State,
    Args,
    Result,
    Bio,
    ClusterIds,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum PersonalAccessTokens {
    Table,
    Id,
    TenantId,
    UserId,
    Name,
    Bio,
    TokenHash,
    TokenPrefix,
    Scopes,
    State,
    ExpiredAt,
    LastUsedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Audits {
    Table,
    Id,
    TenantId,
    ActorType,
    ActorId,
    ActorName,
    Event,
    Operation,
    Path,
    StatusCode,
    State,
    CreatedAt,
}

fn id<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().auto_increment().primary_key().to_owned()
}

fn now<T: IntoIden>(col: T) -> ColumnDef {
    ColumnDef::new(col).date_time().not_null().default(Expr::current_timestamp()).to_owned()
}

fn fk(
    from_table: impl IntoIden + 'static,
    from_col: impl IntoIden + 'static,
    to_table: impl IntoIden + 'static,
    to_col: impl IntoIden + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from_table, from_col).to(to_table, to_col).on_delete(ForeignKeyAction::Cascade).to_owned()
}

/// The columns schedulers, seed peers and peers have in common.
fn host_table(table: impl IntoIden + Clone + 'static) -> TableCreateStatement {
    Table::create()
        .table(table.clone())
        .if_not_exists()
        .col(id(Hosts::Id))
        .col(ColumnDef::new(Hosts::ClusterId).big_integer().not_null())
        .col(ColumnDef::new(Hosts::Hostname).string_len(256).not_null())
        .col(ColumnDef::new(Hosts::Ip).string_len(64).not_null())
        .col(ColumnDef::new(Hosts::Port).integer().not_null())
        .col(ColumnDef::new(Hosts::Idc).string_len(1024).not_null().default(""))
        .col(ColumnDef::new(Hosts::Location).string_len(1024).not_null().default(""))
        .col(ColumnDef::new(Hosts::State).string_len(32).not_null().default("inactive"))
        .col(ColumnDef::new(Hosts::Version).string_len(64).not_null().default(""))
        .col(ColumnDef::new(Hosts::LastKeepAliveAt).date_time().null())
        .col(now(Hosts::CreatedAt))
        .col(now(Hosts::UpdatedAt))
        .foreign_key(&mut fk(table, Hosts::ClusterId, Clusters::Table, Clusters::Id))
        .to_owned()
}

fn unique_host_index(name: &str, table: impl IntoIden + 'static) -> IndexCreateStatement {
    Index::create()
        .name(name)
        .table(table)
        .col(Hosts::ClusterId)
        .col(Hosts::Hostname)
        .col(Hosts::Ip)
        .unique()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // `root` for platform administrators; empty for everyone else, whose rights come from
        // their tenant memberships.
        m.alter_table(
            Table::alter()
                .table(Users::Table)
                .add_column(ColumnDef::new(Users::PlatformRole).string_len(32).not_null().default(""))
                .to_owned(),
        )
        .await?;
        // The bootstrap user is the platform administrator.
        m.exec_stmt(
            Query::update()
                .table(Users::Table)
                .value(Users::PlatformRole, "root")
                .and_where(Expr::col(Users::Name).eq("root"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Tenants::Table)
                .if_not_exists()
                .col(id(Tenants::Id))
                .col(ColumnDef::new(Tenants::Name).string_len(256).not_null())
                .col(ColumnDef::new(Tenants::Bio).string_len(1024).not_null().default(""))
                .col(ColumnDef::new(Tenants::IsDel).big_integer().not_null().default(0))
                .col(now(Tenants::CreatedAt))
                .col(now(Tenants::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uk_tenants_name")
                .table(Tenants::Table)
                .col(Tenants::Name)
                .col(Tenants::IsDel)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Members::Table)
                .if_not_exists()
                .col(id(Members::Id))
                .col(ColumnDef::new(Members::TenantId).big_integer().not_null())
                .col(ColumnDef::new(Members::UserId).big_integer().not_null())
                .col(ColumnDef::new(Members::Role).string_len(32).not_null())
                .col(now(Members::CreatedAt))
                .foreign_key(&mut fk(Members::Table, Members::TenantId, Tenants::Table, Tenants::Id))
                .foreign_key(&mut fk(Members::Table, Members::UserId, Users::Table, Users::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uk_members")
                .table(Members::Table)
                .col(Members::TenantId)
                .col(Members::UserId)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Sessions::Table)
                .if_not_exists()
                .col(ColumnDef::new(Sessions::Id).string_len(64).not_null().primary_key())
                .col(ColumnDef::new(Sessions::UserId).big_integer().not_null())
                .col(now(Sessions::CreatedAt))
                .col(ColumnDef::new(Sessions::ExpiresAt).date_time().not_null())
                .col(ColumnDef::new(Sessions::RevokedAt).date_time().null())
                .foreign_key(&mut fk(Sessions::Table, Sessions::UserId, Users::Table, Users::Id))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ManagerSecrets::Table)
                .if_not_exists()
                .col(ColumnDef::new(ManagerSecrets::Name).string_len(64).not_null().primary_key())
                .col(ColumnDef::new(ManagerSecrets::Value).string_len(512).not_null())
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Clusters::Table)
                .if_not_exists()
                .col(id(Clusters::Id))
                .col(ColumnDef::new(Clusters::TenantId).big_integer().not_null())
                .col(ColumnDef::new(Clusters::Name).string_len(256).not_null())
                .col(ColumnDef::new(Clusters::Bio).string_len(1024).not_null().default(""))
                .col(ColumnDef::new(Clusters::Scopes).json().not_null())
                .col(ColumnDef::new(Clusters::SchedulerClusterConfig).json().not_null())
                .col(ColumnDef::new(Clusters::SeedPeerClusterConfig).json().not_null())
                .col(ColumnDef::new(Clusters::PeerClusterConfig).json().not_null())
                .col(ColumnDef::new(Clusters::IsDefault).boolean().not_null().default(false))
                .col(ColumnDef::new(Clusters::IsDel).big_integer().not_null().default(0))
                .col(now(Clusters::CreatedAt))
                .col(now(Clusters::UpdatedAt))
                .foreign_key(&mut fk(Clusters::Table, Clusters::TenantId, Tenants::Table, Tenants::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uk_clusters_name")
                .table(Clusters::Table)
                .col(Clusters::TenantId)
                .col(Clusters::Name)
                .col(Clusters::IsDel)
                .unique()
                .to_owned(),
        )
        .await?;

        let mut schedulers = host_table(Schedulers::Table);
        schedulers.col(ColumnDef::new(Schedulers::Features).json().not_null());
        m.create_table(schedulers).await?;
        m.create_index(unique_host_index("uk_schedulers", Schedulers::Table)).await?;

        let mut seed_peers = host_table(SeedPeers::Table);
        seed_peers
            .col(ColumnDef::new(SeedPeers::Type).string_len(32).not_null().default("super"))
            .col(ColumnDef::new(SeedPeers::DownloadPort).integer().not_null().default(0));
        m.create_table(seed_peers).await?;
        m.create_index(unique_host_index("uk_seed_peers", SeedPeers::Table)).await?;

        let mut peers = host_table(Peers::Table);
        peers
            .col(ColumnDef::new(Peers::Type).string_len(32).not_null().default("normal"))
            .col(ColumnDef::new(Peers::DownloadPort).integer().not_null().default(0))
            .col(ColumnDef::new(Peers::Os).string_len(64).not_null().default(""))
            .col(ColumnDef::new(Peers::Platform).string_len(64).not_null().default(""));
        m.create_table(peers).await?;
        m.create_index(unique_host_index("uk_peers", Peers::Table)).await?;

        m.create_table(
            Table::create()
                .table(Applications::Table)
                .if_not_exists()
                .col(id(Applications::Id))
                .col(ColumnDef::new(Applications::TenantId).big_integer().not_null())
                .col(ColumnDef::new(Applications::Name).string_len(256).not_null())
                .col(ColumnDef::new(Applications::Url).string_len(1024).not_null().default(""))
                .col(ColumnDef::new(Applications::Bio).string_len(1024).not_null().default(""))
                .col(ColumnDef::new(Applications::Priority).json().not_null())
                .col(now(Applications::CreatedAt))
                .col(now(Applications::UpdatedAt))
                .foreign_key(&mut fk(Applications::Table, Applications::TenantId, Tenants::Table, Tenants::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uk_applications_name")
                .table(Applications::Table)
                .col(Applications::TenantId)
                .col(Applications::Name)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Configs::Table)
                .if_not_exists()
                .col(id(Configs::Id))
                .col(ColumnDef::new(Configs::Name).string_len(256).not_null().unique_key())
                .col(ColumnDef::new(Configs::Value).text().not_null())
                .col(ColumnDef::new(Configs::Bio).string_len(1024).not_null().default(""))
                .col(now(Configs::CreatedAt))
                .col(now(Configs::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Jobs::Table)
                .if_not_exists()
                .col(id(Jobs::Id))
                .col(ColumnDef::new(Jobs::TenantId).big_integer().not_null())
                .col(ColumnDef::new(Jobs::UserId).big_integer().not_null())
                .col(ColumnDef::new(Jobs::Type).string_len(32).not_null())
                .col(ColumnDef::new(Jobs::State).string_len(32).not_null())
                .col(ColumnDef::new(Jobs::Args).json().not_null())
                .col(ColumnDef::new(Jobs::Result).json().null())
                .col(ColumnDef::new(Jobs::Bio).string_len(1024).not_null().default(""))
                .col(ColumnDef::new(Jobs::ClusterIds).json().not_null())
                .col(now(Jobs::CreatedAt))
                .col(now(Jobs::UpdatedAt))
                .foreign_key(&mut fk(Jobs::Table, Jobs::TenantId, Tenants::Table, Tenants::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(Index::create().name("ix_jobs_state").table(Jobs::Table).col(Jobs::State).to_owned()).await?;

        m.create_table(
            Table::create()
                .table(PersonalAccessTokens::Table)
                .if_not_exists()
                .col(id(PersonalAccessTokens::Id))
                .col(ColumnDef::new(PersonalAccessTokens::TenantId).big_integer().not_null())
                .col(ColumnDef::new(PersonalAccessTokens::UserId).big_integer().not_null())
                .col(ColumnDef::new(PersonalAccessTokens::Name).string_len(256).not_null())
                .col(ColumnDef::new(PersonalAccessTokens::Bio).string_len(1024).not_null().default(""))
                .col(ColumnDef::new(PersonalAccessTokens::TokenHash).string_len(128).not_null().unique_key())
                .col(ColumnDef::new(PersonalAccessTokens::TokenPrefix).string_len(32).not_null())
                .col(ColumnDef::new(PersonalAccessTokens::Scopes).json().not_null())
                .col(ColumnDef::new(PersonalAccessTokens::State).string_len(32).not_null().default("active"))
                .col(ColumnDef::new(PersonalAccessTokens::ExpiredAt).date_time().not_null())
                .col(ColumnDef::new(PersonalAccessTokens::LastUsedAt).date_time().null())
                .col(now(PersonalAccessTokens::CreatedAt))
                .col(now(PersonalAccessTokens::UpdatedAt))
                .foreign_key(&mut fk(
                    PersonalAccessTokens::Table,
                    PersonalAccessTokens::TenantId,
                    Tenants::Table,
                    Tenants::Id,
                ))
                .foreign_key(&mut fk(
                    PersonalAccessTokens::Table,
                    PersonalAccessTokens::UserId,
                    Users::Table,
                    Users::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("uk_pat_name")
                .table(PersonalAccessTokens::Table)
                .col(PersonalAccessTokens::UserId)
                .col(PersonalAccessTokens::Name)
                .unique()
                .to_owned(),
        )
        .await?;

        // Audit entries outlive what they describe: no foreign keys.
        m.create_table(
            Table::create()
                .table(Audits::Table)
                .if_not_exists()
                .col(id(Audits::Id))
                .col(ColumnDef::new(Audits::TenantId).big_integer().null())
                .col(ColumnDef::new(Audits::ActorType).string_len(32).not_null())
                .col(ColumnDef::new(Audits::ActorId).big_integer().null())
                .col(ColumnDef::new(Audits::ActorName).string_len(256).not_null())
                .col(ColumnDef::new(Audits::Event).string_len(64).not_null())
                .col(ColumnDef::new(Audits::Operation).string_len(16).not_null())
                .col(ColumnDef::new(Audits::Path).string_len(1024).not_null())
                .col(ColumnDef::new(Audits::StatusCode).integer().not_null())
                .col(ColumnDef::new(Audits::State).string_len(32).not_null())
                .col(now(Audits::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create().name("ix_audits_created").table(Audits::Table).col(Audits::CreatedAt).to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Audits::Table.into_iden(),
            PersonalAccessTokens::Table.into_iden(),
            Jobs::Table.into_iden(),
            Configs::Table.into_iden(),
            Applications::Table.into_iden(),
            Peers::Table.into_iden(),
            SeedPeers::Table.into_iden(),
            Schedulers::Table.into_iden(),
            Clusters::Table.into_iden(),
            ManagerSecrets::Table.into_iden(),
            Sessions::Table.into_iden(),
            Members::Table.into_iden(),
            Tenants::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        m.alter_table(Table::alter().table(Users::Table).drop_column(Users::PlatformRole).to_owned()).await
    }
}
