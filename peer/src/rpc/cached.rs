//! Telling a scheduler what this host's cache holds (`AnnounceCachedTasks`), so one that knows
//! nothing of it does not send the next download to the origin: a scheduler seen with a new boot
//! id (it restarted, or is met for the first time) hears of every complete task it is now the
//! first in rendezvous order for; a scheduler that orders this seed peer to fetch a task already
//! whole here (it took the task over from a scheduler that died) hears of that task at once.
//!
//! Only complete tasks whose id can be derived again (their shape was kept) are told. A seed peer
//! sends its pieces' digests (it fetched them from the origin, and the scheduler trusts a seed
//! peer's certificate with them); a normal peer sends none, the scheduler would not take them.

use std::{net::SocketAddr, sync::Arc};

use proto::scheduler::v1 as pb;
use tonic::transport::Channel;

use super::scheduler_set::SchedulerSet;
use crate::storage::{Storage, TaskStore};

/// Most tasks per call, as the scheduler takes them.
const PER_CALL: usize = 256;

/// What this host tells about its cache, and how.
#[derive(Debug, Clone)]
pub struct CacheAnnouncer {
    pub storage: Arc<Storage>,
    pub host_id: common::ids::HostId,
    /// A seed peer sends digests with its copies.
    pub seed: bool,
}

impl CacheAnnouncer {
    /// Tells the scheduler at `addr` of every complete task it comes first for among
    /// `schedulers`; answers how many it took.
    pub async fn announce_owned(&self, schedulers: &SchedulerSet, addr: SocketAddr) -> Result<u32, tonic::Status> {
        let channel = schedulers.channel(addr).map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let tasks: Vec<pb::CachedTask> = self
            .storage
            .tasks()
            .iter()
            .filter(|t| schedulers.for_task(&t.id().0) == Some(addr))
            .filter_map(|t| self.cached(t))
            .collect();
        let mut accepted = 0;
        for chunk in tasks.chunks(PER_CALL) {
            accepted += self.send(channel.clone(), chunk.to_vec()).await?;
        }
        Ok(accepted)
    }

    /// Tells the scheduler on `channel` of `task`, when it is complete here; answers whether
    /// it was told and taken.
    pub async fn announce_one(&self, channel: Channel, task: &TaskStore) -> Result<bool, tonic::Status> {
        let Some(cached) = self.cached(task) else { return Ok(false) };
        Ok(self.send(channel, vec![cached]).await? == 1)
    }

    async fn send(&self, channel: Channel, tasks: Vec<pb::CachedTask>) -> Result<u32, tonic::Status> {
        let mut client = pb::scheduler_client::SchedulerClient::new(channel);
        let request = pb::AnnounceCachedTasksRequest { host_id: self.host_id.0.clone(), tasks };
        let answer = client.announce_cached_tasks(request).await?.into_inner();
        if answer.refused > 0 {
            tracing::warn!(refused = answer.refused, "the scheduler refused some cached tasks");
        }
        Ok(answer.accepted)
    }

    /// `task` as announced: complete, with its shape kept, digests from a seed peer only.
    fn cached(&self, task: &TaskStore) -> Option<pb::CachedTask> {
        let layout = task.layout().filter(|_| task.is_complete())?;
        let shape = task.shape()?;
        let finished = task.finished();
        let digests = if self.seed {
            finished
                .iter()
                .map(|n| Some(pb::PieceDigest { number: n, digest: task.digest(n)?.as_bytes().to_vec() }))
                .collect::<Option<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Some(pb::CachedTask {
            task: Some(pb::TaskSpec {
                task_id: task.id().0.clone(),
                url: task.url().to_owned(),
                request_headers: Default::default(),
                piece_length: shape.piece_length,
                tag: shape.tag,
                application: shape.application,
                filtered_query_params: shape.filtered_query_params,
                blob_digest_task_id: shape.blob_digest,
            }),
            content_length: layout.content_length,
            piece_length: layout.piece_length,
            finished_pieces: finished.to_bytes(),
            digests,
        })
    }
}
