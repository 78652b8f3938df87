//! Tasks and traffic over time, drawn from the samples schedulers' keepalives leave
//! ([`super::samples`]): the console's overview charts.
//!
//! A window (one hour to a week) is cut into [`BUCKETS`] equal buckets. Traffic and finished
//! downloads are counters in the samples, so a bucket gets the increase between each scheduler's
//! consecutive samples ending in it (a counter that went down means the scheduler restarted; the
//! new value is the increase). Tasks and peers are gauges: a bucket gets, summed over schedulers,
//! each one's latest sample that is fresh at the bucket's end, or nothing when none is.

use std::{collections::BTreeMap, time::Duration};

use chrono::{NaiveDateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, sea_query::Query as SqlQuery};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Ctx, samples::SchedulerStats};
use crate::{
    Error,
    auth::Visible,
    entity::{clusters, scheduler_samples},
    rbac::{Act, Obj},
};

pub use common::api::{Stats, StatsPoint};

/// Buckets per window.
pub const BUCKETS: u32 = 60;

/// The windows one may ask for, by name.
const WINDOWS: &[(&str, u64)] = &[("1h", 3600), ("6h", 6 * 3600), ("24h", 24 * 3600), ("7d", 7 * 24 * 3600)];

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// One cluster; all the caller's clusters when absent.
    pub scheduler_cluster_id: Option<i64>,
    /// `1h`, `6h`, `24h` or `7d`. Default: `1h`.
    pub window: Option<String>,
}

/// Tasks, peers and traffic over the window asked for, from the schedulers of one cluster the
/// caller may read, or of all its tenants' live clusters; `sample_interval` is how often the
/// samples were kept.
pub async fn get(cx: Ctx<'_>, q: StatsQuery, sample_interval: Duration) -> Result<Stats, Error> {
    let window_name = q.window.as_deref().unwrap_or("1h");
    let Some(&(_, window_secs)) = WINDOWS.iter().find(|(name, _)| *name == window_name) else {
        return Err(Error::invalid("window", "window must be 1h, 6h, 24h or 7d"));
    };
    let bucket = Duration::from_secs(window_secs / u64::from(BUCKETS));
    // How long a gauge stays true without a new sample, and how far back a counter's previous
    // sample is looked for.
    let fresh = bucket.max(sample_interval * 3);
    let end = Utc::now().naive_utc();
    let start = end - chrono::Duration::seconds(window_secs as i64);
    let mut query = scheduler_samples::Entity::find()
        .filter(scheduler_samples::Column::At.gte(start - to_chrono(fresh)))
        .order_by_asc(scheduler_samples::Column::At)
        .order_by_asc(scheduler_samples::Column::Id);
    if let Some(id) = q.scheduler_cluster_id {
        let cluster = super::clusters::load(cx, id, Act::Read).await?;
        query = query.filter(scheduler_samples::Column::ClusterId.eq(cluster.id));
    } else {
        let mut live = SqlQuery::select()
            .column(clusters::Column::Id)
            .from(clusters::Entity)
            .and_where(clusters::Column::IsDel.eq(0))
            .to_owned();
        if let Visible::Tenants(ids) = cx.me.visible(cx.rbac, Obj::Clusters)? {
            live.and_where(clusters::Column::TenantId.is_in(ids));
        }
        query = query.filter(scheduler_samples::Column::ClusterId.in_subquery(live));
    }
    let samples: Vec<Sample> = query.all(cx.db).await?.into_iter().map(Sample::from).collect();
    let points = bucketize(&samples, start, bucket, BUCKETS, fresh);
    Ok(Stats { window_secs, bucket_secs: bucket.as_secs(), points })
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

/// One scheduler's report, as the aggregation needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub scheduler_id: i64,
    pub at: NaiveDateTime,
    pub stats: SchedulerStats,
}

impl From<scheduler_samples::Model> for Sample {
    fn from(m: scheduler_samples::Model) -> Self {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Self {
            scheduler_id: m.scheduler_id,
            at: m.at,
            stats: SchedulerStats {
                tasks: n(m.tasks),
                peers: n(m.peers),
                running_peers: n(m.running_peers),
                back_to_source_bytes: n(m.back_to_source_bytes),
                peer_bytes: n(m.peer_bytes),
                succeeded: n(m.succeeded),
                failed: n(m.failed),
            },
        }
    }
}

/// How much a counter grew from `prev` to `cur`; a counter that went down started again at zero.
fn increase(prev: u64, cur: u64) -> u64 {
    if cur >= prev { cur - prev } else { cur }
}

/// `count` buckets of `bucket` from `start`, from samples in time order (any schedulers mixed).
pub fn bucketize(
    samples: &[Sample],
    start: NaiveDateTime,
    bucket: Duration,
    count: u32,
    fresh: Duration,
) -> Vec<StatsPoint> {
    let step = to_chrono(bucket);
    let mut points: Vec<StatsPoint> = (0..count)
        .map(|i| StatsPoint { at: super::timestamp((start + step * i as i32).and_utc()), ..StatsPoint::default() })
        .collect();
    let index = |at: NaiveDateTime| -> Option<usize> {
        if at < start || step.num_milliseconds() <= 0 {
            return None;
        }
        let i = (at - start).num_milliseconds() / step.num_milliseconds();
        usize::try_from(i).ok().filter(|&i| i < count as usize)
    };
    let mut by_scheduler: BTreeMap<i64, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        by_scheduler.entry(s.scheduler_id).or_default().push(s);
    }
    let fresh = to_chrono(fresh);
    for series in by_scheduler.values() {
        // Counters: the increase since the previous sample lands in the bucket of the later one.
        for pair in series.windows(2) {
            let (p, c) = (&pair[0].stats, &pair[1].stats);
            let Some(i) = index(pair[1].at) else { continue };
            let point = &mut points[i];
            point.back_to_source_bytes += increase(p.back_to_source_bytes, c.back_to_source_bytes);
            point.peer_bytes += increase(p.peer_bytes, c.peer_bytes);
            point.succeeded += increase(p.succeeded, c.succeeded);
            point.failed += increase(p.failed, c.failed);
        }
        // Gauges: the latest sample at or before each bucket's end, if fresh enough.
        let mut next = 0;
        for (i, point) in points.iter_mut().enumerate() {
            let bucket_end = start + step * (i as i32 + 1);
            while next < series.len() && series[next].at < bucket_end {
                next += 1;
            }
            let Some(latest) = next.checked_sub(1).map(|k| series[k]) else { continue };
            if bucket_end - latest.at > fresh {
                continue;
            }
            let now = &latest.stats;
            point.tasks = Some(point.tasks.unwrap_or(0) + now.tasks);
            point.peers = Some(point.peers.unwrap_or(0) + now.peers);
            point.running_peers = Some(point.running_peers.unwrap_or(0) + now.running_peers);
        }
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap().naive_utc()
    }

    fn sample(scheduler_id: i64, at: i64, tasks: u64, origin: u64, peers: u64) -> Sample {
        let stats = SchedulerStats {
            tasks,
            peers: tasks * 2,
            back_to_source_bytes: origin,
            peer_bytes: peers,
            ..SchedulerStats::default()
        };
        Sample { scheduler_id, at: t(at), stats }
    }

    #[test]
    fn counters_land_in_the_bucket_of_the_later_sample() {
        let samples = [sample(1, -30, 1, 100, 0), sample(1, 30, 1, 400, 1000), sample(1, 90, 2, 400, 5000)];
        let points = bucketize(&samples, t(0), Duration::from_secs(60), 3, Duration::from_secs(180));
        assert_eq!(points.len(), 3);
        assert_eq!((points[0].back_to_source_bytes, points[0].peer_bytes), (300, 1000));
        assert_eq!((points[1].back_to_source_bytes, points[1].peer_bytes), (0, 4000));
        assert_eq!((points[2].back_to_source_bytes, points[2].peer_bytes), (0, 0));
        assert_eq!(points[0].at, crate::service::timestamp(t(0).and_utc()));
        assert_eq!(points[2].at, crate::service::timestamp(t(120).and_utc()));
    }

    #[test]
    fn a_restarted_scheduler_counts_from_zero() {
        let samples = [sample(1, 10, 1, 5000, 0), sample(1, 70, 1, 200, 0)];
        let points = bucketize(&samples, t(0), Duration::from_secs(60), 2, Duration::from_secs(180));
        assert_eq!(points[1].back_to_source_bytes, 200);
    }

    #[test]
    fn gauges_sum_fresh_schedulers_and_leave_gaps() {
        let samples = [sample(1, 10, 3, 0, 0), sample(2, 20, 4, 0, 0), sample(1, 70, 5, 0, 0)];
        // Freshness 60 s: at the end of bucket 2 (t=180) scheduler 1's sample from t=70 is stale.
        let points = bucketize(&samples, t(0), Duration::from_secs(60), 3, Duration::from_secs(60));
        assert_eq!(points[0].tasks, Some(7));
        assert_eq!(points[0].peers, Some(14));
        // Scheduler 2's sample from t=20 is 100 s old at t=120: only scheduler 1 counts.
        assert_eq!(points[1].tasks, Some(5));
        assert_eq!(points[2].tasks, None);
    }

    #[test]
    fn samples_outside_the_window_are_ignored() {
        let samples = [sample(1, -500, 1, 0, 0), sample(1, -400, 1, 1000, 0), sample(1, 1000, 1, 9000, 0)];
        let points = bucketize(&samples, t(0), Duration::from_secs(60), 2, Duration::from_secs(60));
        assert!(points.iter().all(|p| p.back_to_source_bytes == 0 && p.tasks.is_none()));
    }
}
