//! Applications: named download sources of a tenant with a priority, optionally per URL pattern,
//! that schedulers use to decide how eagerly peers go to the origin. The priority's shape is
//! checked here on every write.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Ctx, Listed, Page, exists, owned, tenants::live_tenant, validate, visible};
use crate::{
    Error,
    entity::applications,
    rbac::{Act, Obj},
};

/// Download priority, Dragonfly's levels 0 to 6, for the application and per URL pattern.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct Priority {
    /// 0 to 6.
    pub value: u8,
    /// The first pattern matching a URL wins over `value`.
    pub urls: Vec<UrlPriority>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UrlPriority {
    /// Regular expression over the download URL.
    pub url: String,
    /// 0 to 6.
    pub value: u8,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Application {
    pub id: i64,
    pub tenant_id: i64,
    pub name: String,
    pub url: String,
    pub bio: String,
    pub priority: Priority,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<applications::Model> for Application {
    fn from(a: applications::Model) -> Self {
        Self {
            id: a.id,
            tenant_id: a.tenant_id,
            name: a.name,
            url: a.url,
            bio: a.bio,
            priority: serde_json::from_value(a.priority).unwrap_or_default(),
            created_at: a.created_at.and_utc(),
            updated_at: a.updated_at.and_utc(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateApplication {
    pub tenant_id: Option<i64>,
    pub name: String,
    /// Where the application lives (for people; not used to match downloads).
    pub url: Option<String>,
    pub bio: Option<String>,
    pub priority: Option<Priority>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateApplication {
    pub name: Option<String>,
    pub url: Option<String>,
    pub bio: Option<String>,
    pub priority: Option<Priority>,
}

fn check_priority(p: &Priority) -> Result<serde_json::Value, Error> {
    if p.value > 6 {
        return Err(Error::invalid("priority.value", "priority.value must be 0 to 6"));
    }
    if p.urls.len() > 100 {
        return Err(Error::invalid("priority.urls", "priority.urls takes at most 100 entries"));
    }
    for u in &p.urls {
        if u.value > 6 {
            return Err(Error::invalid("priority.urls", "each priority.urls value must be 0 to 6"));
        }
        validate::text("priority.urls", &u.url, 1024)?;
        regex::RegexBuilder::new(&u.url)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| Error::invalid("priority.urls", format!("{:?} is not a regular expression: {e}", u.url)))?;
    }
    serde_json::to_value(p).map_err(|e| Error::Internal(e.to_string()))
}

async fn name_taken(cx: Ctx<'_>, tenant: i64, name: &str, except: i64) -> Result<bool, Error> {
    let query = applications::Entity::find()
        .filter(applications::Column::TenantId.eq(tenant))
        .filter(applications::Column::Name.eq(name))
        .filter(applications::Column::Id.ne(except));
    exists(cx.db, query).await
}

async fn load(cx: Ctx<'_>, id: i64, act: Act) -> Result<applications::Model, Error> {
    owned(cx, applications::Entity::find_by_id(id), "application", act, |a| (a.tenant_id, Obj::Applications)).await
}

/// Applications of the caller's tenants, oldest first.
pub async fn list(cx: Ctx<'_>, page: Page) -> Result<Listed<Application>, Error> {
    let query = applications::Entity::find().order_by_asc(applications::Column::Id);
    let query = visible(cx, query, Obj::Applications, applications::Column::TenantId)?;
    Ok(super::list(cx.db, query, page).await?.map(Application::from))
}

/// Creates an application in the tenant asked for (or the caller's only one).
pub async fn create(cx: Ctx<'_>, body: CreateApplication) -> Result<Application, Error> {
    let tenant = cx.me.tenant_for_create(cx.rbac, body.tenant_id, Obj::Applications)?;
    live_tenant(cx.db, tenant).await?;
    validate::name("name", &body.name)?;
    let url = body.url.unwrap_or_default();
    validate::text("url", &url, 1024)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    let priority = check_priority(&body.priority.unwrap_or_default())?;
    if name_taken(cx, tenant, &body.name, 0).await? {
        return Err(Error::Conflict(format!("the tenant has an application named {:?}", body.name)));
    }
    let now = Utc::now().naive_utc();
    let app = applications::ActiveModel {
        tenant_id: Set(tenant),
        name: Set(body.name),
        url: Set(url),
        bio: Set(bio),
        priority: Set(priority),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(cx.db)
    .await?;
    Ok(app.into())
}

/// One application the caller may read.
pub async fn get(cx: Ctx<'_>, id: i64) -> Result<Application, Error> {
    Ok(load(cx, id, Act::Read).await?.into())
}

/// Changes an application's name, URL, description or priority.
pub async fn update(cx: Ctx<'_>, id: i64, body: UpdateApplication) -> Result<Application, Error> {
    let app = load(cx, id, Act::Update).await?;
    let tenant = app.tenant_id;
    let mut active: applications::ActiveModel = app.into();
    if let Some(name) = body.name {
        validate::name("name", &name)?;
        if name_taken(cx, tenant, &name, id).await? {
            return Err(Error::Conflict(format!("the tenant has an application named {name:?}")));
        }
        active.name = Set(name);
    }
    if let Some(url) = body.url {
        validate::text("url", &url, 1024)?;
        active.url = Set(url);
    }
    if let Some(bio) = body.bio {
        validate::text("bio", &bio, 1024)?;
        active.bio = Set(bio);
    }
    if let Some(p) = body.priority {
        active.priority = Set(check_priority(&p)?);
    }
    active.updated_at = Set(Utc::now().naive_utc());
    Ok(active.update(cx.db).await?.into())
}

/// Deletes an application; answers the tenant it belonged to.
pub async fn delete(cx: Ctx<'_>, id: i64) -> Result<i64, Error> {
    let app = load(cx, id, Act::Delete).await?;
    applications::Entity::delete_by_id(id).exec(cx.db).await?;
    Ok(app.tenant_id)
}
