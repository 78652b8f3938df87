//! Cluster join tokens: the secret a scheduler, seed peer or peer presents once to enrol in a
//! cluster (and be given its certificate). People who may change a cluster make, list and revoke
//! its tokens; enrolment, which comes before there is a principal, only [`redeem`]s one.
//!
//! A token reads `dfj1.<id>.<secret>`: the row's id and 32 random bytes, base64url without
//! padding. The manager keeps the secret's SHA-256 and shows the token once, at creation.
//! Enrolment may append a fourth part (the CA's fingerprint, for clients to pin), which
//! [`redeem`] ignores. Revoking keeps the row, so who made a token, for which role, and how often
//! it was used stay on record.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Duration, Months, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set,
    TransactionTrait,
    sea_query::{Expr, Query},
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use super::{Ctx, Listed, PageRequest, clusters, found, timestamp, validate};
use crate::{
    Error,
    entity::{
        clusters as cluster_rows,
        join_tokens::{self as rows, JoinTokenRole, JoinTokenState},
    },
    rbac::Act,
};

pub use common::api::{CreatedJoinToken, JoinRole, JoinToken};

/// What every token starts with; the `1` is the format's version.
pub const PREFIX: &str = "dfj1";

/// The longest text [`redeem`] parses; anything longer is refused unread.
pub const MAX_TOKEN_LEN: usize = 256;

/// How long a token lives when its maker does not say.
const DEFAULT_LIFETIME: Duration = Duration::hours(24);

/// The most redemptions a token may allow (give none for no limit).
const MAX_USES: i64 = 1_000_000;

/// What a redeemed token entitles its bearer to: joining this cluster in this role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinGrant {
    /// The token redeemed (for the enrolment's record).
    pub token_id: i64,
    pub cluster_id: i64,
    /// The cluster's tenant.
    pub tenant_id: i64,
    pub role: JoinRole,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJoinToken {
    /// `scheduler`, `seed_peer` or `peer`.
    pub role: JoinRole,
    #[schema(min_length = 1, max_length = 256)]
    pub name: String,
    #[schema(max_length = 1024)]
    pub bio: Option<String>,
    /// In the future, at most a year away. Default: 24 hours from now.
    pub expires_at: Option<DateTime<Utc>>,
    /// How many enrolments the token allows. Default: no limit.
    #[schema(minimum = 1, maximum = 1_000_000)]
    pub max_uses: Option<i64>,
}

impl From<JoinTokenRole> for JoinRole {
    fn from(r: JoinTokenRole) -> Self {
        match r {
            JoinTokenRole::Scheduler => JoinRole::Scheduler,
            JoinTokenRole::SeedPeer => JoinRole::SeedPeer,
            JoinTokenRole::Peer => JoinRole::Peer,
        }
    }
}

impl From<JoinRole> for JoinTokenRole {
    fn from(r: JoinRole) -> Self {
        match r {
            JoinRole::Scheduler => JoinTokenRole::Scheduler,
            JoinRole::SeedPeer => JoinTokenRole::SeedPeer,
            JoinRole::Peer => JoinTokenRole::Peer,
        }
    }
}

impl From<JoinTokenState> for common::api::JoinTokenState {
    fn from(s: JoinTokenState) -> Self {
        match s {
            JoinTokenState::Active => Self::Active,
            JoinTokenState::Revoked => Self::Revoked,
        }
    }
}

/// The API's view of a token of a cluster of `tenant`.
fn view(t: rows::Model, tenant: i64) -> JoinToken {
    JoinToken {
        id: t.id,
        cluster_id: t.cluster_id,
        tenant_id: tenant,
        role: t.role.into(),
        name: t.name,
        bio: t.bio,
        token_prefix: t.token_prefix,
        state: t.state.into(),
        uses: t.uses,
        max_uses: t.max_uses,
        created_by: t.created_by,
        expires_at: timestamp(t.expires_at.and_utc()),
        last_used_at: t.last_used_at.map(|t| timestamp(t.and_utc())),
        created_at: timestamp(t.created_at.and_utc()),
        updated_at: timestamp(t.updated_at.and_utc()),
    }
}

/// What the database keeps to recognise a secret.
fn hash(secret: &[u8]) -> String {
    hex::encode(Sha256::digest(secret))
}

/// The token's id and its secret's hash, if `token` has the token's shape: bounded, the prefix,
/// a positive id, 32 bytes of base64url, and at most one more part (ignored).
fn parse(token: &str) -> Option<(i64, String)> {
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (prefix, id, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let _fingerprint = parts.next();
    if prefix != PREFIX || parts.next().is_some() {
        return None;
    }
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let id: i64 = id.parse().ok().filter(|id| *id > 0)?;
    let secret: [u8; 32] = URL_SAFE_NO_PAD.decode(secret).ok()?.try_into().ok()?;
    Some((id, hash(&secret)))
}

fn check_expiry(at: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), Error> {
    if at <= now {
        return Err(Error::invalid("expires_at", "expires_at must be in the future"));
    }
    if now.checked_add_months(Months::new(12)).is_none_or(|limit| at > limit) {
        return Err(Error::invalid("expires_at", "expires_at must be within a year"));
    }
    Ok(())
}

/// Makes a token for cluster `cluster_id`; only those who may change the cluster may. The answer
/// carries the token, shown only now.
pub async fn create(cx: Ctx<'_>, cluster_id: i64, body: CreateJoinToken) -> Result<CreatedJoinToken, Error> {
    let cluster = clusters::load(cx, cluster_id, Act::Update).await?;
    validate::name("name", &body.name)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    let now = Utc::now();
    let expires_at = body.expires_at.unwrap_or(now + DEFAULT_LIFETIME);
    check_expiry(expires_at, now)?;
    if body.max_uses.is_some_and(|n| !(1..=MAX_USES).contains(&n)) {
        return Err(Error::invalid("max_uses", format!("max_uses must be 1 to {MAX_USES}")));
    }
    let secret: [u8; 32] = rand::random();
    let secret_text = URL_SAFE_NO_PAD.encode(secret);
    // The token names its row, so the row comes first and its shown prefix right after, together.
    let txn = cx.db.begin().await?;
    let row = rows::ActiveModel {
        cluster_id: Set(cluster.id),
        role: Set(body.role.into()),
        name: Set(body.name),
        bio: Set(bio),
        secret_hash: Set(hash(&secret)),
        // Set once the id is known.
        token_prefix: Set(String::new()),
        expires_at: Set(expires_at.naive_utc()),
        uses: Set(0),
        max_uses: Set(body.max_uses),
        state: Set(JoinTokenState::Active),
        created_by: Set(Some(cx.me.user_id)),
        created_at: Set(now.naive_utc()),
        updated_at: Set(now.naive_utc()),
        last_used_at: Set(None),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let token = format!("{PREFIX}.{}.{secret_text}", row.id);
    let prefix = format!("{PREFIX}.{}.{}", row.id, &secret_text[..4]);
    let mut active: rows::ActiveModel = row.into();
    active.token_prefix = Set(prefix);
    let row = active.update(&txn).await?;
    txn.commit().await?;
    Ok(CreatedJoinToken { meta: view(row, cluster.tenant_id), token })
}

/// The cluster's tokens, revoked ones too, oldest first; for those who may change the cluster.
/// The paging is checked after the caller may see them.
pub async fn list(cx: Ctx<'_>, cluster_id: i64, page: PageRequest) -> Result<Listed<JoinToken>, Error> {
    let cluster = clusters::load(cx, cluster_id, Act::Update).await?;
    let page = page.validate()?;
    let query = rows::Entity::find().filter(rows::Column::ClusterId.eq(cluster.id)).order_by_asc(rows::Column::Id);
    Ok(super::list(cx.db, query, page).await?.map(|t| view(t, cluster.tenant_id)))
}

/// A token of a cluster the caller may change, or 404.
async fn load(cx: Ctx<'_>, cluster_id: i64, id: i64) -> Result<(rows::Model, i64), Error> {
    let cluster = clusters::load(cx, cluster_id, Act::Update).await?;
    let query = rows::Entity::find_by_id(id).filter(rows::Column::ClusterId.eq(cluster.id));
    Ok((found(cx.db, query, "join token").await?, cluster.tenant_id))
}

/// One token of the cluster (never its secret).
pub async fn get(cx: Ctx<'_>, cluster_id: i64, id: i64) -> Result<JoinToken, Error> {
    let (t, tenant) = load(cx, cluster_id, id).await?;
    Ok(view(t, tenant))
}

/// Revokes a token for good; its row stays, for the record. Revoking a revoked token changes
/// nothing. Answers the cluster's tenant.
pub async fn revoke(cx: Ctx<'_>, cluster_id: i64, id: i64) -> Result<i64, Error> {
    let (t, tenant) = load(cx, cluster_id, id).await?;
    if t.state != JoinTokenState::Revoked {
        rows::Entity::update_many()
            .col_expr(rows::Column::State, Expr::value(JoinTokenState::Revoked))
            .col_expr(rows::Column::UpdatedAt, Expr::value(Utc::now().naive_utc()))
            .filter(rows::Column::Id.eq(t.id))
            .exec(cx.db)
            .await?;
    }
    Ok(tenant)
}

/// Redeems `token` once, for enrolment: the token must be well formed, known, active, unexpired,
/// under its `max_uses`, and its cluster live; otherwise the answer is one `Unauthorized` that
/// does not say which. The use is counted by one conditional `UPDATE`, so concurrent
/// redemptions never exceed `max_uses`. The secret is matched by its SHA-256 in the database:
/// how long comparing digests takes says nothing about the secret.
pub async fn redeem(db: &DatabaseConnection, token: &str) -> Result<JoinGrant, Error> {
    let refused = || Error::Unauthorized("the join token is unknown, revoked, expired or used up".into());
    let (id, secret_hash) = parse(token).ok_or_else(refused)?;
    let now = Utc::now().naive_utc();
    let live_clusters = Query::select()
        .column(cluster_rows::Column::Id)
        .from(cluster_rows::Entity)
        .and_where(cluster_rows::Column::IsDel.eq(0))
        .to_owned();
    let counted = rows::Entity::update_many()
        .col_expr(rows::Column::Uses, Expr::col(rows::Column::Uses).add(1))
        .col_expr(rows::Column::LastUsedAt, Expr::value(now))
        .filter(rows::Column::Id.eq(id))
        .filter(rows::Column::SecretHash.eq(secret_hash))
        .filter(rows::Column::State.eq(JoinTokenState::Active))
        .filter(rows::Column::ExpiresAt.gt(now))
        .filter(
            Condition::any()
                .add(rows::Column::MaxUses.is_null())
                .add(Expr::col(rows::Column::Uses).lt(Expr::col(rows::Column::MaxUses))),
        )
        .filter(rows::Column::ClusterId.in_subquery(live_clusters))
        .exec(db)
        .await?;
    if counted.rows_affected != 1 {
        return Err(refused());
    }
    let t = rows::Entity::find_by_id(id).one(db).await?.ok_or_else(refused)?;
    let cluster = cluster_rows::Entity::find_by_id(t.cluster_id).one(db).await?.ok_or_else(refused)?;
    Ok(JoinGrant { token_id: t.id, cluster_id: cluster.id, tenant_id: cluster.tenant_id, role: t.role.into() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, secret: &[u8]) -> String {
        format!("{PREFIX}.{id}.{}", URL_SAFE_NO_PAD.encode(secret))
    }

    #[test]
    fn tokens_parse_only_in_their_shape() {
        let secret = [7u8; 32];
        let good = token("12", &secret);
        assert_eq!(parse(&good), Some((12, hash(&secret))));
        // The enrolment side appends the CA's fingerprint; it is ignored.
        assert_eq!(parse(&format!("{good}.{}", "ab".repeat(32))), Some((12, hash(&secret))));
        for bad in [
            String::new(),
            "dfj1".into(),
            "dfj1.12".into(),
            format!("{good}.fp.more"),
            good.replacen("dfj1", "dfj2", 1),
            token("0", &secret),
            token("-3", &secret),
            token("+3", &secret),
            token("", &secret),
            token("99999999999999999999", &secret),
            token("12", &[7u8; 31]),
            token("12", &[7u8; 33]),
            format!("{good}="),
            good.replace('.', ".."),
            format!("{good}.{}", "a".repeat(MAX_TOKEN_LEN)),
        ] {
            assert_eq!(parse(&bad), None, "{bad:?}");
        }
    }
}
