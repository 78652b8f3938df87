//! `AnnounceCachedTasks`: a host tells this scheduler what its cache holds, so a restart (a new
//! boot id in `AnnounceHostResponse`) or a takeover of a dead scheduler's tasks costs no origin
//! traffic. Everything in the message is a claim of the caller's:
//! - the host is the one its certificate names (the message's `host_id` only without TLS), and
//!   it must have announced itself;
//! - each task's id is derived again from its spec, and its layout and bitmap are bounded
//!   ([`PieceLayout::new`], bits only within the layout);
//! - digests are taken only from a seed peer's certificate on a seed host: a normal peer's would
//!   let it poison every child that checks pieces against them. Without TLS everyone is trusted,
//!   as on every other call; the host must still have announced itself as a seed.

use common::{
    bitmap::PieceBitmap,
    digest::PieceDigest,
    ids::HostId,
    piece::PieceLayout,
    tls::{Caller, Component},
};
use proto::scheduler::v1 as pb;
use tonic::Status;

use super::SchedulerService;
use crate::resource::{CachedCopy, HostKind};

/// Most tasks one call may carry; a host with more sends several calls.
pub const MAX_TASKS_PER_CALL: usize = 256;

/// Records what the caller's cache holds; answers how much was taken.
pub(super) fn announce(
    svc: &SchedulerService,
    caller: &Caller,
    request: pb::AnnounceCachedTasksRequest,
) -> Result<pb::AnnounceCachedTasksResponse, Status> {
    let (host_id, seed_certificate) = match caller.require(super::DAEMONS)? {
        Some(id) => {
            if Some(id.cluster_id) != svc.cluster_id {
                return Err(Status::permission_denied(format!("{id} is not of this scheduler's cluster")));
            }
            (id.host_id.clone(), id.component == Component::SeedPeer)
        }
        None => (HostId::parse(&request.host_id).map_err(|e| Status::invalid_argument(format!("host_id: {e}")))?, true),
    };
    let host = svc
        .hosts
        .get(&host_id)
        .ok_or_else(|| Status::failed_precondition(format!("host {host_id} has not announced itself")))?;
    if request.tasks.len() > MAX_TASKS_PER_CALL {
        return Err(Status::invalid_argument(format!(
            "{} tasks in one call; at most {MAX_TASKS_PER_CALL}",
            request.tasks.len()
        )));
    }
    let trusted = seed_certificate && host.kind == HostKind::Seed;
    let mut answer = pb::AnnounceCachedTasksResponse::default();
    for cached in request.tasks {
        let spec = cached.task.clone().unwrap_or_default();
        match copy_of(&host_id, cached, trusted) {
            Ok((task_id, copy, ignored)) => {
                answer.digests_ignored += ignored;
                if svc.block_list.get().refuses(&spec.url, &spec.application, &spec.tag).is_some() {
                    answer.refused += 1;
                    continue;
                }
                let cell = svc.tasks.get_or_create(&task_id, &spec.url, Vec::new(), spec.piece_length);
                let restored = {
                    let mut t = cell.lock();
                    if t.is_empty() {
                        (t.tag, t.application, t.filtered_query_params) =
                            (spec.tag, spec.application, spec.filtered_query_params);
                        t.blob_digest = spec.blob_digest_task_id;
                    }
                    t.restore(copy)
                };
                match restored {
                    Ok(()) => {
                        answer.accepted += 1;
                        cell.changed();
                    }
                    Err(why) => {
                        tracing::info!(%task_id, host_id = %host_id, %why, "cached copy refused");
                        answer.refused += 1;
                    }
                }
            }
            Err(why) => {
                tracing::info!(host_id = %host_id, %why, "cached task refused");
                answer.refused += 1;
            }
        }
    }
    tracing::info!(host_id = %host_id, accepted = answer.accepted, refused = answer.refused, digests_ignored = answer.digests_ignored, "cached tasks announced");
    Ok(answer)
}

/// One announced task as a [`CachedCopy`] of `host`, with the number of digests left out
/// because the caller is not `trusted` with them.
fn copy_of(
    host: &HostId,
    cached: pb::CachedTask,
    trusted: bool,
) -> Result<(common::ids::TaskId, CachedCopy, u32), String> {
    let spec = cached.task.ok_or("task is required")?;
    let task_id = super::announce_peer::derived_task_id(&spec).map_err(|s| s.message().to_owned())?;
    let layout = PieceLayout::new(cached.content_length, cached.piece_length).map_err(|e| e.to_string())?;
    if spec.piece_length.is_some_and(|p| p != layout.piece_length) {
        return Err(format!("piece length {} is not the one the task's id was derived with", layout.piece_length));
    }
    let finished = PieceBitmap::from_bytes(&cached.finished_pieces);
    if finished.is_empty() {
        return Err("the copy holds no piece".into());
    }
    if let Some(n) = finished.iter().find(|n| *n >= layout.count()) {
        return Err(format!("piece {n} is beyond the content ({} pieces)", layout.count()));
    }
    if cached.digests.len() > layout.count() as usize {
        return Err(format!("{} digests for {} pieces", cached.digests.len(), layout.count()));
    }
    let ignored = if trusted { 0 } else { cached.digests.len() as u32 };
    let digests = if trusted {
        cached
            .digests
            .iter()
            .map(|d| {
                PieceDigest::from_slice(&d.digest)
                    .map(|digest| (d.number, digest))
                    .ok_or_else(|| format!("piece {} digest is not 32 bytes", d.number))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    Ok((task_id, CachedCopy { host_id: host.clone(), layout, finished, digests }, ignored))
}
