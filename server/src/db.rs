//! Connecting to the database, applying migrations, and the first-start bootstrap.

use migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, Database, DatabaseConnection, EntityTrait, QueryFilter, Set,
};

use crate::{
    Error,
    config::DatabaseConfig,
    entity::{clusters, tenants, users},
    password,
};

/// Opens the pool and brings the schema up to date.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, Error> {
    let mut opts = ConnectOptions::new(config.url.clone());
    opts.max_connections(config.max_connections).sqlx_logging(false);
    let db = Database::connect(opts).await?;
    Migrator::up(&db, None).await?;
    Ok(db)
}

/// What [`ensure_root`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootUser {
    /// The `root` user existed already; its password was left alone.
    Existing,
    /// Created with the password the caller supplied.
    CreatedWithGivenPassword,
    /// Created with this generated password, which is shown once and never stored in clear.
    CreatedWithGeneratedPassword(String),
}

/// Creates the platform `root` user on first start.
pub async fn ensure_root(db: &DatabaseConnection, password: Option<&str>) -> Result<RootUser, Error> {
    let existing = users::Entity::find().filter(users::Column::Name.eq("root")).one(db).await?;
    if existing.is_some() {
        return Ok(RootUser::Existing);
    }
    let (clear, outcome) = match password {
        Some(p) => (p.to_owned(), RootUser::CreatedWithGivenPassword),
        None => {
            let p = password::generate();
            (p.clone(), RootUser::CreatedWithGeneratedPassword(p))
        }
    };
    let now = chrono::Utc::now().fixed_offset();
    users::ActiveModel {
        name: Set("root".into()),
        encrypted_password: Set(password::hash(&clear)?),
        state: Set("enabled".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(outcome)
}

/// Makes sure tenant `default` and its default cluster `default` exist, so schedulers and peers
/// have somewhere to register on a fresh install. Returns the cluster's id.
pub async fn ensure_default_cluster(db: &DatabaseConnection) -> Result<i64, Error> {
    let now = chrono::Utc::now().naive_utc();
    let tenant = match tenants::Entity::find()
        .filter(tenants::Column::Name.eq("default"))
        .filter(tenants::Column::IsDel.eq(0))
        .one(db)
        .await?
    {
        Some(t) => t.id,
        None => {
            tenants::ActiveModel {
                name: Set("default".into()),
                bio: Set(String::new()),
                is_del: Set(0),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .insert(db)
            .await?
            .id
        }
    };
    let existing = clusters::Entity::find()
        .filter(clusters::Column::TenantId.eq(tenant))
        .filter(clusters::Column::Name.eq("default"))
        .filter(clusters::Column::IsDel.eq(0))
        .one(db)
        .await?;
    if let Some(c) = existing {
        return Ok(c.id);
    }
    let cluster = clusters::ActiveModel {
        tenant_id: Set(tenant),
        name: Set("default".into()),
        bio: Set("Created on first start.".into()),
        scopes: Set(serde_json::json!({})),
        scheduler_cluster_config: Set(serde_json::json!({})),
        seed_peer_cluster_config: Set(serde_json::json!({})),
        peer_cluster_config: Set(serde_json::json!({})),
        is_default: Set(true),
        is_del: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(cluster.id)
}
