//! `[[route]]` in `wsctl dev`, with real sockets and real tokens: an HTTP backend started by the
//! test gets each message with the connection id, the caller and the backend secret as headers,
//! and its answer reaches the client on a two-way route only; a function behind a local Lambda
//! Invoke API gets API Gateway's event with the authorizer's context; a slow or unreachable
//! target gives the client API Gateway's error frame; unknown actions still reach `$default`;
//! a binary frame closes the connection with 1003.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::dev::{Dev, Ws};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "dev-routes-jwt-secret";
const BACKEND_SECRET: &str = "dev-routes-backend-secret-0123456789";

/// What a local backend received: path, headers (lower-case names), body.
#[derive(Default)]
struct Received(Mutex<Vec<(String, HeaderMap, String)>>);

async fn backend(
    State(seen): State<Arc<Received>>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> String {
    let text = String::from_utf8_lossy(&body).into_owned();
    seen.0
        .lock()
        .unwrap()
        .push((path.clone(), headers, text.clone()));
    if path == "slow" {
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    json!({"type": "sent", "data": {"room": message["room"], "path": path}, "requestId": message["requestId"]})
        .to_string()
}

/// A Lambda Invoke API stand-in (what `cargo lambda watch` serves): records the event and
/// answers a Lambda proxy result.
async fn lambda(
    State(seen): State<Arc<Received>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> String {
    let event = String::from_utf8_lossy(&body).into_owned();
    seen.0.lock().unwrap().push((name, headers, event));
    json!({"statusCode": 200, "body": json!({"type": "from_function"}).to_string()}).to_string()
}

async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn token(claims: Value) -> String {
    let mut claims = claims;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claims["exp"] = json!(now + 600);
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

async fn silent(ws: &mut Ws) {
    if let Ok(frame) = tokio::time::timeout(Duration::from_millis(500), ws.next()).await {
        panic!("a one-way route answered: {frame:?}");
    }
}

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(Message::text(frame.to_string())).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_reach_the_teams_backend_and_function_with_who_is_talking() {
    let http_seen = Arc::new(Received::default());
    let http = serve(
        Router::new()
            .route("/ws/{path}", post(backend))
            .with_state(http_seen.clone()),
    )
    .await;
    let fn_seen = Arc::new(Received::default());
    let invoke = serve(
        Router::new()
            .route("/2015-03-31/functions/{name}/invocations", post(lambda))
            .with_state(fn_seen.clone()),
    )
    .await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let config = format!(
        r#"project = "chat"

[auth]
secret_parameter = "/chat/ws-jwt-secret"
claims = ["org_id"]

[api]
backend_secret_parameter = "/chat/ws-backend-secret"

[[route]]
key = "sendmessage"
http = "https://api.example.com/ws/send"
two_way = true

[[route]]
key = "notify"
http = "http://{http}/ws/notify"

[[route]]
key = "slow"
http = "http://{http}/ws/slow"
timeout_ms = 300
two_way = true

[[route]]
key = "unreachable"
http = "http://{closed}/ws/x"
two_way = true

[[route]]
key = "chat.history"
function = "chat-history"
two_way = true
"#
    );
    std::env::set_var("WSCTL_DEV_ROUTES_JWT", SECRET);
    std::env::set_var("WSCTL_DEV_ROUTES_BACKEND", BACKEND_SECRET);
    let dev = Dev::start_with_config(
        Some(&config),
        &[
            "--jwt-secret-env",
            "WSCTL_DEV_ROUTES_JWT",
            "--backend-secret-env",
            "WSCTL_DEV_ROUTES_BACKEND",
            "--lambda-endpoint",
            &format!("http://{invoke}"),
            // The file names the deployed backend; locally it runs here.
            "--route-url",
            &format!("sendmessage=http://{http}/ws/send"),
        ],
    );
    dev.wait_log("route sendmessage -> POST http://").await;

    // A refused token never gets a connection (the authorizer's 401).
    let refused = tokio_tungstenite::connect_async(format!("{}?token=forged", dev.url)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("{other:?}"),
    }

    let (mut ws, id) = dev
        .connect_to(&format!(
            "{}?token={}",
            dev.url,
            token(json!({"sub": "alice", "org_id": "acme", "email": "alice@acme.test"}))
        ))
        .await;

    // Two way: the backend's answer is the client's reply.
    let message = json!({"action": "sendmessage", "room": "r1", "text": "hi", "requestId": "q1"});
    send(&mut ws, message.clone()).await;
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "sent", "data": {"room": "r1", "path": "send"}, "requestId": "q1"})
    );
    let (path, headers, body) = http_seen.0.lock().unwrap()[0].clone();
    assert_eq!(path, "send");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), message);
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header("x-wsctl-connection-id"), id);
    assert_eq!(header("x-wsctl-route-key"), "sendmessage");
    assert_eq!(header("x-wsctl-user"), "alice");
    assert_eq!(
        serde_json::from_str::<Value>(&header("x-wsctl-claims")).unwrap(),
        json!({"org_id": "acme"}),
        "only the claims [auth] claims names"
    );
    assert_eq!(header("x-wsctl-secret"), BACKEND_SECRET);
    assert!(!header("x-wsctl-request-id").is_empty());

    // One way: the backend gets it, the client hears nothing back.
    send(&mut ws, json!({"action": "notify", "room": "r2"})).await;
    silent(&mut ws).await;
    assert!(http_seen
        .0
        .lock()
        .unwrap()
        .iter()
        .any(|(p, _, _)| p == "notify"));

    // A target slower than the route's timeout, and one that cannot be reached.
    send(&mut ws, json!({"action": "slow"})).await;
    let timed_out = recv(&mut ws).await;
    assert_eq!(
        timed_out["message"], "Endpoint request timed out",
        "{timed_out}"
    );
    assert_eq!(timed_out["connectionId"], id.as_str());
    send(&mut ws, json!({"action": "unreachable"})).await;
    let failed = recv(&mut ws).await;
    assert_eq!(failed["message"], "Internal server error", "{failed}");
    assert!(failed["requestId"].as_str().is_some_and(|r| !r.is_empty()));

    // A function: API Gateway's event, with the authorizer's context; its body is the reply.
    send(&mut ws, json!({"action": "chat.history", "room": "r1"})).await;
    assert_eq!(recv(&mut ws).await, json!({"type": "from_function"}));
    let (name, _, event) = fn_seen.0.lock().unwrap()[0].clone();
    assert_eq!(name, "chat-history");
    let event: Value = serde_json::from_str(&event).unwrap();
    let rc = &event["requestContext"];
    assert_eq!(
        (&rc["routeKey"], &rc["eventType"]),
        (&json!("chat.history"), &json!("MESSAGE"))
    );
    assert_eq!(rc["connectionId"], id.as_str());
    assert_eq!(rc["authorizer"]["principalId"], "alice");
    assert_eq!(
        serde_json::from_str::<Value>(rc["authorizer"]["claims"].as_str().unwrap()).unwrap(),
        json!({"org_id": "acme"})
    );
    assert_eq!(
        serde_json::from_str::<Value>(event["body"].as_str().unwrap()).unwrap(),
        json!({"action": "chat.history", "room": "r1"})
    );

    // Other actions still reach the bundled handler's $default; the connection is open.
    send(&mut ws, json!({"action": "ping"})).await;
    assert_eq!(recv(&mut ws).await["type"], "pong");
    send(&mut ws, json!({"action": "whatever", "x": 1})).await;
    assert_eq!(recv(&mut ws).await["type"], "echo");

    // API Gateway closes a connection that sends a binary frame, with 1003.
    ws.send(Message::binary(vec![0u8, 159, 146, 150]))
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1003);
                break;
            }
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a close frame with 1003, got {other:?}"),
        }
    }
}
