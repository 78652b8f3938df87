//! The manager's operations, one module per aggregate (clusters, hosts and the registry, jobs,
//! tasks, tenants and members, users, tokens, join tokens, applications, configs, audits, stats,
//! ...): what may be done to each, by whom, and how it reaches the database.
//!
//! The edges call in and never each other: [`crate::api`] (REST), [`crate::grpc`] (schedulers
//! and peers registering) and [`crate::jobs`] (the runner) import `service`; `service` imports
//! none of them, no axum and no generated proto types except in [`scheduler_rpc`], the manager's
//! client of schedulers, where they stop. An operation a person asks for takes a [`Ctx`] (who,
//! under which policy, against which database) and asks its [`Principal`] before it touches a
//! row, so the REST API, the OpenAPI edge and the console (which calls the REST API) share one
//! authorization path; only signing up and signing in ([`users`], [`oauth`]) and enrolling
//! ([`join_tokens::redeem`]), which come before there is a principal, take the database (and the
//! sessions) instead. The shapes the aggregates share (a tenant's row the caller may touch, the
//! rows it may see, whether a name is taken, one page of a list) are the helpers below, so each
//! module says only what differs.

pub mod applications;
pub mod audits;
pub mod certificates;
pub mod cluster_config;
pub mod clusters;
pub mod configs;
pub mod enrolment;
pub mod hosts;
pub mod image_ref;
pub mod job_queue;
pub mod jobs;
pub mod join_tokens;
pub mod members;
pub mod oauth;
pub mod preheat;
pub mod registry;
pub mod roles;
pub mod samples;
pub mod scheduler_rpc;
pub mod scopes;
pub mod shared_limits;
pub mod stats;
pub mod task_records;
pub mod tasks;
pub mod tenants;
pub mod throttle;
pub mod tokens;
pub mod users;
pub mod validate;

use chrono::{DateTime, SecondsFormat, Utc};
use common::api::Timestamp;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QuerySelect, Select,
};

use crate::{
    Error,
    auth::{Principal, Visible},
    rbac::{Act, Obj, Rbac},
};

/// A row's time as the API writes it: what `chrono` serializes a `DateTime<Utc>` to (RFC 3339,
/// `Z`, as many fractional digits as needed), so the wire is what it was before the types moved
/// to `common::api`.
pub fn timestamp(t: DateTime<Utc>) -> Timestamp {
    Timestamp(t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// What an operation asked for by a caller runs with.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    /// The connection pool.
    pub db: &'a DatabaseConnection,
    /// The authorization policy.
    pub rbac: &'a Rbac,
    /// Who asks.
    pub me: &'a Principal,
}

/// A validated page request: `page` from 1, `per_page` items on it.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub page: u64,
    pub per_page: u64,
}

/// The largest page a client may ask for.
pub const MAX_PER_PAGE: u64 = 1000;

/// A page as the caller asked for it, not yet checked: the operations that authorize the caller
/// before they look at the paging take this and check it at their turn.
#[derive(Debug, Clone, Copy, Default)]
pub struct PageRequest {
    /// Page number, from 1. Default: 1.
    pub page: Option<u64>,
    /// Items per page, 1 to [`MAX_PER_PAGE`]. Default: 10.
    pub per_page: Option<u64>,
}

impl PageRequest {
    /// The page asked for, or which field is wrong.
    pub fn validate(self) -> Result<Page, Error> {
        let page = self.page.unwrap_or(1);
        let per_page = self.per_page.unwrap_or(10);
        if page == 0 {
            return Err(Error::invalid("page", "page starts at 1"));
        }
        if per_page == 0 || per_page > MAX_PER_PAGE {
            return Err(Error::invalid("per_page", format!("per_page must be between 1 and {MAX_PER_PAGE}")));
        }
        if page.checked_mul(per_page).is_none_or(|n| n > i64::MAX as u64) {
            return Err(Error::invalid("page", "page is too large"));
        }
        Ok(Page { page, per_page })
    }
}

/// One page of a list, and how many items the whole list has.
#[derive(Debug)]
pub struct Listed<T> {
    pub items: Vec<T>,
    pub total: u64,
}

impl<T> Listed<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listed<U> {
        Listed { items: self.items.into_iter().map(f).collect(), total: self.total }
    }
}

/// Counts `query`'s rows and fetches one page of them.
pub async fn list<E, C>(db: &C, query: Select<E>, page: Page) -> Result<Listed<E::Model>, Error>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Sized + Send + Sync,
    C: ConnectionTrait,
{
    let total = query.clone().count(db).await?;
    let items = query.offset((page.page - 1) * page.per_page).limit(page.per_page).all(db).await?;
    Ok(Listed { items, total })
}

/// `query` narrowed to the rows of the tenants where the caller may see `obj`; `tenant` is the
/// column naming a row's tenant. Platform administrators see every row.
pub fn visible<E: EntityTrait>(cx: Ctx<'_>, query: Select<E>, obj: Obj, tenant: E::Column) -> Result<Select<E>, Error> {
    Ok(match cx.me.visible(cx.rbac, obj)? {
        Visible::All => query,
        Visible::Tenants(ids) => query.filter(tenant.is_in(ids)),
    })
}

/// Whether `query` matches any row (a name taken, a member already there).
pub async fn exists<E>(db: &impl ConnectionTrait, query: Select<E>) -> Result<bool, Error>
where
    E: EntityTrait,
    E::Model: FromQueryResult + Sized + Send + Sync,
{
    Ok(query.count(db).await? > 0)
}

/// The row `query` finds, or 404 naming `what`.
pub async fn found<E: EntityTrait>(db: &impl ConnectionTrait, query: Select<E>, what: &str) -> Result<E::Model, Error> {
    query.one(db).await?.ok_or_else(|| Error::not_found(what))
}

/// The row `query` finds if the caller may `act` on it: `owner` says which tenant the row
/// belongs to and as which object it is guarded. Another tenant's row is a 404, as a missing one.
pub async fn owned<E: EntityTrait>(
    cx: Ctx<'_>,
    query: Select<E>,
    what: &str,
    act: Act,
    owner: impl FnOnce(&E::Model) -> (i64, Obj),
) -> Result<E::Model, Error> {
    let row = found(cx.db, query, what).await?;
    let (tenant, obj) = owner(&row);
    cx.me.check(cx.rbac, tenant, obj, act, what)?;
    Ok(row)
}

#[cfg(test)]
mod timestamp_tests {
    use chrono::DateTime;

    /// The API's times read exactly as `chrono` serialized them before the DTOs moved to
    /// `common::api`: whole seconds and fractions alike.
    #[test]
    fn timestamps_are_written_as_chrono_writes_them() {
        for nanos in [0, 120_000_000, 123_456_000, 123_456_789] {
            let t = DateTime::from_timestamp(1_800_000_000, nanos).unwrap();
            assert_eq!(serde_json::to_value(super::timestamp(t)).unwrap(), serde_json::to_value(t).unwrap());
        }
    }
}
