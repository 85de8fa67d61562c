//! `wsctl load` against `wsctl dev`: 1,000 clients opened, pinged and broadcast to, the
//! report checked; failures counted by kind; the quota and the token handled.

use support::dev;

use std::process::{Command, Output};

use dev::Dev;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// `wsctl load ARGS` in a project directory named demo, its Lambda endpoint at `dev`.
fn load(dev: &Dev, args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wsctl.toml"),
        "project = \"demo\"\n[auth]\nsecret_parameter = \"/demo/secret\"\ntoken_query_param = \"access_token\"\n",
    )
    .unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wsctl"));
    cmd.arg("load");
    if !args.contains(&"--url") {
        cmd.args(["--url", &dev.url]);
    }
    cmd.args(args)
        .current_dir(dir.path())
        .env("AWS_ENDPOINT_URL_LAMBDA", &dev.base)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "dev")
        .env("AWS_SECRET_ACCESS_KEY", "dev")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("WSCTL_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn report(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_thousand_clients_open_ping_and_receive_one_broadcast() {
    let dev = Dev::start(&["--no-auth"]);
    let out = load(
        &dev,
        &[
            "--connections",
            "1000",
            "--rate",
            "2000/s",
            "--i-have-a-quota-increase",
            "--duration",
            "3s",
            "--ping-rate",
            "400",
            "--broadcast",
            "-o",
            "json",
        ],
        &[],
    );
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["ok"], true, "{r:#}");
    assert_eq!(
        (r["connections"].as_u64(), r["opened"].as_u64()),
        (Some(1000), Some(1000)),
        "{r:#}"
    );
    assert_eq!(r["failures"], json!({}));
    assert_eq!(r["dropped"], json!({}));
    assert!(r["opening_rate"].as_f64().unwrap() > 0.0);
    assert_eq!(r["handshake_ms"]["count"], 1000);
    // About 400 pings a second for 3 s, every one answered.
    let sent = r["pings"]["sent"].as_u64().unwrap();
    assert!((1000..=1300).contains(&sent), "{r:#}");
    assert_eq!(r["pings"]["answered"].as_u64(), Some(sent));
    assert_eq!(r["pings"]["lost"], 0);
    let rtt = &r["pings"]["rtt_ms"];
    assert!(rtt["p50"].as_f64().unwrap() <= rtt["p95"].as_f64().unwrap());
    assert!(rtt["p95"].as_f64().unwrap() <= rtt["p99"].as_f64().unwrap());
    assert!(rtt["p99"].as_f64().unwrap() <= rtt["max"].as_f64().unwrap());
    // The broadcast went through the function, as `wsctl broadcast` sends it, to all 1,000.
    let b = &r["broadcast"];
    assert_eq!(
        (
            b["expected"].as_u64(),
            b["received"].as_u64(),
            b["missing"].as_u64()
        ),
        (Some(1000), Some(1000), Some(0)),
        "{b:#}"
    );
    assert_eq!(b["delivery"]["delivered"], 1000, "{b:#}");
    assert_eq!(b["receipt_ms"]["count"], 1000);
    let log = dev.stderr();
    assert!(log.contains("invoke:broadcast"), "{log}");
    // Progress went to stderr, the report alone to stdout.
    assert!(String::from_utf8_lossy(&out.stderr).contains("opening 1000 connections"));
}

#[test]
fn refused_handshakes_are_counted_by_kind_and_the_token_opens_them() {
    std::env::set_var("WSCTL_LOAD_TEST_SECRET", "load-test-secret");
    let dev = Dev::start(&[
        "--jwt-secret-env",
        "WSCTL_LOAD_TEST_SECRET",
        "--token-param",
        "access_token",
    ]);
    let args = [
        "--connections",
        "20",
        "--rate",
        "200",
        "--duration",
        "500ms",
        "-o",
        "json",
    ];

    let out = load(&dev, &args, &[]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(3), "{r:#}");
    assert_eq!(r["ok"], false);
    assert_eq!(r["opened"], 0);
    assert_eq!(r["failures"], json!({"http_401": 20}), "{r:#}");

    // The token goes in the query parameter the project file names, and stays out of the report.
    let claims = json!({"sub": "loader", "exp": 4_000_000_000u64});
    let token = encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(b"load-test-secret"),
    )
    .unwrap();
    let out = load(&dev, &args, &[("WSCTL_TOKEN", &token)]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(r["opened"], 20, "{r:#}");
    assert_eq!(r["url"], format!("{}?access_token=***", dev.url));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&token));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(&token));
}

#[test]
fn more_than_the_default_quota_needs_a_quota_increase() {
    let dev = Dev::start(&["--no-auth"]);
    let out = load(&dev, &["--rate", "501"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("500 new connections per second")
            && stderr.contains("--i-have-a-quota-increase"),
        "{stderr}"
    );
    let out = load(&dev, &["--connections", "0"], &[]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A certificate authority and a certificate for localhost it signed, made with openssl in
/// `dir`: (CA certificate, leaf certificate, leaf key).
fn certificates(dir: &std::path::Path) -> (String, String, String) {
    let path = |f: &str| dir.join(f).display().to_string();
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl (Debian: apt-get install openssl) makes the test's certificates");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=wsctl test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
    ]);
    (path("ca.pem"), path("leaf.pem"), path("leaf.key"))
}

/// A TLS proxy process in front of `port`; killed when dropped.
struct TlsProxy(std::process::Child, u16);

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn tls_proxy(cert: &str, key: &str, upstream: u16) -> TlsProxy {
    use std::io::BufRead;
    let mut child = Command::new(support::python())
        .arg(support::workspace_root().join("tests/support/tls_proxy.py"))
        .args([cert, key, &upstream.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the TLS proxy");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("the proxy prints its port");
    TlsProxy(child, port)
}

#[test]
fn wss_urls_are_load_tested_over_tls_and_untrusted_certificates_are_a_failure_kind() {
    let dev = Dev::start(&["--no-auth"]);
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let dev_port: u16 = dev
        .url
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches("/ws")
        .parse()
        .unwrap();
    let proxy = tls_proxy(&cert, &key, dev_port);
    let url = format!("wss://localhost:{}/ws", proxy.1);
    let args = [
        "--url",
        &url,
        "--connections",
        "30",
        "--rate",
        "300",
        "--duration",
        "1s",
        "--ping-rate",
        "30",
        "--broadcast",
        "-o",
        "json",
    ];

    // Trusted (rustls reads SSL_CERT_FILE with the system's roots): the whole run over TLS.
    let out = load(&dev, &args, &[("SSL_CERT_FILE", &ca)]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(0), "{r:#}");
    assert_eq!(
        (r["opened"].as_u64(), r["broadcast"]["received"].as_u64()),
        (Some(30), Some(30)),
        "{r:#}"
    );
    assert_eq!(r["pings"]["lost"], 0, "{r:#}");

    // Not trusted: every handshake fails as a TLS error, and nothing is sent in clear.
    let out = load(&dev, &args, &[("SSL_CERT_FILE", &cert)]);
    let r = report(&out);
    assert_eq!(out.status.code(), Some(3), "{r:#}");
    assert_eq!(r["failures"], json!({"tls_error": 30}), "{r:#}");
}
