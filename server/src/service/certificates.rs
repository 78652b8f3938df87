//! The record of certificates the manager's CA issued, and their revocation.
//!
//! Enrolment and renewal [`record`] each certificate they sign (serial, host, component,
//! validity). People who may change a cluster list its certificates and revoke them, one by
//! serial or all of a host's at once; a revoked row keeps when, by whom and why. What the
//! components refuse is the set of serials revoked and not yet expired ([`revoked_serials`]):
//! every manager replica reloads it ([`refresh`]), schedulers receive their cluster's with the
//! cluster settings they poll and dfdaemons with their scheduler list, so a revocation takes
//! effect everywhere within one refresh. An expired certificate needs no revocation: its
//! validity already refuses it.

use chrono::{DateTime, Utc};
use common::{
    api::{Certificate, CertificateState, RevokeCertificates, RevokedCertificates},
    ids::HostId,
    tls::{Identity, Revocations},
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::Expr,
};

use super::{Ctx, Listed, Page, clusters, timestamp, validate};
use crate::{Error, entity::certificates as rows, rbac::Act};

/// How long after expiry a certificate's row is kept, for the record.
pub const KEPT_AFTER_EXPIRY: chrono::Duration = chrono::Duration::days(30);

/// Records a certificate just issued: `chain_pem` as signed (leaf first), for `identity`, with
/// the host name and address given at enrolment (none for a renewal).
pub async fn record(
    db: &DatabaseConnection,
    identity: &Identity,
    named: Option<(&str, std::net::IpAddr)>,
    chain_pem: &str,
) -> Result<(), Error> {
    let leaf = common::tls::credentials::parse_certs(chain_pem, "certificate")
        .map_err(|e| Error::Internal(e.to_string()))?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Internal("a signed chain without a certificate".into()))?;
    let serial = common::tls::serial_of(&leaf).map_err(|e| Error::Internal(e.to_string()))?;
    let (_, not_after) = common::tls::credentials::validity(&leaf).map_err(|e| Error::Internal(e.to_string()))?;
    let (hostname, ip) = named.map(|(h, ip)| (h.to_owned(), ip.to_string())).unwrap_or_default();
    rows::ActiveModel {
        cluster_id: Set(identity.cluster_id),
        serial: Set(serial),
        host_id: Set(identity.host_id.0.clone()),
        component: Set(identity.component.to_string()),
        hostname: Set(hostname),
        ip: Set(ip),
        issued_at: Set(Utc::now().naive_utc()),
        not_after: Set(DateTime::<Utc>::from(not_after).naive_utc()),
        revoked_at: Set(None),
        revoked_by: Set(None),
        reason: Set(String::new()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

fn view(c: rows::Model, tenant: i64, now: DateTime<Utc>) -> Certificate {
    let state = if c.revoked_at.is_some() {
        CertificateState::Revoked
    } else if c.not_after.and_utc() <= now {
        CertificateState::Expired
    } else {
        CertificateState::Valid
    };
    Certificate {
        id: c.id,
        cluster_id: c.cluster_id,
        tenant_id: tenant,
        serial: c.serial,
        host_id: c.host_id,
        component: c.component,
        hostname: c.hostname,
        ip: c.ip,
        state,
        issued_at: timestamp(c.issued_at.and_utc()),
        not_after: timestamp(c.not_after.and_utc()),
        revoked_at: c.revoked_at.map(|t| timestamp(t.and_utc())),
        revoked_by: c.revoked_by,
        reason: c.reason,
    }
}

/// The cluster's certificates, newest first, optionally of one host; for those who may change
/// the cluster.
pub async fn list(
    cx: Ctx<'_>,
    cluster_id: i64,
    host_id: Option<&str>,
    page: Page,
) -> Result<Listed<Certificate>, Error> {
    let cluster = clusters::load(cx, cluster_id, Act::Update).await?;
    let mut query = rows::Entity::find().filter(rows::Column::ClusterId.eq(cluster.id)).order_by_desc(rows::Column::Id);
    if let Some(host) = host_id {
        HostId::parse(host).map_err(|e| Error::invalid("host_id", e.to_string()))?;
        query = query.filter(rows::Column::HostId.eq(host));
    }
    let now = Utc::now();
    Ok(super::list(cx.db, query, page).await?.map(|c| view(c, cluster.tenant_id, now)))
}

/// Revokes, in a cluster the caller may change, every unexpired certificate of a host or the one
/// with a serial. Answers the cluster's tenant and what was revoked now; naming a host or serial
/// the cluster never had certificates for is a 404, so a typo is not taken for success.
pub async fn revoke(
    cx: Ctx<'_>,
    cluster_id: i64,
    body: RevokeCertificates,
) -> Result<(i64, RevokedCertificates), Error> {
    let cluster = clusters::load(cx, cluster_id, Act::Update).await?;
    let reason = body.reason.unwrap_or_default();
    validate::text("reason", &reason, 1024)?;
    let mut query = rows::Entity::find().filter(rows::Column::ClusterId.eq(cluster.id));
    query = match (&body.host_id, &body.serial) {
        (Some(host), None) => {
            HostId::parse(host).map_err(|e| Error::invalid("host_id", e.to_string()))?;
            query.filter(rows::Column::HostId.eq(host.as_str()))
        }
        (None, Some(serial)) => {
            let serial = serial.to_ascii_lowercase();
            if serial.is_empty() || serial.len() > 40 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::invalid("serial", "serial must be 1 to 40 hex digits"));
            }
            query.filter(rows::Column::Serial.eq(serial))
        }
        _ => return Err(Error::invalid("host_id", "give either host_id or serial")),
    };
    let matching = query.clone().limit(1).all(cx.db).await?;
    if matching.is_empty() {
        return Err(Error::not_found("certificate"));
    }
    let now = Utc::now();
    let live = query.filter(rows::Column::RevokedAt.is_null()).filter(rows::Column::NotAfter.gt(now.naive_utc()));
    let ids: Vec<i64> = live.clone().all(cx.db).await?.into_iter().map(|c| c.id).collect();
    if !ids.is_empty() {
        // Only rows still unrevoked are written: a concurrent revocation keeps its own record.
        rows::Entity::update_many()
            .col_expr(rows::Column::RevokedAt, Expr::value(now.naive_utc()))
            .col_expr(rows::Column::RevokedBy, Expr::value(cx.me.user_id))
            .col_expr(rows::Column::Reason, Expr::value(reason))
            .filter(rows::Column::Id.is_in(ids.clone()))
            .filter(rows::Column::RevokedAt.is_null())
            .exec(cx.db)
            .await?;
    }
    let revoked = rows::Entity::find()
        .filter(rows::Column::Id.is_in(ids))
        .filter(rows::Column::RevokedBy.eq(cx.me.user_id))
        .order_by_asc(rows::Column::Id)
        .all(cx.db)
        .await?
        .into_iter()
        .map(|c| view(c, cluster.tenant_id, now))
        .collect();
    tracing::info!(cluster_id = cluster.id, user_id = cx.me.user_id, "certificates revoked");
    Ok((cluster.tenant_id, RevokedCertificates { revoked }))
}

/// The serials revoked and not yet expired: of one cluster, or of every cluster for `None`.
/// Capped at [`common::tls::revoked::MAX_REVOKED`], newest revocations first.
pub async fn revoked_serials(db: &DatabaseConnection, cluster_id: Option<i64>) -> Result<Vec<String>, Error> {
    let mut query = rows::Entity::find()
        .select_only()
        .column(rows::Column::Serial)
        .filter(rows::Column::RevokedAt.is_not_null())
        .filter(rows::Column::NotAfter.gt(Utc::now().naive_utc()))
        .order_by_desc(rows::Column::RevokedAt)
        .limit(common::tls::revoked::MAX_REVOKED as u64);
    if let Some(cluster) = cluster_id {
        query = query.filter(rows::Column::ClusterId.eq(cluster));
    }
    Ok(query.into_tuple::<String>().all(db).await?)
}

/// Makes `revocations` the revoked serials of every cluster (what a manager refuses); answers
/// how many are newly refused.
pub async fn refresh(db: &DatabaseConnection, revocations: &Revocations) -> Result<usize, Error> {
    let serials = revoked_serials(db, None).await?;
    revocations.replace(serials).map_err(|e| Error::Internal(e.to_string()))
}

/// Drops rows of certificates expired over [`KEPT_AFTER_EXPIRY`] ago; answers how many.
pub async fn forget_expired(db: &DatabaseConnection) -> Result<u64, Error> {
    let before = (Utc::now() - KEPT_AFTER_EXPIRY).naive_utc();
    Ok(rows::Entity::delete_many().filter(rows::Column::NotAfter.lt(before)).exec(db).await?.rows_affected)
}

/// How often a manager reloads the revoked serials (other replicas' revocations reach it within
/// this; its own take effect at once).
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(5);

/// Reloads `revocations` every [`REFRESH`] and drops long-expired rows hourly, until `shutdown`.
/// A failed reload keeps the last list (logged); the next one tries again.
pub async fn keep_fresh(
    db: DatabaseConnection,
    revocations: Revocations,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(REFRESH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_forget = std::time::Instant::now();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match refresh(&db, &revocations).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(newly_revoked = n, total = revocations.len(), "revoked certificates refused"),
            Err(e) => tracing::warn!(error = %e, "reloading revoked certificates failed; the last list stays"),
        }
        if last_forget.elapsed() >= std::time::Duration::from_secs(3600) {
            last_forget = std::time::Instant::now();
            if let Err(e) = forget_expired(&db).await {
                tracing::warn!(error = %e, "dropping expired certificate records failed");
            }
        }
    }
}
