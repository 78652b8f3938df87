//! What names an image to preheat: a manifest URL split into registry, repository and
//! reference, a platform, a digest. Pure parsing, shared by the job's checks at creation (a bad
//! URL is a 422 naming the field) and by the resolver that fetches the image
//! (`jobs::image`).

use std::fmt;

/// The platform picked from an index when the preheat names none.
pub const DEFAULT_PLATFORM: &str = "linux/amd64";

/// A manifest URL split: `<scheme>://<registry>/v2/<repository>/manifests/<reference>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`, as written in the URL.
    pub registry: String,
    /// May contain slashes: `library/nginx`, `a/b/c`.
    pub repository: String,
    /// A tag or a digest.
    pub reference: String,
}

impl ManifestUrl {
    /// Splits and checks `url`; the error says what is wrong with it.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once("://").ok_or("it must start with http:// or https://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(format!("scheme {scheme:?} is not http or https"));
        }
        if url.contains(['?', '#']) {
            return Err("it must not carry a query or a fragment".into());
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("it must not contain spaces".into());
        }
        let (registry, path) = rest.split_once('/').ok_or("it has no /v2/ path")?;
        if registry.is_empty() || registry.contains('@') {
            return Err(format!("registry {registry:?} must be host[:port]"));
        }
        let parsed =
            url::Url::parse(&format!("{scheme}://{registry}/")).map_err(|e| format!("registry {registry:?}: {e}"))?;
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("registry {registry:?} has no host"));
        }
        let path = path.strip_prefix("v2/").ok_or("its path must start with /v2/")?;
        let (repository, reference) =
            path.rsplit_once("/manifests/").ok_or("its path must be /v2/<repository>/manifests/<reference>")?;
        check_repository(repository)?;
        check_reference(reference)?;
        Ok(Self {
            scheme,
            registry: registry.to_owned(),
            repository: repository.to_owned(),
            reference: reference.to_owned(),
        })
    }

    /// `<scheme>://<registry>/v2/<repository>/blobs/<digest>`.
    pub fn blob_url(&self, digest: &str) -> String {
        format!("{}://{}/v2/{}/blobs/{digest}", self.scheme, self.registry, self.repository)
    }

    /// The URL of another manifest of the same repository (an index entry, by digest).
    pub fn manifest_url(&self, reference: &str) -> String {
        format!("{}://{}/v2/{}/manifests/{reference}", self.scheme, self.registry, self.repository)
    }
}

impl fmt::Display for ManifestUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.manifest_url(&self.reference))
    }
}

/// Path components as the distribution spec allows them: lower-case alphanumerics joined by
/// `.`, `_`, `__` or dashes.
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("its repository is empty".into());
    }
    for part in repository.split('/') {
        let bytes = part.as_bytes();
        let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let ok = !bytes.is_empty()
            && bytes.iter().all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
            && alnum(&bytes[0])
            && alnum(&bytes[bytes.len() - 1]);
        if !ok {
            return Err(format!(
                "repository {repository:?} is not a valid name (lower-case a-z, 0-9, . _ - between /)"
            ));
        }
    }
    Ok(())
}

/// A tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`) or a digest.
fn check_reference(reference: &str) -> Result<(), String> {
    if reference.contains(':') {
        return if valid_digest(reference) {
            Ok(())
        } else {
            Err(format!("reference {reference:?} is neither a tag nor a sha256/sha512 digest"))
        };
    }
    let bytes = reference.as_bytes();
    let ok = (1..=128).contains(&bytes.len())
        && (bytes[0].is_ascii_alphanumeric() || bytes[0] == b'_')
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok { Ok(()) } else { Err(format!("reference {reference:?} is not a valid tag or digest")) }
}

/// `sha256:` and 64 lower-case hex digits, or `sha512:` and 128: the only digests that may
/// become a blob URL.
pub fn valid_digest(digest: &str) -> bool {
    let lower_hex =
        |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match digest.split_once(':') {
        Some(("sha256", hex)) => lower_hex(hex, 64),
        Some(("sha512", hex)) => lower_hex(hex, 128),
        _ => false,
    }
}

/// An `os/arch[/variant]` an index entry is chosen by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    /// `None` matches any variant (one without is preferred).
    pub variant: Option<String>,
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

/// Parses `os/arch[/variant]` (`linux/amd64`, `linux/arm64/v8`); the error says why not.
pub fn parse_platform(s: &str) -> Result<Platform, String> {
    let parts: Vec<&str> = s.trim().split('/').collect();
    let valid = |p: &str| {
        !p.is_empty()
            && p.len() <= 64
            && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    };
    if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| valid(p)) {
        return Err(format!("platform {s:?} must look like os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8"));
    }
    Ok(Platform {
        os: parts[0].to_ascii_lowercase(),
        architecture: parts[1].to_ascii_lowercase(),
        variant: parts.get(2).map(|v| v.to_ascii_lowercase()),
    })
}
