//! Where a proxy request goes: the URL it names (forward proxy), or, for a mirror request (a
//! path only), the upstream registry it is for.
//!
//! A mirror request names its upstream, first match wins:
//! 1. `X-Dragonfly-Registry` (containerd's `hosts.toml` header): that URL;
//! 2. `?ns=<host[:port]>` (containerd adds it when the mirror is not the registry): the configured
//!    upstream of that host (so its scheme is known: a plain-HTTP registry), else `https://<ns>`
//!    (`docker.io` is Docker Hub's `registry-1.docker.io`);
//! 3. a path `/v2/<prefix>/<repository>/…` of a `[[proxy.registries]]` entry: that entry's
//!    upstream, the prefix taken out. A registries.conf mirror `location = "<dfdaemon>/<prefix>"`
//!    makes CRI-O and podman send exactly that (they send neither header nor `ns`);
//! 4. the configured default upstream (`[proxy] registry_mirror`), when there is one.
//!
//! With prefixed entries, one dfdaemon address stands for several registries, each maybe with
//! its own token service, and clients ask for tokens naming the prefixed repository
//! (`repository:<prefix>/<repository>:pull`). So the dfdaemon answers the `/v2/` ping itself and
//! brokers tokens ([`Route::Ping`], [`Route::Token`], see `token`).
//!
//! Nothing here fetches: the target is then held to the target policy like any other.

use axum::http::{HeaderMap, Uri};
use url::Url;

use super::control_header;

/// The upstream registries the configuration names.
#[derive(Debug, Clone, Default)]
pub struct Upstreams {
    /// `registry_mirror`: where a mirror request that names no upstream goes.
    pub default: Option<Url>,
    /// `[[proxy.registries]]`: upstreams told apart by a path prefix.
    pub prefixed: Vec<Prefixed>,
}

/// An upstream reached through `/v2/<prefix>/…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefixed {
    /// One or more repository path components, e.g. `reg-a` or `mirrors/reg-a`.
    pub prefix: String,
    pub upstream: Url,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Route {
    /// Fetch `target` (the forward proxy, or a mirror request on its upstream); `brokered` when
    /// the upstream's token challenges are to name the dfdaemon's token endpoint.
    Upstream { target: Url, brokered: Option<Brokered> },
    /// `/v2/` while tokens are brokered: answered here.
    Ping,
    /// The dfdaemon's token endpoint.
    Token,
}

/// A request on a configured upstream while tokens are brokered: its challenges are rewritten,
/// naming repositories with the prefix the client used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Brokered {
    pub prefix: Option<String>,
}

/// The token endpoint's path: not a registry path, so no repository can shadow it.
pub(super) const TOKEN_PATH: &str = "/_damselfly/token";

impl Upstreams {
    /// Every configured upstream, for the target policy to trust.
    pub fn all(&self) -> impl Iterator<Item = &Url> {
        self.default.iter().chain(self.prefixed.iter().map(|p| &p.upstream))
    }

    /// Whether the dfdaemon answers `/v2/` and brokers tokens: when one address stands for
    /// several registries.
    pub(super) fn brokers_tokens(&self) -> bool {
        !self.prefixed.is_empty()
    }

    /// The entry whose prefix starts repository `name`, and the name without it.
    pub(super) fn strip_prefix<'a>(&self, name: &'a str) -> Option<(&Prefixed, &'a str)> {
        self.prefixed.iter().find_map(|p| {
            let rest = name.strip_prefix(p.prefix.as_str())?.strip_prefix('/')?;
            Some((p, rest))
        })
    }

    /// The configured upstream whose host (and port, when `ns` names one) is `ns`'s.
    fn by_host(&self, ns: &Url) -> Option<&Url> {
        self.all().find(|u| {
            u.host_str() == ns.host_str()
                && match ns.port() {
                    Some(port) => u.port_or_known_default() == Some(port),
                    None => u.port().is_none(),
                }
        })
    }
}

/// Where a request goes; a refusal is the 400's message.
pub(super) fn route(uri: &Uri, headers: &HeaderMap, upstreams: &Upstreams) -> Result<Route, String> {
    if uri.scheme().is_some() && uri.authority().is_some() {
        let target = Url::parse(&uri.to_string()).map_err(|e| format!("invalid request URI: {e}"))?;
        return Ok(Route::Upstream { target, brokered: None });
    }
    let mut path = uri.path().to_owned();
    let mut brokered = None;
    let upstream = if let Some(registry) = control_header(headers, "x-dragonfly-registry")? {
        Url::parse(registry).map_err(|e| format!("X-Dragonfly-Registry {registry:?}: {e}"))?
    } else if let Some(ns) = url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "ns")
        .map(|(_, v)| v.into_owned())
    {
        namespace_upstream(&ns, upstreams)?
    } else if upstreams.brokers_tokens() && path == TOKEN_PATH {
        return Ok(Route::Token);
    } else if upstreams.brokers_tokens() && matches!(path.as_str(), "/v2" | "/v2/") {
        return Ok(Route::Ping);
    } else if let Some((entry, rest)) = path.strip_prefix("/v2/").and_then(|name| upstreams.strip_prefix(name)) {
        brokered = Some(Brokered { prefix: Some(entry.prefix.clone()) });
        let upstream = entry.upstream.clone();
        path = format!("/v2/{rest}");
        upstream
    } else if let Some(m) = &upstreams.default {
        brokered = upstreams.brokers_tokens().then_some(Brokered { prefix: None });
        m.clone()
    } else {
        return Err(
            "no upstream: send an absolute URI, X-Dragonfly-Registry, or configure proxy.registry_mirror".into()
        );
    };
    // The request's path replaces the upstream's: joined as a reference, `//host/...` would
    // name another host.
    if upstream.cannot_be_a_base() {
        return Err(format!("upstream {upstream} cannot take a path"));
    }
    let mut target = upstream;
    target.set_path(&path);
    target.set_query(uri.query());
    target.set_fragment(None);
    Ok(Route::Upstream { target, brokered })
}

/// The URL a request is for, when it is fetched at all.
#[cfg(test)]
fn target_url(uri: &Uri, headers: &HeaderMap, upstreams: &Upstreams) -> Result<Url, String> {
    match route(uri, headers, upstreams)? {
        Route::Upstream { target, .. } => Ok(target),
        other => Err(format!("answered here: {other:?}")),
    }
}

/// The upstream containerd's `ns` names: `host[:port]` and nothing else.
fn namespace_upstream(ns: &str, upstreams: &Upstreams) -> Result<Url, String> {
    let bad = || format!("ns {ns:?} is not a registry host[:port]");
    if ns.is_empty() || ns.contains(['/', '@', '?', '#', '\\']) {
        return Err(bad());
    }
    let named = Url::parse(&format!("https://{ns}")).map_err(|_| bad())?;
    if let Some(configured) = upstreams.by_host(&named) {
        return Ok(configured.clone());
    }
    if named.host_str() == Some("docker.io") && named.port().is_none() {
        return Url::parse("https://registry-1.docker.io").map_err(|_| bad());
    }
    Ok(named)
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    fn upstreams(default: Option<&str>) -> Upstreams {
        Upstreams { default: default.map(|d| Url::parse(d).unwrap()), prefixed: Vec::new() }
    }

    #[test]
    fn a_path_prefix_picks_its_upstream_and_is_taken_out() {
        let mut both = upstreams(Some("https://default.example"));
        for (prefix, upstream) in [("reg-a", "http://127.0.0.1:5001"), ("mirrors/reg-b", "https://b.example")] {
            both.prefixed.push(Prefixed { prefix: prefix.into(), upstream: Url::parse(upstream).unwrap() });
        }
        let at = |uri: &str| route(&uri.parse().unwrap(), &HeaderMap::new(), &both).unwrap();
        let upstream = |target: &str, prefix: Option<&str>| Route::Upstream {
            target: Url::parse(target).unwrap(),
            brokered: Some(Brokered { prefix: prefix.map(String::from) }),
        };
        assert_eq!(
            at("/v2/reg-a/library/app/manifests/1.0"),
            upstream("http://127.0.0.1:5001/v2/library/app/manifests/1.0", Some("reg-a"))
        );
        assert_eq!(
            at("/v2/mirrors/reg-b/app/blobs/sha256:ab?x=1"),
            upstream("https://b.example/v2/app/blobs/sha256:ab?x=1", Some("mirrors/reg-b"))
        );
        // A prefix is whole path components; anything else is the default upstream's.
        assert_eq!(
            at("/v2/reg-ab/app/manifests/1"),
            upstream("https://default.example/v2/reg-ab/app/manifests/1", None)
        );
        assert_eq!(
            at("/v2/mirrors/app/manifests/1"),
            upstream("https://default.example/v2/mirrors/app/manifests/1", None)
        );
        assert_eq!(at("/v2/"), Route::Ping);
        assert_eq!(at(TOKEN_PATH), Route::Token);
        // containerd's header and ns still name their own upstream, not brokered.
        let h = route(&"/v2/reg-a/x/manifests/1?ns=reg.example".parse().unwrap(), &HeaderMap::new(), &both).unwrap();
        assert_eq!(
            h,
            Route::Upstream {
                target: Url::parse("https://reg.example/v2/reg-a/x/manifests/1?ns=reg.example").unwrap(),
                brokered: None
            }
        );
        // Without prefixed entries, the ping is the default upstream's and nothing is brokered.
        let single = upstreams(Some("https://default.example"));
        let ping = route(&"/v2/".parse().unwrap(), &HeaderMap::new(), &single).unwrap();
        assert_eq!(
            ping,
            Route::Upstream { target: Url::parse("https://default.example/v2/").unwrap(), brokered: None }
        );
    }

    #[test]
    fn upstream_comes_from_uri_then_header_then_ns_then_config() {
        let none = upstreams(None);
        let abs: Uri = "http://origin.test/a/b?x=1".parse().unwrap();
        assert_eq!(target_url(&abs, &HeaderMap::new(), &none).unwrap().as_str(), "http://origin.test/a/b?x=1");

        let mirror: Uri = "/v2/lib/blobs/sha256:ab?ns=reg.example".parse().unwrap();
        let h = headers(&[("x-dragonfly-registry", "http://127.0.0.1:5000")]);
        assert_eq!(
            target_url(&mirror, &h, &none).unwrap().as_str(),
            "http://127.0.0.1:5000/v2/lib/blobs/sha256:ab?ns=reg.example"
        );
        assert_eq!(
            target_url(&mirror, &HeaderMap::new(), &none).unwrap().as_str(),
            "https://reg.example/v2/lib/blobs/sha256:ab?ns=reg.example"
        );
        let plain: Uri = "/v2/".parse().unwrap();
        let configured = upstreams(Some("https://index.docker.io"));
        assert_eq!(target_url(&plain, &HeaderMap::new(), &configured).unwrap().as_str(), "https://index.docker.io/v2/");
        assert!(target_url(&plain, &HeaderMap::new(), &none).unwrap_err().contains("no upstream"));
    }

    #[test]
    fn ns_takes_the_scheme_of_the_configured_upstream_of_its_host() {
        let configured = upstreams(Some("http://127.0.0.1:5000"));
        let at = |uri: &str| target_url(&uri.parse().unwrap(), &HeaderMap::new(), &configured).map(String::from);
        assert_eq!(
            at("/v2/a/manifests/1?ns=127.0.0.1%3A5000").unwrap(),
            "http://127.0.0.1:5000/v2/a/manifests/1?ns=127.0.0.1%3A5000"
        );
        // Another port of the same host is another registry, reached over HTTPS.
        assert_eq!(
            at("/v2/a/manifests/1?ns=127.0.0.1:5001").unwrap(),
            "https://127.0.0.1:5001/v2/a/manifests/1?ns=127.0.0.1:5001"
        );
        assert_eq!(
            at("/v2/a/manifests/1?ns=docker.io").unwrap(),
            "https://registry-1.docker.io/v2/a/manifests/1?ns=docker.io"
        );
        for bad in ["", "evil.example/x", "user@evil.example", "a b"] {
            let uri = format!(
                "/v2/a/manifests/1?ns={}",
                url::form_urlencoded::byte_serialize(bad.as_bytes()).collect::<String>()
            );
            assert!(at(&uri).is_err(), "{bad:?}");
        }
        let https = upstreams(Some("https://reg.example"));
        let url = target_url(&"/v2/?ns=reg.example".parse().unwrap(), &HeaderMap::new(), &https).unwrap();
        assert_eq!(url.as_str(), "https://reg.example/v2/?ns=reg.example");
    }
}

/// A proxied request's target comes from whoever reaches the proxy: any request line and
/// `X-Dragonfly-Registry` value give a target or a 400, and a mirror request stays on the
/// upstream it names.
#[cfg(test)]
mod properties {
    use axum::http::HeaderValue;
    use proptest::prelude::*;

    use super::*;

    /// Request targets: absolute URLs, origin-form paths (some with `ns=`), and odd paths.
    fn request_target() -> impl Strategy<Value = String> {
        prop_oneof![
            "(http|https|ftp)://[a-z0-9.:\\[\\]@-]{0,20}(/[ -~]{0,20})?",
            "/[!-~]{0,30}",
            ("/v2/[a-z/]{0,10}", "(ns=[a-z0-9.:@/-]{0,16})?").prop_map(|(p, q)| format!("{p}?{q}")),
            "(/|//|/\\\\|/\\.\\./)[a-z0-9.@:]{0,12}(/[a-z]{0,4})?",
            any::<String>(),
        ]
    }

    fn registry() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            "(http|https)://[a-z0-9.-]{1,12}(:[0-9]{1,5})?(/[a-z]{0,4})?".prop_map(String::into_bytes),
            "[ -~]{0,20}".prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..20),
        ]
        .prop_map(|b| b.into_iter().filter(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)).collect())
    }

    proptest! {
        #![proptest_config(crate::proptest_config(256))]

        #[test]
        fn a_target_is_the_absolute_uri_or_stays_on_the_named_upstream(
            target in request_target(),
            registry in proptest::option::of(registry()),
            mirror in any::<bool>(),
        ) {
            let Ok(uri) = target.parse::<Uri>() else { return Ok(()) };
            let mut headers = HeaderMap::new();
            if let Some(registry) = &registry {
                headers.insert("x-dragonfly-registry", HeaderValue::from_bytes(registry).unwrap());
            }
            let configured = Url::parse("https://mirror.example:5000/").unwrap();
            let upstreams = Upstreams { default: mirror.then(|| configured.clone()), prefixed: Vec::new() };
            let Ok(url) = target_url(&uri, &headers, &upstreams) else { return Ok(()) };
            if uri.scheme().is_some() && uri.authority().is_some() {
                prop_assert_eq!(Some(url), Url::parse(&uri.to_string()).ok());
                return Ok(());
            }
            let registry = registry.as_deref().map(std::str::from_utf8);
            prop_assert!(registry.is_none_or(|r| r.is_ok()), "an unreadable X-Dragonfly-Registry was ignored");
            let upstream = match registry {
                Some(r) => Url::parse(r.unwrap()).unwrap(),
                None => match url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).find(|(k, _)| k == "ns") {
                    Some((_, ns)) => {
                        prop_assert!(!ns.contains(['/', '@']), "ns {:?} taken", ns);
                        let named = Url::parse(&format!("https://{ns}")).unwrap();
                        if named.host_str() == Some("mirror.example") && named.port() == Some(5000) && mirror {
                            configured
                        } else if named.host_str() == Some("docker.io") && named.port().is_none() {
                            Url::parse("https://registry-1.docker.io").unwrap()
                        } else {
                            named
                        }
                    }
                    None => configured,
                },
            };
            let place = |u: &Url| (u.scheme().to_owned(), u.host_str().map(str::to_owned), u.port_or_known_default());
            prop_assert_eq!(place(&url), place(&upstream), "{} from {}", url, uri);
        }
    }
}
