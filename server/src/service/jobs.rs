//! Jobs: work the manager runs against the scheduler clusters of a tenant (preheat,
//! get_task, delete_task). Creating one records it as `PENDING` (and announces it on the
//! [`super::job_queue`] when there is one); the runner (`crate::jobs`) picks it up. The
//! shape follows Dragonfly's, which Harbor's preheat provider reads.

use std::{collections::HashMap, sync::Mutex, time::Instant};

use chrono::Utc;
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
    sea_query::{Expr, Query as SqlQuery},
};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{
    Ctx, Listed, Page,
    clusters::SchedulerClusterConfig,
    job_queue::RedisQueue,
    owned,
    shared_limits::{SharedLimits, Unavailable},
    timestamp, validate, visible,
};
use crate::{
    Error,
    entity::{
        clusters, job_clusters,
        jobs::{self, JobState},
    },
    rbac::{Act, Obj},
};

pub use common::api::Job;

/// Job types the manager knows.
pub const TYPES: &[&str] = &["preheat", "get_task", "delete_task"];

impl From<jobs::Model> for Job {
    fn from(j: jobs::Model) -> Self {
        Self {
            id: j.id,
            tenant_id: j.tenant_id,
            user_id: j.user_id,
            state: j.state.to_value(),
            // A preheat's registry credentials are never shown again.
            args: if j.r#type == "preheat" { super::preheat::masked(j.args) } else { j.args },
            r#type: j.r#type,
            result: j.result,
            bio: j.bio,
            scheduler_cluster_ids: serde_json::from_value(j.cluster_ids).unwrap_or_default(),
            created_at: timestamp(j.created_at.and_utc()),
            updated_at: timestamp(j.updated_at.and_utc()),
        }
    }
}

/// A job as Harbor's preheat provider reads it: any state but `PENDING`, `SUCCESS` and `FAILURE`
/// fails the job there, so a running job shows as `PENDING` until it is done.
pub trait ForHarbor {
    fn harbor_view(self) -> Self;
}

impl ForHarbor for Job {
    fn harbor_view(mut self) -> Self {
        if self.state != "SUCCESS" && self.state != "FAILURE" {
            self.state = "PENDING".into();
        }
        self
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateJob {
    /// `preheat`, `get_task` or `delete_task`.
    pub r#type: String,
    /// Type-specific arguments; `url` (http or https) or, for get_task/delete_task, `task_id`.
    #[schema(value_type = Object)]
    pub args: serde_json::Value,
    /// Clusters to run on; none means every cluster of the tenant.
    pub scheduler_cluster_ids: Option<Vec<i64>>,
    pub bio: Option<String>,
    /// The tenant; may be left out by users of exactly one tenant.
    pub tenant_id: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateJob {
    pub bio: Option<String>,
    /// `FAILURE` cancels a job that is `PENDING` or `RUNNING` (a running preheat stops on its
    /// hosts); no other state may be set.
    pub state: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobFilter {
    pub r#type: Option<String>,
    pub state: Option<String>,
    pub user_id: Option<i64>,
    pub tenant_id: Option<i64>,
    /// Jobs that run on this scheduler cluster.
    pub scheduler_cluster_id: Option<i64>,
}

/// Per-cluster job admission (`scheduler_cluster_config.job_rate_limit` jobs per second):
/// counted in Redis for all manager replicas together when it is configured and reachable,
/// else by this manager alone.
#[derive(Debug, Default)]
pub struct JobRateLimiter {
    windows: Mutex<HashMap<i64, (Instant, u32)>>,
    shared: Option<std::sync::Arc<SharedLimits>>,
}

impl JobRateLimiter {
    /// A limiter counting in `shared` (falling back to its own memory while Redis is away).
    pub fn shared(shared: std::sync::Arc<SharedLimits>) -> Self {
        Self { windows: Mutex::default(), shared: Some(shared) }
    }

    /// Admits one job on every cluster of `limits`, or none.
    pub async fn admit(&self, limits: &[(i64, u32)]) -> Result<(), Error> {
        if let Some(shared) = &self.shared {
            let keys: Vec<(String, u32)> = limits.iter().map(|(c, l)| (c.to_string(), *l)).collect();
            match shared.admit_all("jobs-per-second", &keys).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(full)) => {
                    let limit = keys.iter().find(|(k, _)| k == full).map_or(0, |(_, l)| *l);
                    return Err(too_many(full, limit));
                }
                Err(Unavailable(e)) => {
                    tracing::warn!(error = %e, "Redis unavailable for the job limits; counting on this manager");
                }
            }
        }
        self.admit_here(limits)
    }

    fn admit_here(&self, limits: &[(i64, u32)]) -> Result<(), Error> {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        for (cluster, limit) in limits {
            let (start, count) = windows.entry(*cluster).or_insert((now, 0));
            if now.duration_since(*start).as_secs() >= 1 {
                *start = now;
                *count = 0;
            }
            if *count >= *limit {
                return Err(too_many(cluster, *limit));
            }
        }
        for (cluster, _) in limits {
            if let Some((_, count)) = windows.get_mut(cluster) {
                *count += 1;
            }
        }
        Ok(())
    }
}

fn too_many(cluster: impl std::fmt::Display, limit: u32) -> Error {
    Error::TooManyRequests(format!("cluster {cluster} accepts {limit} job(s) per second; retry shortly"))
}

fn check_url(field: &str, v: &serde_json::Value) -> Result<(), Error> {
    let s = v.as_str().ok_or_else(|| Error::invalid(field, format!("{field} must be a string")))?;
    let url = url::Url::parse(s).map_err(|e| Error::invalid(field, format!("{field} is not a URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::invalid(field, format!("{field} must be an http or https URL")));
    }
    Ok(())
}

fn check_args(kind: &str, args: &serde_json::Value) -> Result<(), Error> {
    let obj = args.as_object().ok_or_else(|| Error::invalid("args", "args must be an object"))?;
    if serde_json::to_vec(args).map_or(0, |v| v.len()) > 64 * 1024 {
        return Err(Error::invalid("args", "args must be at most 64 KiB"));
    }
    match kind {
        "preheat" => {
            super::preheat::PreheatArgs::parse(args)?;
        }
        "get_task" | "delete_task" => match (obj.get("task_id"), obj.get("url")) {
            (Some(id), _) => {
                let ok = id.as_str().is_some_and(|s| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()));
                if !ok {
                    return Err(Error::invalid("args.task_id", "args.task_id must be 64 hex digits"));
                }
            }
            (None, Some(url)) => check_url("args.url", url)?,
            (None, None) => return Err(Error::invalid("args", "give args.task_id or args.url")),
        },
        _ => return Err(Error::invalid("type", format!("type must be one of {}", TYPES.join(", ")))),
    }
    Ok(())
}

async fn load(cx: Ctx<'_>, id: i64, act: Act) -> Result<jobs::Model, Error> {
    owned(cx, jobs::Entity::find_by_id(id), "job", act, |j| (j.tenant_id, Obj::Jobs)).await
}

/// Jobs of the caller's tenants, newest first.
pub async fn list(cx: Ctx<'_>, filter: JobFilter, page: Page) -> Result<Listed<Job>, Error> {
    let query = jobs::Entity::find().order_by_desc(jobs::Column::Id);
    let mut query = visible(cx, query, Obj::Jobs, jobs::Column::TenantId)?;
    if let Some(t) = filter.r#type {
        query = query.filter(jobs::Column::Type.eq(t));
    }
    if let Some(s) = filter.state {
        query = query.filter(jobs::Column::State.eq(s));
    }
    if let Some(u) = filter.user_id {
        query = query.filter(jobs::Column::UserId.eq(u));
    }
    if let Some(t) = filter.tenant_id {
        query = query.filter(jobs::Column::TenantId.eq(t));
    }
    if let Some(c) = filter.scheduler_cluster_id {
        query = query.filter(
            jobs::Column::Id.in_subquery(
                SqlQuery::select()
                    .column(job_clusters::Column::JobId)
                    .from(job_clusters::Entity)
                    .and_where(job_clusters::Column::ClusterId.eq(c))
                    .to_owned(),
            ),
        );
    }
    Ok(super::list(cx.db, query, page).await?.map(Job::from))
}

/// Records a job as `PENDING` on the clusters asked for (every cluster of the tenant when none
/// is named), within each cluster's job rate, and announces it on `queue`.
pub async fn create(
    cx: Ctx<'_>,
    body: CreateJob,
    limiter: &JobRateLimiter,
    queue: Option<&RedisQueue>,
) -> Result<Job, Error> {
    let tenant = cx.me.tenant_for_create(cx.rbac, body.tenant_id, Obj::Jobs)?;
    check_args(&body.r#type, &body.args).map_err(Error::unprocessable)?;
    let bio = body.bio.unwrap_or_default();
    validate::text("bio", &bio, 1024)?;
    let tenant_clusters =
        clusters::Entity::find().filter(clusters::Column::TenantId.eq(tenant)).filter(clusters::Column::IsDel.eq(0));
    let chosen = match body.scheduler_cluster_ids.filter(|ids| !ids.is_empty()) {
        Some(ids) => {
            if ids.len() > 1000 {
                return Err(Error::invalid("scheduler_cluster_ids", "at most 1000 clusters per job").unprocessable());
            }
            let found = tenant_clusters.filter(clusters::Column::Id.is_in(ids.clone())).all(cx.db).await?;
            if let Some(missing) = ids.iter().find(|id| !found.iter().any(|c| c.id == **id)) {
                return Err(Error::invalid("scheduler_cluster_ids", format!("the tenant has no cluster {missing}"))
                    .unprocessable());
            }
            found
        }
        None => tenant_clusters.all(cx.db).await?,
    };
    if chosen.is_empty() {
        return Err(
            Error::invalid("scheduler_cluster_ids", "the tenant has no cluster to run the job on").unprocessable()
        );
    }
    let limits: Vec<(i64, u32)> = chosen
        .iter()
        .map(|c| {
            let config: SchedulerClusterConfig =
                serde_json::from_value(c.scheduler_cluster_config.clone()).unwrap_or_default();
            (c.id, config.job_rate_limit)
        })
        .collect();
    limiter.admit(&limits).await?;
    let cluster_ids: Vec<i64> = chosen.iter().map(|c| c.id).collect();
    let now = Utc::now().naive_utc();
    let txn = cx.db.begin().await?;
    let job = jobs::ActiveModel {
        tenant_id: Set(tenant),
        user_id: Set(cx.me.user_id),
        r#type: Set(body.r#type),
        state: Set(JobState::Pending),
        args: Set(body.args),
        result: Set(None),
        bio: Set(bio),
        cluster_ids: Set(serde_json::json!(cluster_ids)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    job_clusters::Entity::insert_many(
        cluster_ids.iter().map(|&c| job_clusters::ActiveModel { job_id: Set(job.id), cluster_id: Set(c) }),
    )
    .exec_without_returning(&txn)
    .await?;
    txn.commit().await?;
    if let Some(queue) = queue
        && let Err(e) = queue.push(job.id).await
    {
        // The runners' database poll picks the job up instead.
        tracing::warn!(job_id = job.id, error = %e, "could not announce the job on Redis");
    }
    Ok(job.into())
}

/// One job with its state and results.
pub async fn get(cx: Ctx<'_>, id: i64) -> Result<Job, Error> {
    Ok(load(cx, id, Act::Read).await?.into())
}

/// Changes a job's description, or cancels it (`state: FAILURE`).
pub async fn update(cx: Ctx<'_>, id: i64, body: UpdateJob) -> Result<Job, Error> {
    let job = load(cx, id, Act::Update).await?;
    if let Some(bio) = &body.bio {
        validate::text("bio", bio, 1024)?;
    }
    if let Some(state) = &body.state {
        if state != "FAILURE" {
            return Err(Error::Unprocessable {
                field: Some("state".into()),
                message: format!("state may only be set to FAILURE, to cancel the job (not {state:?})"),
            });
        }
        cancel(cx, &job).await?;
    }
    let job = load(cx, id, Act::Update).await?;
    let mut active: jobs::ActiveModel = job.into();
    if let Some(bio) = body.bio {
        active.bio = Set(bio);
    }
    active.updated_at = Set(Utc::now().naive_utc());
    Ok(active.update(cx.db).await?.into())
}

/// Ends a `PENDING` or `RUNNING` job as `FAILURE`, saying who cancelled it. The conditional
/// update is the whole protocol: the runner writes only while the job is `RUNNING`, so it sees
/// the cancellation at its next write and stops (a preheat cancels its hosts' orders).
async fn cancel(cx: Ctx<'_>, job: &jobs::Model) -> Result<(), Error> {
    let error = format!("cancelled by {}", cx.me.name);
    let mut result = job.result.clone().unwrap_or_else(|| json!({"job_states": []}));
    match result.get_mut("job_states").and_then(Value::as_array_mut) {
        Some(states) if !states.is_empty() => {
            for s in states.iter_mut() {
                s["state"] = json!("FAILURE");
                s["error"] = json!(error);
            }
        }
        _ => result = json!({"job_states": [{"state": "FAILURE", "error": error, "results": []}]}),
    }
    let cancelled = jobs::Entity::update_many()
        .col_expr(jobs::Column::State, Expr::value(JobState::Failure))
        .col_expr(jobs::Column::Result, Expr::value(result))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now().naive_utc()))
        .filter(jobs::Column::Id.eq(job.id))
        .filter(jobs::Column::State.is_in([JobState::Pending, JobState::Running]))
        .exec(cx.db)
        .await?;
    if cancelled.rows_affected == 0 {
        return Err(Error::Conflict(format!("job {} has already ended", job.id)));
    }
    tracing::info!(job_id = job.id, by = %cx.me.name, "job cancelled");
    Ok(())
}

/// Deletes a job record (a running job is not stopped by this); answers its tenant.
pub async fn delete(cx: Ctx<'_>, id: i64) -> Result<i64, Error> {
    let job = load(cx, id, Act::Delete).await?;
    jobs::Entity::delete_by_id(id).exec(cx.db).await?;
    Ok(job.tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn harbor_reads_only_pending_success_and_failure() {
        let job = |state: &str| Job {
            id: 1,
            tenant_id: 1,
            user_id: 1,
            r#type: "preheat".into(),
            state: state.into(),
            args: serde_json::Value::Null,
            result: None,
            bio: String::new(),
            scheduler_cluster_ids: vec![],
            created_at: timestamp(chrono::Utc::now()),
            updated_at: timestamp(chrono::Utc::now()),
        };
        for (state, shown) in
            [("PENDING", "PENDING"), ("RUNNING", "PENDING"), ("SUCCESS", "SUCCESS"), ("FAILURE", "FAILURE")]
        {
            assert_eq!(job(state).harbor_view().state, shown);
        }
    }
}
