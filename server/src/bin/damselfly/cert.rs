//! `damselfly cert`: a certificate from a CA directory, issued offline, for a scheduler or
//! dfdaemon that cannot enrol with a join token (no route to the manager, a benchmark, an
//! operator's own tooling). It is named exactly as enrolment would name it, so the component
//! accepts it as `[tls] cert/key/ca`.
//!
//! `--component operator` issues what `dfctl preheat --scheduler` shows a scheduler where no
//! manager runs: it names the operator (`--hostname`, no address) and one cluster, and a
//! scheduler accepts it for `Preheat` only. A manager's certificate is never issued here: it
//! would pass for the manager with every scheduler and dfdaemon of every cluster.

use std::{net::IpAddr, path::PathBuf, time::Duration};

use anyhow::Context as _;
use common::{
    ids::HostId,
    tls::{CertificateAuthority, Component, Identity, ca::AltNames},
};

/// What to issue, from the command line.
#[derive(Debug, clap::Args)]
pub struct CertArgs {
    /// The CA's directory (`ca.crt`, `ca.key`), such as the manager's `<data_dir>/ca`; a new
    /// CA is made there when it holds none.
    #[arg(long)]
    ca_dir: PathBuf,
    /// `scheduler`, `seed-peer`, `peer`, or `operator` (preheats without a manager).
    #[arg(long)]
    component: String,
    /// The scheduler cluster the holder serves or belongs to.
    #[arg(long)]
    cluster: i64,
    /// The holder's hostname, as in its configuration (`[host] hostname` or `hostname`); for an
    /// operator, a name for who holds it (`alice`, `ci`).
    #[arg(long)]
    hostname: String,
    /// The holder's advertised IP address, as in its configuration (`[host] ip`); not for an
    /// operator.
    #[arg(long)]
    ip: Option<IpAddr>,
    /// Days the certificate stays valid.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Where `key.pem` (mode 0600), `cert.pem` and `ca.pem` are written.
    #[arg(long)]
    out: PathBuf,
}

/// Issues the certificate; answers the identity it names.
pub fn issue(args: &CertArgs) -> anyhow::Result<Identity> {
    let component: Component = args.component.parse()?;
    if component == Component::Manager {
        anyhow::bail!(
            "the manager makes its own certificate from its CA; issue scheduler, seed-peer, peer or operator"
        );
    }
    if args.cluster < 1 {
        anyhow::bail!("--cluster must be a scheduler cluster id (1 or more)");
    }
    if !(1..=3650).contains(&args.days) {
        anyhow::bail!("--days must be between 1 and 3650");
    }
    let (host_id, names) = match (component, args.ip) {
        (Component::Operator, None) => (HostId(args.hostname.clone()), AltNames::default()),
        (Component::Operator, Some(_)) => anyhow::bail!("an operator's certificate names no address: drop --ip"),
        (_, None) => anyhow::bail!("--ip is required for a {component}: its advertised address"),
        (_, Some(ip)) => (
            HostId::for_host(&args.hostname, &ip.to_string(), component == Component::SeedPeer),
            AltNames { dns: vec![args.hostname.clone()], ips: vec![ip] },
        ),
    };
    let host_id = HostId::parse(&host_id.0).with_context(|| format!("--hostname {:?}", args.hostname))?;
    let ca = CertificateAuthority::load_or_generate(&args.ca_dir)?;
    let identity = Identity { component, cluster_id: args.cluster, host_id };
    let validity = Duration::from_secs(u64::from(args.days) * 86_400);
    ca.issue(&identity, &names, validity)?.store(&args.out)?;
    Ok(identity)
}
