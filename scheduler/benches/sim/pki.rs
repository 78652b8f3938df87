//! Certificates for the bench: one CA per run, the server's certificate as files, and one client
//! certificate per simulated host.
//!
//! The scheduler and the manager bind a caller to the host its certificate names
//! (`daemon_of`, `speaks_for`), so a simulated host needs a certificate of its own: one TLS
//! connection per host, as real dfdaemons have. Issuing is ECDSA P-256 with `ring`, a few tens of
//! microseconds each; 10k are issued on every core at once in about a second, so nothing is
//! cached between runs.

use std::{path::Path, sync::Arc, time::Duration};

use common::{
    ids::HostId,
    tls::{CertificateAuthority, ClientConfig, Component, Expect, Identity, ca::AltNames},
};

/// The cluster every certificate of the bench names.
pub const CLUSTER: i64 = 1;

const VALIDITY: Duration = Duration::from_secs(86_400);

/// A CA kept in `dir` (`ca.crt`, `ca.key`), for a manager's `[tls] ca_cert`/`ca_key`.
pub fn ca(dir: &Path) -> anyhow::Result<CertificateAuthority> {
    Ok(CertificateAuthority::load_or_generate(dir)?)
}

/// A server's certificate written to `dir` as `cert.pem`, `key.pem`, `ca.pem`; answers the
/// `[tls]` section that uses them.
pub fn server_files(
    ca: &CertificateAuthority,
    dir: &Path,
    component: Component,
    host: &HostId,
) -> anyhow::Result<String> {
    let identity = Identity { component, cluster_id: CLUSTER, host_id: host.clone() };
    let names = AltNames { dns: vec!["localhost".into()], ips: vec!["127.0.0.1".parse()?] };
    ca.issue(&identity, &names, VALIDITY)?.store(dir)?;
    Ok(format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nca = {:?}\n",
        dir.join("cert.pem"),
        dir.join("key.pem"),
        dir.join("ca.pem")
    ))
}

/// A client configuration per host, presenting a peer certificate naming it and expecting
/// `expect` on the other end; issued on every core.
pub fn clients(ca: &CertificateAuthority, hosts: &[HostId], expect: Expect) -> anyhow::Result<Vec<Arc<ClientConfig>>> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let chunk = hosts.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = hosts
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|h| {
                            let identity =
                                Identity { component: Component::Peer, cluster_id: CLUSTER, host_id: h.clone() };
                            Ok(ca.issue(&identity, &AltNames::default(), VALIDITY)?.client_config(expect)?)
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(hosts.len());
        for w in workers {
            all.extend(w.join().map_err(|_| anyhow::anyhow!("a certificate worker panicked"))??);
        }
        Ok(all)
    })
}
