//! The manager's operations, one module per aggregate: what may be done to clusters, jobs,
//! tasks, tenants and the registry of schedulers and peers, and how it reaches the database.
//!
//! The edges call in and never each other: [`crate::api`] (REST), [`crate::grpc`] (schedulers
//! and peers registering) and [`crate::jobs`] (the runner) import `service`; `service` imports
//! none of them, no axum and no generated proto types except in [`scheduler_rpc`], the manager's
//! client of schedulers, where they stop. An operation a person asks for takes a [`Ctx`] (who,
//! under which policy, against which database) and asks its [`Principal`] before it touches a
//! row, so the REST API, the OpenAPI edge and the console (which calls the REST API) share one
//! authorization path.

pub mod cluster_config;
pub mod clusters;
pub mod hosts;
pub mod job_queue;
pub mod jobs;
pub mod registry;
pub mod samples;
pub mod scheduler_rpc;
pub mod scopes;
pub mod task_records;
pub mod tasks;
pub mod tenants;
pub mod validate;

use chrono::{DateTime, SecondsFormat, Utc};
use common::api::Timestamp;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, PaginatorTrait, QuerySelect, Select};

use crate::{Error, auth::Principal, rbac::Rbac};

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
