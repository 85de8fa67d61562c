//! Test support shared by the tests and benchmarks of both crates: moto in server mode, a
//! minimal HTTP client, free ports ([`Moto`], [`http`], [`free_port`]); a project directory
//! that runs the real `wsctl` ([`project`]) against moto through a recording, fault-injecting
//! proxy ([`proxy`]); a running `wsctl dev` ([`dev`]); a Lambda Runtime API emulator
//! ([`runtime_api`]); an `@connections` stand-in ([`connections`]); an in-memory DynamoDB Scan
//! endpoint ([`scan_table`]).

pub mod connections;
pub mod dev;
pub mod project;
pub mod proxy;
pub mod runtime_api;
pub mod scan_table;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (this crate lives in `tests/support/`).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|p| p.join("tests/support/moto_server.py").exists())
        .expect("workspace root")
        .to_path_buf()
}

/// The `wsctl` binary cargo built beside the running test or benchmark (a test binary lives
/// in `target/{profile}/deps/`, the binaries one folder up).
pub fn wsctl_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut dir = exe.parent().expect("a folder").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("wsctl{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo test builds it for wsctl's own tests)",
        bin.display()
    );
    bin
}

/// The Python with moto, boto3, the aws CLI and websockets: MOTO_PYTHON (scripts/test.sh sets
/// it), else the checkout's .venv.
pub fn python() -> PathBuf {
    std::env::var_os("MOTO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"))
}

/// The directory of that Python's scripts (the aws CLI).
pub fn venv_bin() -> PathBuf {
    python()
        .parent()
        .expect("python has a directory")
        .to_path_buf()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A tiny blocking HTTP/1.1 client: enough for the emulator's control API.
pub fn http(method: &str, url: &str, body: &str) -> std::io::Result<(u16, String)> {
    let rest = url.strip_prefix("http://").expect("http:// URL");
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let mut stream = TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// moto_server on a free port, killed on drop.
pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Moto {
    /// Starts moto. `iam_managed_policies` loads AWS managed policies (slower, more memory),
    /// which attaching AWSLambdaBasicExecutionRole needs.
    pub fn start(iam_managed_policies: bool) -> Moto {
        // moto_server.py is moto's server plus UpdateStage (see the file).
        let python = python();
        assert!(
            python.exists(),
            "{} not found: run scripts/test.sh, which installs moto into .venv \
             (or set MOTO_PYTHON to a python that has moto[server] 5.2.5)",
            python.display()
        );
        let script = workspace_root().join("tests/support/moto_server.py");
        let exe = python;
        let port = free_port();
        let child = Command::new(&exe)
            .arg(&script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env(
                "MOTO_IAM_LOAD_MANAGED_POLICIES",
                if iam_managed_policies {
                    "true"
                } else {
                    "false"
                },
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok((200, _)) = http("GET", &format!("{}/moto-api/", moto.url()), "") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not start within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let (status, body) = http(
            "POST",
            &format!("{}/moto-api/config", moto.url()),
            r#"{"lambda":{"use_docker":false}}"#,
        )
        .unwrap();
        assert!(
            (200..300).contains(&status),
            "configuring moto: {status} {body}"
        );
        moto
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a process needs to talk to this moto as if it were AWS.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// An SDK config pointed at this moto.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(self.url())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "testing", "testing", None, None, "test",
            ))
            .load()
            .await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates the connections table the way `wsctl up` does (hash key `connection_id`).
pub async fn create_connections_table(client: &aws_sdk_dynamodb::Client, table: &str) {
    create_table(client, table, "connection_id", None).await;
}

/// Creates an on-demand table with a string hash key (and a string range key when given).
pub async fn create_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    hash: &str,
    range: Option<&str>,
) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let mut request = client.create_table().table_name(table);
    for (name, kind) in [(Some(hash), KeyType::Hash), (range, KeyType::Range)] {
        let Some(name) = name else { continue };
        request = request
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .unwrap(),
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name(name)
                    .key_type(kind)
                    .build()
                    .unwrap(),
            );
    }
    request
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap_or_else(|e| panic!("create table {table} in moto: {e:?}"));
}
