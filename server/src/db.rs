//! Connecting to the database, applying migrations, and the first-start bootstrap.

use migrations::{Migrator, MigratorTrait};
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, Database, DatabaseConnection, EntityTrait, PaginatorTrait,
    QueryFilter, Set, TransactionTrait,
};

use crate::{
    Error,
    config::DatabaseConfig,
    entity::{
        clusters,
        members::{self, MemberRole},
        tenants,
        users::{self, UserState},
    },
    password,
};

/// Opens the pool and brings the schema up to date.
pub async fn connect(config: &DatabaseConfig) -> Result<DatabaseConnection, Error> {
    let mut opts = ConnectOptions::new(config.url.clone());
    opts.max_connections(config.max_connections)
        .connect_timeout(Duration::from_secs(config.connect_timeout_secs))
        .acquire_timeout(Duration::from_secs(config.connect_timeout_secs))
        .sqlx_logging(false);
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
        state: Set(UserState::Enabled),
        platform_role: Set("root".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(outcome)
}

/// On a fresh database, creates tenant `default` (with `root` as its admin) and, in it, cluster
/// `default`, which serves every peer no other cluster's scopes match. Later starts change
/// nothing, even if an operator has since renamed or removed them.
pub async fn ensure_defaults(db: &DatabaseConnection) -> Result<(), Error> {
    if tenants::Entity::find().count(db).await? > 0 {
        return Ok(());
    }
    let Some(root) = users::Entity::find().filter(users::Column::Name.eq("root")).one(db).await? else {
        return Ok(());
    };
    let now = chrono::Utc::now().naive_utc();
    let txn = db.begin().await?;
    let tenant = tenants::ActiveModel {
        name: Set("default".into()),
        bio: Set("Created on first start".into()),
        is_del: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await;
    // Another replica starting at the same moment may have won the race; that is fine.
    let tenant = match tenant {
        Ok(t) => t,
        Err(e) => {
            return match Error::from(e) {
                Error::Conflict(_) => Ok(()),
                other => Err(other),
            };
        }
    };
    members::ActiveModel {
        tenant_id: Set(tenant.id),
        user_id: Set(root.id),
        role: Set(MemberRole::Admin),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    clusters::ActiveModel {
        tenant_id: Set(tenant.id),
        name: Set("default".into()),
        bio: Set("Serves peers that no other cluster's scopes match".into()),
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
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(())
}
