//! A preheat job's arguments, in Dragonfly's names (what Harbor, `dfctl` and the console send),
//! checked once when the job is created, so a bad field is a 422 naming it and nothing is
//! queued, and read again by the runner from the stored job. Registry credentials travel in the
//! arguments (the runner needs them after a restart) and are masked whenever a job is shown.

use std::{collections::BTreeMap, net::IpAddr};

use serde_json::Value;

use super::image_ref::{ManifestUrl, parse_platform};
use crate::Error;

/// What a preheat warms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreheatKind {
    /// The blobs of an image (or model artifact) named by its manifest URL.
    Image,
    /// The files at the URLs as given.
    File,
}

/// Which hosts of each cluster are warmed (the scheduler narrows them further).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreheatScope {
    SingleSeedPeer,
    AllSeedPeers,
    AllPeers,
}

/// A preheat's arguments, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreheatArgs {
    pub kind: PreheatKind,
    pub urls: Vec<String>,
    pub tag: String,
    pub application: String,
    pub filtered_query_params: Vec<String>,
    /// Sent to the registry or origin (an image's `Authorization`, say).
    pub headers: BTreeMap<String, String>,
    pub piece_length: Option<u64>,
    pub scope: PreheatScope,
    pub ips: Vec<IpAddr>,
    pub count: Option<u32>,
    pub percentage: Option<u32>,
    /// Tasks in flight per host; 0 lets the scheduler choose (8).
    pub concurrent_count: u32,
    /// Seconds the preheat may take; 0 means the manager's default.
    pub timeout_secs: u64,
    /// `os/arch[/variant]` of the image to pick from an index.
    pub platform: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Each OCI blob's task id comes from its digest alone (`TaskSpec.blob_digest_task_id`): the
    /// tasks a dfdaemon in blob-digest mode (`[proxy] blob_digest_task_id`) looks up. Off: the
    /// tasks of URL-derived ids, what dfget and a proxy in the default mode look up.
    pub blob_digest_task_id: bool,
}

/// Most URLs of one file preheat.
pub const MAX_URLS: usize = 1000;
const MAX_HEADERS: usize = 64;
const MAX_HEADER_BYTES: usize = 8 * 1024;
const MAX_TEXT: usize = 1024;
/// The longest timeout a job may ask for (a day).
pub const MAX_TIMEOUT_SECS: u64 = 24 * 3600;
/// What replaces a secret when a job is shown.
pub const MASK: &str = "******";

fn text(obj: &serde_json::Map<String, Value>, key: &str) -> Result<String, Error> {
    let field = format!("args.{key}");
    match obj.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) if s.len() <= MAX_TEXT => Ok(s.clone()),
        Some(Value::String(_)) => Err(Error::invalid(&field, format!("{field} is over {MAX_TEXT} bytes"))),
        Some(_) => Err(Error::invalid(&field, format!("{field} must be a string"))),
    }
}

fn number(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<u64>, Error> {
    let field = format!("args.{key}");
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            v.as_u64().map(Some).ok_or_else(|| Error::invalid(&field, format!("{field} must be a whole number ≥ 0")))
        }
    }
}

fn http_url(field: &str, v: &Value) -> Result<String, Error> {
    let s = v.as_str().ok_or_else(|| Error::invalid(field, format!("{field} must be a string")))?;
    let url = url::Url::parse(s).map_err(|e| Error::invalid(field, format!("{field} is not a URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::invalid(field, format!("{field} must be an http or https URL")));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(field, format!("{field} has no host")));
    }
    Ok(s.to_owned())
}

impl PreheatArgs {
    /// Checks a job's `args`; every error names its field.
    pub fn parse(args: &Value) -> Result<Self, Error> {
        let obj = args.as_object().ok_or_else(|| Error::invalid("args", "args must be an object"))?;
        let kind = match obj.get("type").and_then(Value::as_str) {
            Some("image") => PreheatKind::Image,
            Some("file") => PreheatKind::File,
            _ => return Err(Error::invalid("args.type", "args.type must be image or file")),
        };
        let mut urls = Vec::new();
        if let Some(url) = obj.get("url").filter(|v| !v.is_null() && v.as_str() != Some("")) {
            urls.push(http_url("args.url", url)?);
        }
        match obj.get("urls") {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) if kind == PreheatKind::File => {
                if urls.len() + list.len() > MAX_URLS {
                    return Err(Error::invalid("args.urls", format!("at most {MAX_URLS} URLs per preheat")));
                }
                for (i, v) in list.iter().enumerate() {
                    urls.push(http_url(&format!("args.urls[{i}]"), v)?);
                }
            }
            Some(Value::Array(_)) => {
                return Err(Error::invalid("args.urls", "an image preheat takes one manifest URL in args.url"));
            }
            Some(_) => return Err(Error::invalid("args.urls", "args.urls must be a list of URLs")),
        }
        if urls.is_empty() {
            return Err(Error::invalid("args.url", "give args.url (or, for files, args.urls)"));
        }
        if kind == PreheatKind::Image
            && let Err(e) = ManifestUrl::parse(&urls[0])
        {
            return Err(Error::invalid(
                "args.url",
                format!(
                    "args.url is not a manifest URL (<scheme>://<registry>/v2/<repository>/manifests/<tag or digest>): {e}"
                ),
            ));
        }
        let filtered_query_params: Vec<String> = match obj.get("filtered_query_params") {
            None | Some(Value::Null) => vec![],
            Some(Value::String(s)) => {
                s.split(['&', ',']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
            }
            Some(Value::Array(items)) => {
                items.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>().ok_or_else(|| {
                    Error::invalid("args.filtered_query_params", "args.filtered_query_params must be text")
                })?
            }
            Some(_) => {
                return Err(Error::invalid("args.filtered_query_params", "args.filtered_query_params must be text"));
            }
        };
        if filtered_query_params.len() > 64 || filtered_query_params.iter().any(|p| p.len() > 256) {
            return Err(Error::invalid("args.filtered_query_params", "at most 64 names of up to 256 bytes"));
        }
        let mut headers = BTreeMap::new();
        match obj.get("headers") {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) => {
                if map.len() > MAX_HEADERS {
                    return Err(Error::invalid("args.headers", format!("at most {MAX_HEADERS} headers")));
                }
                for (k, v) in map {
                    let v =
                        v.as_str().ok_or_else(|| Error::invalid("args.headers", format!("header {k} must be text")))?;
                    let valid = axum::http::HeaderName::from_bytes(k.as_bytes()).is_ok()
                        && axum::http::HeaderValue::from_str(v).is_ok()
                        && k.len() + v.len() <= MAX_HEADER_BYTES;
                    if !valid {
                        return Err(Error::invalid("args.headers", format!("header {k:?} is not a valid HTTP header")));
                    }
                    headers.insert(k.clone(), v.to_owned());
                }
            }
            Some(_) => return Err(Error::invalid("args.headers", "args.headers must be an object of text")),
        }
        let piece_length = number(obj, "piece_length")?.filter(|n| *n != 0);
        if let Some(len) = piece_length {
            common::piece::requested_piece_length(len)
                .map_err(|e| Error::invalid("args.piece_length", e.to_string()))?;
        }
        let scope = match text(obj, "scope")?.as_str() {
            "" | "single_seed_peer" | "single_peer" => PreheatScope::SingleSeedPeer,
            "all_seed_peers" => PreheatScope::AllSeedPeers,
            "all_peers" => PreheatScope::AllPeers,
            other => {
                return Err(Error::invalid(
                    "args.scope",
                    format!("args.scope {other:?} is not single_seed_peer, all_seed_peers or all_peers"),
                ));
            }
        };
        let ips = match obj.get("ips") {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(list)) if list.len() <= 10_000 => list
                .iter()
                .map(|v| v.as_str().and_then(|s| s.parse::<IpAddr>().ok()))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Error::invalid("args.ips", "args.ips must be a list of IP addresses"))?,
            Some(_) => return Err(Error::invalid("args.ips", "args.ips must be a list of at most 10000 IP addresses")),
        };
        let count = match number(obj, "count")? {
            None => None,
            Some(n @ 1..=1_000_000) => Some(n as u32),
            Some(_) => return Err(Error::invalid("args.count", "args.count must be at least 1")),
        };
        let percentage = match number(obj, "percentage")? {
            None => None,
            Some(p @ 1..=100) => Some(p as u32),
            Some(_) => return Err(Error::invalid("args.percentage", "args.percentage must be 1-100")),
        };
        let concurrent_count = match number(obj, "concurrent_count")? {
            None => 0,
            Some(n @ 0..=1000) => n as u32,
            Some(_) => return Err(Error::invalid("args.concurrent_count", "args.concurrent_count must be 0-1000")),
        };
        let timeout_secs = number(obj, "timeout")?.unwrap_or(0);
        if timeout_secs > MAX_TIMEOUT_SECS {
            return Err(Error::invalid("args.timeout", format!("args.timeout is at most {MAX_TIMEOUT_SECS} seconds")));
        }
        let platform = Some(text(obj, "platform")?).filter(|p| !p.is_empty());
        if let Some(p) = &platform {
            parse_platform(p).map_err(|e| Error::invalid("args.platform", format!("args.platform: {e}")))?;
        }
        let username = Some(text(obj, "username")?).filter(|s| !s.is_empty());
        let password = Some(text(obj, "password")?).filter(|s| !s.is_empty());
        let blob_digest_task_id = match obj.get("blob_digest_task_id") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(Error::invalid(
                    "args.blob_digest_task_id",
                    "args.blob_digest_task_id must be true or false",
                ));
            }
        };
        Ok(Self {
            kind,
            urls,
            tag: text(obj, "tag")?,
            application: text(obj, "application")?,
            filtered_query_params,
            headers,
            piece_length,
            scope,
            ips,
            count,
            percentage,
            concurrent_count,
            timeout_secs,
            platform,
            username,
            password,
            blob_digest_task_id,
        })
    }
}

/// A preheat's `args` as shown: the password and the values of credential headers masked.
pub fn masked(mut args: Value) -> Value {
    if let Some(obj) = args.as_object_mut() {
        if let Some(p) = obj.get_mut("password")
            && p.as_str().is_some_and(|s| !s.is_empty())
        {
            *p = Value::from(MASK);
        }
        if let Some(Value::Object(headers)) = obj.get_mut("headers") {
            for (name, value) in headers.iter_mut() {
                let secret = ["authorization", "proxy-authorization", "cookie"]
                    .contains(&name.to_ascii_lowercase().as_str())
                    || name.to_ascii_lowercase().contains("token");
                if secret {
                    *value = Value::from(MASK);
                }
            }
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn field(args: Value) -> String {
        match PreheatArgs::parse(&args) {
            Err(Error::Invalid { field: Some(f), .. }) => f,
            other => panic!("{args} gave {other:?}"),
        }
    }

    #[test]
    fn harbors_body_is_taken_as_sent() {
        let harbor = json!({"type": "image", "url": "https://reg.example/v2/lib/app/manifests/1.0", "tag": "",
            "filtered_query_params": "", "headers": {"Authorization": "Bearer x"}, "scope": "", "concurrent_count": 0, "timeout": 0});
        let a = PreheatArgs::parse(&harbor).unwrap();
        assert_eq!(
            (a.kind, a.scope, a.concurrent_count, a.timeout_secs),
            (PreheatKind::Image, PreheatScope::SingleSeedPeer, 0, 0)
        );
        assert_eq!(a.headers["Authorization"], "Bearer x");
        let digest = format!("sha256:{}", "0".repeat(64));
        let legacy = json!({"type": "image", "url": format!("https://reg.example/v2/a/b/c/manifests/{digest}"),
            "scope": "single_peer"});
        assert_eq!(PreheatArgs::parse(&legacy).unwrap().scope, PreheatScope::SingleSeedPeer);
    }

    #[test]
    fn every_bad_field_is_named() {
        let file = |extra: Value| {
            let mut base = json!({"type": "file", "url": "http://o/f"});
            base.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
            base
        };
        assert_eq!(field(json!({"url": "http://o/f"})), "args.type");
        assert_eq!(field(json!({"type": "tarball", "url": "http://o/f"})), "args.type");
        assert_eq!(field(json!({"type": "file"})), "args.url");
        assert_eq!(field(json!({"type": "file", "url": "ftp://o/f"})), "args.url");
        assert_eq!(field(json!({"type": "image", "url": "https://reg/v2/app/blobs/sha256:00"})), "args.url");
        assert_eq!(
            field(json!({"type": "image", "url": "https://reg/v2/app/manifests/1", "urls": ["https://x/y"]})),
            "args.urls"
        );
        assert_eq!(field(file(json!({"urls": ["http://o/a", "nope"]}))), "args.urls[1]");
        assert_eq!(field(file(json!({"scope": "everyone"}))), "args.scope");
        assert_eq!(field(file(json!({"count": 0}))), "args.count");
        assert_eq!(field(file(json!({"percentage": 0}))), "args.percentage");
        assert_eq!(field(file(json!({"percentage": 101}))), "args.percentage");
        assert_eq!(field(file(json!({"ips": ["10.0.0.1", "host"]}))), "args.ips");
        assert_eq!(field(file(json!({"timeout": -1}))), "args.timeout");
        assert_eq!(field(file(json!({"timeout": 100_000_000}))), "args.timeout");
        assert_eq!(field(file(json!({"headers": {"bad header": "x"}}))), "args.headers");
        assert_eq!(field(file(json!({"headers": {"X": "a\nb"}}))), "args.headers");
        assert_eq!(field(file(json!({"piece_length": 3}))), "args.piece_length");
        assert_eq!(field(file(json!({"platform": "linux"}))), "args.platform");
        assert_eq!(field(file(json!({"concurrent_count": 5000}))), "args.concurrent_count");
        let urls: Vec<String> = (0..=MAX_URLS).map(|i| format!("http://o/{i}")).collect();
        assert_eq!(field(json!({"type": "file", "urls": urls})), "args.urls");
    }

    #[test]
    fn file_preheats_take_several_urls_and_narrowing() {
        let a = PreheatArgs::parse(&json!({"type": "file", "urls": ["http://o/a", "http://o/b"], "scope": "all_peers",
            "ips": ["10.0.0.1"], "count": 3, "percentage": 50, "filtered_query_params": "X-Amz-Signature&Expires",
            "platform": "linux/arm64/v8"}))
        .unwrap();
        assert_eq!(a.urls.len(), 2);
        assert_eq!(a.filtered_query_params, ["X-Amz-Signature", "Expires"]);
        assert_eq!((a.count, a.percentage, a.ips.len()), (Some(3), Some(50), 1));
    }

    #[test]
    fn credentials_are_masked_when_shown() {
        let shown = masked(json!({"type": "image", "password": "hunter2", "username": "u",
            "headers": {"Authorization": "Bearer abc", "X-Registry-Token": "t", "Accept": "a"}}));
        assert_eq!(shown["password"], MASK);
        assert_eq!(shown["username"], "u");
        assert_eq!(shown["headers"]["Authorization"], MASK);
        assert_eq!(shown["headers"]["X-Registry-Token"], MASK);
        assert_eq!(shown["headers"]["Accept"], "a");
    }
}
