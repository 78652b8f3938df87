//! dfctl as a user types it: `task ls|stat|rm` against a real dfdaemon (and what a user other
//! than root may do there); `preheat`'s bad arguments, a missing token, and where the token and
//! the manager's address come from, against a stand-in manager that records what it is sent.
//! `server/tests/it/dfctl.rs` runs preheats against the real manager and cluster.

use std::{
    os::unix::fs::PermissionsExt,
    path::Path,
    process::Output,
    sync::{Arc, Mutex},
};

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::{get, post},
};
use serde_json::{Value, json};
use testkit::{
    origin::{Origin, serve},
    peer::{PIECE, PeerBuilder},
};
use tokio::process::Command;

/// dfctl with an environment of its own: no token, no manager, no config file but `config`'s.
fn dfctl(config_home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dfctl"));
    c.env_remove("DFCTL_TOKEN")
        .env_remove("DFCTL_MANAGER")
        .env_remove("DFCTL_SOCKET")
        .env("XDG_CONFIG_HOME", config_home)
        .env("HOME", config_home)
        .kill_on_drop(true);
    c
}

async fn run(mut command: Command, args: &[&str]) -> Output {
    command.args(args).stdin(std::process::Stdio::null()).output().await.unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn task_ls_stat_and_rm_show_and_change_the_daemons_cache() -> anyhow::Result<()> {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir()?;
    let peer = PeerBuilder::new(dir.path().join("data"), "cli-host").start().await;
    let url = format!("{origin}/bytes/{}/3", 2 * PIECE + 1);
    peer.dfget(&url, &dir.path().join("out"), |_| {}).await?;
    let id = common::task_id::task_id(&common::task_id::TaskSpec {
        url: &url,
        piece_length: Some(PIECE),
        ..Default::default()
    })?
    .0;
    let socket = peer.socket.to_str().unwrap();
    let home = dir.path();

    let ls = run(dfctl(home), &["task", "ls", "--socket", socket]).await;
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    let table = text(&ls.stdout);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    for column in ["ID", "SIZE", "PIECES", "STATE", "LAST ACCESS", "URL"] {
        assert!(lines[0].contains(column), "{table}");
    }
    for cell in [id.as_str(), "128.0 KiB", "3/3", "complete", "s ago", url.as_str()] {
        assert!(lines[1].contains(cell), "{cell:?} in {table}");
    }

    let json = run(dfctl(home), &["task", "ls", "-e", socket, "--output", "json"]).await;
    let listed: Value = serde_json::from_slice(&json.stdout)?;
    assert_eq!(listed[0]["task_id"], id.as_str(), "{listed}");
    assert_eq!(listed[0]["content_length"], 2 * PIECE + 1);
    assert_eq!(listed[0]["state"], "complete");
    assert_eq!((listed[0]["finished_pieces"].as_u64(), listed[0]["total_pieces"].as_u64()), (Some(3), Some(3)));

    let stat = run(dfctl(home), &["task", "stat", &id, "--socket", socket]).await;
    assert!(stat.status.success(), "{}", text(&stat.stderr));
    assert!(text(&stat.stdout).contains(&format!("url:          {url}")), "{}", text(&stat.stdout));

    let rm = run(dfctl(home), &["task", "rm", &id, "--socket", socket]).await;
    assert!(rm.status.success(), "{}", text(&rm.stderr));
    assert!(text(&rm.stdout).contains(&format!("removed {id}")), "{}", text(&rm.stdout));
    assert!(!peer.data.join("storage").join("meta").join(format!("{id}.json")).exists());
    let empty = run(dfctl(home), &["task", "ls", "--socket", socket]).await;
    assert_eq!(text(&empty.stdout).lines().count(), 1, "only the header: {}", text(&empty.stdout));

    // Gone, malformed, no daemon.
    let gone = run(dfctl(home), &["task", "stat", &id, "--socket", socket]).await;
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&gone.stderr).contains("not in this host's cache"), "{}", text(&gone.stderr));
    let bad = run(dfctl(home), &["task", "rm", "../etc", "--socket", socket]).await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("64 lower-case hex digits"), "{}", text(&bad.stderr));
    let missing = dir.path().join("none.sock");
    let nobody = run(dfctl(home), &["task", "ls", "--socket", missing.to_str().unwrap()]).await;
    assert_eq!(nobody.status.code(), Some(1));
    assert!(text(&nobody.stderr).contains("cannot reach the dfdaemon"), "{}", text(&nobody.stderr));
    assert!(text(&nobody.stderr).contains("No such file"), "{}", text(&nobody.stderr));
    peer.shutdown.cancel();
    Ok(())
}

/// Run as root (as the project's tests are): another user reaches the socket, lists tasks
/// without the URLs' secrets, and is refused a deletion, which leaves the task in place.
#[tokio::test(flavor = "multi_thread")]
async fn another_user_lists_without_secrets_and_may_not_delete() -> anyhow::Result<()> {
    let origin = Origin::start().await;
    let dir = tempfile::tempdir()?;
    let peer = PeerBuilder::new(dir.path().join("data"), "shared-host").start().await;
    let url = format!("{origin}/bytes/100/4?X-Amz-Signature=secret");
    peer.dfget(&url, &dir.path().join("out"), |_| {}).await?;
    for open in [dir.path(), &peer.data] {
        std::fs::set_permissions(open, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::set_permissions(&peer.socket, std::fs::Permissions::from_mode(0o666))?;
    let socket = peer.socket.to_str().unwrap();
    let as_user = || {
        let mut c = dfctl(dir.path());
        c.uid(4242).gid(4242);
        c
    };

    let ls = run(as_user(), &["task", "ls", "--socket", socket, "--output", "json"]).await;
    assert!(ls.status.success(), "{}", text(&ls.stderr));
    let listed: Value = serde_json::from_slice(&ls.stdout)?;
    let id = listed[0]["task_id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["url"], format!("{origin}/bytes/100/4"), "no query for others: {listed}");
    assert!(!text(&ls.stdout).contains("secret"));
    let rm = run(as_user(), &["task", "rm", &id, "--socket", socket]).await;
    assert_eq!(rm.status.code(), Some(1));
    assert!(text(&rm.stderr).contains("may not delete cached tasks"), "{}", text(&rm.stderr));
    let root = run(dfctl(dir.path()), &["task", "stat", &id, "--socket", socket, "--output", "json"]).await;
    let kept: Value = serde_json::from_slice(&root.stdout)?;
    assert_eq!(kept["url"], url.as_str(), "root sees the whole URL");
    assert_eq!(kept["state"], "complete", "the task is still cached");
    peer.shutdown.cancel();
    Ok(())
}

#[tokio::test]
async fn bad_preheat_arguments_exit_2_with_the_reason() {
    let home = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["preheat"], "required"),
        (&["preheat", "not a url"], "invalid URL"),
        (&["preheat", "ftp://x/y"], "not an http or https URL"),
        (&["preheat", "http://o/f", "--percentage", "0"], "--percentage"),
        (&["preheat", "http://o/f", "--percentage", "101"], "1..=100"),
        (&["preheat", "http://o/f", "--count", "0"], "--count"),
        (&["preheat", "http://o/f", "--count", "2", "--percentage", "5"], "cannot be used with"),
        (&["preheat", "http://o/f", "--ip", "host.example"], "invalid IP address"),
        (&["preheat", "http://o/f", "--scope", "everyone"], "single_seed_peer"),
        (&["preheat", "http://o/f", "--type", "zip"], "--type"),
        (&["preheat", "http://o/f", "--platform", "linux"], "os/arch"),
        (&["preheat", "http://o/f", "-H", "NoColon"], "Name: value"),
        (&["preheat", "http://o/f", "--password-stdin"], "--username"),
        (&["preheat", "http://o/f", "--cluster", "0"], "--cluster"),
        (&["preheat", "http://o/f", "--timeout", "soon"], "--timeout"),
        (&["preheat", "https://r/v2/a/manifests/1", "https://r/v2/b/manifests/1"], "one manifest URL"),
        (&["preheat", "http://o/f", "--output", "yaml"], "--output"),
        (&["task"], "Usage"),
        (&["task", "stat"], "required"),
        (&["task", "stat", "NOT-AN-ID"], "64 lower-case hex digits"),
    ];
    for (args, reason) in cases {
        let o = run(dfctl(home.path()), args).await;
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains(reason), "{args:?}: expected {reason:?} in {}", text(&o.stderr));
    }
    let help = run(dfctl(home.path()), &["preheat", "--help"]).await;
    for flag in [
        "--type",
        "--scope",
        "--count",
        "--percentage",
        "--ip",
        "--platform",
        "--header",
        "--username",
        "--password-stdin",
        "--cluster",
        "--concurrent-count",
        "--timeout",
        "--wait",
        "--manager",
        "--token",
        "--output",
    ] {
        assert!(text(&help.stdout).contains(flag), "preheat --help lacks {flag}");
    }
}

#[tokio::test]
async fn no_token_anywhere_exits_2_and_says_where_to_put_one() {
    let home = tempfile::tempdir().unwrap();
    let o = run(dfctl(home.path()), &["preheat", "http://o/f"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(err.contains("no personal access token") && err.contains("DFCTL_TOKEN"), "{err}");
    assert!(err.contains(&home.path().join("damselfly/dfctl.toml").display().to_string()), "{err}");
    // A config file that is not dfctl's is a usage error naming the file.
    std::fs::create_dir_all(home.path().join("damselfly")).unwrap();
    std::fs::write(home.path().join("damselfly/dfctl.toml"), "tokn = \"x\"\n").unwrap();
    let o = run(dfctl(home.path()), &["preheat", "http://o/f"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("dfctl.toml") && text(&o.stderr).contains("tokn"), "{}", text(&o.stderr));
}

/// What the stand-in manager was sent: the bearer token and the body of each job creation.
type Seen = Arc<Mutex<Vec<(String, Value)>>>;

/// A stand-in for the manager's `/oapi/v1/jobs`: records each creation and answers a job that
/// is done at the first poll; a token other than `good` is refused as the manager refuses it.
async fn stand_in_manager() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let job = |state: &str| {
        json!({"id": 5, "tenant_id": 1, "user_id": 1, "type": "preheat", "state": state, "args": {}, "bio": "",
            "scheduler_cluster_ids": [1], "created_at": "", "updated_at": "", "result": null})
    };
    let create = {
        let job = job("PENDING");
        move |State(seen): State<Seen>, headers: HeaderMap, Json(body): Json<Value>| async move {
            let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
            let token = auth.strip_prefix("Bearer ").unwrap_or("").to_owned();
            seen.lock().unwrap().push((token.clone(), body));
            if token.starts_with("good") {
                (StatusCode::CREATED, Json(job))
            } else {
                (
                    StatusCode::UNAUTHORIZED,
                    Json(json!({"code": "unauthorized", "message": "unknown personal access token"})),
                )
            }
        }
    };
    let done = job("SUCCESS");
    let app = Router::new()
        .route("/oapi/v1/jobs", post(create))
        .route("/oapi/v1/jobs/5", get(move || async move { Json(done) }))
        .with_state(seen.clone());
    (serve(app).await, seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_token_and_manager_come_from_the_flag_then_the_environment_then_the_config_file() {
    let (manager, seen) = stand_in_manager().await;
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("damselfly");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("dfctl.toml"), format!("manager = \"{manager}\"\ntoken = \"good-file\"\n")).unwrap();
    std::fs::set_permissions(config.join("dfctl.toml"), std::fs::Permissions::from_mode(0o600)).unwrap();

    let from_file = run(dfctl(home.path()), &["preheat", "http://o/f"]).await;
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    assert_eq!(text(&from_file.stdout), "job 5 PENDING\n");
    let mut env = dfctl(home.path());
    env.env("DFCTL_TOKEN", "good-env");
    assert!(run(env, &["preheat", "http://o/f", "--wait"]).await.status.success());
    let mut both = dfctl(home.path());
    both.env("DFCTL_TOKEN", "good-env");
    let flagged = run(both, &["preheat", "http://o/f", "--token", "good-flag", "--output", "json"]).await;
    assert_eq!(serde_json::from_slice::<Value>(&flagged.stdout).unwrap()["id"], 5);
    let refused = run(dfctl(home.path()), &["preheat", "http://o/f", "--token", "stale"]).await;
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(text(&refused.stderr), "dfctl: unknown personal access token\n");

    let seen = seen.lock().unwrap().clone();
    let tokens: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(tokens, ["good-file", "good-env", "good-flag", "stale"]);
    assert_eq!(
        seen[0].1,
        json!({"type": "preheat", "args": {"type": "file", "url": "http://o/f", "scope": "single_seed_peer"},
            "scheduler_cluster_ids": null})
    );
    // The manager's address from the flag wins over the file's.
    let elsewhere = run(dfctl(home.path()), &["preheat", "http://o/f", "--manager", "http://127.0.0.1:9"]).await;
    assert_eq!(elsewhere.status.code(), Some(1));
    assert!(
        text(&elsewhere.stderr).contains("cannot reach the manager at http://127.0.0.1:9/"),
        "{}",
        text(&elsewhere.stderr)
    );
}
