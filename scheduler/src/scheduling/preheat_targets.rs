//! Which hosts a preheat reaches: the scope picks the kind (one seed peer, every seed peer, every
//! host), then Dragonfly's narrowing applies in its priority: the hosts with the given IPs, else
//! a count, else a percentage (rounded up). Pure over a snapshot of the connected hosts, so each
//! rule is tested without a runtime.
//!
//! Among equals, hosts are ranked by a hash of the preheat's key and the host's id (rendezvous
//! hashing): the same image goes to the same seed peer every time, while different images
//! spread over the seed peers, and a `count` takes a different slice of the cluster per image.

use std::net::IpAddr;

use crate::resource::{Host, HostKind};

/// The kind of hosts a preheat reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One seed peer (Dragonfly's default).
    SingleSeedPeer,
    AllSeedPeers,
    /// Every host, seed peers included.
    AllPeers,
}

/// How the scope's hosts are narrowed, in Dragonfly's priority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Narrowing {
    /// Every host of the scope.
    None,
    /// The hosts of the scope with these addresses.
    Ips(Vec<IpAddr>),
    /// At most this many hosts (at least 1).
    Count(u32),
    /// This share of the scope's hosts, 1–100, rounded up.
    Percentage(u32),
}

/// Why no host could be chosen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("the cluster has no {0} with an open order stream")]
    NoHost(&'static str),
    #[error("no {scope} of the cluster has the address(es) {ips}")]
    NoHostWithIps { scope: &'static str, ips: String },
    #[error("count must be at least 1")]
    ZeroCount,
    #[error("percentage must be 1-100, not {0}")]
    Percentage(u32),
}

impl Scope {
    fn admits(self, host: &Host) -> bool {
        match self {
            Scope::SingleSeedPeer | Scope::AllSeedPeers => host.kind == HostKind::Seed,
            Scope::AllPeers => true,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Scope::SingleSeedPeer | Scope::AllSeedPeers => "seed peer",
            Scope::AllPeers => "host",
        }
    }
}

/// The hosts of `connected` a preheat keyed `key` reaches, in rank order.
pub fn choose(connected: Vec<Host>, scope: Scope, narrowing: &Narrowing, key: &str) -> Result<Vec<Host>, TargetError> {
    let mut hosts: Vec<Host> = connected.into_iter().filter(|h| scope.admits(h)).collect();
    if hosts.is_empty() {
        return Err(TargetError::NoHost(scope.noun()));
    }
    hosts.sort_by_cached_key(|h| rank(key, h));
    if scope == Scope::SingleSeedPeer {
        // One seed peer; with IPs, one of those.
        if let Narrowing::Ips(ips) = narrowing {
            hosts = with_ips(hosts, ips, scope)?;
        }
        hosts.truncate(1);
        return Ok(hosts);
    }
    match narrowing {
        Narrowing::None => {}
        Narrowing::Ips(ips) => hosts = with_ips(hosts, ips, scope)?,
        Narrowing::Count(0) => return Err(TargetError::ZeroCount),
        Narrowing::Count(n) => hosts.truncate(*n as usize),
        Narrowing::Percentage(p) if !(1..=100).contains(p) => return Err(TargetError::Percentage(*p)),
        Narrowing::Percentage(p) => {
            let keep = (hosts.len() * *p as usize).div_ceil(100);
            hosts.truncate(keep);
        }
    }
    Ok(hosts)
}

fn with_ips(hosts: Vec<Host>, ips: &[IpAddr], scope: Scope) -> Result<Vec<Host>, TargetError> {
    let kept: Vec<Host> =
        hosts.into_iter().filter(|h| h.ip.parse::<IpAddr>().is_ok_and(|ip| ips.contains(&ip))).collect();
    if kept.is_empty() {
        let ips = ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
        return Err(TargetError::NoHostWithIps { scope: scope.noun(), ips });
    }
    Ok(kept)
}

fn rank(key: &str, host: &Host) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(key.as_bytes());
    h.update(&[0]);
    h.update(host.id.0.as_bytes());
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use common::ids::HostId;

    use super::*;

    fn host(n: u8, kind: HostKind) -> Host {
        let ip = format!("10.0.0.{n}");
        Host {
            id: HostId::for_host(&format!("h{n}"), &ip, kind == HostKind::Seed),
            hostname: format!("h{n}"),
            ip,
            upload_port: 4000,
            kind,
            idc: String::new(),
            location: String::new(),
            upload_limit: 50,
            version: String::new(),
        }
    }

    /// Seeds 1–3, normal hosts 4–10.
    fn cluster() -> Vec<Host> {
        (1..=10).map(|n| host(n, if n <= 3 { HostKind::Seed } else { HostKind::Normal })).collect()
    }

    fn names(hosts: &[Host]) -> Vec<String> {
        let mut v: Vec<String> = hosts.iter().map(|h| h.hostname.clone()).collect();
        v.sort();
        v
    }

    #[test]
    fn single_seed_peer_is_one_seed_the_same_for_the_same_key_spread_over_keys() {
        let one = choose(cluster(), Scope::SingleSeedPeer, &Narrowing::None, "image-a").unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].kind, HostKind::Seed);
        let again = choose(cluster(), Scope::SingleSeedPeer, &Narrowing::Count(5), "image-a").unwrap();
        assert_eq!(again, one, "a count does not widen a single seed peer");
        let seeds: std::collections::HashSet<String> = (0..30)
            .map(|i| {
                choose(cluster(), Scope::SingleSeedPeer, &Narrowing::None, &format!("k{i}")).unwrap()[0]
                    .hostname
                    .clone()
            })
            .collect();
        assert_eq!(seeds.len(), 3, "thirty images land on every seed peer");
    }

    #[test]
    fn all_seed_peers_and_all_peers() {
        assert_eq!(names(&choose(cluster(), Scope::AllSeedPeers, &Narrowing::None, "k").unwrap()), ["h1", "h2", "h3"]);
        assert_eq!(choose(cluster(), Scope::AllPeers, &Narrowing::None, "k").unwrap().len(), 10);
    }

    #[test]
    fn ips_come_before_count_and_percentage() {
        let ips =
            Narrowing::Ips(vec!["10.0.0.5".parse().unwrap(), "10.0.0.7".parse().unwrap(), "10.9.9.9".parse().unwrap()]);
        assert_eq!(names(&choose(cluster(), Scope::AllPeers, &ips, "k").unwrap()), ["h5", "h7"]);
        // The IPs of normal hosts are not seed peers.
        assert_eq!(
            choose(cluster(), Scope::AllSeedPeers, &ips, "k").unwrap_err(),
            TargetError::NoHostWithIps { scope: "seed peer", ips: "10.0.0.5, 10.0.0.7, 10.9.9.9".into() }
        );
        let seed_ip = Narrowing::Ips(vec!["10.0.0.2".parse().unwrap()]);
        assert_eq!(names(&choose(cluster(), Scope::SingleSeedPeer, &seed_ip, "k").unwrap()), ["h2"]);
    }

    #[test]
    fn count_and_percentage_take_a_slice_rounded_up() {
        assert_eq!(choose(cluster(), Scope::AllPeers, &Narrowing::Count(4), "k").unwrap().len(), 4);
        assert_eq!(choose(cluster(), Scope::AllPeers, &Narrowing::Count(40), "k").unwrap().len(), 10);
        assert_eq!(choose(cluster(), Scope::AllPeers, &Narrowing::Percentage(25), "k").unwrap().len(), 3);
        assert_eq!(choose(cluster(), Scope::AllSeedPeers, &Narrowing::Percentage(1), "k").unwrap().len(), 1);
        assert_eq!(choose(cluster(), Scope::AllPeers, &Narrowing::Percentage(100), "k").unwrap().len(), 10);
        let a = names(&choose(cluster(), Scope::AllPeers, &Narrowing::Count(3), "image-a").unwrap());
        let b = names(&choose(cluster(), Scope::AllPeers, &Narrowing::Count(3), "image-b").unwrap());
        assert_ne!(a, b, "different images take different slices");
    }

    #[test]
    fn bad_narrowing_and_empty_scopes_are_refused() {
        assert_eq!(choose(cluster(), Scope::AllPeers, &Narrowing::Count(0), "k").unwrap_err(), TargetError::ZeroCount);
        assert_eq!(
            choose(cluster(), Scope::AllPeers, &Narrowing::Percentage(101), "k").unwrap_err(),
            TargetError::Percentage(101)
        );
        let normal_only: Vec<Host> = cluster().into_iter().filter(|h| h.kind == HostKind::Normal).collect();
        assert_eq!(
            choose(normal_only, Scope::SingleSeedPeer, &Narrowing::None, "k").unwrap_err(),
            TargetError::NoHost("seed peer")
        );
        assert_eq!(choose(vec![], Scope::AllPeers, &Narrowing::None, "k").unwrap_err(), TargetError::NoHost("host"));
    }
}
