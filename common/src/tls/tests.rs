//! The CA, credentials and verifiers together, without sockets.

use std::time::{Duration, SystemTime};

use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::{ServerName, UnixTime};

use super::{
    ca::AltNames,
    verify::{ComponentVerifier, Expect, PinnedManager},
    *,
};
use crate::ids::HostId;

const DAY: Duration = Duration::from_secs(86_400);

fn id(component: Component, cluster_id: i64, host: &str) -> Identity {
    Identity { component, cluster_id, host_id: HostId(host.into()) }
}

fn server_check(verifier: &dyn ServerCertVerifier, c: &Credentials) -> Result<(), rustls::Error> {
    let name = ServerName::try_from("localhost").unwrap();
    verifier.verify_server_cert(&c.chain[0], &c.chain[1..], &name, &[], UnixTime::now()).map(|_| ())
}

#[test]
fn a_leaf_names_its_identity_and_chains_to_its_ca_only() {
    let (ca, _) = CertificateAuthority::generate("test").unwrap();
    let scheduler = id(Component::Scheduler, 2, "sched-10.0.0.2");
    let c = ca.issue(&scheduler, &AltNames { dns: vec!["sched".into()], ips: vec![] }, 90 * DAY).unwrap();
    assert_eq!(c.identity, scheduler);
    let left = c.remaining(SystemTime::now());
    assert!(left > 89 * DAY && left <= 90 * DAY, "{left:?}");
    verify::chains_to(&c.chain[0], &[], &[ca.cert().clone()]).unwrap();
    let (other, _) = CertificateAuthority::generate("other").unwrap();
    assert!(verify::chains_to(&c.chain[0], &[], &[other.cert().clone()]).is_err());
    // Credentials need the leaf's own key, and a leaf of the CA they trust.
    let random_key = rcgen::KeyPair::generate().unwrap().serialize_pem();
    assert!(Credentials::from_pem(c.cert_pem(), &random_key, ca.cert_pem()).is_err());
    let stranger = other.issue(&scheduler, &AltNames::default(), DAY).unwrap();
    assert!(Credentials::from_pem(stranger.cert_pem(), stranger.key_pem(), ca.cert_pem()).is_err());
    Credentials::from_pem(c.cert_pem(), c.key_pem(), c.ca_pem()).unwrap();
}

#[test]
fn a_client_accepts_only_the_component_and_cluster_it_meant_to_reach() {
    let (ca, _) = CertificateAuthority::generate("test").unwrap();
    let names = AltNames::default();
    let scheduler = ca.issue(&id(Component::Scheduler, 2, "s-10.0.0.2"), &names, DAY).unwrap();
    let peer = ca.issue(&id(Component::Peer, 2, "p-10.0.0.3"), &names, DAY).unwrap();
    let roots = [ca.cert().clone()];
    let want_scheduler = ComponentVerifier::new(&roots, Expect::scheduler(Some(2))).unwrap();
    server_check(&want_scheduler, &scheduler).unwrap();
    assert!(server_check(&want_scheduler, &peer).is_err(), "a peer passed for a scheduler");
    let other_cluster = ComponentVerifier::new(&roots, Expect::scheduler(Some(3))).unwrap();
    assert!(server_check(&other_cluster, &scheduler).is_err(), "another cluster's scheduler passed");
    let (foreign_ca, _) = CertificateAuthority::generate("foreign").unwrap();
    let foreign = foreign_ca.issue(&id(Component::Scheduler, 2, "s-10.0.0.2"), &names, DAY).unwrap();
    assert!(server_check(&want_scheduler, &foreign).is_err(), "another CA's scheduler passed");
}

#[test]
fn enrolment_trusts_only_the_pinned_ca_and_only_a_manager_of_it() {
    let (ca, _) = CertificateAuthority::generate("test").unwrap();
    let manager = ca.issue(&id(Component::Manager, 0, "mgr"), &AltNames::default(), DAY).unwrap();
    let scheduler = ca.issue(&id(Component::Scheduler, 1, "s"), &AltNames::default(), DAY).unwrap();
    assert_eq!(manager.chain.len(), 2, "the CA follows the leaf");
    server_check(&PinnedManager::new(&ca.fingerprint()).unwrap(), &manager).unwrap();
    assert!(server_check(&PinnedManager::new(&ca.fingerprint()).unwrap(), &scheduler).is_err());
    let (other, _) = CertificateAuthority::generate("other").unwrap();
    assert!(server_check(&PinnedManager::new(&other.fingerprint()).unwrap(), &manager).is_err());
    assert!(PinnedManager::new("abc").is_err());
}

#[test]
fn a_request_gets_the_identity_the_ca_decides_not_what_it_asked_for() {
    let (ca, _) = CertificateAuthority::generate("test").unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut asked = rcgen::CertificateParams::new(vec!["evil.example".to_owned()]).unwrap();
    asked.subject_alt_names.push(rcgen::SanType::URI("damselfly://manager/0/mgr".try_into().unwrap()));
    asked.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let csr = asked.serialize_request(&key).unwrap();
    let granted = id(Component::Peer, 4, "box-10.0.0.9");
    let chain = ca.issue_for_request(csr.der(), &granted, &AltNames::default(), DAY).unwrap();
    let c = Credentials::from_pem(&chain, &key.serialize_pem(), ca.cert_pem()).unwrap();
    assert_eq!(c.identity, granted);
    let (_, leaf) = x509_parser::parse_x509_certificate(&c.chain[0]).unwrap();
    assert!(!leaf.is_ca());
    let sans = format!("{:?}", leaf.subject_alternative_name().unwrap().unwrap().value.general_names);
    assert!(!sans.contains("evil") && !sans.contains("manager"), "{sans}");
    // A request whose signature does not hold, and an oversized one, are refused.
    let mut broken = csr.der().to_vec();
    let last = broken.len() - 1;
    broken[last] ^= 1;
    assert!(ca.issue_for_request(&broken, &granted, &AltNames::default(), DAY).is_err());
    assert!(ca.issue_for_request(&vec![0; ca::MAX_CSR_BYTES + 1], &granted, &AltNames::default(), DAY).is_err());
}

#[test]
fn join_tokens_carry_a_ca_pin_and_nothing_loose_parses() {
    let pin = "ab".repeat(32);
    let t = JoinToken::parse(&format!("dfj1.7.c2VjcmV0.{pin}")).unwrap();
    assert_eq!(t.ca_sha256(), pin);
    assert!(!format!("{t:?}").contains("c2VjcmV0"), "the secret stays out of logs");
    for bad in [
        String::new(),
        format!("dfj1.7.{pin}"),
        format!("dfj2.7.s.{pin}"),
        format!("dfj1..s.{pin}"),
        "dfj1.7.s.ABC".to_owned(),
        format!("dfj1.7.s.{}", pin.to_uppercase()),
        format!("dfj1.7.{}.{pin}", "s".repeat(300)),
    ] {
        assert!(JoinToken::parse(&bad).is_err(), "{bad} parsed");
    }
}

#[test]
fn credentials_kept_in_a_directory_come_back_with_a_private_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (ca, _) = CertificateAuthority::generate("test").unwrap();
    let c = ca.issue(&id(Component::SeedPeer, 1, "h-10.0.0.1-seed"), &AltNames::default(), DAY).unwrap();
    assert!(Credentials::load(dir.path()).unwrap().is_none());
    c.store(dir.path()).unwrap();
    let back = Credentials::load(dir.path()).unwrap().unwrap();
    assert_eq!(back.identity, c.identity);
    let mode = std::fs::metadata(dir.path().join("key.pem")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "key.pem is {mode:o}");
    let ca_dir = tempfile::tempdir().unwrap();
    let first = CertificateAuthority::load_or_generate(ca_dir.path()).unwrap();
    let again = CertificateAuthority::load_or_generate(ca_dir.path()).unwrap();
    assert_eq!(first.fingerprint(), again.fingerprint(), "a restart keeps the CA");
}

#[tokio::test]
async fn kept_credentials_serve_until_they_expire_and_a_spent_token_is_not_needed() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _) = CertificateAuthority::generate("test").unwrap();
    let me = id(Component::Peer, 1, "h-10.0.0.1");
    // Past the point where it is renewed (little of its life is left), but still valid.
    let aging = ca.issue(&me, &AltNames::default(), Duration::from_secs(60)).unwrap();
    aging.store(dir.path()).unwrap();
    let settings = TlsSettings { dir: dir.path().to_owned(), ..TlsSettings::default() };
    let expected = Expected { component: Component::Peer, host_id: me.host_id.clone(), cluster_id: None };
    let enrol =
        |_: JoinToken, _: KeyRequest| async { Err(Error::Enrolment("the token was used at the first start".into())) };
    let spent = format!("dfj1.1.secret.{}", ca.fingerprint());
    let kept = obtain(&settings, Some(&spent), &expected, enrol).await.unwrap().unwrap();
    assert_eq!(kept.identity, me, "the running renewal takes it from here");
    // Kept credentials naming another host are replaced by enrolling.
    let other = Expected { host_id: HostId("renamed-10.0.0.1".into()), ..expected };
    let enrol = |_: JoinToken, _: KeyRequest| async { Err(Error::Enrolment("asked".into())) };
    let err = obtain(&settings, Some(&spent), &other, enrol).await.unwrap_err();
    assert!(err.to_string().contains("asked"), "{err}");
}

#[test]
fn a_web_leaf_is_trusted_for_exactly_its_names_and_only_through_its_ca() {
    let (ca, _) = CertificateAuthority::generate("proxy CA").unwrap();
    let (other, _) = CertificateAuthority::generate("other CA").unwrap();
    let verifier = |ca: &CertificateAuthority| {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert().clone()).unwrap();
        rustls::client::WebPkiServerVerifier::builder_with_provider(std::sync::Arc::new(roots), provider())
            .build()
            .unwrap()
    };
    let check = |verifier: &dyn ServerCertVerifier, leaf: &WebIdentity, name: &str| {
        let name = ServerName::try_from(name.to_owned()).unwrap();
        verifier.verify_server_cert(leaf.leaf(), &[], &name, &[], UnixTime::now()).map(|_| ())
    };
    let named = ca.issue_web(&AltNames { dns: vec!["registry.example".into()], ips: vec![] }, DAY).unwrap();
    let addressed = ca.issue_web(&AltNames { dns: vec![], ips: vec!["10.1.2.3".parse().unwrap()] }, DAY).unwrap();
    let ours = verifier(&ca);
    check(ours.as_ref(), &named, "registry.example").unwrap();
    check(ours.as_ref(), &addressed, "10.1.2.3").unwrap();
    assert!(check(ours.as_ref(), &named, "other.example").is_err());
    assert!(check(ours.as_ref(), &addressed, "10.1.2.4").is_err());
    assert!(check(verifier(&other).as_ref(), &named, "registry.example").is_err());
    // A leaf signs handshakes as a server: its key is the certificate's.
    named.server_config().unwrap();
}
