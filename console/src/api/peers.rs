//! Peers insight: the filtered list, counts by version, state, IDC and location, and a CSV
//! export. Counts and exports page through the API (1000 peers a call) up to [`MAX_PEERS`], so
//! the browser never receives more than one page of rows to draw a chart.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::api::hosts::Host;
use crate::api::page::Page;

/// The most peers counted or exported at once.
pub const MAX_PEERS: u64 = 10_000;

/// The largest page the API answers.
#[cfg(feature = "ssr")]
const API_PAGE: u64 = 1000;

/// The peer filters as the page's query string carries them; empty means "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerFilter {
    /// A cluster id, as text.
    pub cluster_id: String,
    /// `active` or `inactive`.
    pub state: String,
    /// An exact hostname or IP address.
    pub search: String,
}

#[cfg(any(feature = "ssr", test))]
impl PeerFilter {
    /// The API's filters: the search goes to `ip` when it is an IP address, else to `hostname`
    /// (the API matches both exactly).
    pub fn to_query(&self) -> Result<Vec<(&'static str, String)>, ApiError> {
        let mut query = Vec::new();
        match self.cluster_id.trim() {
            "" => {}
            c => query.push(("cluster_id", super::number::<i64>("cluster_id", c)?.to_string())),
        }
        if !self.state.is_empty() {
            query.push(("state", self.state.clone()));
        }
        match self.search.trim() {
            "" => {}
            s if s.parse::<std::net::IpAddr>().is_ok() => query.push(("ip", s.to_owned())),
            s => query.push(("hostname", s.to_owned())),
        }
        Ok(query)
    }
}

/// One bar of a chart: a value and how many peers have it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub label: String,
    pub count: u64,
}

/// Peer counts for the charts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerInsight {
    /// Peers matching the filters.
    pub total: u64,
    /// Peers counted (at most [`MAX_PEERS`]).
    pub counted: u64,
    pub by_version: Vec<Bucket>,
    pub by_state: Vec<Bucket>,
    pub by_idc: Vec<Bucket>,
    pub by_location: Vec<Bucket>,
}

/// The CSV export of the filtered peers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerExport {
    pub csv: String,
    /// Peers in the file (at most [`MAX_PEERS`]).
    pub rows: u64,
    /// Peers matching the filters.
    pub total: u64,
}

/// How many bars a chart shows; the rest are summed into one "other" bar.
#[cfg(feature = "ssr")]
const CHART_BARS: usize = 8;

/// Counts values into buckets, largest first (ties by label), at most `top` of them: when there
/// are more, the smallest are summed into a last bucket called "other". Empty values count as
/// "unknown".
#[cfg(any(feature = "ssr", test))]
pub fn buckets<'a>(values: impl IntoIterator<Item = &'a str>, top: usize) -> Vec<Bucket> {
    let mut counts = std::collections::HashMap::<&str, u64>::new();
    for v in values {
        let v = v.trim();
        *counts.entry(if v.is_empty() { "unknown" } else { v }).or_default() += 1;
    }
    let mut all: Vec<Bucket> =
        counts.into_iter().map(|(label, count)| Bucket { label: label.to_owned(), count }).collect();
    all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.label.cmp(&b.label)));
    if top > 0 && all.len() > top {
        let other: u64 = all.drain(top - 1..).map(|b| b.count).sum();
        all.push(Bucket { label: "other".into(), count: other });
    }
    all
}

/// The columns of the CSV export, in order.
#[cfg(any(feature = "ssr", test))]
pub const CSV_COLUMNS: &[&str] = &[
    "hostname",
    "ip",
    "port",
    "cluster_id",
    "state",
    "idc",
    "location",
    "version",
    "os",
    "platform",
    "last_keep_alive_at",
    "created_at",
];

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break, with quotes
/// doubled. Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a leading
/// `'`: hostnames and versions are reported by the peers themselves.
#[cfg(any(feature = "ssr", test))]
pub fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
}

/// The peers as CSV with a header line, lines ending in CRLF.
#[cfg(any(feature = "ssr", test))]
pub fn peers_csv(peers: &[Host]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push_str("\r\n");
    for p in peers {
        let fields = [
            p.hostname.clone(),
            p.ip.clone(),
            p.port.to_string(),
            p.cluster_id.to_string(),
            p.state.clone(),
            p.idc.clone(),
            p.location.clone(),
            p.version.clone(),
            p.os.clone().unwrap_or_default(),
            p.platform.clone().unwrap_or_default(),
            p.last_keep_alive_at.clone().unwrap_or_default(),
            p.created_at.clone(),
        ];
        out.push_str(&fields.iter().map(|f| csv_field(f)).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// Every peer matching `filter`, up to [`MAX_PEERS`], and how many match in all.
#[cfg(feature = "ssr")]
async fn fetch_all(filter: &PeerFilter) -> Result<(Vec<Host>, u64), ApiError> {
    let query = filter.to_query()?;
    let mut peers = Vec::new();
    let mut total = 0;
    for page in 1..=MAX_PEERS.div_ceil(API_PAGE) {
        let got = super::client::list::<Host>("/api/v1/peers", page, API_PAGE, &query).await?;
        total = got.total;
        let full = got.items.len() as u64 == API_PAGE;
        peers.extend(got.items);
        if !full || peers.len() as u64 >= total {
            break;
        }
    }
    peers.truncate(MAX_PEERS as usize);
    Ok((peers, total))
}

/// One page of peers matching `filter`.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn list_peers(page: u64, filter: PeerFilter) -> Result<Page<Host>, ApiError> {
    super::client::list("/api/v1/peers", page.max(1), 50, &filter.to_query()?).await
}

/// Peer counts by version, state, IDC and location for the charts.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn count_peers(filter: PeerFilter) -> Result<PeerInsight, ApiError> {
    let (peers, total) = fetch_all(&filter).await?;
    let by = |f: fn(&Host) -> &str| buckets(peers.iter().map(f), CHART_BARS);
    Ok(PeerInsight {
        total,
        counted: peers.len() as u64,
        by_version: by(|p| &p.version),
        by_state: by(|p| &p.state),
        by_idc: by(|p| &p.idc),
        by_location: by(|p| &p.location),
    })
}

/// The peers matching `filter` as CSV.
#[server(prefix = "/console/fn", output = crate::api::json::Json)]
pub async fn export_peers(filter: PeerFilter) -> Result<PeerExport, ApiError> {
    let (peers, total) = fetch_all(&filter).await?;
    Ok(PeerExport { csv: peers_csv(&peers), rows: peers.len() as u64, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(hostname: &str, version: &str) -> Host {
        Host {
            id: 1,
            cluster_id: 2,
            hostname: hostname.into(),
            ip: "10.0.0.1".into(),
            port: 4000,
            download_port: Some(4001),
            idc: "idc-a".into(),
            location: "eu|fr".into(),
            state: "active".into(),
            version: version.into(),
            features: vec![],
            os: Some("linux".into()),
            platform: None,
            last_keep_alive_at: None,
            upload_rate: 0,
            created_at: "2026-01-02T03:04:05Z".into(),
        }
    }

    #[test]
    fn buckets_count_largest_first_and_fold_the_tail() {
        assert_eq!(buckets([], 8), vec![]);
        let got = buckets(["b", "a", "b", "", "c", "d"], 3);
        let want = [("b", 2), ("a", 1), ("other", 3)];
        assert_eq!(got, want.map(|(l, c)| Bucket { label: l.into(), count: c }));
        // Exactly `top` values: nothing folded.
        assert_eq!(buckets(["x", "y", "z"], 3).len(), 3);
        assert_eq!(buckets(["", " "], 3), vec![Bucket { label: "unknown".into(), count: 2 }]);
    }

    #[test]
    fn csv_fields_are_quoted_and_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("@x,y"), "\"'@x,y\"");
    }

    #[test]
    fn csv_has_a_header_and_one_line_per_peer() {
        let csv = peers_csv(&[peer("a", "1.0"), peer("b,c", "2.0")]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(lines[1], "a,10.0.0.1,4000,2,active,idc-a,eu|fr,1.0,linux,,,2026-01-02T03:04:05Z");
        assert!(lines[2].starts_with("\"b,c\",10.0.0.1,"));
        assert_eq!(lines[3], "");
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn the_search_goes_to_ip_or_hostname() {
        let q = |search: &str| PeerFilter { search: search.into(), ..Default::default() }.to_query().unwrap();
        assert_eq!(q(" 10.1.2.3 "), vec![("ip", "10.1.2.3".to_owned())]);
        assert_eq!(q("fe80::1"), vec![("ip", "fe80::1".to_owned())]);
        assert_eq!(q("peer-1"), vec![("hostname", "peer-1".to_owned())]);
        assert_eq!(q(""), vec![]);
        let f = PeerFilter { cluster_id: "7".into(), state: "active".into(), search: String::new() };
        assert_eq!(f.to_query().unwrap(), vec![("cluster_id", "7".to_owned()), ("state", "active".to_owned())]);
        let bad = PeerFilter { cluster_id: "x".into(), ..Default::default() };
        assert_eq!(bad.to_query().unwrap_err().field.as_deref(), Some("cluster_id"));
    }
}
