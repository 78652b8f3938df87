//! Seed peers that keep a `WatchSeedTasks` stream open, and handing them new tasks.

/// What a host is asked to fetch: a seed peer from the origin, or any host for a preheat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedOrder {
    pub task_id: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub piece_length: Option<u64>,
    /// With the URL and piece length, what the id was derived from.
    pub tag: String,
    pub application: String,
    pub filtered_query_params: Vec<String>,
    /// The id of a blob URL is its digest's.
    pub blob_digest: bool,
}

/// Connected seed peers, each with the channel its stream reads from.
pub type SeedWatchers = super::Watchers<SeedOrder>;

#[cfg(test)]
mod tests {
    use common::ids::HostId;

    use super::*;

    #[test]
    fn dispatch_reaches_a_live_watcher_only() {
        let seeds = SeedWatchers::default();
        let order = SeedOrder {
            task_id: "t".into(),
            url: "http://o/x".into(),
            headers: vec![],
            piece_length: None,
            tag: String::new(),
            application: String::new(),
            filtered_query_params: vec![],
            blob_digest: false,
        };
        assert!(!seeds.dispatch(order.clone()));
        let mut rx = seeds.watch(HostId("seed".into()));
        assert!(seeds.any() && seeds.is_connected(&HostId("seed".into())));
        assert!(seeds.dispatch(order.clone()));
        assert_eq!(rx.try_recv().unwrap(), order);
        drop(rx);
        assert!(!seeds.any());
        assert!(!seeds.dispatch(order));
    }
}
