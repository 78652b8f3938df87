//! Token brokering, for one dfdaemon address standing for several registries.
//!
//! A registries.conf mirror `location = "<dfdaemon>/reg-a"` makes CRI-O and podman ping
//! `/v2/` on the dfdaemon (no prefix: the dfdaemon cannot tell which registry), then ask the
//! ping's token realm for `repository:reg-a/<repository>:pull`, a name the registry behind
//! `reg-a` does not know. So while `[[proxy.registries]]` entries exist:
//!
//! - `/v2/` is answered here: `401` with a Bearer challenge whose realm is this endpoint
//!   ([`ping`]);
//! - a token request ([`serve`]) is sent on to the realm of the upstream its scope names, learnt
//!   from that upstream's own `/v2/` challenge, with the prefix taken out of the scope and the
//!   upstream's `service`; the client's `Authorization` (its registry credentials) goes with it
//!   untouched and the realm's answer comes back as it is. An upstream that challenges no one
//!   gets [`ANONYMOUS`], a placeholder that is never forwarded;
//! - a challenge an upstream answers a brokered request with names this endpoint and the
//!   prefixed repository ([`rewrite_challenges`]).
//!
//! Only realms that configured upstreams name are reached, through the guarded client like any
//! proxy target; the dfdaemon keeps no token and no credential.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::Response,
};
use url::Url;

use super::{
    ErrorType, ProxyState, error,
    route::{Brokered, TOKEN_PATH, Upstreams},
};

/// The token handed out for an upstream that needs none; dropped before any request leaves.
pub(super) const ANONYMOUS: &str = "Bearer damselfly-anonymous";

/// The `service` the dfdaemon's challenges name.
const SERVICE: &str = "damselfly";

/// Token answers are small JSON documents; anything larger is not one.
const MAX_TOKEN_RESPONSE: usize = 256 * 1024;

/// The realm a client reaches the broker at: the address it reached the dfdaemon at.
fn realm(host: Option<&HeaderValue>) -> Option<String> {
    let host = host?.to_str().ok()?;
    let authority: axum::http::uri::Authority = host.parse().ok()?;
    (authority.as_str() == host && !host.contains('@')).then(|| format!("http://{host}{TOKEN_PATH}"))
}

/// `/v2/`: the dfdaemon's own challenge.
pub(super) fn ping(headers: &HeaderMap) -> Response {
    let Some(realm) = realm(headers.get(header::HOST)) else {
        return error(StatusCode::BAD_REQUEST, ErrorType::Proxy, "a Host header naming the dfdaemon is needed".into());
    };
    let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":null}]}"#;
    Response::builder()
        .status(StatusCode::UNAUTHORIZED)
        .header(header::WWW_AUTHENTICATE, format!("Bearer realm=\"{realm}\",service=\"{SERVICE}\""))
        .header(header::CONTENT_TYPE, "application/json")
        .header("docker-distribution-api-version", "registry/2.0")
        .body(Body::from(body))
        .unwrap_or_default()
}

/// One `repository:<name>:<actions>` scope (or another resource type, kept as it is).
struct Scope<'a> {
    kind: &'a str,
    name: &'a str,
    actions: &'a str,
}

fn parse_scope(scope: &str) -> Option<Scope<'_>> {
    let (kind, rest) = scope.split_once(':')?;
    let (name, actions) = rest.rsplit_once(':')?;
    Some(Scope { kind, name, actions })
}

/// A token request: sent on to the realm of the upstream its scopes name.
pub(super) async fn serve(state: &ProxyState, uri: &Uri, headers: &HeaderMap) -> Response {
    let upstreams = &state.rules.upstreams;
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect();
    let (upstream, scopes) = match resolve(upstreams, &query) {
        Ok(found) => found,
        Err(why) => return error(StatusCode::BAD_REQUEST, ErrorType::Proxy, why),
    };
    let client = state.origins.guarded();
    let challenge = match learn_challenge(client, &upstream).await {
        Ok(Some(challenge)) => challenge,
        Ok(None) => {
            let token = ANONYMOUS.trim_start_matches("Bearer ");
            let body = serde_json::json!({ "token": token, "access_token": token, "expires_in": 3600 });
            return Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(body.to_string()))
                .unwrap_or_default();
        }
        Err(why) => return error(StatusCode::BAD_GATEWAY, ErrorType::Backend, why),
    };
    let param = |name: &str| challenge.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let Some(mut realm) = param("realm").and_then(|r| Url::parse(r).ok()) else {
        return error(StatusCode::BAD_GATEWAY, ErrorType::Backend, format!("{upstream} names no usable token realm"));
    };
    {
        let mut pairs = realm.query_pairs_mut();
        for (k, v) in query.iter().filter(|(k, _)| k != "scope" && k != "service") {
            pairs.append_pair(k, v);
        }
        if let Some(service) = param("service") {
            pairs.append_pair("service", service);
        }
        for scope in &scopes {
            pairs.append_pair("scope", scope);
        }
    }
    let mut request = client.get(realm.clone());
    if let Some(auth) = headers.get(header::AUTHORIZATION).filter(|v| v.as_bytes() != ANONYMOUS.as_bytes()) {
        request = request.header(header::AUTHORIZATION, auth);
    }
    let answer = match request.send().await {
        Ok(a) => a,
        Err(e) => {
            let why = match super::refusal_in(&e) {
                Some(refusal) => return error(StatusCode::FORBIDDEN, ErrorType::Proxy, refusal.to_string()),
                None => e.without_url().to_string(),
            };
            return error(StatusCode::BAD_GATEWAY, ErrorType::Backend, format!("token realm of {upstream}: {why}"));
        }
    };
    let status = answer.status();
    let passed: Vec<(header::HeaderName, HeaderValue)> = answer
        .headers()
        .iter()
        .filter(|(n, _)| matches!(*n, &header::CONTENT_TYPE | &header::WWW_AUTHENTICATE))
        .map(|(n, v)| (n.clone(), v.clone()))
        .collect();
    let body = match read_bounded(answer).await {
        Ok(body) => body,
        Err(why) => {
            return error(StatusCode::BAD_GATEWAY, ErrorType::Backend, format!("token realm of {upstream}: {why}"));
        }
    };
    let mut response = Response::builder().status(status);
    for (name, value) in passed {
        response = response.header(name, value);
    }
    response.body(Body::from(body)).unwrap_or_default()
}

/// The upstream a token request is for, and its scopes as that upstream names them. Scopes of
/// several upstreams in one request are refused.
fn resolve(upstreams: &Upstreams, query: &[(String, String)]) -> Result<(Url, Vec<String>), String> {
    let mut upstream: Option<&Url> = None;
    let mut scopes = Vec::new();
    for scope in query.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ')).filter(|s| !s.is_empty()) {
        let parsed = parse_scope(scope).ok_or_else(|| format!("scope {scope:?} is not type:name:actions"))?;
        let (this, name) = match upstreams.strip_prefix(parsed.name) {
            Some((entry, rest)) if parsed.kind.starts_with("repository") => (&entry.upstream, rest),
            _ => (
                upstreams.default.as_ref().ok_or_else(|| {
                    format!("scope {scope:?} names no [[proxy.registries]] prefix and no registry_mirror is set")
                })?,
                parsed.name,
            ),
        };
        if upstream.is_some_and(|u| u != this) {
            return Err("one token request may name the repositories of one registry only".into());
        }
        upstream = Some(this);
        scopes.push(format!("{}:{name}:{}", parsed.kind, parsed.actions));
    }
    let upstream = upstream
        .or(upstreams.default.as_ref())
        .ok_or("a token request without a scope needs a registry_mirror to go to")?;
    Ok((upstream.clone(), scopes))
}

/// The upstream's Bearer challenge to an anonymous `/v2/`; `None` when it challenges no one.
async fn learn_challenge(client: &reqwest::Client, upstream: &Url) -> Result<Option<Vec<(String, String)>>, String> {
    let mut ping = upstream.clone();
    ping.set_path("/v2/");
    ping.set_query(None);
    let answer = client.get(ping).send().await.map_err(|e| format!("{upstream}: {}", e.without_url()))?;
    if answer.status().is_success() {
        return Ok(None);
    }
    let challenge = answer
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(parse_bearer);
    match (answer.status(), challenge) {
        (StatusCode::UNAUTHORIZED, Some(c)) => Ok(Some(c)),
        (status, _) => Err(format!("{upstream} answered its /v2/ with {status} and no Bearer challenge")),
    }
}

async fn read_bounded(mut answer: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = answer.chunk().await.map_err(|e| e.without_url().to_string())? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_TOKEN_RESPONSE {
            return Err(format!("answer larger than {MAX_TOKEN_RESPONSE} bytes"));
        }
    }
    Ok(body)
}

/// The parameters of a `Bearer k="v",k2=v2` challenge, in order.
fn parse_bearer(value: &str) -> Option<Vec<(String, String)>> {
    let rest = value.trim_start();
    let (scheme, mut rest) = rest.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut params = Vec::new();
    loop {
        rest = rest.trim_start_matches([' ', ',']);
        if rest.is_empty() {
            return Some(params);
        }
        let (key, after) = rest.split_once('=')?;
        let (value, after) = match after.strip_prefix('"') {
            Some(quoted) => {
                let mut value = String::new();
                let mut chars = quoted.char_indices();
                let end = loop {
                    match chars.next()? {
                        (i, '"') => break i,
                        (_, '\\') => value.push(chars.next()?.1),
                        (_, c) => value.push(c),
                    }
                };
                (value, &quoted[end + 1..])
            }
            None => {
                let end = after.find(',').unwrap_or(after.len());
                (after[..end].trim().to_owned(), &after[end..])
            }
        };
        params.push((key.trim().to_ascii_lowercase(), value));
        rest = after;
    }
}

fn quoted(value: &str) -> String {
    format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""))
}

/// An upstream's answer to a brokered request, its Bearer challenges naming the broker (and
/// the repository as the client named it).
pub(super) fn rewrite_challenges(mut response: Response, host: Option<&HeaderValue>, brokered: &Brokered) -> Response {
    let Some(realm) = realm(host) else { return response };
    let rewritten: Vec<HeaderValue> = response
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .map(|value| {
            let Some(params) = value.to_str().ok().and_then(parse_bearer) else { return value.clone() };
            let params: Vec<String> = params
                .into_iter()
                .map(|(k, v)| match k.as_str() {
                    "realm" => format!("realm={}", quoted(&realm)),
                    "service" => format!("service={}", quoted(SERVICE)),
                    "scope" => {
                        let scopes: Vec<String> = v
                            .split(' ')
                            .map(|s| match (parse_scope(s), &brokered.prefix) {
                                (Some(p), Some(prefix)) if p.kind.starts_with("repository") => {
                                    format!("{}:{prefix}/{}:{}", p.kind, p.name, p.actions)
                                }
                                _ => s.to_owned(),
                            })
                            .collect();
                        format!("scope={}", quoted(&scopes.join(" ")))
                    }
                    _ => format!("{k}={}", quoted(&v)),
                })
                .collect();
            HeaderValue::from_str(&format!("Bearer {}", params.join(","))).unwrap_or_else(|_| value.clone())
        })
        .collect();
    if !rewritten.is_empty() {
        let headers = response.headers_mut();
        headers.remove(header::WWW_AUTHENTICATE);
        for value in rewritten {
            headers.append(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::route::Prefixed;

    #[test]
    fn bearer_challenges_are_read_and_rewritten_to_the_broker() {
        let params =
            parse_bearer(r#"Bearer realm="http://auth/token",service="reg \"a\"",scope="repository:lib/app:pull""#)
                .unwrap();
        assert_eq!(
            params,
            vec![
                ("realm".into(), "http://auth/token".into()),
                ("service".into(), "reg \"a\"".into()),
                ("scope".into(), "repository:lib/app:pull".into())
            ]
        );
        assert_eq!(parse_bearer("Bearer realm=x,service=y").unwrap().len(), 2);
        assert!(parse_bearer(r#"Basic realm="x""#).is_none());
        assert!(parse_bearer(r#"Bearer realm="unterminated"#).is_none());

        let response = Response::builder()
            .status(401)
            .header(
                header::WWW_AUTHENTICATE,
                r#"Bearer realm="http://auth/token",service="s",scope="repository:lib/app:pull""#,
            )
            .body(Body::empty())
            .unwrap();
        let host = HeaderValue::from_static("127.0.0.1:4001");
        let out = rewrite_challenges(response, Some(&host), &Brokered { prefix: Some("reg-a".into()) });
        assert_eq!(
            out.headers()[header::WWW_AUTHENTICATE],
            r#"Bearer realm="http://127.0.0.1:4001/_damselfly/token",service="damselfly",scope="repository:reg-a/lib/app:pull""#
        );
        // A Host that is not an authority is not reflected into a realm.
        assert!(realm(Some(&HeaderValue::from_static("evil.example/path"))).is_none());
        assert!(realm(Some(&HeaderValue::from_static("u@evil.example"))).is_none());
    }

    #[test]
    fn a_token_request_goes_to_the_upstream_its_scopes_name() {
        let upstreams = Upstreams {
            default: Some(Url::parse("https://default.example").unwrap()),
            prefixed: vec![Prefixed { prefix: "reg-a".into(), upstream: Url::parse("http://a.example:5000").unwrap() }],
        };
        let q = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let (u, scopes) =
            resolve(&upstreams, &q(&[("scope", "repository:reg-a/lib/app:pull"), ("service", "damselfly")])).unwrap();
        assert_eq!((u.as_str(), scopes), ("http://a.example:5000/", vec!["repository:lib/app:pull".to_string()]));
        let (u, scopes) = resolve(&upstreams, &q(&[("scope", "repository:lib/app:pull,push")])).unwrap();
        assert_eq!(
            (u.as_str(), scopes),
            ("https://default.example/", vec!["repository:lib/app:pull,push".to_string()])
        );
        let mixed = q(&[("scope", "repository:reg-a/x:pull repository:y:pull")]);
        assert!(resolve(&upstreams, &mixed).unwrap_err().contains("one registry"));
        assert!(resolve(&upstreams, &q(&[("scope", "nonsense")])).is_err());
        let only_prefixed = Upstreams { default: None, ..upstreams };
        assert!(resolve(&only_prefixed, &q(&[("scope", "repository:other/x:pull")])).is_err());
    }
}
