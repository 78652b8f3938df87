//! Three additions for the console's operators:
//!
//! - `job_clusters`: which clusters a job runs on, one row per (job, cluster), so jobs can be
//!   listed by cluster with an index instead of searching a JSON array (`jobs.cluster_ids` stays
//!   as the job's own record). Existing jobs are copied in.
//! - `scheduler_samples`: what each scheduler reported in its keepalive, at most once per sample
//!   interval — tasks and peers it holds now, and counters since it started (bytes from the origin
//!   and from peers, finished downloads) — from which the manager draws traffic over time.
//! - `upload_rate` on `peers` and `seed_peers`: bytes per second the host uploaded between its two
//!   latest keepalives, its load as the topology shows it.

use sea_orm_migration::{
    prelude::*,
    sea_orm::{ConnectionTrait, JsonValue},
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    ClusterIds,
}

#[derive(DeriveIden)]
enum Clusters {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Schedulers {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Peers {
    Table,
}

#[derive(DeriveIden)]
enum SeedPeers {
    Table,
}

#[derive(DeriveIden)]
enum Hosts {
    UploadRate,
}

#[derive(DeriveIden)]
enum JobClusters {
    Table,
    JobId,
    ClusterId,
}

#[derive(DeriveIden)]
enum SchedulerSamples {
    Table,
    Id,
    ClusterId,
    SchedulerId,
    At,
    Tasks,
    Peers,
    RunningPeers,
    BackToSourceBytes,
    PeerBytes,
    Succeeded,
    Failed,
}

fn cascade(
    from_table: impl IntoIden + 'static,
    from_col: impl IntoIden + 'static,
    to_table: impl IntoIden + 'static,
    to_col: impl IntoIden + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(from_table, from_col).to(to_table, to_col).on_delete(ForeignKeyAction::Cascade).to_owned()
}

fn counter(col: SchedulerSamples) -> ColumnDef {
    ColumnDef::new(col).big_integer().not_null().default(0).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(JobClusters::Table)
                .if_not_exists()
                .col(ColumnDef::new(JobClusters::JobId).big_integer().not_null())
                .col(ColumnDef::new(JobClusters::ClusterId).big_integer().not_null())
                .primary_key(Index::create().col(JobClusters::JobId).col(JobClusters::ClusterId))
                .foreign_key(&mut cascade(JobClusters::Table, JobClusters::JobId, Jobs::Table, Jobs::Id))
                .foreign_key(&mut cascade(JobClusters::Table, JobClusters::ClusterId, Clusters::Table, Clusters::Id))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_job_clusters_cluster")
                .table(JobClusters::Table)
                .col(JobClusters::ClusterId)
                .col(JobClusters::JobId)
                .to_owned(),
        )
        .await?;
        copy_job_clusters(m).await?;

        m.create_table(
            Table::create()
                .table(SchedulerSamples::Table)
                .if_not_exists()
                .col(ColumnDef::new(SchedulerSamples::Id).big_integer().not_null().auto_increment().primary_key())
                .col(ColumnDef::new(SchedulerSamples::ClusterId).big_integer().not_null())
                .col(ColumnDef::new(SchedulerSamples::SchedulerId).big_integer().not_null())
                .col(ColumnDef::new(SchedulerSamples::At).date_time().not_null())
                .col(counter(SchedulerSamples::Tasks))
                .col(counter(SchedulerSamples::Peers))
                .col(counter(SchedulerSamples::RunningPeers))
                .col(counter(SchedulerSamples::BackToSourceBytes))
                .col(counter(SchedulerSamples::PeerBytes))
                .col(counter(SchedulerSamples::Succeeded))
                .col(counter(SchedulerSamples::Failed))
                .foreign_key(&mut cascade(
                    SchedulerSamples::Table,
                    SchedulerSamples::ClusterId,
                    Clusters::Table,
                    Clusters::Id,
                ))
                .foreign_key(&mut cascade(
                    SchedulerSamples::Table,
                    SchedulerSamples::SchedulerId,
                    Schedulers::Table,
                    Schedulers::Id,
                ))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_scheduler_samples_cluster_at")
                .table(SchedulerSamples::Table)
                .col(SchedulerSamples::ClusterId)
                .col(SchedulerSamples::At)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_scheduler_samples_at")
                .table(SchedulerSamples::Table)
                .col(SchedulerSamples::At)
                .to_owned(),
        )
        .await?;

        for table in [Peers::Table.into_iden(), SeedPeers::Table.into_iden()] {
            m.alter_table(
                Table::alter()
                    .table(table)
                    .add_column(ColumnDef::new(Hosts::UploadRate).big_integer().not_null().default(0))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [Peers::Table.into_iden(), SeedPeers::Table.into_iden()] {
            m.alter_table(Table::alter().table(table).drop_column(Hosts::UploadRate).to_owned()).await?;
        }
        m.drop_table(Table::drop().table(SchedulerSamples::Table).to_owned()).await?;
        m.drop_table(Table::drop().table(JobClusters::Table).to_owned()).await
    }
}

/// One `job_clusters` row per cluster id in each existing job's `cluster_ids` array (ids of
/// clusters that no longer exist are skipped: their rows would break the foreign key).
async fn copy_job_clusters(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    let db = m.get_connection();
    let backend = db.get_database_backend();
    let select = Query::select().columns([Jobs::Id, Jobs::ClusterIds]).from(Jobs::Table).to_owned();
    let clusters = Query::select().column(Clusters::Id).from(Clusters::Table).to_owned();
    let known: std::collections::HashSet<i64> = db
        .query_all(backend.build(&clusters))
        .await?
        .iter()
        .map(|row| row.try_get::<i64>("", "id"))
        .collect::<Result<_, _>>()?;
    let mut pairs = Vec::new();
    for row in db.query_all(backend.build(&select)).await? {
        let job: i64 = row.try_get("", "id")?;
        let ids = match row.try_get::<JsonValue>("", "cluster_ids") {
            Ok(v) => v,
            // MySQL may hand a JSON column back as text.
            Err(_) => serde_from_text(&row.try_get::<String>("", "cluster_ids")?),
        };
        let mut seen = std::collections::HashSet::new();
        for id in ids.as_array().into_iter().flatten().filter_map(JsonValue::as_i64) {
            if known.contains(&id) && seen.insert(id) {
                pairs.push((job, id));
            }
        }
    }
    for chunk in pairs.chunks(500) {
        let mut insert = Query::insert()
            .into_table(JobClusters::Table)
            .columns([JobClusters::JobId, JobClusters::ClusterId])
            .to_owned();
        for &(job, cluster) in chunk {
            insert.values_panic([job.into(), cluster.into()]);
        }
        db.execute(backend.build(&insert)).await?;
    }
    Ok(())
}

/// A JSON array stored as text; anything unreadable counts as no clusters.
fn serde_from_text(text: &str) -> JsonValue {
    serde_json::from_str(text).unwrap_or(JsonValue::Null)
}
