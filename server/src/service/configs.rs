//! Configs: platform-wide named settings, read and written by platform administrators only. A
//! value is opaque text up to [`MAX_VALUE`] bytes; what reads it decides its meaning.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Ctx, Listed, PageRequest, exists, found, validate};
use crate::{
    Error,
    entity::configs,
    rbac::{Act, Obj},
};

#[derive(Debug, Serialize, ToSchema)]
pub struct Config {
    pub id: i64,
    pub name: String,
    pub value: String,
    pub bio: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<configs::Model> for Config {
    fn from(c: configs::Model) -> Self {
        Self {
            id: c.id,
            name: c.name,
            value: c.value,
            bio: c.bio,
            created_at: c.created_at.and_utc(),
            updated_at: c.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateConfig {
    pub name: String,
    /// Up to 64 KiB.
    pub value: String,
    pub bio: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateConfig {
    pub value: Option<String>,
    pub bio: Option<String>,
}

/// The longest value, in characters.
pub const MAX_VALUE: usize = 64 * 1024;

async fn load(cx: Ctx<'_>, id: i64, act: Act) -> Result<configs::Model, Error> {
    cx.me.check_platform(cx.rbac, Obj::Configs, act)?;
    found(cx.db, configs::Entity::find_by_id(id), "config").await
}

/// Every config, oldest first; the paging is checked after the caller may read configs.
pub async fn list(cx: Ctx<'_>, page: PageRequest) -> Result<Listed<Config>, Error> {
    cx.me.check_platform(cx.rbac, Obj::Configs, Act::Read)?;
    let page = page.validate()?;
    let query = configs::Entity::find().order_by_asc(configs::Column::Id);
    Ok(super::list(cx.db, query, page).await?.map(Config::from))
}

/// Creates a config under a name no other config has.
pub async fn create(cx: Ctx<'_>, body: CreateConfig) -> Result<Config, Error> {
    cx.me.check_platform(cx.rbac, Obj::Configs, Act::Create)?;
    validate::name("name", &body.name)?;
    validate::text("value", &body.value, MAX_VALUE)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    if exists(cx.db, configs::Entity::find().filter(configs::Column::Name.eq(body.name.as_str()))).await? {
        return Err(Error::Conflict(format!("a config named {:?} exists", body.name)));
    }
    let now = Utc::now().naive_utc();
    let config = configs::ActiveModel {
        name: Set(body.name),
        value: Set(body.value),
        bio: Set(bio),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(cx.db)
    .await?;
    Ok(config.into())
}

/// One config.
pub async fn get(cx: Ctx<'_>, id: i64) -> Result<Config, Error> {
    Ok(load(cx, id, Act::Read).await?.into())
}

/// Changes a config's value or description.
pub async fn update(cx: Ctx<'_>, id: i64, body: UpdateConfig) -> Result<Config, Error> {
    let config = load(cx, id, Act::Update).await?;
    let mut active: configs::ActiveModel = config.into();
    if let Some(v) = body.value {
        validate::text("value", &v, MAX_VALUE)?;
        active.value = Set(v);
    }
    if let Some(b) = body.bio {
        validate::text("bio", &b, 1024)?;
        active.bio = Set(b);
    }
    active.updated_at = Set(Utc::now().naive_utc());
    Ok(active.update(cx.db).await?.into())
}

/// Deletes a config.
pub async fn delete(cx: Ctx<'_>, id: i64) -> Result<(), Error> {
    load(cx, id, Act::Delete).await?;
    configs::Entity::delete_by_id(id).exec(cx.db).await?;
    Ok(())
}
