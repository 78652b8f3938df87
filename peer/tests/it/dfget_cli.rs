//! dfget as a user types it: bad arguments get a clear message and a non-zero exit, and no file.

use std::process::{Command, Output};

fn dfget(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfget")).args(args).env_remove("DFGET_ENDPOINT").output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn help_and_version_work() {
    let help = dfget(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--output",
        "--endpoint",
        "--digest",
        "--header",
        "--tag",
        "--application",
        "--filtered-query-param",
        "--piece-length",
        "--timeout",
        "--disable-back-to-source",
        "--overwrite",
        "--force-hard-link",
        "--no-progress",
    ] {
        assert!(text.contains(flag), "--help lacks {flag}");
    }
    let version = dfget(&["--version"]);
    assert!(String::from_utf8_lossy(&version.stdout).contains(common::VERSION));
}

#[test]
fn bad_arguments_exit_2_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("f");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&[], "required"),
        (&["http://x/y"], "--output"),
        (&["not a url", "-O", out], "invalid URL"),
        (&["ftp://x/y", "-O", out], "unsupported URL scheme"),
        (&["http://x/y", "-O", out, "--digest", "md5:00"], "unsupported digest algorithm"),
        (&["http://x/y", "-O", out, "--digest", "sha256:zz"], "hex"),
        (&["http://x/y", "-O", out, "-H", "NoColon"], "Name: value"),
        (&["http://x/y", "-O", out, "--piece-length", "3"], "between 1 KiB and 1 GiB"),
        (&["http://x/y", "-O", out, "--timeout", "soon"], "invalid value 'soon' for '--timeout"),
    ];
    for (args, reason) in cases {
        let o = dfget(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(reason), "{args:?}: expected {reason:?} in {}", stderr(&o));
    }
    assert!(!dir.path().join("f").exists());
}

#[test]
fn unusable_outputs_and_a_missing_daemon_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let existing = dir.path().join("existing");
    std::fs::write(&existing, b"keep me").unwrap();
    let sock = dir.path().join("no.sock");
    let sock = sock.to_str().unwrap();
    let missing_dir = dir.path().join("nope").join("f");
    let fresh = dir.path().join("fresh");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["http://x/y", "-O", existing.to_str().unwrap(), "-e", sock], "already exists"),
        (vec!["http://x/y", "-O", dir.path().to_str().unwrap(), "-e", sock], "is a directory"),
        (vec!["http://x/y", "-O", missing_dir.to_str().unwrap(), "-e", sock], "does not exist"),
        (vec!["http://x/y", "-O", fresh.to_str().unwrap(), "-e", sock], "cannot reach the dfdaemon"),
    ];
    for (args, reason) in cases {
        let o = dfget(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(reason), "{args:?}: expected {reason:?} in {}", stderr(&o));
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    assert!(!fresh.exists());
}
