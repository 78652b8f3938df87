//! Personal access tokens: credentials for machines on `/oapi/v1`, owned by a user inside one
//! tenant and narrowed to scopes. The token is answered once, at creation; the manager keeps
//! only its SHA-256. A user manages its own tokens; tenant admins see and revoke every token of
//! their tenants.

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{Ctx, Listed, Page, exists, owned, tenants::live_tenant, validate};
use crate::{
    Error,
    auth::{Visible, token},
    entity::personal_access_tokens::{self as pats, TokenState},
    rbac::{Act, Obj, Scope},
};

pub use common::api::{CreatedToken, PersonalAccessToken};

impl From<pats::Model> for PersonalAccessToken {
    fn from(t: pats::Model) -> Self {
        Self {
            id: t.id,
            tenant_id: t.tenant_id,
            user_id: t.user_id,
            name: t.name,
            bio: t.bio,
            token_prefix: t.token_prefix,
            scopes: serde_json::from_value(t.scopes).unwrap_or_default(),
            state: t.state.to_value(),
            expired_at: super::timestamp(t.expired_at.and_utc()),
            last_used_at: t.last_used_at.map(|t| super::timestamp(t.and_utc())),
            created_at: super::timestamp(t.created_at.and_utc()),
            updated_at: super::timestamp(t.updated_at.and_utc()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateToken {
    pub tenant_id: Option<i64>,
    pub name: String,
    pub bio: Option<String>,
    /// `job`, `cluster`.
    pub scopes: Vec<Scope>,
    /// In the future, at most ten years away.
    pub expired_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateToken {
    pub bio: Option<String>,
    /// `active` or `inactive`.
    pub state: Option<String>,
    pub expired_at: Option<DateTime<Utc>>,
}

fn check_expiry(at: DateTime<Utc>) -> Result<(), Error> {
    let now = Utc::now();
    if at <= now {
        return Err(Error::invalid("expired_at", "expired_at must be in the future"));
    }
    if at > now + chrono::Duration::days(3653) {
        return Err(Error::invalid("expired_at", "expired_at must be within ten years"));
    }
    Ok(())
}

/// A token the caller may `act` on: its own (any role), or any of the tenant's for admins.
async fn load(cx: Ctx<'_>, id: i64, act: Act) -> Result<pats::Model, Error> {
    let me = cx.me.user_id;
    owned(cx, pats::Entity::find_by_id(id), "token", act, |t| {
        (t.tenant_id, if t.user_id == me { Obj::OwnTokens } else { Obj::Tokens })
    })
    .await
}

/// The caller's tokens, and for tenant admins every token of their tenants, oldest first.
pub async fn list(cx: Ctx<'_>, page: Page) -> Result<Listed<PersonalAccessToken>, Error> {
    let mut query = pats::Entity::find().order_by_asc(pats::Column::Id);
    if let Visible::Tenants(all) = cx.me.visible(cx.rbac, Obj::Tokens)? {
        let own = match cx.me.visible(cx.rbac, Obj::OwnTokens)? {
            Visible::All => vec![],
            Visible::Tenants(t) => t,
        };
        query =
            query.filter(Condition::any().add(pats::Column::TenantId.is_in(all)).add(
                Condition::all().add(pats::Column::TenantId.is_in(own)).add(pats::Column::UserId.eq(cx.me.user_id)),
            ));
    }
    Ok(super::list(cx.db, query, page).await?.map(PersonalAccessToken::from))
}

/// Creates a token for the caller in one tenant; only sign-in sessions mint tokens.
pub async fn create(cx: Ctx<'_>, body: CreateToken) -> Result<CreatedToken, Error> {
    if cx.me.session_id().is_none() {
        return Err(Error::Forbidden("tokens cannot mint tokens".into()));
    }
    let tenant = cx.me.tenant_for_create(cx.rbac, body.tenant_id, Obj::OwnTokens)?;
    live_tenant(cx.db, tenant).await?;
    validate::name("name", &body.name)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    let mut scopes = body.scopes;
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(Error::invalid("scopes", "give at least one scope: job, cluster"));
    }
    check_expiry(body.expired_at)?;
    let taken = pats::Entity::find()
        .filter(pats::Column::UserId.eq(cx.me.user_id))
        .filter(pats::Column::Name.eq(body.name.as_str()));
    if exists(cx.db, taken).await? {
        return Err(Error::Conflict(format!("you have a token named {:?}", body.name)));
    }
    let secret = token::generate();
    let now = Utc::now().naive_utc();
    let row = pats::ActiveModel {
        tenant_id: Set(tenant),
        user_id: Set(cx.me.user_id),
        name: Set(body.name),
        bio: Set(bio),
        token_hash: Set(token::hash(&secret)),
        token_prefix: Set(token::display_prefix(&secret)),
        scopes: Set(serde_json::to_value(&scopes).map_err(|e| Error::Internal(e.to_string()))?),
        state: Set(TokenState::Active),
        expired_at: Set(body.expired_at.naive_utc()),
        last_used_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(cx.db)
    .await?;
    Ok(CreatedToken { meta: row.into(), token: secret })
}

/// One token the caller may read (never the token itself).
pub async fn get(cx: Ctx<'_>, id: i64) -> Result<PersonalAccessToken, Error> {
    Ok(load(cx, id, Act::Read).await?.into())
}

/// Disables or re-enables a token, changes its expiry or description.
pub async fn update(cx: Ctx<'_>, id: i64, body: UpdateToken) -> Result<PersonalAccessToken, Error> {
    let t = load(cx, id, Act::Update).await?;
    let mut active: pats::ActiveModel = t.into();
    if let Some(bio) = body.bio {
        validate::text("bio", &bio, 1024)?;
        active.bio = Set(bio);
    }
    if let Some(s) = body.state {
        let state =
            TokenState::try_from_value(&s).map_err(|_| Error::invalid("state", "state must be active or inactive"))?;
        active.state = Set(state);
    }
    if let Some(at) = body.expired_at {
        check_expiry(at)?;
        active.expired_at = Set(at.naive_utc());
    }
    active.updated_at = Set(Utc::now().naive_utc());
    Ok(active.update(cx.db).await?.into())
}

/// Revokes a token for good; answers the tenant it belonged to.
pub async fn delete(cx: Ctx<'_>, id: i64) -> Result<i64, Error> {
    let t = load(cx, id, Act::Delete).await?;
    pats::Entity::delete_by_id(id).exec(cx.db).await?;
    Ok(t.tenant_id)
}
