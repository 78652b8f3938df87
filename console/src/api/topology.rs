//! A cluster's topology: its schedulers, seed peers and peers with their state, as one snapshot.
//!
//! The page renders the first snapshot on the server; in the browser it then follows
//! `/console/events/topology?cluster_id=` (server-sent events the manager pushes when the
//! snapshot changes, see `server::console`), so state changes show without reloading.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::api::hosts::Host;

/// Past this many peers the snapshot is cut (and says so): the page groups them anyway.
pub const PEER_CAP: u64 = 5000;

/// One host in the drawing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub id: i64,
    pub hostname: String,
    pub ip: String,
    pub state: String,
    pub idc: String,
    pub location: String,
    pub version: String,
    pub last_keep_alive_at: Option<String>,
    /// Bytes per second it uploaded lately (its load); 0 for schedulers.
    pub upload_rate: u64,
}

impl From<Host> for Node {
    fn from(h: Host) -> Self {
        Self {
            id: h.id,
            hostname: h.hostname,
            ip: h.ip,
            state: h.state,
            idc: h.idc,
            location: h.location,
            version: h.version,
            last_keep_alive_at: h.last_keep_alive_at,
            upload_rate: h.upload_rate,
        }
    }
}

impl Node {
    pub fn active(&self) -> bool {
        self.state == "active"
    }

    /// Its load: the upload rate while active (an inactive host's last figure is stale).
    pub fn load(&self) -> u64 {
        if self.active() { self.upload_rate } else { 0 }
    }
}

/// Everything registered in one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topology {
    pub cluster_id: i64,
    pub schedulers: Vec<Node>,
    pub seed_peers: Vec<Node>,
    pub peers: Vec<Node>,
    /// More peers exist than [`PEER_CAP`].
    pub truncated: bool,
}

/// Peers grouped for drawing: by IDC, then location ("" when unset), largest group first.
pub fn groups(peers: &[Node]) -> Vec<(String, Vec<&Node>)> {
    let mut groups: Vec<(String, Vec<&Node>)> = Vec::new();
    for p in peers {
        let key = match (p.idc.as_str(), p.location.as_str()) {
            ("", "") => "no IDC or location".to_owned(),
            (idc, "") => idc.to_owned(),
            ("", loc) => loc.to_owned(),
            (idc, loc) => format!("{idc} · {loc}"),
        };
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(p),
            None => groups.push((key, vec![p])),
        }
    }
    groups.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    groups
}

/// Reads a cluster's topology through the API as `caller`.
#[cfg(feature = "ssr")]
pub async fn fetch(caller: &super::client::Caller, cluster_id: i64) -> Result<Topology, ApiError> {
    use super::hosts::HostKind;
    let filter = [("cluster_id", cluster_id.to_string())];
    let all = |kind: HostKind, cap: u64| {
        let filter = &filter;
        async move {
            let mut nodes: Vec<Node> = Vec::new();
            let mut page = 1;
            loop {
                let got = caller.list::<Host>(kind.path(), page, 1000, filter).await?;
                let total = got.total;
                nodes.extend(got.items.into_iter().map(Node::from));
                if nodes.len() as u64 >= total.min(cap) || page * 1000 >= total {
                    return Ok::<_, ApiError>((nodes, total > cap));
                }
                page += 1;
            }
        }
    };
    // The cluster itself first: a cluster of another tenant is a 404 here, not an empty drawing.
    let _: common::api::Cluster = caller.get(&format!("/api/v1/clusters/{cluster_id}"), &[]).await?;
    let ((schedulers, _), (seed_peers, _), (peers, truncated)) = futures::try_join!(
        all(HostKind::Scheduler, 1000),
        all(HostKind::SeedPeer, 1000),
        all(HostKind::Peer, PEER_CAP)
    )?;
    Ok(Topology { cluster_id, schedulers, seed_peers, peers, truncated })
}

/// The topology of `cluster_id`, or of the first cluster the visitor can see.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn cluster_topology(cluster_id: Option<i64>) -> Result<Topology, ApiError> {
    let caller = super::client::Caller::from_context()?;
    let id = match cluster_id {
        Some(id) => id,
        None => match caller.list::<common::api::Cluster>("/api/v1/clusters", 1, 1, &[]).await?.items.first() {
            Some(c) => c.id,
            None => return Err(ApiError::not_found("there is no cluster yet: create one first")),
        },
    };
    fetch(&caller, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(idc: &str, location: &str) -> Node {
        Node {
            id: 0,
            hostname: String::new(),
            ip: String::new(),
            state: "active".into(),
            idc: idc.into(),
            location: location.into(),
            version: String::new(),
            last_keep_alive_at: None,
            upload_rate: 0,
        }
    }

    #[test]
    fn peers_group_by_idc_and_location_largest_first() {
        let peers = [node("a", ""), node("b", "x"), node("b", "x"), node("", "")];
        let g = groups(&peers);
        let summary: Vec<(&str, usize)> = g.iter().map(|(k, v)| (k.as_str(), v.len())).collect();
        assert_eq!(summary, vec![("b · x", 2), ("a", 1), ("no IDC or location", 1)]);
    }
}
