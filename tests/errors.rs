//! What a person reads when AWS cannot be reached or refuses a call: one line naming the call,
//! the resource and the cause in words, never the SDK's `Debug` dump (which `WSCTL_LOG`
//! shows), and the exit code of the error's kind.

use std::process::{Command, Output};

use support::project::Project;

/// Runs wsctl in a fresh directory whose project is `tty`, with `env` and the test's
/// credentials only.
fn wsctl(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wsctl.toml"), "project = \"tty\"\n").unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsctl"));
    cmd.args(args)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// No part of the SDK's `Debug` rendering reaches a person.
fn assert_no_sdk_dump(text: &str) {
    for dump in [
        "DispatchFailure",
        "ConnectorError",
        "hyper_util",
        "source:",
        "{",
    ] {
        assert!(!text.contains(dump), "{dump:?} in {text}");
    }
}

#[test]
fn an_unreachable_endpoint_is_one_line_naming_the_call_and_the_endpoint() {
    // Nothing listens on a port just freed.
    let endpoint = format!("http://127.0.0.1:{}", support::free_port());
    let out = wsctl(&["status"], &[("AWS_ENDPOINT_URL", &endpoint)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    // The credentials were never checked: the message does not blame them.
    assert_eq!(
        stderr(&out),
        format!(
            "error: GetCallerIdentity (the credentials' account): connection refused at {endpoint}\n"
        )
    );

    // JSON output carries the same one line.
    let out = wsctl(
        &["status", "-o", "json"],
        &[("AWS_ENDPOINT_URL", &endpoint)],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["error"]["kind"], "aws");
    assert_eq!(
        json["error"]["message"],
        format!("GetCallerIdentity (the credentials' account): connection refused at {endpoint}")
    );
}

#[test]
fn one_unreachable_service_is_named_by_its_call_and_its_own_endpoint() {
    let moto = support::Moto::start(false);
    let closed = format!("http://127.0.0.1:{}", support::free_port());
    let out = wsctl(
        &["status"],
        &[
            ("AWS_ENDPOINT_URL", &moto.url()),
            ("AWS_ENDPOINT_URL_IAM", &closed),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!("error: GetRole tty-websocket-lambda-role: connection refused at {closed}\n")
    );
}

#[test]
fn a_name_that_does_not_resolve_is_said_so() {
    let out = wsctl(
        &["status"],
        &[("AWS_ENDPOINT_URL", "http://no-such-host.invalid:4566")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stderr(&out);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.starts_with("error: GetCallerIdentity (the credentials' account): name not resolved: no-such-host.invalid"),
        "{text}"
    );
    assert_no_sdk_dump(&text);
}

#[test]
fn the_sdks_detail_is_behind_wsctl_log() {
    let endpoint = format!("http://127.0.0.1:{}", support::free_port());
    let out = wsctl(
        &["status"],
        &[
            ("AWS_ENDPOINT_URL", &endpoint),
            ("WSCTL_LOG", "wsctl=debug"),
        ],
    );
    let text = stderr(&out);
    assert!(text.contains("DispatchFailure"), "{text}");
    assert!(
        text.lines().last().is_some_and(|l| l
            == format!(
            "error: GetCallerIdentity (the credentials' account): connection refused at {endpoint}"
        )),
        "{text}"
    );
}

#[test]
fn access_denied_names_the_action_and_the_resource() {
    let p = Project::new("deny");
    // GetFunction, as Lambda refuses it to an identity without lambda:GetFunction.
    p.proxy
        .deny("GET /2015-03-31/functions/deny-websocket-handler", 100);
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr,
        "error: GetFunction deny-websocket-handler: access denied to lambda:GetFunction on deny-websocket-handler (AccessDeniedException)\n",
        "{out:?}"
    );
}
