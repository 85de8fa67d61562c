//! The built `bootstrap` binary end to end: the test support's Lambda Runtime API emulator
//! feeds it API Gateway-shaped events and direct invocations; rows land in moto's DynamoDB;
//! pushes land on the `@connections` stand-in, which answers 410 GoneException for unknown ids.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use handler::glibc;
use serde_json::{json, Value};
use support::connections::Connections;
use support::runtime_api::{Answer, RuntimeApi};
use support::{create_connections_table, Moto};

struct Function(Child);

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_bootstrap(
    runtime: SocketAddr,
    moto: &Moto,
    extra: &[(&str, String)],
    remove: &[&str],
) -> Function {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bootstrap"));
    cmd.env("AWS_LAMBDA_RUNTIME_API", runtime.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "demo-websocket-handler")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("CONNECTIONS_TABLE", "demo_ws_connections")
        .env("WEBSOCKET_API_ID", "abcd1234")
        .env("WEBSOCKET_STAGE", "prod")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in moto.env() {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    for k in remove {
        cmd.env_remove(k);
    }
    Function(cmd.spawn().expect("start bootstrap"))
}

/// Waits for the function's process to exit (it must, after an init error).
async fn exit_status(mut function: Function) -> std::process::ExitStatus {
    tokio::task::spawn_blocking(move || {
        let status = function.0.wait();
        std::mem::forget(function);
        status
    })
    .await
    .unwrap()
    .unwrap()
}

fn ws_event(route: &str, event_type: &str, connection_id: &str, body: Option<&str>) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut event = json!({
        "headers": {
            "Host": "abcd1234.execute-api.us-east-1.amazonaws.com",
            "Origin": "http://localhost:5173",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "X-Forwarded-For": "192.0.2.1"
        },
        "multiValueHeaders": {
            "Host": ["abcd1234.execute-api.us-east-1.amazonaws.com"]
        },
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": "ABCD1234=",
            "requestTime": "09/Feb/2024:18:23:28 +0000",
            "messageDirection": "IN",
            "stage": "prod",
            "connectedAt": now - 1000,
            "requestTimeEpoch": now,
            "identity": { "sourceIp": "192.0.2.1" },
            "requestId": "ABCD1234=",
            "domainName": "abcd1234.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection_id,
            "apiId": "abcd1234"
        },
        "isBase64Encoded": false
    });
    if event_type == "CONNECT" {
        event["queryStringParameters"] = json!({"token": "abc"});
        event["multiValueQueryStringParameters"] = json!({"token": ["abc"]});
    }
    if event_type == "MESSAGE" {
        event["requestContext"]["messageId"] = json!("MSG1234=");
    }
    if event_type == "DISCONNECT" {
        event["requestContext"]["disconnectStatusCode"] = json!(1005);
        event["requestContext"]["disconnectReason"] =
            json!("Client-side close frame status not set");
    }
    if let Some(b) = body {
        event["body"] = json!(b);
    }
    event
}

fn response(answer: Answer) -> Value {
    answer.response()
}

/// The body of an invocation that failed; panics when it did not.
fn failure(answer: Answer) -> Value {
    assert!(answer.error, "expected an error, got {}", answer.body);
    answer.json()
}

/// The table's row for `connection_id`, which must exist.
async fn row(
    client: &aws_sdk_dynamodb::Client,
    connection_id: &str,
) -> std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> {
    client
        .get_item()
        .table_name("demo_ws_connections")
        .key(
            "connection_id",
            aws_sdk_dynamodb::types::AttributeValue::S(connection_id.into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the row exists")
}

async fn table_ids(client: &aws_sdk_dynamodb::Client) -> Vec<String> {
    let out = client
        .scan()
        .table_name("demo_ws_connections")
        .send()
        .await
        .unwrap();
    let mut ids: Vec<String> = out
        .items()
        .iter()
        .map(|i| i["connection_id"].as_s().unwrap().clone())
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_serves_connect_message_broadcast_and_disconnect() {
    let moto = Moto::start(false);
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_connections_table(&dynamo, "demo_ws_connections").await;
    let runtime = RuntimeApi::start().await;
    let runtime_addr = runtime.addr;
    let gateway = Connections::with_open(&["AAAA1111=", "BBBB2222="]).await;
    let gateway_addr = gateway.addr;
    let _function = start_bootstrap(
        runtime_addr,
        &moto,
        &[(
            "WEBSOCKET_MANAGEMENT_ENDPOINT",
            format!("http://{gateway_addr}/prod"),
        )],
        &[],
    );

    // $connect for three connections; the third will have dropped by broadcast time.
    for id in ["AAAA1111=", "BBBB2222=", "CCCC3333="] {
        let answer = response(
            runtime
                .invoke(ws_event("$connect", "CONNECT", id, None))
                .await,
        );
        assert_eq!(answer["statusCode"], 200, "{answer}");
    }
    assert_eq!(
        table_ids(&dynamo).await,
        ["AAAA1111=", "BBBB2222=", "CCCC3333="]
    );
    let item = row(&dynamo, "AAAA1111=").await;
    assert!(item["connected_at"].as_s().unwrap().ends_with('Z'));
    let ttl: i64 = item["ttl"].as_n().unwrap().parse().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (ttl - (now + 86400)).abs() < 60,
        "ttl {ttl} is about now + 24 h"
    );

    // A ping is answered with a pong pushed to the sender.
    let answer = response(
        runtime
            .invoke(ws_event(
                "$default",
                "MESSAGE",
                "AAAA1111=",
                Some(r#"{"action":"ping"}"#),
            ))
            .await,
    );
    assert_eq!(answer["statusCode"], 200);
    let pushed = gateway.received_by("AAAA1111=");
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0]["type"], "pong");

    // Garbage gets bad_request, not an error or a panic.
    let answer = response(
        runtime
            .invoke(ws_event("$default", "MESSAGE", "BBBB2222=", Some("{oops")))
            .await,
    );
    assert_eq!(answer["statusCode"], 200);
    assert_eq!(
        gateway.received_by("BBBB2222=")[0]["data"]["code"],
        "bad_request"
    );

    // The runbook's Step 6 payload, invoked directly.
    let mut answer = response(
        runtime
            .invoke(json!({"action":"broadcast","message":{"type":"claim_status_update","data":{"claim":42}}}))
            .await,
    );
    // Every broadcast gets an id (made by the function when the payload has none).
    let id = answer
        .as_object_mut()
        .and_then(|o| o.remove("broadcast_id"))
        .unwrap_or_else(|| panic!("a broadcast_id in {answer}"));
    assert!(
        handler::invocation::valid_broadcast_id(id.as_str().unwrap_or_default()),
        "{id}"
    );
    assert_eq!(
        answer,
        json!({"delivered": 2, "gone": 1, "failed": 0, "throttled": 0, "retried": 0, "complete": true})
    );
    for id in ["AAAA1111=", "BBBB2222="] {
        let last = gateway.received_by(id).pop().unwrap();
        assert_eq!(
            last,
            json!({"type":"claim_status_update","data":{"claim":42}})
        );
    }
    // The gone connection's row was deleted.
    assert_eq!(table_ids(&dynamo).await, ["AAAA1111=", "BBBB2222="]);

    // $disconnect removes the row, and a repeat still answers 200.
    for _ in 0..2 {
        let answer = response(
            runtime
                .invoke(ws_event("$disconnect", "DISCONNECT", "AAAA1111=", None))
                .await,
        );
        assert_eq!(answer["statusCode"], 200);
    }
    assert_eq!(table_ids(&dynamo).await, ["BBBB2222="]);

    // A bad direct payload is a function error with a typed errorType and its cause.
    let body = failure(runtime.invoke(json!({"action":"launch"})).await);
    assert_eq!(body["errorType"], "BadInvocation", "{body}");
    assert!(
        body["errorMessage"].as_str().unwrap().contains("launch"),
        "{body}"
    );
    // An oversized message is refused up front.
    let body = failure(
        runtime
            .invoke(
                json!({"action":"broadcast","message":{"type":"big","data":"x".repeat(140_000)}}),
            )
            .await,
    );
    assert_eq!(body["errorType"], "MessageTooLarge", "{body}");
    assert_eq!(
        gateway.received_by("BBBB2222=").len(),
        2,
        "nothing more was pushed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamodb_failure_is_reported_as_a_function_error_with_its_cause() {
    let moto = Moto::start(false);
    // No table: every write fails with ResourceNotFoundException.
    let runtime = RuntimeApi::start().await;
    let runtime_addr = runtime.addr;
    let _function = start_bootstrap(runtime_addr, &moto, &[], &[]);
    let body = failure(
        runtime
            .invoke(ws_event("$connect", "CONNECT", "AAAA1111=", None))
            .await,
    );
    assert_eq!(body["errorType"], "StoreError", "{body}");
    let message = body["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("PutItem") && message.contains("demo_ws_connections"),
        "{message}"
    );
}

/// Runs `bootstrap` with `env` until it exits, which must be non-zero after a call to
/// `/init/error`; returns that error's message and the runtime API it talked to.
async fn init_error_with(env: &[(&str, String)]) -> (String, RuntimeApi) {
    let moto = Moto::start(false);
    let runtime = RuntimeApi::start().await;
    let runtime_addr = runtime.addr;
    let function = start_bootstrap(runtime_addr, &moto, env, &[]);
    let status = exit_status(function).await;
    assert!(!status.success(), "the process exits non-zero");
    let report = runtime.init_error().expect("/init/error was called");
    let message = report["errorMessage"].as_str().unwrap().to_owned();
    (message, runtime)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_misconfigured_function_reports_an_init_error() {
    let (message, runtime) =
        init_error_with(&[("CONNECTION_TTL_SECONDS", "tomorrow".into())]).await;
    assert!(
        message.contains("CONNECTION_TTL_SECONDS") && message.contains("tomorrow"),
        "{message}"
    );
    assert_eq!(runtime.next_requests(), 0, "no invocation was fetched");
}

fn hs256_token(secret: &str, sub: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": sub, "exp": now + 600, "iss": "https://issuer.example"}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

fn connect_with_token(id: &str, token: &str) -> Value {
    let mut event = ws_event("$connect", "CONNECT", id, None);
    event["queryStringParameters"] = json!({ "token": token });
    event["multiValueQueryStringParameters"] = json!({ "token": [token] });
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hs256_secret_is_read_from_an_ssm_securestring_at_cold_start() {
    const SECRET: &str = "a-secret-only-ssm-knows-4b1d";
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    create_connections_table(&aws_sdk_dynamodb::Client::new(&sdk), "demo_ws_connections").await;
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name("/demo/ws-jwt-secret")
        .value(SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let runtime = RuntimeApi::start().await;
    let runtime_addr = runtime.addr;
    let _function = start_bootstrap(
        runtime_addr,
        &moto,
        &[
            ("AUTH_SECRET_PARAMETER", "/demo/ws-jwt-secret".into()),
            ("AUTH_ISSUER", "https://issuer.example".into()),
        ],
        &[],
    );
    let good = response(
        runtime
            .invoke(connect_with_token(
                "AAAA1111=",
                &hs256_token(SECRET, "user-7"),
            ))
            .await,
    );
    assert_eq!(good["statusCode"], 200, "{good}");
    let row = row(&aws_sdk_dynamodb::Client::new(&sdk), "AAAA1111=").await;
    assert_eq!(row["user"].as_s().unwrap(), "user-7");
    let forged = response(
        runtime
            .invoke(connect_with_token(
                "BBBB2222=",
                &hs256_token("another-secret-entirely", "x"),
            ))
            .await,
    );
    assert_eq!(forged["statusCode"], 401, "{forged}");
    let missing = response(
        runtime
            .invoke(ws_event("$connect", "CONNECT", "CCCC3333=", None))
            .await,
    );
    assert_eq!(missing["statusCode"], 401, "{missing}");

    // As the $connect authorizer: an IAM policy allowing the route, the identity as context;
    // a refused token is the error `Unauthorized`, which API Gateway answers with 401.
    let authorize = |token: &str| {
        json!({
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcd1234/prod/$connect",
            "headers": {"Host": "abcd1234.execute-api.us-east-1.amazonaws.com"},
            "queryStringParameters": {"token": token},
            "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "DDDD4444=", "apiId": "abcd1234", "stage": "prod"},
        })
    };
    let allowed = runtime
        .invoke(authorize(&hs256_token(SECRET, "user-7")))
        .await
        .json();
    assert_eq!(allowed["principalId"], "user-7", "{allowed}");
    assert_eq!(allowed["context"]["sub"], "user-7");
    assert_eq!(
        allowed["policyDocument"]["Statement"][0]["Resource"],
        "arn:aws:execute-api:us-east-1:123456789012:abcd1234/prod/$connect"
    );
    let refused = failure(runtime.invoke(authorize("forged")).await);
    assert_eq!(refused["errorMessage"], "Unauthorized", "{refused}");
}

/// The topic rules in the Lambda, with moto's DynamoDB and SSM: a row keeps only the claims
/// the rules name; subscribes are checked against them; a backend's subscribe and close are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_rules_hold_in_the_lambda_and_a_row_keeps_only_the_named_claims() {
    const SECRET: &str = "topic-rules-in-the-lambda";
    let moto = Moto::start(false);
    let sdk = moto.sdk_config().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    create_connections_table(&dynamo, "demo_ws_connections").await;
    aws_sdk_ssm::Client::new(&sdk)
        .put_parameter()
        .name("/demo/ws-jwt-secret")
        .value(SECRET)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let gateway = Connections::with_open(&["AAAA1111=", "BBBB2222=", "CCCC3333="]).await;
    let runtime = RuntimeApi::start().await;
    let _function = start_bootstrap(
        runtime.addr,
        &moto,
        &[
            ("AUTH_SECRET_PARAMETER", "/demo/ws-jwt-secret".into()),
            ("WEBSOCKET_MANAGEMENT_ENDPOINT", gateway.endpoint()),
            (
                "TOPICS_SUBSCRIBE",
                r#"["user:{sub}","org:{claims.org_id}:*"]"#.into(),
            ),
        ],
        &[],
    );
    let token = |claims: Value| {
        let mut claims = claims;
        claims["exp"] = json!(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                + 600
        );
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap()
    };
    for (id, claims) in [
        (
            "AAAA1111=",
            json!({"sub": "alice", "org_id": "acme", "email": "alice@acme.test", "roles": ["admin"]}),
        ),
        ("BBBB2222=", json!({"sub": "bob", "org_id": "globex"})),
        ("CCCC3333=", json!({"sub": "bob", "org_id": "globex"})),
    ] {
        let answer = response(runtime.invoke(connect_with_token(id, &token(claims))).await);
        assert_eq!(answer["statusCode"], 200, "{answer}");
    }
    let alice = row(&dynamo, "AAAA1111=").await;
    assert_eq!(alice["user"].as_s().unwrap(), "alice");
    let claims = alice["claims"].as_m().expect("claims is a map");
    assert_eq!(claims.len(), 1, "only the claim the rules name: {claims:?}");
    assert_eq!(claims["org_id"].as_s().unwrap(), "acme");

    let message =
        |id: &str, body: Value| ws_event("$default", "MESSAGE", id, Some(&body.to_string()));
    for (topic, allowed) in [
        ("user:bob", false),
        ("org:globex:x", false),
        ("org:acme:x", true),
        ("user:alice", true),
    ] {
        runtime
            .invoke(message(
                "AAAA1111=",
                json!({"action": "subscribe", "topic": topic}),
            ))
            .await;
        let reply = gateway.received_by("AAAA1111=").pop().unwrap();
        if allowed {
            assert_eq!(
                reply,
                json!({"type": "subscribed", "data": {"topic": topic}})
            );
        } else {
            assert_eq!(reply["data"]["code"], "forbidden", "{topic}: {reply}");
            assert_eq!(reply["data"]["topic"], topic);
        }
    }
    let topics = row(&dynamo, "AAAA1111=").await["topics"]
        .as_ss()
        .unwrap()
        .clone();
    assert_eq!(
        topics.len(),
        2,
        "nothing written for a refused topic: {topics:?}"
    );

    // A backend puts Alice into user:bob, then closes Bob's connections.
    let report = runtime
        .invoke(json!({"action": "subscribe", "topic": "user:bob", "user": "alice"}))
        .await
        .json();
    assert_eq!(
        (&report["done"], &report["gone"]),
        (&json!(1), &json!(0)),
        "{report}"
    );
    assert_eq!(
        gateway.received_by("AAAA1111=").pop().unwrap(),
        json!({"type": "subscribed", "data": {"topic": "user:bob"}})
    );
    let report = runtime
        .invoke(json!({"action": "close", "user": "bob"}))
        .await
        .json();
    assert_eq!(report["done"], 2, "{report}");
    let mut closed = gateway.closed();
    closed.sort();
    assert_eq!(closed, ["BBBB2222=", "CCCC3333="]);
    // Signed for execute-api, as every call to the management API.
    assert!(gateway
        .authorizations()
        .iter()
        .all(|a| a.starts_with("AWS4-HMAC-SHA256") && a.contains("/execute-api/aws4_request")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_parameter_is_an_init_error_naming_it() {
    let (message, _) =
        init_error_with(&[("AUTH_SECRET_PARAMETER", "/demo/not-there".into())]).await;
    assert!(
        message.contains("/demo/not-there") && message.contains("ParameterNotFound"),
        "{message}"
    );
}

#[test]
fn bootstrap_needs_no_glibc_newer_than_2_34() {
    let bytes = std::fs::read(env!("CARGO_BIN_EXE_bootstrap")).unwrap();
    let newest = glibc::newest_glibc(&bytes).expect("bootstrap is an ELF file");
    let (major, minor) = newest.expect("a dynamically linked gnu binary references glibc versions");
    assert!(
        (major, minor) >= (2, 2),
        "parsed a plausible version: {major}.{minor}"
    );
    {
        assert!(
            (major, minor) <= glibc::AL2023_GLIBC,
            "bootstrap needs GLIBC_{major}.{minor}; Amazon Linux 2023 has 2.34 (build with cargo zigbuild --target x86_64-unknown-linux-gnu.2.34)"
        );
    }
}

/// `catalogue.json` as `wsctl up` bundles it: one event, `claim_submitted`.
fn bundled_catalogue() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let events = std::collections::BTreeMap::from([(
        "claim_submitted".to_owned(),
        json!({"type": "object", "required": ["claimId"], "properties": {"claimId": {"type": "string"}}}),
    )]);
    let catalogue =
        handler::catalogue::Catalogue::compile(&events, &Default::default(), false).unwrap();
    std::fs::write(
        dir.path().join(handler::catalogue::BUNDLED),
        catalogue.to_json().to_string(),
    )
    .unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_catalogue_refuses_a_direct_invocation_naming_the_field() {
    let moto = Moto::start(false);
    let dynamo = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
    create_connections_table(&dynamo, "demo_ws_connections").await;
    let runtime = RuntimeApi::start().await;
    let gateway = Connections::with_open(&["AAAA1111="]).await;
    let task_root = bundled_catalogue();
    let _function = start_bootstrap(
        runtime.addr,
        &moto,
        &[
            ("WEBSOCKET_MANAGEMENT_ENDPOINT", gateway.endpoint()),
            ("LAMBDA_TASK_ROOT", task_root.path().display().to_string()),
        ],
        &[],
    );
    let answer = response(
        runtime
            .invoke(ws_event("$connect", "CONNECT", "AAAA1111=", None))
            .await,
    );
    assert_eq!(answer["statusCode"], 200, "{answer}");

    // The runbook's Step 6 from boto3, with the field misspelt; then an undeclared type.
    for (message, pointer) in [
        (
            json!({"type": "claim_submitted", "data": {"claimID": "c1"}}),
            "/data: \"claimId\" is required",
        ),
        (
            json!({"type": "claim_submited", "data": {"claimId": "c1"}}),
            "/type: ",
        ),
    ] {
        let body = failure(
            runtime
                .invoke(json!({"action": "broadcast", "message": message}))
                .await,
        );
        assert_eq!(body["errorType"], "InvalidMessage", "{body}");
        assert!(
            body["errorMessage"].as_str().unwrap().contains(pointer),
            "{body}"
        );
    }
    assert_eq!(gateway.received(), 0, "nothing refused was posted");
    let report = runtime
        .invoke(json!({"action": "broadcast", "message": {"type": "claim_submitted", "data": {"claimId": "c1"}}}))
        .await
        .json();
    assert_eq!(report["delivered"], 1, "{report}");
    assert_eq!(gateway.received(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bundled_catalogue_that_is_not_wsctls_is_an_init_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(handler::catalogue::BUNDLED);
    std::fs::write(&file, r#"{"events": {"x": {"type": "text"}}}"#).unwrap();
    let (message, _) =
        init_error_with(&[("LAMBDA_TASK_ROOT", dir.path().display().to_string())]).await;
    assert!(
        message.contains(&file.display().to_string()) && message.contains("catalogue"),
        "{message}"
    );
}
