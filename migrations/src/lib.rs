//! The manager's schema, as forward-only migrations applied at start.
//!
//! Migrations describe tables with SeaQuery and never import entities: an entity describes the
//! schema of today, a migration the schema of the day it was written. Every migration must run on
//! SQLite, PostgreSQL and MySQL/MariaDB alike.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_users;
mod m20261124_000002_control_plane;
mod m20261124_000003_user_identities;
mod m20261125_000004_job_clusters_and_samples;
mod m20261125_000005_task_records;
mod m20261126_000006_join_tokens;
mod m20261207_000007_job_attempts;
mod m20261207_000008_wider_secrets;
mod m20261208_000009_certificates;

/// Applies the migrations in order.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_users::Migration),
            Box::new(m20261124_000002_control_plane::Migration),
            Box::new(m20261124_000003_user_identities::Migration),
            Box::new(m20261125_000004_job_clusters_and_samples::Migration),
            Box::new(m20261125_000005_task_records::Migration),
            Box::new(m20261126_000006_join_tokens::Migration),
            Box::new(m20261207_000007_job_attempts::Migration),
            Box::new(m20261207_000008_wider_secrets::Migration),
            Box::new(m20261208_000009_certificates::Migration),
        ]
    }
}
