//! Keeping the cache within bounds: tasks unused for longer than a TTL go, and when the disk is
//! fuller than the high watermark, the least recently used tasks go until it is under the low
//! one. A task being downloaded is never touched.

use std::{path::Path, sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::storage::Storage;

/// When to evict.
#[derive(Debug, Clone)]
pub struct GcPolicy {
    /// Tasks unused for this long are removed.
    pub task_ttl: Duration,
    /// Start evicting above this share of the disk in use (0–100).
    pub high_watermark_percent: u8,
    /// Evict until at most this share is in use.
    pub low_watermark_percent: u8,
}

/// Disk space of the file system holding the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    pub total: u64,
    pub available: u64,
}

impl DiskUsage {
    /// Reads the file system of `path`.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
        let block = st.fragment_size() as u64;
        Ok(Self { total: st.blocks() as u64 * block, available: st.blocks_available() as u64 * block })
    }

    fn used_percent(&self, freed: u64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let used = self.total.saturating_sub(self.available).saturating_sub(freed);
        used as f64 * 100.0 / self.total as f64
    }
}

/// One collection pass at `now` (Unix seconds). Returns the ids removed.
pub fn collect(storage: &Storage, policy: &GcPolicy, now: u64, disk: DiskUsage) -> Vec<common::ids::TaskId> {
    let mut removed = Vec::new();
    let mut tasks: Vec<_> = storage.tasks().into_iter().filter(|t| !t.is_busy()).collect();
    tasks.sort_by_key(|t| t.last_used());
    let ttl = policy.task_ttl.as_secs();
    let mut freed = 0u64;
    tasks.retain(|t| {
        if now.saturating_sub(t.last_used()) <= ttl {
            return true;
        }
        freed += t.layout().map(|l| l.content_length).unwrap_or(0);
        if storage.remove(t.id()).unwrap_or(false) {
            tracing::info!(task_id = %t.id(), "gc: task expired");
            removed.push(t.id().clone());
        }
        false
    });
    if disk.used_percent(freed) > f64::from(policy.high_watermark_percent) {
        for t in tasks {
            if disk.used_percent(freed) <= f64::from(policy.low_watermark_percent) {
                break;
            }
            freed += t.layout().map(|l| l.content_length).unwrap_or(0);
            if storage.remove(t.id()).unwrap_or(false) {
                tracing::info!(task_id = %t.id(), "gc: evicted for disk space");
                removed.push(t.id().clone());
            }
        }
    }
    removed
}

/// Runs [`collect`] every `interval` until `shutdown`.
pub async fn run(
    storage: Arc<Storage>,
    root: std::path::PathBuf,
    policy: GcPolicy,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                match DiskUsage::of(&root) {
                    Ok(disk) => { collect(&storage, &policy, now, disk); }
                    Err(e) => tracing::warn!(error = %e, "gc: cannot read disk usage"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::{digest::PieceDigest, ids::TaskId, piece::PieceLayout};

    fn task(storage: &Storage, id: &str, len: u64) {
        let t = storage.task(&TaskId(id.into()), "http://o/x").unwrap();
        t.set_layout(PieceLayout::new(len, len.max(1)).unwrap()).unwrap();
        if len > 0 {
            t.write_piece(0, &vec![1; len as usize], PieceDigest([0; 32])).unwrap();
        }
    }

    #[test]
    fn expired_tasks_go_then_lru_until_under_the_low_watermark() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        for id in ["aaa1", "bbb2", "ccc3", "ddd4"] {
            task(&storage, id, 100);
        }
        let now = storage.get(&TaskId("aaa1".into())).unwrap().last_used();
        storage.get(&TaskId("aaa1".into())).unwrap().set_last_used(now - 10_000);
        storage.get(&TaskId("bbb2".into())).unwrap().set_last_used(now - 50);
        storage.get(&TaskId("ccc3".into())).unwrap().set_last_used(now - 40);
        let policy =
            GcPolicy { task_ttl: Duration::from_secs(3600), high_watermark_percent: 80, low_watermark_percent: 60 };

        // Plenty of room: only the expired task goes.
        let removed = collect(&storage, &policy, now, DiskUsage { total: 1000, available: 900 });
        assert_eq!(removed, vec![TaskId("aaa1".into())]);
        assert!(!dir.path().join("meta").join("aaa1.json").exists());

        // 90% used: least recently used first, until at most 60% (each task frees 100 of 1000).
        let removed = collect(&storage, &policy, now, DiskUsage { total: 1000, available: 100 });
        assert_eq!(removed, vec![TaskId("bbb2".into()), TaskId("ccc3".into()), TaskId("ddd4".into())]);
        assert!(storage.tasks().is_empty());
    }

    #[test]
    fn busy_tasks_are_never_collected() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path()).unwrap();
        task(&storage, "eee5", 10);
        let t = storage.get(&TaskId("eee5".into())).unwrap();
        t.set_last_used(0);
        let _busy = t.mark_busy();
        let policy = GcPolicy { task_ttl: Duration::from_secs(1), high_watermark_percent: 1, low_watermark_percent: 0 };
        assert!(collect(&storage, &policy, 1_000_000, DiskUsage { total: 10, available: 0 }).is_empty());
    }
}
