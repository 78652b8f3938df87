//! Personal access tokens: credentials for machines on `/oapi/v1`, owned by a user inside one
//! tenant and narrowed to scopes. The token is answered once, at creation; the manager keeps
//! only its SHA-256.

use axum::{
    Json,
    extract::{Extension, OriginalUri, State},
    http::StatusCode,
    response::Response,
};
use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, Set};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    ApiState,
    extract::{Body, Path, Query},
    page::{self, PageParams, Paged},
    validate,
};
use crate::service::timestamp;
use crate::{
    Error,
    audit::in_tenant,
    auth::{Principal, Visible, token},
    entity::personal_access_tokens as pats,
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
            state: t.state,
            expired_at: timestamp(t.expired_at.and_utc()),
            last_used_at: t.last_used_at.map(|t| timestamp(t.and_utc())),
            created_at: timestamp(t.created_at.and_utc()),
            updated_at: timestamp(t.updated_at.and_utc()),
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

pub fn routes() -> OpenApiRouter<ApiState> {
    OpenApiRouter::new().routes(routes!(list_tokens, create_token)).routes(routes!(
        get_token,
        update_token,
        delete_token
    ))
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
async fn load(state: &ApiState, me: &Principal, id: i64, act: Act) -> Result<pats::Model, Error> {
    let t = pats::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| Error::not_found("token"))?;
    let obj = if t.user_id == me.user_id { Obj::OwnTokens } else { Obj::Tokens };
    me.check(&state.rbac, t.tenant_id, obj, act, "token")?;
    Ok(t)
}

/// The caller's tokens, and for tenant admins every token of their tenants.
#[utoipa::path(get, path = "/personal-access-tokens", tag = "personal-access-tokens", security(("session" = [])),
    params(PageParams), responses((status = 200, body = [PersonalAccessToken])))]
pub async fn list_tokens(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    OriginalUri(uri): OriginalUri,
    Query(paging): Query<PageParams>,
) -> Result<Paged<PersonalAccessToken>, Error> {
    let page = paging.validate()?;
    let mut query = pats::Entity::find().order_by_asc(pats::Column::Id);
    if let Visible::Tenants(all) = me.visible(&state.rbac, Obj::Tokens)? {
        let own = match me.visible(&state.rbac, Obj::OwnTokens)? {
            Visible::All => vec![],
            Visible::Tenants(t) => t,
        };
        query = query.filter(
            Condition::any()
                .add(pats::Column::TenantId.is_in(all))
                .add(Condition::all().add(pats::Column::TenantId.is_in(own)).add(pats::Column::UserId.eq(me.user_id))),
        );
    }
    Ok(page::fetch(&state.db, query, page, uri).await?.map(PersonalAccessToken::from))
}

/// Create a token for oneself in one tenant; the answer carries the token, shown only now.
#[utoipa::path(post, path = "/personal-access-tokens", tag = "personal-access-tokens", security(("session" = [])),
    request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn create_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Body(body): Body<CreateToken>,
) -> Result<Response, Error> {
    if me.session_id().is_none() {
        return Err(Error::Forbidden("tokens cannot mint tokens".into()));
    }
    let tenant = me.tenant_for_create(&state.rbac, body.tenant_id, Obj::OwnTokens)?;
    crate::service::tenants::live_tenant(&state.db, tenant).await?;
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
        .filter(pats::Column::UserId.eq(me.user_id))
        .filter(pats::Column::Name.eq(body.name.as_str()))
        .count(&state.db)
        .await?;
    if taken > 0 {
        return Err(Error::Conflict(format!("you have a token named {:?}", body.name)));
    }
    let secret = token::generate();
    let now = Utc::now().naive_utc();
    let row = pats::ActiveModel {
        tenant_id: Set(tenant),
        user_id: Set(me.user_id),
        name: Set(body.name),
        bio: Set(bio),
        token_hash: Set(token::hash(&secret)),
        token_prefix: Set(token::display_prefix(&secret)),
        scopes: Set(serde_json::to_value(&scopes).map_err(|e| Error::Internal(e.to_string()))?),
        state: Set("active".into()),
        expired_at: Set(body.expired_at.naive_utc()),
        last_used_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;
    Ok(in_tenant(tenant, (StatusCode::CREATED, Json(CreatedToken { meta: row.into(), token: secret }))))
}

/// One token (never the token itself).
#[utoipa::path(get, path = "/personal-access-tokens/{id}", tag = "personal-access-tokens", security(("session" = [])),
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 200, body = PersonalAccessToken), (status = 404, body = crate::error::ErrorBody)))]
pub async fn get_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Json<PersonalAccessToken>, Error> {
    Ok(Json(load(&state, &me, id, Act::Read).await?.into()))
}

/// Disable or re-enable a token, change its expiry or description.
#[utoipa::path(patch, path = "/personal-access-tokens/{id}", tag = "personal-access-tokens", security(("session" = [])),
    request_body = UpdateToken, params(("id" = i64, Path, description = "Token id")),
    responses((status = 200, body = PersonalAccessToken), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn update_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
    Body(body): Body<UpdateToken>,
) -> Result<Response, Error> {
    let t = load(&state, &me, id, Act::Update).await?;
    let tenant = t.tenant_id;
    let mut active: pats::ActiveModel = t.into();
    if let Some(bio) = body.bio {
        validate::text("bio", &bio, 1024)?;
        active.bio = Set(bio);
    }
    if let Some(s) = body.state {
        if s != "active" && s != "inactive" {
            return Err(Error::invalid("state", "state must be active or inactive"));
        }
        active.state = Set(s);
    }
    if let Some(at) = body.expired_at {
        check_expiry(at)?;
        active.expired_at = Set(at.naive_utc());
    }
    active.updated_at = Set(Utc::now().naive_utc());
    Ok(in_tenant(tenant, Json(PersonalAccessToken::from(active.update(&state.db).await?))))
}

/// Revoke a token for good.
#[utoipa::path(delete, path = "/personal-access-tokens/{id}", tag = "personal-access-tokens", security(("session" = [])),
    params(("id" = i64, Path, description = "Token id")),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
pub async fn delete_token(
    State(state): State<ApiState>,
    Extension(me): Extension<Principal>,
    Path(id): Path<i64>,
) -> Result<Response, Error> {
    let t = load(&state, &me, id, Act::Delete).await?;
    pats::Entity::delete_by_id(id).exec(&state.db).await?;
    Ok(in_tenant(t.tenant_id, StatusCode::NO_CONTENT))
}
