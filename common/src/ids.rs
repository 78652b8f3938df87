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

impl HostId {
    /// The id a host announces itself with. Seed and normal daemons on one machine differ.
    pub fn for_host(hostname: &str, ip: &str, seed: bool) -> Self {
        if seed { Self(format!("{hostname}-{ip}-seed")) } else { Self(format!("{hostname}-{ip}")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_and_normal_daemons_on_one_machine_differ() {
        let a = HostId::for_host("box", "10.0.0.1", false);
        let b = HostId::for_host("box", "10.0.0.1", true);
        assert_ne!(a, b);
        assert_eq!(a.to_string(), "box-10.0.0.1");
    }
}
