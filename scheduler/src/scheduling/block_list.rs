//! The cluster's block list: downloads this cluster refuses to distribute, by URL pattern,
//! application or tag. Set by the manager (`peer_cluster_config.block_list`), checked when a
//! peer registers a download. Pure: no I/O.

use std::sync::{Arc, PoisonError, RwLock};

use regex::Regex;

/// What the cluster refuses.
#[derive(Debug, Clone, Default)]
pub struct BlockList {
    pub applications: Vec<String>,
    pub urls: Vec<Regex>,
    pub tags: Vec<String>,
}

impl BlockList {
    /// Builds the list; patterns that do not compile are skipped (the manager validates them on
    /// write, so this only guards against an older or foreign manager) and named in the error.
    pub fn new(applications: Vec<String>, urls: &[String], tags: Vec<String>) -> (Self, Vec<String>) {
        let mut bad = Vec::new();
        let urls = urls
            .iter()
            .filter_map(|p| match regex::RegexBuilder::new(p).size_limit(1 << 20).build() {
                Ok(r) => Some(r),
                Err(_) => {
                    bad.push(p.clone());
                    None
                }
            })
            .collect();
        (Self { applications, urls, tags }, bad)
    }

    /// Why this download is refused, if it is.
    pub fn refuses(&self, url: &str, application: &str, tag: &str) -> Option<String> {
        if let Some(p) = self.urls.iter().find(|r| r.is_match(url)) {
            return Some(format!("the URL matches {:?}", p.as_str()));
        }
        if !application.is_empty() && self.applications.iter().any(|a| a == application) {
            return Some(format!("application {application:?} is blocked"));
        }
        if !tag.is_empty() && self.tags.iter().any(|t| t == tag) {
            return Some(format!("tag {tag:?} is blocked"));
        }
        None
    }
}

/// The block list in force, replaced at runtime when the manager sends its cluster's settings.
#[derive(Debug, Clone, Default)]
pub struct LiveBlockList(Arc<RwLock<Arc<BlockList>>>);

impl LiveBlockList {
    pub fn get(&self) -> Arc<BlockList> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub fn set(&self, list: BlockList) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_by_url_application_and_tag_only() {
        let (list, bad) =
            BlockList::new(vec!["ml".into()], &["^https://big\\.example/".into(), "(".into()], vec!["nightly".into()]);
        assert_eq!(bad, ["("]);
        assert!(list.refuses("https://big.example/model.bin", "", "").is_some());
        assert!(list.refuses("https://small.example/a", "ml", "").is_some());
        assert!(list.refuses("https://small.example/a", "", "nightly").is_some());
        assert!(list.refuses("https://small.example/a", "web", "stable").is_none());
        assert!(BlockList::default().refuses("https://big.example/x", "ml", "nightly").is_none());
    }
}
