//! A real OCI registry for the tests: Debian's `docker-registry` (distribution 2.8) on a free
//! loopback port with a temp storage directory, anonymous or behind token auth, with images
//! built offline by hand and pushed by `skopeo`, as an operator would push them.
//!
//! - [`Registry::start`] / [`Registry::with_token_auth`]: the second runs a token service in
//!   the test process (`/token`, HTTP Basic, JWTs signed with a key whose self-signed
//!   certificate is the registry's `rootcertbundle`); anonymous callers get a token that grants
//!   nothing, as on a registry whose repositories are private.
//! - [`Image`] builds an OCI image layout (one manifest, or an index of several platforms, or a
//!   CNAI/ModelPack artifact) and [`Registry::push`] copies it with `skopeo copy
//!   --preserve-digests`, so the digests and sizes it returns are what the registry serves.
//! - [`Registry::served`] reads the registry's own request log: blob GETs and the body bytes
//!   written for them, and blob HEADs. A log line lands a few milliseconds after its response, so wait for a
//!   count with [`crate::eventually`] rather than reading it once.
//!
//! The binaries come from `make apt-deps`; when one is missing the fixture panics saying so.

use std::{
    collections::{BTreeMap, VecDeque},
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    process::{Child, Command},
};
use tokio_util::sync::CancellationToken;

/// The OCI media types the built images use.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// CNAI/ModelPack artifact type and media types.
pub const MODEL_ARTIFACT: &str = "application/vnd.cncf.model.manifest.v1+json";
pub const MODEL_CONFIG: &str = "application/vnd.cncf.model.config.v1+json";
pub const MODEL_WEIGHT: &str = "application/vnd.cncf.model.weight.v1.raw";

/// The `service` (token audience) and `issuer` the registry is configured with.
const SERVICE: &str = "damselfly-test-registry";
const ISSUER: &str = "damselfly-testkit";

/// Panics with how to install `binary` unless it is on the `PATH`.
pub(crate) fn require(binary: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`{binary}` is not installed: the registry and runtime tests need Debian's docker-registry, \
         skopeo and containerd packages (`make apt-deps`, or `apt-get install -y docker-registry skopeo containerd`)"
    );
}

/// One layer's bytes and media type.
#[derive(Debug, Clone)]
pub struct Layer {
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Layer {
    /// An uncompressed tar holding one file of `file_len` bytes of
    /// [`origin::content`](crate::origin::content)`(file_len, seed)`; the blob is
    /// 512 + `file_len` rounded up to 512 + 1024 bytes.
    pub fn tar(file_len: usize, seed: u8) -> Self {
        Self {
            media_type: OCI_LAYER_TAR.into(),
            bytes: tar_of(&format!("data-{seed}.bin"), &crate::origin::content(file_len, seed)),
        }
    }

    /// Exactly `len` bytes of [`origin::content`](crate::origin::content)`(len, seed)` with any
    /// media type (a ModelPack weight, say): blob sizes on piece boundaries.
    pub fn raw(len: usize, seed: u8, media_type: &str) -> Self {
        Self { media_type: media_type.into(), bytes: crate::origin::content(len, seed) }
    }
}

/// One manifest of an [`Image`].
#[derive(Debug, Clone)]
pub struct ManifestSpec {
    /// `(os, architecture, variant)`, written into the config and the index entry.
    pub platform: (String, String, Option<String>),
    pub layers: Vec<Layer>,
    /// `Some` for an artifact (ModelPack); its config gets [`MODEL_CONFIG`].
    pub artifact_type: Option<String>,
}

/// An image to push: one manifest, or an index of several.
#[derive(Debug, Clone)]
pub enum Image {
    Single(ManifestSpec),
    Index(Vec<ManifestSpec>),
}

fn platform(p: &str) -> (String, String, Option<String>) {
    let mut parts = p.split('/').map(str::to_owned);
    let os = parts.next().unwrap_or_default();
    let arch = parts.next().expect("platform must be os/arch[/variant]");
    (os, arch, parts.next())
}

impl Image {
    /// A linux/amd64 image of these layers.
    pub fn of(layers: Vec<Layer>) -> Self {
        Self::Single(ManifestSpec { platform: platform("linux/amd64"), layers, artifact_type: None })
    }

    /// A CNAI/ModelPack model artifact of these layers ([`Layer::raw`] with [`MODEL_WEIGHT`]).
    pub fn model(layers: Vec<Layer>) -> Self {
        Self::Single(ManifestSpec {
            platform: platform("linux/amd64"),
            layers,
            artifact_type: Some(MODEL_ARTIFACT.into()),
        })
    }

    /// An OCI index with one manifest per `"os/arch[/variant]"`.
    pub fn index(platforms: Vec<(&str, Vec<Layer>)>) -> Self {
        Self::Index(
            platforms
                .into_iter()
                .map(|(p, layers)| ManifestSpec { platform: platform(p), layers, artifact_type: None })
                .collect(),
        )
    }
}

/// A blob the registry holds, as the manifest names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobInfo {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// One pushed manifest.
#[derive(Debug, Clone)]
pub struct PushedManifest {
    /// `os/arch[/variant]`.
    pub platform: String,
    pub digest: String,
    /// The config, then the layers.
    pub blobs: Vec<BlobInfo>,
}

/// What [`Registry::push`] put in the registry.
#[derive(Debug, Clone)]
pub struct Pushed {
    /// `http://127.0.0.1:<port>/v2/<repo>/manifests/<tag>`.
    pub manifest_url: String,
    /// The digest of what the tag names (the manifest, or the index).
    pub digest: String,
    /// One, or one per index entry in order.
    pub manifests: Vec<PushedManifest>,
}

impl Pushed {
    /// The manifest pushed for `platform` (`os/arch[/variant]`).
    pub fn for_platform(&self, platform: &str) -> &PushedManifest {
        self.manifests.iter().find(|m| m.platform == platform).unwrap_or_else(|| panic!("no manifest for {platform}"))
    }
}

/// What the registry's request log says it served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Served {
    /// Successful blob GETs.
    pub blob_gets: usize,
    /// Body bytes written by successful blob GETs.
    pub blob_bytes: u64,
    /// Per digest: (GETs, bytes).
    pub by_digest: BTreeMap<String, (usize, u64)>,
    /// Manifest GETs (any status).
    pub manifest_gets: usize,
    /// Blob HEADs answered (any status): what a mirror's authorization checks cost the registry.
    pub blob_heads: usize,
}

/// A token service's users and what it has handed out.
struct TokenService {
    username: String,
    password: String,
    key_der: Vec<u8>,
    cert_der: Vec<u8>,
    requests: AtomicUsize,
    jti: AtomicUsize,
}

/// A running `docker-registry`; dropping it stops the process and the token service.
pub struct Registry {
    /// `http://127.0.0.1:<port>` (over TLS: `https://<host>:<port>`).
    pub base: String,
    /// `127.0.0.1:<port>` (over TLS: `<host>:<port>`).
    pub host: String,
    /// The credentials the token service accepts (and pushes use), when auth is on.
    pub credentials: Option<(String, String)>,
    token: Option<Arc<TokenService>>,
    served: Arc<Mutex<Served>>,
    log_tail: Arc<Mutex<VecDeque<String>>>,
    /// The CA of its certificate, when it speaks TLS.
    tls: Option<crate::tls::TestCa>,
    _child: Child,
    stop: CancellationToken,
    dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Registry {
    /// A registry anyone may pull from and push to.
    pub async fn start() -> Self {
        Self::launch(None, None).await
    }

    /// A registry anyone may pull from, over TLS with a certificate for `host` from a CA of its
    /// own ([`Registry::ca_cert_path`]): `base` is `https://<host>:<port>`. `host` must resolve
    /// to 127.0.0.1 ([`crate::tls::loopback_name`]).
    pub async fn with_tls(host: &str) -> Self {
        Self::launch(None, Some(host)).await
    }

    /// The PEM file of the CA its TLS certificate chains to, when it speaks TLS.
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.tls.as_ref().map(|ca| ca.cert_path.as_path())
    }

    /// A registry behind token auth; `username`/`password` may pull and push.
    pub async fn with_token_auth(username: &str, password: &str) -> Self {
        Self::launch(Some((username.to_owned(), password.to_owned())), None).await
    }

    async fn launch(credentials: Option<(String, String)>, tls_host: Option<&str>) -> Self {
        require("docker-registry");
        let stop = CancellationToken::new();
        let dir = tempfile::Builder::new().prefix("damselfly-registry").tempdir().unwrap();
        let token = match &credentials {
            Some((user, password)) => Some(start_token_service(dir.path(), user, password, stop.clone()).await),
            None => None,
        };
        let tls = tls_host.map(|host| {
            let ca = crate::tls::TestCa::new("damselfly test registry CA");
            let files = ca.web_files(host, dir.path());
            (ca, files, host.to_owned())
        });
        // The registry binds its own port: take a free one, and try again if another process
        // grabbed it in between.
        for _attempt in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
            let config = dir.path().join("config.yml");
            let realm = token.as_ref().map(|(_, realm)| realm.as_str());
            let files = tls.as_ref().map(|(_, (cert, key), _)| (cert.as_path(), key.as_path()));
            std::fs::write(&config, registry_config(dir.path(), port, realm, files)).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("docker-registry failed to start");
            let served = Arc::new(Mutex::new(Served::default()));
            let log_tail = Arc::new(Mutex::new(VecDeque::new()));
            tokio::spawn(read_log(child.stderr.take().unwrap(), served.clone(), log_tail.clone()));
            let (host, base) = match &tls {
                Some((_, _, name)) => (format!("{name}:{port}"), format!("https://{name}:{port}")),
                None => (format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{port}")),
            };
            if wait_ready(&base, tls.as_ref().map(|(ca, ..)| ca), &mut child).await {
                return Self {
                    base,
                    host,
                    credentials,
                    token: token.map(|(t, _)| t),
                    served,
                    log_tail,
                    tls: tls.map(|(ca, ..)| ca),
                    _child: child,
                    stop,
                    dir,
                };
            }
            let _ = child.kill().await;
            eprintln!("registry did not come up on port {port}; log:\n{}", tail(&log_tail));
        }
        panic!("docker-registry did not start (three ports tried); see the log above");
    }

    /// `http://127.0.0.1:<port>/v2/<repository>/manifests/<reference>`.
    pub fn manifest_url(&self, repository: &str, reference: &str) -> String {
        format!("{}/v2/{repository}/manifests/{reference}", self.base)
    }

    /// What the registry has served so far, from its request log.
    pub fn served(&self) -> Served {
        self.served.lock().unwrap().clone()
    }

    /// Token requests the token service has answered (any outcome).
    pub fn token_requests(&self) -> usize {
        self.token.as_ref().map_or(0, |t| t.requests.load(Ordering::SeqCst))
    }

    /// The registry's last log lines, for a failing test's message.
    pub fn log_tail(&self) -> String {
        tail(&self.log_tail)
    }

    /// Writes `image` as an OCI layout and pushes it to `<repository>:<tag>` with skopeo.
    pub async fn push(&self, repository: &str, tag: &str, image: &Image) -> Pushed {
        require("skopeo");
        let layout = tempfile::Builder::new().prefix("oci-layout").tempdir_in(self.dir.path()).unwrap();
        let (digest, manifests, is_index) = write_layout(layout.path(), tag, image);
        let mut cmd = Command::new("skopeo");
        cmd.args(["copy", "--quiet", "--insecure-policy", "--preserve-digests", "--dest-tls-verify=false"]);
        if is_index {
            cmd.arg("--all");
        }
        if let Some((user, password)) = &self.credentials {
            cmd.arg("--dest-creds").arg(format!("{user}:{password}"));
        }
        // No credentials from the machine's own auth files.
        cmd.arg("--dest-authfile").arg(self.dir.path().join("no-auth.json"));
        cmd.arg(format!("oci:{}:{tag}", layout.path().display()));
        cmd.arg(format!("docker://{}/{repository}:{tag}", self.host));
        let out = cmd.stdin(Stdio::null()).output().await.expect("skopeo failed to start");
        assert!(
            out.status.success(),
            "skopeo copy to {repository}:{tag} failed: {}\nregistry log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        Pushed { manifest_url: self.manifest_url(repository, tag), digest, manifests }
    }
}

/// Polls `GET /v2/` until the registry answers (200, or 401 behind auth); false if it exits
/// or stays silent for 10 s.
async fn wait_ready(base: &str, ca: Option<&crate::tls::TestCa>, child: &mut Child) -> bool {
    let url = format!("{base}/v2/");
    let mut client = reqwest::Client::builder().timeout(Duration::from_secs(2)).no_proxy();
    if let Some(ca) = ca {
        client = client.add_root_certificate(reqwest::Certificate::from_der(ca.ca.cert()).unwrap());
    }
    let client = client.build().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(r) = client.get(&url).send().await
            && matches!(r.status().as_u16(), 200 | 401)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn registry_config(dir: &Path, port: u16, realm: Option<&str>, tls: Option<(&Path, &Path)>) -> String {
    let storage = dir.join("storage");
    let mut config = format!(
        "version: 0.1\n\
         log:\n  level: info\n  formatter: json\n  accesslog:\n    disabled: true\n\
         storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
         http:\n  addr: 127.0.0.1:{port}\n",
        storage.display()
    );
    if let Some((cert, key)) = tls {
        config.push_str(&format!("  tls:\n    certificate: {}\n    key: {}\n", cert.display(), key.display()));
    }
    if let Some(realm) = realm {
        config.push_str(&format!(
            "auth:\n  token:\n    realm: {realm}\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
            dir.join("token.crt").display()
        ));
    }
    config
}

/// Follows the registry's JSON log (stderr): counts blob and manifest GETs and keeps a tail.
async fn read_log(
    stderr: tokio::process::ChildStderr,
    served: Arc<Mutex<Served>>,
    log_tail: Arc<Mutex<VecDeque<String>>>,
) {
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(entry) = serde_json::from_str::<Value>(&line)
            && entry["http.request.method"] == "HEAD"
            && let Some(uri) = entry["http.request.uri"].as_str()
            && uri.contains("/blobs/")
            && entry.get("http.response.status").is_some()
        {
            served.lock().unwrap().blob_heads += 1;
        } else if let Ok(entry) = serde_json::from_str::<Value>(&line)
            && entry["http.request.method"] == "GET"
            && let Some(uri) = entry["http.request.uri"].as_str()
        {
            let status = entry["http.response.status"].as_u64().unwrap_or(0);
            let written = entry["http.response.written"].as_u64().unwrap_or(0);
            let path = uri.split('?').next().unwrap_or_default();
            let mut s = served.lock().unwrap();
            if let Some((_, digest)) = path.rsplit_once("/blobs/")
                && (200..300).contains(&status)
            {
                s.blob_gets += 1;
                s.blob_bytes += written;
                let e = s.by_digest.entry(digest.to_owned()).or_default();
                e.0 += 1;
                e.1 += written;
            } else if path.contains("/manifests/") {
                s.manifest_gets += 1;
            }
        }
        let mut t = log_tail.lock().unwrap();
        if t.len() == 40 {
            t.pop_front();
        }
        t.push_back(line);
    }
}

fn tail(log: &Mutex<VecDeque<String>>) -> String {
    log.lock().unwrap().iter().cloned().collect::<Vec<_>>().join("\n")
}

/// Starts the token service on `127.0.0.1:0` and writes its certificate to `dir/token.crt`;
/// answers the service and its realm URL.
async fn start_token_service(
    dir: &Path,
    username: &str,
    password: &str,
    stop: CancellationToken,
) -> (Arc<TokenService>, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["damselfly-test-token-signer".to_owned()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join("token.crt"), cert.pem()).unwrap();
    let service = Arc::new(TokenService {
        username: username.into(),
        password: password.into(),
        key_der: key.serialize_der(),
        cert_der: cert.der().to_vec(),
        requests: AtomicUsize::new(0),
        jti: AtomicUsize::new(0),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let realm = format!("http://{}/token", listener.local_addr().unwrap());
    let app = Router::new().route("/token", get(issue_token)).with_state(service.clone());
    tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await });
    (service, realm)
}

/// `GET /token?service=…&scope=repository:<name>:<actions>…`: a JWT granting the asked actions
/// to the known user, nothing to anonymous callers, 401 to wrong credentials.
async fn issue_token(
    State(service): State<Arc<TokenService>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    service.requests.fetch_add(1, Ordering::SeqCst);
    let subject = match headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(value) => {
            let decoded = value
                .strip_prefix("Basic ")
                .and_then(|b| STANDARD.decode(b.trim()).ok())
                .and_then(|b| String::from_utf8(b).ok());
            let expected = format!("{}:{}", service.username, service.password);
            if decoded.as_deref() != Some(expected.as_str()) {
                let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": "wrong username or password"}]});
                return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"token\"")], Json(body))
                    .into_response();
            }
            Some(service.username.clone())
        }
    };
    let access: Vec<Value> = match &subject {
        None => Vec::new(),
        Some(_) => query
            .iter()
            .filter(|(k, _)| k == "scope")
            .filter_map(|(_, scope)| {
                let mut parts = scope.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                let actions: Vec<&str> = actions.split(',').filter(|a| matches!(*a, "pull" | "push")).collect();
                (kind == "repository").then(|| json!({"type": kind, "name": name, "actions": actions}))
            })
            .collect(),
    };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    let claims = json!({
        "iss": ISSUER,
        "sub": subject.unwrap_or_default(),
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now - 10,
        "iat": now,
        "jti": format!("t{}", service.jti.fetch_add(1, Ordering::SeqCst)),
        "access": access,
    });
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
    header.x5c = Some(vec![STANDARD.encode(&service.cert_der)]);
    let token =
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ec_der(&service.key_der)).unwrap();
    Json(json!({"token": token, "access_token": token, "expires_in": 300})).into_response()
}

/// Writes an OCI image layout for `image` under `dir`, tagged `tag`; answers the tagged digest,
/// the manifests, and whether it is an index.
fn write_layout(dir: &Path, tag: &str, image: &Image) -> (String, Vec<PushedManifest>, bool) {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let (specs, is_index) = match image {
        Image::Single(m) => (std::slice::from_ref(m), false),
        Image::Index(ms) => (ms.as_slice(), true),
    };
    let mut pushed = Vec::new();
    let mut entries = Vec::new();
    for spec in specs {
        let (manifest, body) = write_manifest(&blobs, spec);
        let mut entry = json!({"mediaType": OCI_MANIFEST, "digest": manifest.digest, "size": body.len()});
        if is_index {
            let (os, arch, variant) = &spec.platform;
            entry["platform"] = json!({"os": os, "architecture": arch});
            if let Some(v) = variant {
                entry["platform"]["variant"] = json!(v);
            }
        }
        entries.push(entry);
        pushed.push(manifest);
    }
    let ref_name = json!({"org.opencontainers.image.ref.name": tag});
    let top = if is_index {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries});
        let body = serde_json::to_vec(&index).unwrap();
        let digest = put_blob(&blobs, &body);
        json!({"mediaType": OCI_INDEX, "digest": digest, "size": body.len(), "annotations": ref_name})
    } else {
        let mut entry = entries.remove(0);
        entry["annotations"] = ref_name;
        entry
    };
    let digest = top["digest"].as_str().unwrap().to_owned();
    let layout_index = json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&layout_index).unwrap()).unwrap();
    (digest, pushed, is_index)
}

/// Writes one manifest's config, layers and body; answers it and its body.
fn write_manifest(blobs: &Path, spec: &ManifestSpec) -> (PushedManifest, Vec<u8>) {
    let (os, arch, variant) = &spec.platform;
    let layers: Vec<BlobInfo> = spec
        .layers
        .iter()
        .map(|l| BlobInfo {
            digest: put_blob(blobs, &l.bytes),
            size: l.bytes.len() as u64,
            media_type: l.media_type.clone(),
        })
        .collect();
    let (config_type, config) = match &spec.artifact_type {
        Some(_) => (MODEL_CONFIG, json!({"descriptor": {"name": "test-model"}, "modelfs": {"type": "layers"}})),
        None => {
            let mut config = json!({
                "architecture": arch,
                "os": os,
                "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
            });
            if let Some(v) = variant {
                config["variant"] = json!(v);
            }
            (OCI_CONFIG, config)
        }
    };
    let config_body = serde_json::to_vec(&config).unwrap();
    let config_blob = BlobInfo {
        digest: put_blob(blobs, &config_body),
        size: config_body.len() as u64,
        media_type: config_type.into(),
    };
    let descriptor = |b: &BlobInfo| json!({"mediaType": b.media_type, "digest": b.digest, "size": b.size});
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(&config_blob),
        "layers": layers.iter().map(descriptor).collect::<Vec<_>>(),
    });
    if let Some(t) = &spec.artifact_type {
        manifest["artifactType"] = json!(t);
    }
    let body = serde_json::to_vec(&manifest).unwrap();
    let digest = put_blob(blobs, &body);
    let platform = match variant {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    };
    let mut all = vec![config_blob];
    all.extend(layers);
    (PushedManifest { platform, digest, blobs: all }, body)
}

/// Stores `bytes` under `blobs/<sha256 hex>`; answers `sha256:<hex>`.
fn put_blob(blobs: &Path, bytes: &[u8]) -> String {
    let hex = hex_of(&Sha256::digest(bytes));
    let path: PathBuf = blobs.join(&hex);
    std::fs::write(path, bytes).unwrap();
    format!("sha256:{hex}")
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A POSIX ustar archive of one regular file.
fn tar_of(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let field = |h: &mut [u8; 512], at: usize, value: &[u8]| h[at..at + value.len()].copy_from_slice(value);
    field(&mut header, 0, name.as_bytes());
    field(&mut header, 100, b"0000644\0");
    field(&mut header, 108, b"0000000\0");
    field(&mut header, 116, b"0000000\0");
    field(&mut header, 124, format!("{:011o}\0", data.len()).as_bytes());
    field(&mut header, 136, b"00000000000\0");
    field(&mut header, 148, b"        ");
    header[156] = b'0';
    field(&mut header, 257, b"ustar\0");
    field(&mut header, 263, b"00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    field(&mut header, 148, format!("{sum:06o}\0 ").as_bytes());
    let mut out = header.to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512) + 1024, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_layers_are_read_back_by_tar() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = Layer::tar(1000, 3).bytes;
        assert_eq!(bytes.len(), 512 + 1024 + 1024);
        let archive = dir.path().join("l.tar");
        std::fs::write(&archive, &bytes).unwrap();
        let out = std::process::Command::new("tar").arg("-xf").arg(&archive).current_dir(dir.path()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(std::fs::read(dir.path().join("data-3.bin")).unwrap(), crate::origin::content(1000, 3));
    }
}
