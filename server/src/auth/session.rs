//! Sign-in sessions: one row per sign-in, named by the JWTs issued for it.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, sea_query::Expr};
use serde::Serialize;

use super::jwt::{Claims, Keys};
use crate::{
    Error,
    config::AuthConfig,
    entity::{sessions, users},
};

/// A sign-in token as answered to the client.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IssuedToken {
    /// The JWT; send it as `Authorization: Bearer <token>`.
    pub token: String,
    /// When this token stops working (RFC 3339); refresh before then.
    pub expires_at: DateTime<Utc>,
    /// When the session ends; after that, sign in again.
    pub session_expires_at: DateTime<Utc>,
}

/// Opens, checks, refreshes and ends sessions.
#[derive(Debug, Clone)]
pub struct Sessions {
    keys: Keys,
    token_ttl: Duration,
    session_ttl: Duration,
}

impl Sessions {
    pub fn new(keys: Keys, config: &AuthConfig) -> Self {
        Self {
            keys,
            token_ttl: Duration::seconds(config.token_ttl_secs.min(i64::MAX as u64) as i64),
            session_ttl: Duration::seconds(config.session_ttl_secs.min(i64::MAX as u64) as i64),
        }
    }

    /// Opens a session for `user` and issues its first token.
    pub async fn open(&self, db: &DatabaseConnection, user: &users::Model) -> Result<IssuedToken, Error> {
        let now = Utc::now();
        let id = uuid::Uuid::new_v4().to_string();
        let expires = now + self.session_ttl;
        sessions::ActiveModel {
            id: Set(id.clone()),
            user_id: Set(user.id),
            created_at: Set(now.naive_utc()),
            expires_at: Set(expires.naive_utc()),
            revoked_at: Set(None),
        }
        .insert(db)
        .await?;
        self.issue(user.id, &id, expires)
    }

    fn issue(&self, user_id: i64, sid: &str, session_expires: DateTime<Utc>) -> Result<IssuedToken, Error> {
        let now = Utc::now();
        let expires_at = (now + self.token_ttl).min(session_expires);
        let claims =
            Claims { sub: user_id.to_string(), sid: sid.to_owned(), iat: now.timestamp(), exp: expires_at.timestamp() };
        Ok(IssuedToken { token: self.keys.sign(&claims)?, expires_at, session_expires_at: session_expires })
    }

    /// The user id and session id a well-signed, unexpired `jwt` names; its session row is
    /// not read here ([`super::Principal::for_session`] reads it with the user).
    pub fn claims(&self, jwt: &str) -> Result<(i64, String), Error> {
        let claims = self.keys.verify(jwt)?;
        let user_id: i64 =
            claims.sub.parse().map_err(|_| Error::Unauthorized("the sign-in token is not valid".into()))?;
        Ok((user_id, claims.sid))
    }

    /// Checks `jwt` and its session; answers the user id and session id.
    pub async fn check(&self, db: &DatabaseConnection, jwt: &str) -> Result<(i64, String), Error> {
        let (user_id, sid) = self.claims(jwt)?;
        let session = sessions::Entity::find_by_id(sid)
            .one(db)
            .await?
            .filter(|s| s.user_id == user_id && s.revoked_at.is_none() && s.expires_at > Utc::now().naive_utc())
            .ok_or_else(|| Error::Unauthorized("the session has ended; sign in again".into()))?;
        Ok((user_id, session.id))
    }

    /// A new token for a live session; the session's own end does not move.
    pub async fn refresh(&self, db: &DatabaseConnection, sid: &str) -> Result<IssuedToken, Error> {
        let session = sessions::Entity::find_by_id(sid.to_owned())
            .one(db)
            .await?
            .filter(|s| s.revoked_at.is_none())
            .ok_or_else(|| Error::Unauthorized("the session has ended; sign in again".into()))?;
        self.issue(session.user_id, &session.id, session.expires_at.and_utc())
    }

    /// Ends one session.
    pub async fn revoke(db: &DatabaseConnection, sid: &str) -> Result<(), Error> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(Some(now())))
            .filter(sessions::Column::Id.eq(sid))
            .exec(db)
            .await?;
        Ok(())
    }

    /// Ends every session of `user_id` (password changed, user disabled).
    pub async fn revoke_all(db: &DatabaseConnection, user_id: i64) -> Result<(), Error> {
        sessions::Entity::update_many()
            .col_expr(sessions::Column::RevokedAt, Expr::value(Some(now())))
            .filter(sessions::Column::UserId.eq(user_id))
            .filter(sessions::Column::RevokedAt.is_null())
            .exec(db)
            .await?;
        Ok(())
    }
}

/// Now, as the naive UTC the control-plane tables store.
pub fn now() -> NaiveDateTime {
    Utc::now().naive_utc()
}
