//! The manager in-process on SQLite: migrations, the root user, `/healthy`, the console.

use std::time::Duration;

use common::health::{Component, HealthReport, HealthStatus};
use server::{
    Listeners, Manager,
    config::{ManagerConfig, Overrides},
    db::RootUser,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn config(dir: &std::path::Path) -> ManagerConfig {
    ManagerConfig::load(
        None,
        Overrides {
            data_dir: Some(dir.to_owned()),
            http_addr: Some("127.0.0.1:0".parse().unwrap()),
            grpc_addr: Some("127.0.0.1:0".parse().unwrap()),
            site_root: Some(dir.join("no-site")),
            ..Default::default()
        },
    )
    .unwrap()
}

#[tokio::test]
async fn first_start_creates_root_once_and_serves_health_and_console() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (manager, root) = Manager::open(config(dir.path()), None).await?;
    let RootUser::CreatedWithGeneratedPassword(password) = root else {
        panic!("expected a generated password, got {root:?}");
    };
    assert_eq!(password.len(), 24);

    let http = TcpListener::bind("127.0.0.1:0").await?;
    let grpc = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", http.local_addr()?);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(manager.serve(Listeners { http, grpc }, shutdown.clone()));

    let client = reqwest::Client::new();
    let report: HealthReport = client.get(format!("{base}/healthy")).send().await?.json().await?;
    assert_eq!(report.component, Component::Manager);
    assert_eq!(report.status, HealthStatus::Ok);
    assert_eq!(report.version, common::VERSION);

    // The public status page is rendered on the server with the health facts already in the HTML.
    let page = client.get(format!("{base}/status")).send().await?;
    assert_eq!(page.status(), 200);
    let html = page.text().await?;
    assert!(html.contains("id=\"manager-version\""), "{html}");
    assert!(html.contains(common::VERSION));
    // Other pages need a session: without one the visit goes to sign-in and back afterwards.
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let gated = no_redirects.get(format!("{base}/clusters?page=2")).send().await?;
    assert_eq!(gated.status(), 303);
    assert_eq!(gated.headers()["location"], "/signin?return_to=%2Fclusters%3Fpage%3D2");
    let stale = no_redirects.get(format!("{base}/")).header("cookie", "jwt=not-a-token").send().await?;
    assert_eq!(stale.status(), 303);
    let signin: serde_json::Value = client
        .post(format!("{base}/api/v1/users/signin"))
        .json(&serde_json::json!({"name": "root", "password": password}))
        .send()
        .await?
        .json()
        .await?;
    let jwt = signin["token"].as_str().unwrap();
    let overview = no_redirects.get(format!("{base}/")).header("cookie", format!("jwt={jwt}")).send().await?;
    assert_eq!(overview.status(), 200);
    let html = overview.text().await?;
    assert!(html.contains("Overview") && html.contains("id=\"whoami\""), "{html}");
    let missing = client.get(format!("{base}/no/such/page")).send().await?;
    assert_eq!(missing.status(), 404);
    assert!(missing.text().await?.contains("Page not found"));

    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server).await???;

    // A second start keeps the existing root user and its password.
    let (_manager, root) = Manager::open(config(dir.path()), Some("ignored")).await?;
    assert_eq!(root, RootUser::Existing);
    Ok(())
}

#[tokio::test]
async fn given_root_password_is_used() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (_manager, root) = Manager::open(config(dir.path()), Some("s3cret-pass")).await?;
    assert_eq!(root, RootUser::CreatedWithGivenPassword);
    Ok(())
}

#[tokio::test]
async fn unreachable_database_is_a_clear_error() {
    let mut c = config(std::path::Path::new("/nonexistent/dir"));
    c.database.url = "postgres://nobody@127.0.0.1:1/none".into();
    c.database.connect_timeout_secs = 1;
    let err = Manager::open(c, None).await.unwrap_err();
    assert!(err.to_string().contains("database error"), "{err}");
}
