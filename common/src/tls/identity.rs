//! What a certificate says its holder is: one URI name, `damselfly://<component>/<cluster>/<host>`.
//!
//! One name, parsed strictly, so there is nothing to interpret: a certificate with zero or two
//! Damselfly names, an unknown component or a host id that [`HostId::parse`] refuses has no
//! identity at all.

use std::{fmt, str::FromStr};

use crate::ids::HostId;

/// The URI scheme of identities.
pub const SCHEME: &str = "damselfly://";

/// Which kind of component holds a certificate; it bounds what the holder may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// The control plane (and certificate authority).
    Manager,
    /// A cluster's scheduler.
    Scheduler,
    /// A dfdaemon in seed mode: takes seed orders.
    SeedPeer,
    /// A dfdaemon.
    Peer,
    /// An operator's tool (`dfctl preheat --scheduler`) where no manager runs: it may start
    /// preheats on the schedulers of its one cluster and nothing else. Unlike a manager's
    /// certificate it cannot pass for a server (clients expect a manager, scheduler or
    /// dfdaemon), reaches one cluster only, and may not delete tasks. Only `damselfly cert`
    /// issues it; no join token enrols one.
    Operator,
}

impl Component {
    /// Its name in identities, join tokens and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manager => "manager",
            Self::Scheduler => "scheduler",
            Self::SeedPeer => "seed-peer",
            Self::Peer => "peer",
            Self::Operator => "operator",
        }
    }

    /// Either kind of dfdaemon.
    pub fn is_daemon(self) -> bool {
        matches!(self, Self::SeedPeer | Self::Peer)
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Component {
    type Err = crate::tls::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "manager" => Self::Manager,
            "scheduler" => Self::Scheduler,
            "seed-peer" => Self::SeedPeer,
            "peer" => Self::Peer,
            "operator" => Self::Operator,
            other => return Err(crate::tls::Error::Identity(format!("unknown component {:?}", trim(other)))),
        })
    }
}

/// Who holds a certificate: the component, the scheduler cluster it was enrolled in (0 for the
/// manager, which serves every cluster) and its host id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub component: Component,
    pub cluster_id: i64,
    pub host_id: HostId,
}

impl Identity {
    /// The URI name that carries it in a certificate.
    pub fn uri(&self) -> String {
        format!("{SCHEME}{}/{}/{}", self.component, self.cluster_id, self.host_id)
    }

    /// Parses a URI name; anything but exactly the form [`Identity::uri`] writes is refused.
    pub fn from_uri(uri: &str) -> Result<Self, crate::tls::Error> {
        let bad = || crate::tls::Error::Identity(format!("{:?} is not a Damselfly identity", trim(uri)));
        let rest = uri.strip_prefix(SCHEME).ok_or_else(bad)?;
        let mut parts = rest.split('/');
        let (Some(component), Some(cluster), Some(host), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        // Decimal digits without a sign or a leading zero: one identity, one spelling.
        let decimal = !cluster.is_empty() && cluster.bytes().all(|b| b.is_ascii_digit());
        if !decimal || (cluster.len() > 1 && cluster.starts_with('0')) {
            return Err(bad());
        }
        let cluster_id: i64 = cluster.parse().map_err(|_| bad())?;
        let host_id = HostId::parse(host).map_err(|e| crate::tls::Error::Identity(e.to_string()))?;
        Ok(Self { component: component.parse()?, cluster_id, host_id })
    }

    /// The identity in a DER certificate: its one `damselfly://` URI name.
    pub fn from_cert(der: &[u8]) -> Result<Self, crate::tls::Error> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| crate::tls::Error::Malformed { what: "certificate", detail: e.to_string() })?;
        let mut found = None;
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                if let x509_parser::extensions::GeneralName::URI(uri) = name
                    && uri.starts_with(SCHEME)
                {
                    if found.is_some() {
                        return Err(crate::tls::Error::Identity("two Damselfly identities in one certificate".into()));
                    }
                    found = Some(Self::from_uri(uri)?);
                }
            }
        }
        found.ok_or_else(|| crate::tls::Error::Identity("the certificate names no Damselfly identity".into()))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} of cluster {}", self.component, self.host_id, self.cluster_id)
    }
}

/// Who is on the other end of a gRPC call, as its server knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The server runs without TLS (a debugging mode, logged loudly): everyone is trusted.
    Plaintext,
    /// A TLS client that showed no certificate (only enrolment accepts it).
    Anonymous,
    /// A client whose certificate chained to the cluster's CA.
    Known(Identity),
    /// A client whose certificate chained to the CA but has been revoked since its connection
    /// opened: refused by every call.
    Revoked(Identity),
}

impl Caller {
    /// The caller of a request: what the TLS acceptor attached to its connection, or
    /// [`Caller::Plaintext`] when the server accepts plain TCP (nothing attached).
    pub fn of<T>(request: &tonic::Request<T>) -> Self {
        match request.extensions().get::<tonic::transport::server::TcpConnectInfo>() {
            Some(_) => Self::Plaintext,
            None => request
                .extensions()
                .get::<crate::tls::transport::PeerInfo>()
                .map(crate::tls::transport::PeerInfo::caller_now)
                .unwrap_or(Self::Anonymous),
        }
    }

    /// The caller if it is `component` (any cluster); `Plaintext` passes as `None`.
    pub fn require(&self, allowed: &[Component]) -> Result<Option<&Identity>, tonic::Status> {
        match self {
            Self::Plaintext => Ok(None),
            Self::Anonymous => Err(tonic::Status::unauthenticated("a client certificate is required")),
            Self::Revoked(id) => {
                Err(tonic::Status::unauthenticated(format!("the certificate of {id} was revoked; enrol again")))
            }
            Self::Known(id) if allowed.contains(&id.component) => Ok(Some(id)),
            Self::Known(id) => Err(tonic::Status::permission_denied(format!(
                "a certificate of component {} may not call this",
                id.component
            ))),
        }
    }
}

fn trim(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_and_nothing_else_parses() {
        let id = Identity { component: Component::SeedPeer, cluster_id: 3, host_id: HostId("box-::1-seed".into()) };
        assert_eq!(id.uri(), "damselfly://seed-peer/3/box-::1-seed");
        assert_eq!(Identity::from_uri(&id.uri()).unwrap(), id);
        for bad in [
            "damselfly://peer/3",
            "damselfly://peer/3/a/b",
            "damselfly://peer/-1/a",
            "damselfly://peer/-0/a",
            "damselfly://peer/03/a",
            "damselfly://peer/+3/a",
            "damselfly://root/3/a",
            "damselfly://peer/3/../x",
            "damselfly://peer/3/",
            "https://peer/3/a",
            "damselfly://peer/99999999999999999999/a",
        ] {
            assert!(Identity::from_uri(bad).is_err(), "{bad} parsed");
        }
    }
}

/// A certificate's URI name is written by the CA but read from any certificate a client shows:
/// any string either is exactly what [`Identity::uri`] writes for the identity it parses to, or
/// is refused, without panicking.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn component() -> impl Strategy<Value = Component> {
        prop_oneof![
            Just(Component::Manager),
            Just(Component::Scheduler),
            Just(Component::SeedPeer),
            Just(Component::Peer),
            Just(Component::Operator)
        ]
    }

    fn identity() -> impl Strategy<Value = Identity> {
        (component(), prop_oneof![0..16i64, 0..=i64::MAX], "[A-Za-z0-9._:-]{1,253}")
            .prop_map(|(component, cluster_id, host)| Identity { component, cluster_id, host_id: HostId(host) })
    }

    /// Any string, and strings that differ from an identity's URI in one part or so.
    fn uri_ish() -> impl Strategy<Value = String> {
        let component = prop_oneof![3 => component().prop_map(|c| c.as_str().to_owned()), 1 => "[a-z-]{0,10}"];
        let cluster = prop_oneof![
            1 => any::<i64>().prop_map(|n| n.to_string()),
            1 => "[+-]?[0-9]{0,21}",
            2 => proptest::sample::select(vec!["-0", "+0", "00", "01", " 1", "1 ", "-1", "", "0x1", "1_0"]).prop_map(String::from),
        ];
        let host = prop_oneof![3 => "[A-Za-z0-9._:-]{1,253}", 1 => any::<String>()];
        let extra = prop_oneof![3 => Just(String::new()), 1 => "(/[a-z]{0,3}){1,2}"];
        let scheme = prop_oneof![3 => Just(SCHEME.to_owned()), 1 => "[a-z]{0,9}:/{0,3}"];
        prop_oneof![
            1 => any::<String>(),
            3 => (scheme, component, cluster, host, extra)
                .prop_map(|(scheme, component, cluster, host, extra)| format!("{scheme}{component}/{cluster}/{host}{extra}")),
        ]
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn an_identity_round_trips_through_its_uri(id in identity()) {
            prop_assert_eq!(Identity::from_uri(&id.uri()).unwrap(), id);
        }

        #[test]
        fn a_uri_parses_only_in_the_one_form_identities_are_written(uri in uri_ish()) {
            match Identity::from_uri(&uri) {
                Ok(id) => {
                    prop_assert_eq!(id.uri(), uri);
                    prop_assert!(id.cluster_id >= 0);
                    prop_assert_eq!(HostId::parse(&id.host_id.0), Ok(id.host_id.clone()));
                }
                Err(e) => prop_assert!(e.to_string().len() <= 1024, "{} bytes of error", e.to_string().len()),
            }
        }
    }
}
