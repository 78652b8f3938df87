//! Identifier newtypes, so a host id can never be passed where a task id is expected.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }
    };
}

id_type!(
    /// A machine running a dfdaemon: `<hostname>-<ip>` (seed hosts get a `-seed` suffix).
    HostId
);
id_type!(
    /// A download of one piece of content: a hex digest derived from URL, tag, application
    /// and piece length.
    TaskId
);
id_type!(
    /// One host's participation in one task.
    PeerId
);

/// Why an identifier from the network was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// A task id must be what [`crate::task_id::task_id`] derives: 64 lower-case hex digits.
    #[error("task id {0:?} is not 64 lower-case hex digits")]
    Task(String),
    /// A host id is `<hostname>-<ip>[-seed]`: 1–253 of letters, digits, `.`, `-`, `_`, `:`.
    #[error("host id {0:?} is not 1-253 of letters, digits, '.', '-', '_' and ':'")]
    Host(String),
}

impl TaskId {
    /// Length of a derived task id: a SHA-256 in hex.
    pub const LEN: usize = 64;

    /// A task id received from elsewhere (a peer, a scheduler, a job), checked to be one that
    /// [`crate::task_id::task_id`] could have derived, so it is safe in a file name and a log line.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.len() == Self::LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            Ok(Self(s.to_owned()))
        } else {
            Err(IdError::Task(s.chars().take(80).collect()))
        }
    }
}

impl HostId {
    /// Longest host id: a DNS name's length.
    pub const MAX_LEN: usize = 253;

    /// A host id received from elsewhere, checked to be one [`HostId::for_host`] could have made
    /// from a DNS hostname and an IP address, so it is safe in a certificate, a path or a log line.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
        if ok { Ok(Self(s.to_owned())) } else { Err(IdError::Host(s.chars().take(80).collect())) }
    }

    /// The id a host announces itself with. Seed and normal daemons on one machine differ.
    pub fn for_host(hostname: &str, ip: &str, seed: bool) -> Self {
        if seed { Self(format!("{hostname}-{ip}-seed")) } else { Self(format!("{hostname}-{ip}")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_derived_looking_task_ids_parse() {
        let good = "0123456789abcdef".repeat(4);
        assert_eq!(TaskId::parse(&good).unwrap().0, good);
        for bad in [
            "",
            "t",
            "../../etc/cron.d/x",
            &good.to_uppercase(),
            &good[1..],
            &format!("{good}0"),
            &format!("{}/", &good[1..]),
        ] {
            assert!(TaskId::parse(bad).is_err(), "{bad:?} parsed");
        }
        let long = "x".repeat(10_000);
        assert!(TaskId::parse(&long).unwrap_err().to_string().len() < 200, "the error quotes a bounded prefix");
    }

    #[test]
    fn host_ids_are_hostnames_and_addresses_only() {
        for good in ["box-10.0.0.1", "box-10.0.0.1-seed", "node_3.example-::1", "a"] {
            assert_eq!(HostId::parse(good).unwrap().0, good);
        }
        for bad in ["", "a/b", "../x", "a b", "x\n", "a%25eth0", &"x".repeat(254)] {
            assert!(HostId::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn seed_and_normal_daemons_on_one_machine_differ() {
        let a = HostId::for_host("box", "10.0.0.1", false);
        let b = HostId::for_host("box", "10.0.0.1", true);
        assert_ne!(a, b);
        assert_eq!(a.to_string(), "box-10.0.0.1");
    }
}

/// What arrives from the network is any string: ids parse exactly their alphabet and length,
/// never panic, and quote a bounded prefix when refused.
#[cfg(test)]
mod properties {
    use std::net::IpAddr;

    use proptest::prelude::*;

    use super::*;

    /// Any string, long ones included, and strings close to each id's form.
    fn untrusted() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            proptest::collection::vec(any::<char>(), 0..2000).prop_map(String::from_iter),
            "[0-9a-fA-F]{62,66}",
            "[0-9a-f./ ]{64}",
            "[A-Za-z0-9._:/%-]{0,260}",
        ]
    }

    /// The longest error text: the message around an 80-character quote, each character escaped
    /// to at most `\u{10ffff}`.
    const MAX_ERROR_LEN: usize = 80 * 10 + 100;

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn task_ids_parse_exactly_64_lower_case_hex_digits(s in untrusted()) {
            let derivable = s.chars().count() == 64
                && s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
            match TaskId::parse(&s) {
                Ok(id) => {
                    prop_assert!(derivable, "{s:?} parsed");
                    prop_assert_eq!(&id.0, &s);
                    prop_assert_eq!(TaskId::parse(&id.to_string()), Ok(id));
                }
                Err(e) => {
                    prop_assert!(!derivable, "{s:?} refused");
                    prop_assert!(e.to_string().len() <= MAX_ERROR_LEN, "{} bytes of error", e.to_string().len());
                }
            }
        }

        #[test]
        fn host_ids_parse_exactly_1_to_253_name_characters(s in untrusted()) {
            let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_:".contains(c);
            let valid = (1..=HostId::MAX_LEN).contains(&s.len()) && s.chars().all(allowed);
            match HostId::parse(&s) {
                Ok(id) => {
                    prop_assert!(valid, "{s:?} parsed");
                    prop_assert_eq!(&id.0, &s);
                    prop_assert_eq!(HostId::parse(&id.to_string()), Ok(id));
                }
                Err(e) => {
                    prop_assert!(!valid, "{s:?} refused");
                    prop_assert!(e.to_string().len() <= MAX_ERROR_LEN, "{} bytes of error", e.to_string().len());
                }
            }
        }

        #[test]
        fn a_host_id_made_from_a_dns_name_and_an_address_parses(
            hostname in "[a-zA-Z0-9]([a-zA-Z0-9-]{0,20}[a-zA-Z0-9])?(\\.[a-z0-9]{1,20}){0,8}",
            ip in any::<IpAddr>(),
            seed in any::<bool>(),
        ) {
            let id = HostId::for_host(&hostname, &ip.to_string(), seed);
            prop_assert_eq!(HostId::parse(&id.0).is_ok(), id.0.len() <= HostId::MAX_LEN, "{}", id);
        }
    }
}
