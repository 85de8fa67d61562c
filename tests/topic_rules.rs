//! Who may hear a topic, end to end: `wsctl dev` with the project's `[auth]` and `[topics]`, real
//! sockets holding real HS256 tokens (hostile claims among them), and the backend's commands
//! (`wsctl broadcast --topic`, `subscribe`, `unsubscribe`, `connections close`).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use support::dev::{Dev, Ws};
use support::project::Project;
use tokio_tungstenite::tungstenite::Message;

const SECRET_VAR: &str = "WSCTL_TOPIC_RULES_SECRET";
const SECRET: &str = "topic-rules-secret-for-tests";

const CONFIG: &str = r#"project = "demo"

[function]
allow_client_broadcast = true

[auth]
secret_parameter = "/demo/ws-jwt-secret"

[topics]
subscribe = ["news", "user:{sub}", "org:{claims.org_id}:*"]
publish = ["org:{claims.org_id}:chat"]
"#;

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

/// A gateway with `config` (None: no project file) in a directory the CLI also runs in.
fn start(config: Option<&str>, args: &[&str]) -> (Dev, tempfile::TempDir) {
    std::env::set_var(SECRET_VAR, SECRET);
    let mut all = vec!["--jwt-secret-env", SECRET_VAR];
    all.extend_from_slice(args);
    let dev = Dev::start_with_config(config, &all);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wsctl.toml"),
        config.unwrap_or("project = \"demo\"\n"),
    )
    .unwrap();
    (dev, dir)
}

async fn connect(dev: &Dev, claims: Value) -> (Ws, String) {
    dev.connect_to(&format!("{}?token={}", dev.url, token(claims)))
        .await
}

/// The next text frame, as JSON, within 5 s.
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

/// Nothing arrives for a while.
async fn silent(ws: &mut Ws, who: &str) {
    if let Ok(frame) = tokio::time::timeout(Duration::from_millis(400), ws.next()).await {
        panic!("{who} heard {frame:?}");
    }
}

async fn ask(ws: &mut Ws, frame: Value) -> Value {
    ws.send(Message::text(frame.to_string())).await.unwrap();
    recv(ws).await
}

async fn subscribe(ws: &mut Ws, topic: &str) -> Value {
    ask(ws, json!({"action": "subscribe", "topic": topic})).await
}

fn forbidden(reply: &Value, topic: &str) -> bool {
    reply["type"] == "error"
        && reply["data"]["code"] == "forbidden"
        && reply["data"]["action"] == "subscribe"
        && reply["data"]["topic"] == topic
}

/// The socket is closed by the gateway (a Close frame, then the end).
async fn closed(ws: &mut Ws, who: &str) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Err(_) => panic!("{who} was not closed within 5 s"),
            Ok(None | Some(Ok(Message::Close(_))) | Some(Err(_))) => return,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The gateway ran `$disconnect` for `id`.
async fn disconnected(dev: &Dev, id: &str) {
    for _ in 0..200 {
        let ran = dev
            .stderr()
            .lines()
            .any(|l| l.contains("$disconnect") && l.contains(id));
        if ran {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no $disconnect for {id}:\n{}", dev.stderr());
}

#[tokio::test(flavor = "multi_thread")]
async fn each_user_hears_only_the_topics_its_claims_allow_and_backends_manage_membership() {
    let (dev, dir) = start(Some(CONFIG), &[]);
    dev.wait_log("topics: clients may subscribe to news, user:{sub}, org:{claims.org_id}:*")
        .await;
    let (mut alice, alice_id) = connect(&dev, json!({"sub": "alice", "org_id": "acme"})).await;
    let (mut bob1, bob1_id) = connect(&dev, json!({"sub": "bob", "org_id": "globex"})).await;
    let (mut bob2, bob2_id) = connect(&dev, json!({"sub": "bob", "org_id": "globex"})).await;

    for topic in ["news", "user:alice", "org:acme:x"] {
        let reply = subscribe(&mut alice, topic).await;
        assert_eq!(
            reply,
            json!({"type": "subscribed", "data": {"topic": topic}})
        );
    }
    for topic in [
        "user:bob",
        "org:other:x",
        "org:globex:chat",
        "user:alice:x",
        "org:acme:",
    ] {
        let reply = subscribe(&mut alice, topic).await;
        assert!(forbidden(&reply, topic), "{topic}: {reply}");
    }
    for bob in [&mut bob1, &mut bob2] {
        assert_eq!(subscribe(bob, "user:bob").await["type"], "subscribed");
    }

    // Hostile claim values match only themselves.
    for claims in [
        json!({"sub": "*", "org_id": "*"}),
        json!({"sub": "bob:*", "org_id": ""}),
        json!({"sub": "..", "org_id": ["acme"]}),
        json!({"sub": "{sub}", "org_id": {"id": "acme"}}),
    ] {
        let (mut ws, _) = connect(&dev, claims.clone()).await;
        for topic in [
            "user:bob",
            "user:bob:x",
            "org:acme:x",
            "org::x",
            "org:globex:chat",
        ] {
            let reply = subscribe(&mut ws, topic).await;
            assert!(forbidden(&reply, topic), "{claims}: {topic}: {reply}");
        }
        let own = format!("user:{}", claims["sub"].as_str().unwrap());
        assert_eq!(
            subscribe(&mut ws, &own).await["type"],
            "subscribed",
            "{own}"
        );
    }

    // A backend's topic broadcast to user:bob reaches both of Bob's connections, not Alice.
    let out = dev.wsctl(
        dir.path(),
        &[
            "broadcast",
            "--topic",
            "user:bob",
            "--type",
            "note",
            "--data",
            r#"{"n":1}"#,
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for bob in [&mut bob1, &mut bob2] {
        assert_eq!(recv(bob).await, json!({"type": "note", "data": {"n": 1}}));
    }
    silent(&mut alice, "alice").await;

    // A client's broadcast: to its organisation's chat only.
    let reply = ask(
        &mut bob1,
        json!({"action": "broadcast", "topic": "org:acme:chat", "message": {"type": "spam"}}),
    )
    .await;
    assert_eq!(reply["data"]["code"], "forbidden", "{reply}");
    assert_eq!(reply["data"]["action"], "broadcast", "{reply}");
    silent(&mut alice, "alice").await;

    // The backend puts Alice into user:bob, whatever the rules say; she is told, and hears it.
    let out = dev.wsctl(
        dir.path(),
        &[
            "subscribe",
            "--topic",
            "user:bob",
            "--user",
            "alice",
            "--output",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(
        (&report["action"], &report["done"], &report["connections"]),
        (&json!("subscribe"), &json!(1), &json!([alice_id]))
    );
    assert_eq!(
        recv(&mut alice).await,
        json!({"type": "subscribed", "data": {"topic": "user:bob"}})
    );
    let out = dev.wsctl(
        dir.path(),
        &[
            "broadcast",
            "--topic",
            "user:bob",
            r#"{"type":"note","data":{"n":2}}"#,
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    for ws in [&mut alice, &mut bob1, &mut bob2] {
        assert_eq!(recv(ws).await["data"]["n"], 2);
    }
    let out = dev.wsctl(
        dir.path(),
        &[
            "unsubscribe",
            "--topic",
            "user:bob",
            "--connection",
            &alice_id,
        ],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout
            .contains("unsubscribed from \"user:bob\": 1 connection(s)"),
        "{}",
        out.stdout
    );
    assert_eq!(recv(&mut alice).await["type"], "unsubscribed");

    // Close every connection of Bob's: exactly those two sockets close; Alice stays.
    let out = dev.wsctl(
        dir.path(),
        &["connections", "close", "--user", "bob", "--output", "json"],
    );
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    let report = out.json();
    assert_eq!(report["done"], 2, "{report}");
    let mut closed_ids: Vec<String> = report["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    closed_ids.sort();
    let mut bobs = vec![bob1_id.clone(), bob2_id.clone()];
    bobs.sort();
    assert_eq!(closed_ids, bobs);
    closed(&mut bob1, "bob1").await;
    closed(&mut bob2, "bob2").await;
    for id in [&bob1_id, &bob2_id] {
        disconnected(&dev, id).await;
    }
    assert_eq!(
        ask(&mut alice, json!({"action": "ping"})).await["type"],
        "pong"
    );

    // A connection that is not there is counted gone, and the command says so.
    let out = dev.wsctl(dir.path(), &["connections", "close", &bob1_id]);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("closed: 0 connection(s); gone 1"),
        "{}",
        out.stdout
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn signed_in_clients_subscribe_to_nothing_without_rules_and_bad_rules_are_refused() {
    let (dev, _dir) = start(None, &[]);
    dev.wait_log("topics: clients may subscribe to nothing")
        .await;
    let (mut ws, _) = connect(&dev, json!({"sub": "alice"})).await;
    for topic in ["news", "user:alice"] {
        let reply = subscribe(&mut ws, topic).await;
        assert!(forbidden(&reply, topic), "{topic}: {reply}");
    }

    // --topics-subscribe opens what it names, to the subject it names.
    let (dev, _dir) = start(None, &["--topics-subscribe", "user:{sub}"]);
    let (mut ws, _) = connect(&dev, json!({"sub": "alice"})).await;
    assert_eq!(subscribe(&mut ws, "user:alice").await["type"], "subscribed");
    assert!(forbidden(&subscribe(&mut ws, "news").await, "news"));

    // A bad pattern: exit 2 with the file, the line and the reason, before any AWS call.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wsctl.toml"),
        "project = \"demo\"\n[topics]\nsubscribe = [\n  \"news\",\n  \"user:{subject}\",\n]\n",
    )
    .unwrap();
    let out = dev.wsctl(dir.path(), &["up", "--dry-run"]);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(
            "wsctl.toml:5: topics.subscribe: \"user:{subject}\": unknown placeholder {subject}"
        ),
        "{}",
        out.stderr
    );
}

/// Topic rules are the function's configuration and nothing else: adding them is one update of
/// it, against moto; the report says what clients may do.
#[tokio::test(flavor = "multi_thread")]
async fn changing_the_rules_updates_the_function_configuration_only() {
    let p = Project::new("rules");
    let out = p.up(&[]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(
            "WARNING: topics are open: without [auth], any client may subscribe to any topic"
        ),
        "{out:?}"
    );
    p.write_config("project = \"rules\"\n[topics]\nsubscribe = [\"news\", \"status:*\"]\n");
    p.proxy.clear();
    let report = p.up(&["-o", "json"]).json();
    let writes: Vec<String> = p
        .proxy
        .writes()
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    assert_eq!(
        writes,
        ["PUT /2015-03-31/functions/rules-websocket-handler/configuration"],
        "{writes:?}"
    );
    assert_eq!(
        report["topics"],
        json!({"access": "rules", "subscribe": ["news", "status:*"]})
    );
    let vars = aws_sdk_lambda::Client::new(&p.sdk().await)
        .get_function_configuration()
        .function_name("rules-websocket-handler")
        .send()
        .await
        .unwrap()
        .environment
        .unwrap()
        .variables
        .unwrap();
    assert_eq!(vars["TOPICS_SUBSCRIBE"], r#"["news","status:*"]"#);
    assert_eq!(vars["TOPICS_PUBLISH"], "[]");
    p.proxy.clear();
    let out = p.up(&[]);
    assert!(out.stdout.contains("No changes"), "{out:?}");
    assert!(
        out.stdout.contains(
            "Topics:        clients may subscribe to news, status:*; broadcast to nothing"
        ),
        "{out:?}"
    );
    assert!(!out.stdout.contains("WARNING"), "{out:?}");
    assert!(p.proxy.writes().is_empty(), "{:#?}", p.proxy.writes());
    let status = p.wsctl(&["status"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(
        status
            .stdout
            .contains("Topics:        clients may subscribe to news, status:*"),
        "{status:?}"
    );
}
