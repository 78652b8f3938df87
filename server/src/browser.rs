//! What the manager owes browsers: a cookie-authenticated change must come from the console's own
//! pages, and every answer tells the browser not to frame it, sniff it or leak its URL.
//!
//! The console keeps the sign-in token in a `SameSite=Lax` cookie, which a browser still sends
//! with some cross-site requests. So a request that changes something (any method but GET, HEAD
//! and OPTIONS) and carries that cookie without an `Authorization` header is refused (403) when
//! the browser says it came from elsewhere: `Sec-Fetch-Site` other than `same-origin` or `none`,
//! or an `Origin` whose host is not the request's `Host`. Clients that send neither header (curl,
//! CI) and bearer-token callers are not browsers riding on a cookie, and pass.
//!
//! Behind HTTPS (`[server] secure_cookies`, or a TLS-terminating proxy's `X-Forwarded-Proto:
//! https`) every cookie the manager sets is marked `Secure`, so a browser never sends the
//! sign-in token over plain HTTP.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::{
    Error,
    auth::{SESSION_COOKIE, cookie},
};

/// How the manager is reached.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    /// Browsers reach it over HTTPS: every cookie is `Secure`.
    pub secure_cookies: bool,
}

/// Refuses cross-site changes riding on the console's cookie and adds the security headers.
pub async fn guard(State(policy): State<Policy>, req: Request, next: Next) -> Response {
    let https = policy.secure_cookies
        || req.headers().get("x-forwarded-proto").is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"https"));
    if let Some(why) = cross_site_change(req.method(), req.headers()) {
        tracing::warn!(method = %req.method(), uri = %req.uri(), why, "cross-site request refused");
        return with_security_headers(
            Error::Forbidden(format!("a cross-site request may not change anything ({why})")).into_response(),
        );
    }
    let mut response = with_security_headers(next.run(req).await);
    if https {
        mark_cookies_secure(response.headers_mut());
    }
    response
}

/// Adds `Secure` to every `Set-Cookie` that lacks it.
fn mark_cookies_secure(headers: &mut HeaderMap) {
    let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let text = String::from_utf8_lossy(cookie.as_bytes());
        let secure = text.split(';').any(|attr| attr.trim().eq_ignore_ascii_case("secure"));
        let marked = if secure { Some(cookie.clone()) } else { HeaderValue::from_str(&format!("{text}; Secure")).ok() };
        headers.append(header::SET_COOKIE, marked.unwrap_or(cookie));
    }
}

/// Why this request is a cross-site change made with the console's cookie, if it is one.
fn cross_site_change(method: &Method, headers: &HeaderMap) -> Option<&'static str> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || headers.contains_key(header::AUTHORIZATION) || cookie(headers, SESSION_COOKIE).is_none() {
        return None;
    }
    if let Some(site) = headers.get("sec-fetch-site") {
        return (!matches!(site.as_bytes(), b"same-origin" | b"none")).then_some("Sec-Fetch-Site");
    }
    let origin = headers.get(header::ORIGIN)?.to_str().ok()?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    (origin == "null" || !origin_host.eq_ignore_ascii_case(host)).then_some("Origin")
}

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        // Framing and plugins refused, `<base>` pinned. Console pages set their own policy,
        // which also allows only scripts of this origin or with the page's nonce
        // (`console::app::script_policy`); this one covers every other response.
        (header::CONTENT_SECURITY_POLICY, "frame-ancestors 'none'; base-uri 'self'; object-src 'none'"),
    ] {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
    }

    #[test]
    fn only_cookie_changes_from_elsewhere_are_refused() {
        let cookie = ("cookie", "jwt=t");
        let post = &Method::POST;
        let refused = [
            headers(&[cookie, ("sec-fetch-site", "cross-site"), ("host", "m:8080")]),
            headers(&[cookie, ("sec-fetch-site", "same-site"), ("host", "m:8080")]),
            headers(&[cookie, ("origin", "https://evil.example"), ("host", "m:8080")]),
            headers(&[cookie, ("origin", "null"), ("host", "m:8080")]),
        ];
        for h in &refused {
            assert!(cross_site_change(post, h).is_some(), "{h:?}");
        }
        let allowed = [
            headers(&[cookie, ("sec-fetch-site", "same-origin"), ("origin", "http://m:8080"), ("host", "m:8080")]),
            headers(&[cookie, ("origin", "http://m:8080"), ("host", "m:8080")]),
            headers(&[cookie, ("host", "m:8080")]),
            headers(&[("origin", "https://evil.example"), ("host", "m:8080")]),
            headers(&[cookie, ("authorization", "Bearer x"), ("origin", "https://evil.example"), ("host", "m:8080")]),
        ];
        for h in &allowed {
            assert!(cross_site_change(post, h).is_none(), "{h:?}");
        }
        let cross = headers(&[cookie, ("sec-fetch-site", "cross-site"), ("host", "m:8080")]);
        assert!(cross_site_change(&Method::GET, &cross).is_none(), "reading is not changing");
    }
}
