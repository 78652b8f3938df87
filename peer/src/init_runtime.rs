//! `dfdaemon init-runtime`: the container runtime's mirror configuration for this dfdaemon, so an
//! operator does not write it by hand.
//!
//! It is derived from the dfdaemon's own configuration: its proxy address, `registry_mirror` and
//! `[[proxy.registries]]` (plus registries named on the command line):
//! - containerd: `<dir>/<host[:port]>/hosts.toml` per registry (the dfdaemon first, the registry
//!   as the fallback `server`, `X-Dragonfly-Registry` naming it), and with `all_registries`
//!   `<dir>/_default/hosts.toml` (no header: the dfdaemon goes by `?ns=`);
//! - CRI-O and podman: one registries.conf drop-in, a `[[registry]]` per registry with the
//!   dfdaemon (and the entry's path prefix) as its mirror.
//!
//! Writing is idempotent: a file already holding what would be written is left alone, and only
//! the files named here are touched. Nothing is read from the network.

use std::{
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
};

use url::Url;

use crate::{Error, config::DfdaemonConfig};

/// A runtime whose mirror configuration can be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    Containerd,
    Crio,
    Podman,
}

impl Runtime {
    /// Where the runtime reads the written files from, by default.
    pub fn default_dir(self) -> &'static Path {
        match self {
            Runtime::Containerd => Path::new("/etc/containerd/certs.d"),
            Runtime::Crio | Runtime::Podman => Path::new("/etc/containers/registries.conf.d"),
        }
    }
}

/// The name of the registries.conf drop-in.
pub const DROP_IN: &str = "50-damselfly.conf";

/// One file to write, relative to the runtime's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeFile {
    pub path: PathBuf,
    pub text: String,
}

/// A registry the runtime reaches through the dfdaemon, and the mirror path that names it.
struct Registry {
    upstream: Url,
    prefix: Option<String>,
}

/// `host[:port]` as a runtime names the registry (`docker.io` for Docker Hub).
fn runtime_name(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    if matches!(host, "index.docker.io" | "registry-1.docker.io") && url.port().is_none() {
        return "docker.io".into();
    }
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The files that point `runtime` at the dfdaemon `config` describes; `extra` registries are
/// mirrored like `registry_mirror` (containerd names them by header, CRI-O by a mirror without
/// a path only when they are the `registry_mirror`, so for CRI-O they must be configured).
pub fn files(
    runtime: Runtime,
    config: &DfdaemonConfig,
    extra: &[Url],
    all_registries: bool,
) -> Result<Vec<RuntimeFile>, Error> {
    let upstreams = config.proxy.upstreams()?;
    let mut registries: Vec<Registry> = Vec::new();
    if let Some(default) = &upstreams.default {
        registries.push(Registry { upstream: default.clone(), prefix: None });
    }
    for p in &upstreams.prefixed {
        registries.push(Registry { upstream: p.upstream.clone(), prefix: Some(p.prefix.clone()) });
    }
    if runtime == Runtime::Containerd {
        registries.extend(extra.iter().map(|u| Registry { upstream: u.clone(), prefix: None }));
    } else if !extra.is_empty() {
        return Err(Error::Config(
            "CRI-O and podman cannot name a registry to the dfdaemon: add it to [[proxy.registries]] instead".into(),
        ));
    }
    if registries.is_empty() && !(runtime == Runtime::Containerd && all_registries) {
        return Err(Error::Config(
            "nothing to mirror: set [proxy] registry_mirror or [[proxy.registries]], or name registries".into(),
        ));
    }
    let mut addr = config.server.proxy_addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let mirror = format!("http://{addr}");
    Ok(match runtime {
        Runtime::Containerd => {
            let mut out: Vec<RuntimeFile> = registries
                .iter()
                .map(|r| {
                    let server = r.upstream.as_str().trim_end_matches('/');
                    RuntimeFile {
                        path: PathBuf::from(runtime_name(&r.upstream)).join("hosts.toml"),
                        text: format!(
                            "# Written by dfdaemon init-runtime: pulls go through the dfdaemon, then {server}.\n\
                             server = {server:?}\n\n[host.{mirror:?}]\n  capabilities = [\"pull\", \"resolve\"]\n  \
                             [host.{mirror:?}.header]\n    X-Dragonfly-Registry = [{server:?}]\n"
                        ),
                    }
                })
                .collect();
            if all_registries {
                out.push(RuntimeFile {
                    path: PathBuf::from("_default").join("hosts.toml"),
                    text: format!(
                        "# Written by dfdaemon init-runtime: every registry through the dfdaemon (it goes by ?ns=).\n\
                         [host.{mirror:?}]\n  capabilities = [\"pull\", \"resolve\"]\n"
                    ),
                });
            }
            out
        }
        Runtime::Crio | Runtime::Podman => {
            let mut text = String::from("# Written by dfdaemon init-runtime: pulls go through the dfdaemon first.\n");
            for r in &registries {
                let name = runtime_name(&r.upstream);
                let location = match &r.prefix {
                    Some(prefix) => format!("{addr}/{prefix}"),
                    None => addr.to_string(),
                };
                text.push_str(&format!(
                    "\n[[registry]]\nprefix = {name:?}\nlocation = {name:?}\n\n[[registry.mirror]]\n\
                     location = {location:?}\ninsecure = true\n"
                ));
            }
            vec![RuntimeFile { path: PathBuf::from(DROP_IN), text }]
        }
    })
}

/// What writing one file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub path: PathBuf,
    /// False when the file already held this text.
    pub changed: bool,
}

/// Writes `files` under `dir` (each replaced atomically), leaving alone those that already hold
/// their text.
pub fn write(dir: &Path, files: &[RuntimeFile]) -> Result<Vec<Written>, Error> {
    files
        .iter()
        .map(|file| {
            let path = dir.join(&file.path);
            if std::fs::read_to_string(&path).is_ok_and(|text| text == file.text) {
                return Ok(Written { path, changed: false });
            }
            let parent = path.parent().unwrap_or(dir);
            std::fs::create_dir_all(parent)?;
            let temp = parent.join(format!(".{}.damselfly-tmp", file.path.file_name().unwrap_or_default().display()));
            std::fs::write(&temp, &file.text)?;
            std::fs::rename(&temp, &path)?;
            Ok(Written { path, changed: true })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RegistryEntry;

    fn config() -> DfdaemonConfig {
        let mut c = DfdaemonConfig::default();
        c.server.proxy_addr = "0.0.0.0:4001".parse().unwrap();
        c.proxy.registry_mirror = "https://index.docker.io".into();
        c.proxy.registries = vec![RegistryEntry { prefix: "reg-a".into(), upstream: "http://10.0.0.5:5000".into() }];
        c
    }

    #[test]
    fn containerd_gets_a_hosts_toml_per_registry_and_crio_one_drop_in() {
        let written = files(Runtime::Containerd, &config(), &[Url::parse("https://quay.io").unwrap()], true).unwrap();
        let paths: Vec<_> = written.iter().map(|f| f.path.display().to_string()).collect();
        assert_eq!(
            paths,
            ["docker.io/hosts.toml", "10.0.0.5:5000/hosts.toml", "quay.io/hosts.toml", "_default/hosts.toml"]
        );
        let hosts: toml::Value = toml::from_str(&written[1].text).unwrap();
        assert_eq!(hosts["server"].as_str(), Some("http://10.0.0.5:5000"));
        let mirror = &hosts["host"]["http://127.0.0.1:4001"];
        assert_eq!(mirror["capabilities"].as_array().unwrap().len(), 2);
        assert_eq!(mirror["header"]["X-Dragonfly-Registry"][0].as_str(), Some("http://10.0.0.5:5000"));
        let default: toml::Value = toml::from_str(&written[3].text).unwrap();
        assert!(default.get("server").is_none() && default["host"]["http://127.0.0.1:4001"].get("header").is_none());

        let crio = files(Runtime::Crio, &config(), &[], false).unwrap();
        assert_eq!(crio.len(), 1);
        let conf: toml::Value = toml::from_str(&crio[0].text).unwrap();
        let registries = conf["registry"].as_array().unwrap();
        assert_eq!(registries[0]["prefix"].as_str(), Some("docker.io"));
        assert_eq!(registries[0]["mirror"][0]["location"].as_str(), Some("127.0.0.1:4001"));
        assert_eq!(registries[1]["location"].as_str(), Some("10.0.0.5:5000"));
        assert_eq!(registries[1]["mirror"][0]["location"].as_str(), Some("127.0.0.1:4001/reg-a"));
        assert!(files(Runtime::Podman, &config(), &[Url::parse("https://quay.io").unwrap()], false).is_err());
        assert!(files(Runtime::Crio, &DfdaemonConfig::default(), &[], false).is_err(), "nothing to mirror");
    }

    #[test]
    fn writing_again_changes_nothing_and_touches_only_its_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("other.io")).unwrap();
        std::fs::write(dir.path().join("other.io/hosts.toml"), "server = \"https://other.io\"\n").unwrap();
        let wanted = files(Runtime::Containerd, &config(), &[], false).unwrap();
        let first = write(dir.path(), &wanted).unwrap();
        assert!(first.iter().all(|w| w.changed));
        let again = write(dir.path(), &wanted).unwrap();
        assert!(again.iter().all(|w| !w.changed), "{again:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("other.io/hosts.toml")).unwrap(),
            "server = \"https://other.io\"\n"
        );
        std::fs::write(dir.path().join("docker.io/hosts.toml"), "edited").unwrap();
        let repaired = write(dir.path(), &wanted).unwrap();
        assert_eq!(repaired.iter().filter(|w| w.changed).count(), 1);
        assert_eq!(std::fs::read_to_string(dir.path().join("docker.io/hosts.toml")).unwrap(), wanted[0].text);
    }
}
