//! Which origins a fetch may reach when it is made on someone else's behalf.
//!
//! The dfdaemon fetches URLs for three kinds of callers, and whose URL it is decides what the
//! fetch may reach ([`Requester`]):
//! - a user of this host, over the download socket (`dfget`): they could fetch the URL
//!   themselves, so the fetch is theirs and is not restricted;
//! - a client of the proxy: a container runtime, or a pod once the proxy is opened wider;
//! - the scheduler, ordering a seed peer to fetch a task that any peer of the cluster started,
//!   through its proxy or its own `dfget`.
//!
//! The last two are [`Requester::Remote`]: this host's place in the network (its loopback
//! services, the cloud's metadata address, the private networks it reaches) is not lent to them.
//! A seed peer cannot tell a URL that came through a proxy from one a `dfget` asked for, so it
//! fetches every seed order as remote: a URL arriving through the proxy is checked wherever it
//! is fetched.
//!
//! [`TargetPolicy`] decides, from the `[proxy]` configuration: a host must match
//! `allowed_hosts` (when there are any), and every address it resolves to must be public or lie
//! in `allowed_private_networks`. The configured registry mirror's host is trusted as configured
//! (an operator-named upstream on a private network keeps working); an upstream a client names
//! (`X-Dragonfly-Registry`, `?ns=`) is not.
//!
//! The check is made where connections are made, not only on a URL's text ([`OriginClients`]):
//! - a host name is resolved by the guarded client's DNS resolver, which refuses it when any of
//!   its addresses is refused and hands the connector exactly the addresses it checked: no
//!   second lookup a rebinding DNS server could answer differently;
//! - an address written in the URL is never resolved, so [`TargetPolicy::check_url`] checks it
//!   before every request, and the redirect policy checks every hop (allowed hosts included);
//! - the guarded client ignores `HTTP_PROXY` and the like: a proxy would resolve names where
//!   they cannot be checked.
//!
//! A refusal is a [`Refusal`], never retried; the proxy answers it with a 403 naming the rule.

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use url::{Host, Url};

use crate::Error;

/// The `User-Agent` of every origin request.
const USER_AGENT: &str = concat!("damselfly-dfdaemon/", env!("CARGO_PKG_VERSION"));

/// Redirects followed per request, as reqwest's default policy does.
const MAX_REDIRECTS: usize = 10;

/// Whose request an origin fetch serves; it decides which client fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requester {
    /// A user of this host, over the download socket: fetched as they could fetch it.
    LocalUser,
    /// A proxy client, or the scheduler on behalf of any peer: fetched through the
    /// [`TargetPolicy`].
    Remote,
}

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// `0.0.0.0/8`, `::`: "this host" (connecting to it reaches loopback).
    Unspecified,
    /// `127.0.0.0/8`, `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), unique-local `fc00::/7`, site-local `fec0::/10`.
    Private,
    /// `100.64.0.0/10`, carrier-grade NAT.
    Shared,
    /// `169.254.0.0/16` (cloud metadata lives there), `fe80::/10`.
    LinkLocal,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// `198.18.0.0/15`.
    Benchmarking,
    /// IETF and future use: `192.0.0/24`, `192.88.99/24`, `240/4`, `100::/64`, `2001::/23`,
    /// IPv4-compatible `::/96`.
    Reserved,
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unspecified => "unspecified",
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::Shared => "shared (carrier-grade NAT)",
            Self::LinkLocal => "link-local",
            Self::Multicast => "multicast",
            Self::Broadcast => "broadcast",
            Self::Documentation => "documentation",
            Self::Benchmarking => "benchmarking",
            Self::Reserved => "reserved",
        })
    }
}

/// The address an IPv6 form carries an IPv4 address in (`::ffff:a.b.c.d`), as that IPv4
/// address; any other address as it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Why `ip` is not a public address, or `None` when it is.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match canonical(ip) {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => Unspecified,
        (10, ..) => Private,
        (100, 64..=127, _) => Shared,
        (127, ..) => Loopback,
        (169, 254, _) => LinkLocal,
        (172, 16..=31, _) => Private,
        (192, 0, 0) | (192, 88, 99) => Reserved,
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Documentation,
        (192, 168, _) => Private,
        (198, 18..=19, _) => Benchmarking,
        (224..=239, ..) => Multicast,
        _ if ip.is_broadcast() => Broadcast,
        (240..=255, ..) => Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass::*;
    let s = ip.segments();
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => Unspecified,
        [0, 0, 0, 0, 0, 0, 0, 1] => Loopback,
        // IPv4-compatible (deprecated) and IPv4-translated forms.
        [0, 0, 0, 0, 0, 0, ..] | [0, 0, 0, 0, 0xffff, 0, ..] => Reserved,
        // NAT64 (well-known prefix): the class of the IPv4 address it reaches.
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return classify_v4(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => Private,
        // 6to4: the class of the IPv4 address it tunnels to.
        [0x2002, hi, lo, ..] => return classify_v4(embedded(hi, lo)),
        [0x100, 0, 0, 0, ..] => Reserved,
        [0x2001, 0xdb8, ..] => Documentation,
        [0x2001, 0..=0x1ff, ..] => Reserved,
        [0x3fff, 0..=0xfff, ..] => Documentation,
        [first, ..] if first & 0xfe00 == 0xfc00 => Private,
        [first, ..] if first & 0xffc0 == 0xfe80 => LinkLocal,
        [first, ..] if first & 0xffc0 == 0xfec0 => Private,
        [first, ..] if first & 0xff00 == 0xff00 => Multicast,
        _ => return None,
    })
}

/// One entry of `proxy.allowed_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `registry.example.com`: that name.
    Name(String),
    /// `*.example.com`: names under it (not `example.com` itself).
    Under(String),
    /// `203.0.113.7`, `203.0.113.0/24`: URLs naming an address in it.
    Network(IpNet),
}

impl HostPattern {
    fn parse(pattern: &str) -> Result<Self, String> {
        let p = pattern.trim();
        if let Ok(net) = p.parse::<IpNet>() {
            return Ok(Self::Network(net));
        }
        if let Ok(ip) = p.parse::<IpAddr>() {
            return Ok(Self::Network(IpNet::from(ip)));
        }
        let (under, name) = match p.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, p),
        };
        match Host::parse(name) {
            Ok(Host::Domain(d)) if !d.is_empty() && !d.contains('*') => {
                let d = normalize(&d);
                Ok(if under { Self::Under(d) } else { Self::Name(d) })
            }
            _ => Err(format!("{pattern:?} is not a host name, `*.domain`, an IP address or a CIDR")),
        }
    }

    fn matches(&self, host: &Target) -> bool {
        match (self, host) {
            (Self::Name(n), Target::Name(h)) => n == h,
            (Self::Under(n), Target::Name(h)) => h.strip_suffix(n.as_str()).is_some_and(|head| head.ends_with('.')),
            (Self::Network(net), Target::Address(ip)) => net.contains(ip) || net.contains(&canonical(*ip)),
            _ => false,
        }
    }
}

/// A URL's host: a name to resolve, or an address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Name(String),
    Address(IpAddr),
}

impl Target {
    fn of(url: &Url) -> Option<Self> {
        Some(match url.host()? {
            Host::Domain(d) => Self::Name(normalize(d)),
            Host::Ipv4(ip) => Self::Address(ip.into()),
            Host::Ipv6(ip) => Self::Address(ip.into()),
        })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Name(n) => f.write_str(n),
            Self::Address(ip) => write!(f, "{ip}"),
        }
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// Why a target was refused; its text names the rule and the key that would allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The host matches no `proxy.allowed_hosts` entry.
    #[error("target {host} refused: it is not in proxy.allowed_hosts")]
    HostNotAllowed { host: String },
    /// The host is, or resolves to, an address that is not public and not allowed.
    #[error(
        "target {host} refused: {address} is a {class} address, reachable only when proxy.allowed_private_networks includes it"
    )]
    Address { host: String, address: IpAddr, class: AddressClass },
    /// Not an `http` or `https` URL with a host.
    #[error("target {url} refused: only http and https URLs with a host are fetched")]
    Scheme { url: String },
}

/// Which hosts and addresses a fetch on someone else's behalf may reach (see the module doc).
#[derive(Debug, Clone, Default)]
pub struct TargetPolicy {
    /// Empty: any host (whose addresses pass).
    allowed_hosts: Vec<HostPattern>,
    /// Non-public addresses inside these are allowed anyway.
    allowed_private: Vec<IpNet>,
    /// Hosts the operator named (the registry mirror): reached as configured, unchecked.
    trusted: Vec<Target>,
}

impl TargetPolicy {
    /// A policy from `proxy.allowed_hosts` and `proxy.allowed_private_networks`, trusting the
    /// hosts of `trusted` URLs (the configured registry mirror). An invalid pattern is an error
    /// naming it.
    pub fn new(allowed_hosts: &[String], allowed_private: &[IpNet], trusted: &[Url]) -> Result<Self, String> {
        Ok(Self {
            allowed_hosts: allowed_hosts.iter().map(|p| HostPattern::parse(p)).collect::<Result<_, _>>()?,
            allowed_private: allowed_private.to_vec(),
            trusted: trusted.iter().filter_map(Target::of).collect(),
        })
    }

    /// What can be decided from `url` alone: its scheme, its host against `allowed_hosts`, and
    /// an address written in it. A host name's addresses are checked when it is resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        let target = match (url.scheme(), Target::of(url)) {
            ("http" | "https", Some(target)) => target,
            _ => return Err(Refusal::Scheme { url: url.to_string() }),
        };
        if self.trusted.contains(&target) {
            return Ok(());
        }
        self.check_host(&target)?;
        match target {
            Target::Address(ip) => self.check_address(&target, ip),
            Target::Name(_) => Ok(()),
        }
    }

    /// [`check_url`](Self::check_url), and a host name resolved with every address checked:
    /// the proxy's answer before anything is fetched. A name that does not resolve is left to
    /// the fetch, which fails on it.
    pub async fn check_target(&self, url: &Url) -> Result<(), Refusal> {
        self.check_url(url)?;
        match Target::of(url) {
            Some(Target::Name(name)) => match self.resolve(&name).await {
                Err(ResolveError::Refused(r)) => Err(r),
                Ok(_) | Err(ResolveError::Lookup(_)) => Ok(()),
            },
            _ => Ok(()),
        }
    }

    /// The addresses a connection to `url`'s host and port may be made to, for a tunnel that
    /// connects itself: [`check_url`](Self::check_url), then a name resolved once with every
    /// address checked. What is checked is what the caller connects to: no second lookup.
    pub async fn addresses(&self, url: &Url) -> Result<Vec<SocketAddr>, ResolveError> {
        self.check_url(url).map_err(ResolveError::Refused)?;
        let port = url.port_or_known_default().unwrap_or(443);
        let addrs = match Target::of(url) {
            Some(Target::Name(name)) => self.resolve(&name).await?,
            Some(Target::Address(ip)) => vec![SocketAddr::new(ip, port)],
            None => return Err(ResolveError::Refused(Refusal::Scheme { url: url.to_string() })),
        };
        Ok(addrs.into_iter().map(|a| SocketAddr::new(a.ip(), port)).collect())
    }

    fn check_host(&self, target: &Target) -> Result<(), Refusal> {
        if self.allowed_hosts.is_empty() || self.allowed_hosts.iter().any(|p| p.matches(target)) {
            Ok(())
        } else {
            Err(Refusal::HostNotAllowed { host: target.to_string() })
        }
    }

    fn check_address(&self, target: &Target, ip: IpAddr) -> Result<(), Refusal> {
        let Some(class) = classify(ip) else { return Ok(()) };
        if self.allowed_private.iter().any(|n| n.contains(&ip) || n.contains(&canonical(ip))) {
            return Ok(());
        }
        Err(Refusal::Address { host: target.to_string(), address: ip, class })
    }

    /// Resolves `name` (port 0: the connector sets the URL's) and checks it and every address.
    async fn resolve(&self, name: &str) -> Result<Vec<SocketAddr>, ResolveError> {
        let target = Target::Name(normalize(name));
        let trusted = self.trusted.contains(&target);
        if !trusted {
            self.check_host(&target).map_err(ResolveError::Refused)?;
        }
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name, 0)).await.map_err(ResolveError::Lookup)?.collect();
        if !trusted {
            for addr in &addrs {
                self.check_address(&target, addr.ip()).map_err(ResolveError::Refused)?;
            }
        }
        Ok(addrs)
    }
}

/// Why a host's addresses were not given.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The policy refused the host or one of its addresses.
    #[error(transparent)]
    Refused(Refusal),
    /// The name did not resolve.
    #[error(transparent)]
    Lookup(std::io::Error),
}

/// Host patterns written as `proxy.allowed_hosts` entries are (`name`, `*.suffix`, an address
/// or a CIDR), for other lists of hosts (the proxy's interception rules).
#[derive(Debug, Clone, Default)]
pub struct HostPatterns(Vec<HostPattern>);

impl HostPatterns {
    /// Parses each pattern; an invalid one is an error naming it.
    pub fn parse(patterns: &[String]) -> Result<Self, String> {
        patterns.iter().map(|p| HostPattern::parse(p)).collect::<Result<_, _>>().map(Self)
    }

    /// Whether `url`'s host matches one of the patterns.
    pub fn matches(&self, url: &Url) -> bool {
        Target::of(url).is_some_and(|t| self.0.iter().any(|p| p.matches(&t)))
    }

    /// No pattern at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The refusal behind a failed request, if a [`TargetPolicy`] refused it (in the resolver or
/// the redirect policy).
pub fn refusal_in(error: &reqwest::Error) -> Option<&Refusal> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if let Some(r) = e.downcast_ref::<Refusal>() {
            return Some(r);
        }
        cause = e.source();
    }
    None
}

/// The guarded client's resolver: the policy's lookup, whose checked addresses are the ones
/// connected to.
#[derive(Debug, Clone)]
struct GuardedResolver(Arc<TargetPolicy>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            match policy.resolve(&name).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs),
                Err(ResolveError::Refused(r)) => Err(r.into()),
                Err(ResolveError::Lookup(e)) => Err(e.into()),
            }
        })
    }
}

/// The HTTP clients origin fetches use: the daemon's own for its local users, and one held to
/// the [`TargetPolicy`] for everyone else. Cloning shares them.
#[derive(Debug, Clone)]
pub struct OriginClients {
    local: reqwest::Client,
    guarded: reqwest::Client,
    /// The guarded client that answers a redirect instead of following it.
    unredirected: reqwest::Client,
    policy: Arc<TargetPolicy>,
}

impl OriginClients {
    /// Both clients; the guarded one resolves through `policy`, checks every redirect and uses
    /// no proxy from the environment.
    pub fn new(policy: TargetPolicy) -> Result<Self, Error> {
        Self::with_roots(policy, &[])
    }

    /// [`new`](Self::new), every client trusting `roots` (DER CA certificates an operator
    /// names, `proxy.connect.upstream_ca_certs`) besides the built-in ones.
    pub fn with_roots(
        policy: TargetPolicy,
        roots: &[rustls_pki_types::CertificateDer<'static>],
    ) -> Result<Self, Error> {
        let policy = Arc::new(policy);
        let trusting = |mut builder: reqwest::ClientBuilder| -> Result<reqwest::ClientBuilder, Error> {
            for root in roots {
                let cert = reqwest::Certificate::from_der(root)
                    .map_err(|e| Error::Config(format!("upstream CA certificate: {e}")))?;
                builder = builder.add_root_certificate(cert);
            }
            Ok(builder)
        };
        let local = trusting(reqwest::Client::builder())?.user_agent(USER_AGENT).build();
        let hops = policy.clone();
        let guarded = trusting(reqwest::Client::builder())?
            .user_agent(USER_AGENT)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= MAX_REDIRECTS {
                    return attempt.error("too many redirects");
                }
                match hops.check_url(attempt.url()) {
                    Ok(()) => attempt.follow(),
                    Err(refusal) => attempt.error(refusal),
                }
            }))
            .build();
        let unredirected = trusting(reqwest::Client::builder())?
            .user_agent(USER_AGENT)
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
            .redirect(reqwest::redirect::Policy::none())
            .build();
        match (local, guarded, unredirected) {
            (Ok(local), Ok(guarded), Ok(unredirected)) => Ok(Self { local, guarded, unredirected, policy }),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => Err(Error::Config(format!("HTTP client: {e}"))),
        }
    }

    /// The policy remote requests are held to.
    pub fn policy(&self) -> &TargetPolicy {
        &self.policy
    }

    /// The client for requests on someone else's behalf.
    pub fn guarded(&self) -> &reqwest::Client {
        &self.guarded
    }

    /// The guarded client, answering redirects instead of following them (where a redirect
    /// is itself the answer, such as a registry's go-ahead to a blob in storage).
    pub fn guarded_unredirected(&self) -> &reqwest::Client {
        &self.unredirected
    }

    /// The client that fetches `url` for `requester`; a remote requester's URL is checked
    /// first (an address in it is never resolved, so the resolver cannot check it).
    pub fn for_request(&self, requester: Requester, url: &Url) -> Result<&reqwest::Client, Refusal> {
        match requester {
            Requester::LocalUser => Ok(&self.local),
            Requester::Remote => self.policy.check_url(url).map(|()| &self.guarded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<AddressClass> {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn addresses_that_are_not_public_are_classified_in_every_form() {
        use AddressClass::*;
        for (ip, expected) in [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", Shared),
            ("100.127.255.255", Shared),
            ("169.254.169.254", LinkLocal),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("192.0.2.1", Documentation),
            ("198.51.100.1", Documentation),
            ("203.0.113.9", Documentation),
            ("198.18.0.1", Benchmarking),
            ("::", Unspecified),
            ("::1", Loopback),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fc00::1", Private),
            ("fd12:3456::1", Private),
            ("fec0::1", Private),
            ("ff02::1", Multicast),
            ("2001:db8::1", Documentation),
            ("3fff::1", Documentation),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            // IPv4 inside IPv6: mapped, compatible, NAT64 and 6to4 forms of refused addresses.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:0.0.0.0", Unspecified),
            ("::127.0.0.1", Reserved),
            ("::ffff:0:127.0.0.1", Reserved),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b:1::1", Private),
            ("2002:7f00:1::1", Loopback),
            ("2002:a9fe:a9fe::", LinkLocal),
        ] {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
        for public in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "169.253.0.1",
            "192.0.1.1",
            "198.20.0.1",
            "223.255.255.255",
            "2606:4700::1111",
            "2a00:1450::1",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "fbff::1",
        ] {
            assert_eq!(class(public), None, "{public}");
        }
    }

    fn policy(hosts: &[&str], private: &[&str], trusted: &[&str]) -> TargetPolicy {
        let hosts: Vec<String> = hosts.iter().map(|h| h.to_string()).collect();
        let private: Vec<IpNet> = private.iter().map(|n| n.parse().unwrap()).collect();
        let trusted: Vec<Url> = trusted.iter().map(|u| u.parse().unwrap()).collect();
        TargetPolicy::new(&hosts, &private, &trusted).unwrap()
    }

    fn check(p: &TargetPolicy, url: &str) -> Result<(), Refusal> {
        p.check_url(&url.parse().unwrap())
    }

    #[test]
    fn a_url_is_checked_against_allowed_hosts_and_the_address_it_names() {
        let default = TargetPolicy::default();
        assert!(check(&default, "https://registry.example/v2/").is_ok(), "names wait for their addresses");
        assert!(check(&default, "http://93.184.216.34/").is_ok());
        for refused in [
            "http://127.0.0.1:4001/",
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "http://0x7f.1/",
            "http://2130706433/",
        ] {
            let err = check(&default, refused).unwrap_err();
            assert!(matches!(err, Refusal::Address { .. }), "{refused}: {err}");
            assert!(err.to_string().contains("proxy.allowed_private_networks"), "{err}");
        }
        assert!(matches!(check(&default, "file:///etc/passwd"), Err(Refusal::Scheme { .. })));

        let p = policy(&["Registry.Example", "*.cdn.example", "203.0.113.0/24", "10.0.0.5"], &["10.0.0.0/8"], &[]);
        for allowed in [
            "https://registry.example/v2/",
            "https://REGISTRY.example./v2/",
            "https://a.b.cdn.example/blob",
            "http://10.0.0.5:5000/",
            "http://[::ffff:10.0.0.5]:5000/",
        ] {
            assert_eq!(check(&p, allowed), Ok(()), "{allowed}");
        }
        for not_listed in
            ["https://cdn.example/", "https://evilcdn.example/", "https://other.example/", "http://10.0.0.6/"]
        {
            assert!(matches!(check(&p, not_listed), Err(Refusal::HostNotAllowed { .. })), "{not_listed}");
        }
        // Listed, yet a documentation address: allowed_hosts does not open networks.
        assert!(matches!(check(&p, "http://203.0.113.7/"), Err(Refusal::Address { .. })));

        let mirror = policy(&["registry.example"], &[], &["http://10.1.1.1:5000", "http://mirror.internal"]);
        assert_eq!(check(&mirror, "http://10.1.1.1:5000/v2/"), Ok(()), "the configured mirror is trusted");
        assert_eq!(check(&mirror, "http://mirror.internal/v2/"), Ok(()));
        assert!(check(&mirror, "http://10.1.1.2:5000/v2/").is_err());
    }

    #[test]
    fn patterns_that_name_no_host_are_refused() {
        for bad in ["", "*", "*.", "a b", "reg*.example", "http://x", "10.0.0.0/33"] {
            assert!(TargetPolicy::new(&[bad.to_string()], &[], &[]).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_name_is_refused_when_any_address_it_resolves_to_is() {
        let default = TargetPolicy::default();
        let err = default.check_target(&"http://localhost:1/".parse().unwrap()).await.unwrap_err();
        assert!(err.to_string().contains("loopback"), "{err}");
        assert!(matches!(default.resolve("localhost").await, Err(ResolveError::Refused(_))));
        let opened = policy(&[], &["127.0.0.0/8", "::1/128"], &[]);
        assert!(!opened.resolve("localhost").await.unwrap().is_empty());
        let trusted = policy(&["registry.example"], &[], &["http://localhost:5000"]);
        assert!(trusted.resolve("localhost").await.is_ok(), "a trusted name is not checked");
        let hosts = policy(&["registry.example"], &["127.0.0.0/8", "::1/128"], &[]);
        assert!(matches!(hosts.resolve("localhost").await, Err(ResolveError::Refused(Refusal::HostNotAllowed { .. }))));
    }
}
