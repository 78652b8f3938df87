//! Which cluster serves a peer: the pure scoring behind `ListSchedulers`.
//!
//! A cluster's `scopes` name the peers it is meant for (networks, hostname patterns, a data
//! centre, a location). Each peer is sent to the live cluster whose scopes fit it best; the
//! default cluster wins only when nothing fits better, and ties go to the oldest cluster (lowest
//! id) so every manager replica answers the same. No I/O here, so the rules are tested directly.

use std::net::IpAddr;

use ipnet::IpNet;
use regex::Regex;

use super::clusters::Scopes;

/// Weight of an IP inside one of the cluster's CIDRs.
const CIDR_WEIGHT: f64 = 0.3;
/// Weight of a hostname matching one of the cluster's regexes.
const HOSTNAME_WEIGHT: f64 = 0.3;
/// Weight of the same data centre.
const IDC_WEIGHT: f64 = 0.25;
/// Weight of a matching location path (scaled by how much of it matches).
const LOCATION_WEIGHT: f64 = 0.14;
/// Weight of being the default cluster.
const DEFAULT_WEIGHT: f64 = 0.01;

/// Reads the `clusters.scopes` column; a malformed value (the REST layer validates on write, so
/// only a hand-edited row) counts as no scopes rather than hiding the cluster.
pub fn scopes_from_json(value: &serde_json::Value) -> Scopes {
    serde_json::from_value(value.clone()).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "ignoring malformed cluster scopes");
        Scopes::default()
    })
}

/// What a peer says about itself when it asks for schedulers.
#[derive(Debug, Clone, Default)]
pub struct PeerPlace {
    pub hostname: String,
    pub ip: Option<IpAddr>,
    pub idc: String,
    pub location: String,
}

/// A live cluster the peer may be sent to.
#[derive(Debug, Clone)]
pub struct CandidateCluster {
    pub id: i64,
    pub scopes: Scopes,
    pub is_default: bool,
}

/// How well `cluster` fits `peer`, from 0 to 1.
pub fn score(cluster: &CandidateCluster, peer: &PeerPlace) -> f64 {
    let s = &cluster.scopes;
    let mut total = 0.0;
    if let Some(ip) = peer.ip
        && s.cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()).any(|net| net.contains(&ip))
    {
        total += CIDR_WEIGHT;
    }
    if !peer.hostname.is_empty()
        && s.hostnames.iter().filter_map(|h| Regex::new(h).ok()).any(|re| re.is_match(&peer.hostname))
    {
        total += HOSTNAME_WEIGHT;
    }
    if !peer.idc.is_empty() && s.idc.split('|').any(|idc| idc == peer.idc) {
        total += IDC_WEIGHT;
    }
    total += LOCATION_WEIGHT * location_affinity(&s.location, &peer.location);
    if cluster.is_default {
        total += DEFAULT_WEIGHT;
    }
    total
}

/// The share of the cluster's location path that the peer's path starts with: `a|b` against a
/// peer in `a|b|c` is 1, against `a|x` is 0.5, and an empty side is 0.
fn location_affinity(scope: &str, peer: &str) -> f64 {
    if scope.is_empty() || peer.is_empty() {
        return 0.0;
    }
    let wanted: Vec<&str> = scope.split('|').collect();
    let matched = wanted.iter().zip(peer.split('|')).take_while(|(a, b)| **a == *b).count();
    matched as f64 / wanted.len() as f64
}

/// The best-fitting cluster's id; ties go to the lowest id. `None` only without clusters.
pub fn best_cluster(clusters: &[CandidateCluster], peer: &PeerPlace) -> Option<i64> {
    let mut best: Option<(f64, i64)> = None;
    for c in clusters {
        let s = score(c, peer);
        best = match best {
            Some((bs, bid)) if bs > s || (bs == s && bid < c.id) => Some((bs, bid)),
            _ => Some((s, c.id)),
        };
    }
    best.map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(id: i64, scopes: serde_json::Value, is_default: bool) -> CandidateCluster {
        CandidateCluster { id, scopes: scopes_from_json(&scopes), is_default }
    }

    fn peer(hostname: &str, ip: &str, idc: &str, location: &str) -> PeerPlace {
        PeerPlace { hostname: hostname.into(), ip: ip.parse().ok(), idc: idc.into(), location: location.into() }
    }

    #[test]
    fn each_scope_adds_its_weight() {
        let p = peer("web-1", "10.1.2.3", "dc1", "eu|west|r1");
        let cases = [
            (serde_json::json!({}), false, 0.0),
            (serde_json::json!({}), true, 0.01),
            (serde_json::json!({"cidrs": ["10.0.0.0/8"]}), false, 0.3),
            (serde_json::json!({"cidrs": ["192.168.0.0/16", "bad"]}), false, 0.0),
            (serde_json::json!({"hostnames": ["^web-.*$"]}), false, 0.3),
            (serde_json::json!({"hostnames": ["^db-", "(unclosed"]}), false, 0.0),
            (serde_json::json!({"idc": "dc0|dc1"}), false, 0.25),
            (serde_json::json!({"idc": "dc"}), false, 0.0),
            (serde_json::json!({"location": "eu|west"}), false, 0.14),
            (serde_json::json!({"location": "eu|east"}), false, 0.07),
            (serde_json::json!({"location": "us"}), false, 0.0),
            (
                serde_json::json!({"cidrs": ["10.1.0.0/16"], "hostnames": ["web"], "idc": "dc1", "location": "eu"}),
                true,
                1.0,
            ),
        ];
        for (scopes, is_default, want) in cases {
            let got = score(&cluster(1, scopes.clone(), is_default), &p);
            assert!((got - want).abs() < 1e-9, "{scopes} default={is_default}: got {got}, want {want}");
        }
    }

    #[test]
    fn best_cluster_prefers_scopes_over_default_and_breaks_ties_by_lowest_id() {
        let clusters = [
            cluster(1, serde_json::json!({}), true),
            cluster(2, serde_json::json!({"idc": "dc1"}), false),
            cluster(3, serde_json::json!({"cidrs": ["10.0.0.0/8"]}), false),
            cluster(4, serde_json::json!({"hostnames": ["^web-"]}), false),
        ];
        // CIDR and hostname weigh the same: the lower id wins.
        assert_eq!(best_cluster(&clusters, &peer("web-1", "10.0.0.1", "dc1", "")), Some(3));
        assert_eq!(best_cluster(&clusters, &peer("db-1", "10.0.0.1", "", "")), Some(3));
        assert_eq!(best_cluster(&clusters, &peer("db-1", "172.16.0.1", "dc1", "")), Some(2));
        assert_eq!(best_cluster(&clusters, &peer("db-1", "172.16.0.1", "dc9", "")), Some(1));
        assert_eq!(best_cluster(&clusters, &peer("web-2", "", "", "")), Some(4));
        // Without a default, an unmatched peer still gets the oldest cluster.
        assert_eq!(best_cluster(&clusters[1..], &peer("x", "1.1.1.1", "", "")), Some(2));
        assert_eq!(best_cluster(&[], &peer("x", "1.1.1.1", "", "")), None);
        // Input order does not matter.
        let reversed: Vec<_> = clusters.iter().rev().cloned().collect();
        assert_eq!(best_cluster(&reversed, &peer("web-1", "10.0.0.1", "dc1", "")), Some(3));
    }
}
