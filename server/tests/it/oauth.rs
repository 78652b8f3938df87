//! OAuth2 / OIDC sign-in end to end against a provider the test starts ([`idp`]), on SQLite,
//! PostgreSQL and MariaDB: first and repeated sign-in, GitHub-style userinfo with HTTP Basic
//! client authentication, name clashes, open-redirect attempts, disabled users, and every way
//! the provider or the browser can get the flow wrong.

#[path = "oauth/idp.rs"]
mod idp;

use idp::{CLIENT_ID, CLIENT_SECRET, Idp};
use reqwest::{
    StatusCode,
    header::{ACCEPT, COOKIE, LOCATION, SET_COOKIE},
};
use serde_json::{Value, json};
use server::config::{OAuthProviderConfig, TokenAuthMethod};
use testkit::{
    db::Backend,
    manager::{Answer, ROOT_PASSWORD, TestManager},
};

testkit::on_every_database!(sign_in_creates_and_reuses_users, provider_failures);

fn provider(idp: &Idp, name: &str) -> OAuthProviderConfig {
    OAuthProviderConfig {
        name: name.into(),
        display_name: format!("{name} SSO"),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        authorize_url: format!("{}/authorize", idp.base),
        token_url: format!("{}/token", idp.base),
        userinfo_url: format!("{}/userinfo", idp.base),
        // The manager sits behind a proxy the provider knows by another name; the test's
        // "browser" maps it back to the manager's loopback address.
        redirect_url: format!("http://manager.test/api/v1/users/signin/{name}/callback"),
        ..Default::default()
    }
}

/// A browser that does not follow redirects, so each hop can be checked.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

async fn answer(res: reqwest::Response) -> Answer {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    Answer { status, body, headers }
}

fn location(a: &Answer) -> String {
    a.headers.get(LOCATION).unwrap_or_else(|| panic!("no Location: {:?} {}", a.status, a.body)).to_str().unwrap().into()
}

/// The `name=value` of a Set-Cookie named `name`, and its attributes.
fn set_cookie(a: &Answer, name: &str) -> Option<(String, String)> {
    a.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (pair, attributes) = v.split_once(';').unwrap_or((v, ""));
        pair.strip_prefix(&format!("{name}=")).map(|value| (value.to_owned(), attributes.to_owned()))
    })
}

/// Where the provider sent the browser back to (path and query on the manager), and the flow cookie.
struct AtCallback {
    path: String,
    flow: String,
}

/// Starts a sign-in at `name` and lets the provider approve it.
async fn to_callback(m: &TestManager, name: &str, return_to: Option<&str>) -> AtCallback {
    let mut start = reqwest::Url::parse(&format!("{}/api/v1/users/signin/{name}", m.base)).unwrap();
    if let Some(r) = return_to {
        start.query_pairs_mut().append_pair("return_to", r);
    }
    let started = answer(browser().get(start).send().await.unwrap()).await.expect(303);
    let (flow, attributes) = set_cookie(&started, "dfly_oauth_flow").expect("a flow cookie");
    assert!(attributes.contains("HttpOnly") && attributes.contains("SameSite=Lax"), "{attributes}");
    assert!(attributes.contains(&format!("Path=/api/v1/users/signin/{name}/callback")), "{attributes}");
    let approved = answer(browser().get(location(&started)).send().await.unwrap()).await;
    assert_eq!(approved.status.as_u16(), 303, "provider: {}", approved.body);
    let back = reqwest::Url::parse(&location(&approved)).unwrap();
    assert_eq!(back.host_str(), Some("manager.test"));
    AtCallback { path: format!("{}?{}", back.path(), back.query().unwrap_or_default()), flow }
}

/// Calls the callback as the browser would (with the flow cookie when given).
async fn callback(m: &TestManager, path: &str, flow: Option<&str>, json: bool) -> Answer {
    let mut req = browser().get(format!("{}{path}", m.base));
    if let Some(flow) = flow {
        req = req.header(COOKIE, format!("dfly_oauth_flow={flow}"));
    }
    if json {
        req = req.header(ACCEPT, "application/json");
    }
    answer(req.send().await.unwrap()).await
}

/// A whole sign-in in the browser's flavour: the callback's answer.
async fn sign_in(m: &TestManager, name: &str, return_to: Option<&str>) -> Answer {
    let at = to_callback(m, name, return_to).await;
    callback(m, &at.path, Some(&at.flow), false).await
}

/// A whole sign-in asking for JSON: the sign-in token.
async fn sign_in_json(m: &TestManager, name: &str) -> String {
    let at = to_callback(m, name, None).await;
    let a = callback(m, &at.path, Some(&at.flow), true).await.expect(200);
    a.body["token"].as_str().unwrap().to_owned()
}

async fn sign_in_creates_and_reuses_users(backend: Backend) {
    let idp = Idp::start().await;
    let gh = OAuthProviderConfig {
        token_auth_method: TokenAuthMethod::ClientSecretBasic,
        username_claim: "login".into(),
        ..provider(&idp, "gh")
    };
    let closed = OAuthProviderConfig { allow_signup: false, ..provider(&idp, "closed") };
    let discovered = OAuthProviderConfig {
        issuer: idp.base.clone(),
        authorize_url: String::new(),
        token_url: String::new(),
        userinfo_url: String::new(),
        ..provider(&idp, "oidc")
    };
    let providers = vec![provider(&idp, "corp"), gh, closed, discovered];
    let m = TestManager::start_with(backend, |c| c.auth.oauth = providers).await;

    // The sign-in page's list: names only, no credentials, no sign-in needed.
    let list = m.call(reqwest::Method::GET, "/api/v1/users/oauth/providers", None, None).await.expect(200);
    assert_eq!(
        list.body,
        json!([{"name": "corp", "display_name": "corp SSO"}, {"name": "gh", "display_name": "gh SSO"},
            {"name": "closed", "display_name": "closed SSO"}, {"name": "oidc", "display_name": "oidc SSO"}])
    );
    assert!(!list.body.to_string().contains(CLIENT_SECRET));

    // First sign-in creates the user and lands on return_to with the jwt cookie.
    idp.sign_in_as(json!({"sub": "u-100", "preferred_username": "carol", "email": "carol@corp.example"}));
    let at = to_callback(&m, "corp", Some("/clusters?page=2")).await;
    let asked = idp.last_authorize_query();
    assert_eq!(asked["scope"], "openid profile email");
    assert_eq!(asked["redirect_uri"], "http://manager.test/api/v1/users/signin/corp/callback");
    assert_eq!(asked["code_challenge"].len(), 43);
    let landed = callback(&m, &at.path, Some(&at.flow), false).await.expect(303);
    assert_eq!(location(&landed), "/clusters?page=2");
    let (jwt, attributes) = set_cookie(&landed, "jwt").expect("a jwt cookie");
    for wanted in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(attributes.contains(wanted), "{attributes}");
    }
    let (cleared, _) = set_cookie(&landed, "dfly_oauth_flow").expect("the flow cookie is cleared");
    assert!(cleared.is_empty());
    let me = m.get("/api/v1/users/me", &jwt).await.expect(200);
    assert_eq!((me.body["name"].as_str(), me.body["email"].as_str()), (Some("carol"), Some("carol@corp.example")));
    let carol_id = me.body["id"].as_i64().unwrap();
    let by_cookie =
        browser().get(format!("{}/api/v1/users/me", m.base)).header(COOKIE, format!("jwt={jwt}")).send().await.unwrap();
    assert_eq!(by_cookie.status(), StatusCode::OK);
    // The flow cookie is signed with the same key but is no sign-in token.
    m.get("/api/v1/users/me", &at.flow).await.expect(401);
    // The code was used up: replaying the callback fails at the provider.
    let replay = callback(&m, &at.path, Some(&at.flow), false).await.expect(502);
    assert!(replay.body["message"].as_str().unwrap().contains("invalid_grant"), "{}", replay.body);

    // Signing in again reuses the user; the JSON flavour answers the token itself.
    let again = sign_in_json(&m, "corp").await;
    assert_eq!(m.get("/api/v1/users/me", &again).await.expect(200).body["id"], carol_id);
    assert_eq!(m.get("/api/v1/users?name=carol", &m.root).await.expect(200).body.as_array().unwrap().len(), 1);

    // GitHub's shape: numeric id, login, no email; client_secret_basic at the token endpoint.
    idp.sign_in_as(json!({"id": 4242, "login": "octo", "email": null}));
    let octo = sign_in_json(&m, "gh").await;
    let me = m.get("/api/v1/users/me", &octo).await.expect(200);
    assert_eq!((me.body["name"].as_str(), &me.body["email"]), (Some("octo"), &Value::Null));
    // Its password is nobody's.
    m.call(reqwest::Method::POST, "/api/v1/users/signin", None, Some(json!({"name": "octo", "password": ""})))
        .await
        .expect(401);

    // Endpoints discovered from the issuer's .well-known/openid-configuration.
    idp.sign_in_as(json!({"sub": "u-9", "preferred_username": "erin"}));
    let erin = sign_in_json(&m, "oidc").await;
    assert_eq!(m.get("/api/v1/users/me", &erin).await.expect(200).body["name"], "erin");
    assert!(idp.last_authorize_query()["redirect_uri"].ends_with("/signin/oidc/callback"));

    // A name that belongs to someone else is refused, never taken over.
    let (alice_id, _) = m.user("alice").await;
    idp.sign_in_as(json!({"sub": "u-alice", "preferred_username": "alice"}));
    let clash = sign_in(&m, "corp", None).await.expect(409);
    assert!(clash.body["message"].as_str().unwrap().contains("already exists"), "{}", clash.body);
    assert!(set_cookie(&clash, "jwt").is_none());
    idp.sign_in_as(json!({"id": 77, "login": "carol"}));
    sign_in(&m, "gh", None).await.expect(409);
    m.signin("alice", "alice-password").await;
    assert_eq!(m.get("/api/v1/users?name=alice", &m.root).await.expect(200).body[0]["id"], alice_id);

    // Sign-ins through a provider are audited, failed ones as anonymous.
    let audits = m.get("/api/v1/audits?event=users.signin.callback&per_page=100", &m.root).await.expect(200);
    let entries = audits.body.as_array().unwrap();
    let has = |actor: &str, state: &str, status: i64| {
        entries.iter().any(|e| e["actor_name"] == actor && e["state"] == state && e["status_code"] == status)
    };
    assert!(has("carol", "success", 303) && has("carol", "success", 200) && has("octo", "success", 200), "{entries:?}");
    assert!(has("", "failure", 409) && has("", "failure", 502), "{entries:?}");

    // A provider that does not create users lets nobody new in.
    idp.sign_in_as(json!({"sub": "u-new", "preferred_username": "newcomer"}));
    sign_in(&m, "closed", None).await.expect(403);
    m.get("/api/v1/users?name=newcomer", &m.root).await.expect(200);
    assert_eq!(m.get("/api/v1/users?name=newcomer", &m.root).await.body, json!([]));

    // return_to is a local path or nothing: other origins land on "/".
    idp.sign_in_as(json!({"sub": "u-100", "preferred_username": "carol"}));
    for evil in ["https://evil.example/", "//evil.example/x", "/\\evil.example"] {
        let landed = sign_in(&m, "corp", Some(evil)).await.expect(303);
        assert_eq!(location(&landed), "/", "{evil}");
    }

    // A disabled user cannot sign in through the provider either.
    m.patch(&format!("/api/v1/users/{carol_id}"), &m.root, json!({"state": "disabled"})).await.expect(200);
    let refused = sign_in(&m, "corp", None).await.expect(403);
    assert!(set_cookie(&refused, "jwt").is_none());
    m.get("/api/v1/users/me", &again).await.expect(401);
    m.signin("root", ROOT_PASSWORD).await;

    idp.stop();
    m.stop().await;
}

async fn provider_failures(backend: Backend) {
    let idp = Idp::start().await;
    let wrong_secret = OAuthProviderConfig { client_secret: "not-the-secret".into(), ..provider(&idp, "wrong") };
    let wrong_issuer = OAuthProviderConfig {
        issuer: format!("{}/elsewhere", idp.base),
        token_url: String::new(),
        ..provider(&idp, "lost")
    };
    let providers = vec![provider(&idp, "corp"), wrong_secret, wrong_issuer];
    let m = TestManager::start_with(backend, |c| c.auth.oauth = providers).await;
    idp.sign_in_as(json!({"sub": "u-1", "preferred_username": "dave"}));
    let message = |a: &Answer| a.body["message"].as_str().unwrap().to_owned();

    // Unknown providers.
    let unknown = answer(browser().get(format!("{}/api/v1/users/signin/nope", m.base)).send().await.unwrap()).await;
    assert_eq!(unknown.expect(404).body["code"], "not_found");
    callback(&m, "/api/v1/users/signin/nope/callback?code=x&state=y", None, false).await.expect(404);

    // Discovery that finds no provider metadata fails before the browser leaves.
    let lost = answer(browser().get(format!("{}/api/v1/users/signin/lost", m.base)).send().await.unwrap()).await;
    let lost = lost.expect(502);
    assert!(message(&lost).contains("OpenID discovery for lost failed"), "{}", lost.body);

    // Tampered state, no flow cookie, a flow cookie for another provider, no code.
    let at = to_callback(&m, "corp", None).await;
    let tampered = at.path.replace("state=", "state=x");
    assert_eq!(callback(&m, &tampered, Some(&at.flow), false).await.expect(400).body["field"], "state");
    assert_eq!(callback(&m, &at.path, None, false).await.expect(400).body["field"], "state");
    let wrong_path = at.path.replace("/signin/corp/", "/signin/wrong/");
    assert_eq!(callback(&m, &wrong_path, Some(&at.flow), false).await.expect(400).body["field"], "state");
    let forged = format!("{}x", &at.flow[..at.flow.len() - 1]);
    callback(&m, &at.path, Some(&forged), false).await.expect(400);
    let state = at.path.split("state=").nth(1).unwrap();
    let no_code = format!("/api/v1/users/signin/corp/callback?state={state}");
    assert_eq!(callback(&m, &no_code, Some(&at.flow), false).await.expect(400).body["field"], "code");
    // The untouched callback still works: none of the above spent the code.
    callback(&m, &at.path, Some(&at.flow), false).await.expect(303);

    // The person said no at the provider.
    let denied =
        format!("/api/v1/users/signin/corp/callback?error=access_denied&error_description=User+said+no&state={state}");
    let denied = callback(&m, &denied, Some(&at.flow), false).await.expect(400);
    assert!(message(&denied).contains("access_denied") && message(&denied).contains("User said no"), "{}", denied.body);

    // The PKCE verifier does not match what the provider recorded.
    idp.spoil_next_challenge();
    let at = to_callback(&m, "corp", None).await;
    let pkce = callback(&m, &at.path, Some(&at.flow), false).await.expect(502);
    assert_eq!(pkce.body["code"], "bad_gateway");
    assert!(message(&pkce).contains("PKCE"), "{}", pkce.body);

    // The provider does not know the manager's client secret; the message never shows secrets.
    let at = to_callback(&m, "wrong", None).await;
    let client = callback(&m, &at.path, Some(&at.flow), true).await.expect(502);
    assert!(message(&client).contains("invalid_client"), "{}", client.body);
    assert!(!client.body.to_string().contains("not-the-secret") && !client.body.to_string().contains(CLIENT_SECRET));

    // The userinfo endpoint fails.
    idp.break_userinfo(true);
    let at = to_callback(&m, "corp", None).await;
    let info = callback(&m, &at.path, Some(&at.flow), false).await.expect(502);
    assert!(message(&info).contains("userinfo"), "{}", info.body);
    idp.break_userinfo(false);

    // The provider is down by the time the browser comes back.
    let at = to_callback(&m, "corp", None).await;
    idp.stop();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let down = callback(&m, &at.path, Some(&at.flow), false).await.expect(502);
    assert!(message(&down).contains("could not reach the token endpoint of corp"), "{}", down.body);

    // Only the one good callback created a user.
    assert_eq!(m.get("/api/v1/users?name=dave", &m.root).await.expect(200).body.as_array().unwrap().len(), 1);
    m.stop().await;
}
