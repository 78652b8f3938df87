//! Which local user a provider account signs in as.
//!
//! A provider account is linked to a user only when the manager created that user for it, on
//! its first sign-in. A name that already belongs to someone else (a password user, or another
//! provider's) is refused, never taken over: owning `alice` at some provider proves nothing
//! about the manager's `alice`.

use chrono::Utc;
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, TransactionTrait};

use super::client::Identity;
use crate::{
    Error,
    config::OAuthProviderConfig,
    entity::{
        user_identities,
        users::{self, UserState},
    },
    password,
};

/// The user linked to `identity` at `provider`, created on first sign-in when allowed.
pub async fn find_or_create(
    db: &DatabaseConnection,
    provider: &OAuthProviderConfig,
    identity: &Identity,
) -> Result<users::Model, Error> {
    let link = user_identities::Entity::find()
        .filter(user_identities::Column::Provider.eq(provider.name.as_str()))
        .filter(user_identities::Column::Subject.eq(identity.subject.as_str()))
        .one(db)
        .await?;
    let user = match link {
        Some(link) => users::Entity::find_by_id(link.user_id)
            .one(db)
            .await?
            .ok_or_else(|| Error::Internal("a user identity points at no user".into()))?,
        None => create(db, provider, identity).await?,
    };
    if user.state != UserState::Enabled {
        return Err(Error::Forbidden("this user is disabled; ask a platform administrator".into()));
    }
    Ok(user)
}

async fn create(
    db: &DatabaseConnection,
    provider: &OAuthProviderConfig,
    identity: &Identity,
) -> Result<users::Model, Error> {
    if !provider.allow_signup {
        return Err(Error::Forbidden(format!(
            "no user is linked to this {} account, and {} does not create users; ask a platform administrator",
            provider.name, provider.name
        )));
    }
    let name = identity.names.iter().find(|n| valid_user_name(n)).ok_or_else(|| {
        Error::Forbidden(format!(
            "the {} account has no name usable here (1 to 64 letters, digits, '.', '_' or '-')",
            provider.name
        ))
    })?;
    if users::Entity::find().filter(users::Column::Name.eq(name.as_str())).one(db).await?.is_some() {
        return Err(Error::Conflict(format!(
            "a user named {name:?} already exists and is not linked to this {} account; \
             sign in with its password, or ask a platform administrator",
            provider.name
        )));
    }
    // Nobody knows this password: the user signs in through the provider only.
    let unusable = tokio::task::spawn_blocking(|| password::hash(&password::generate()))
        .await
        .map_err(|e| Error::Internal(e.to_string()))??;
    let now = Utc::now();
    let txn = db.begin().await?;
    let user = users::ActiveModel {
        name: Set(name.clone()),
        email: Set(identity.email.clone().filter(|e| e.len() <= 256)),
        encrypted_password: Set(unusable),
        state: Set(UserState::Enabled),
        platform_role: Set(String::new()),
        created_at: Set(now.fixed_offset()),
        updated_at: Set(now.fixed_offset()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    user_identities::ActiveModel {
        provider: Set(provider.name.clone()),
        subject: Set(identity.subject.clone()),
        user_id: Set(user.id),
        created_at: Set(now.naive_utc()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    tracing::info!(user_id = user.id, provider = %provider.name, "created a user on its first OAuth sign-in");
    Ok(user)
}

/// The rule `POST /users/signup` applies to names.
fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}
