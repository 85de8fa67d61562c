//! Topic access rules and a backend's membership changes, through the handler's events with
//! its in-memory ports: who may subscribe and broadcast to what (with hostile claims), what a
//! connection keeps of its token, and the `subscribe` / `unsubscribe` / `close` invocations.

use std::collections::BTreeMap;
use std::sync::Arc;

use handler::topics::Rules;
use handler::{
    ConnectionStore, Event, Handler, InProcessPusher, MembershipReport, MemoryStore, Outcome,
    RequestContext, Settings,
};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

type H = Handler<MemoryStore, InProcessPusher>;

const SECRET: &[u8] = b"topic-rules-test-secret";

fn handler(rules: Option<(&[&str], &[&str])>, client_broadcast: bool) -> H {
    let topics = rules.map(|(subscribe, publish)| {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Rules::parse(&owned(subscribe), &owned(publish)).unwrap()
    });
    let settings = Settings {
        api_id: Some("abc123".into()),
        region: Some("us-east-1".into()),
        allow_client_broadcast: client_broadcast,
        topics,
        ..Settings::default()
    };
    Handler::new(
        settings,
        Arc::new(MemoryStore::default()),
        Arc::new(InProcessPusher::new()),
    )
    .with_auth(handler::auth::Auth::hs256(SECRET.to_vec()))
}

fn token(claims: Value) -> String {
    let mut claims = claims;
    claims["exp"] = json!(time::OffsetDateTime::now_utc().unix_timestamp() + 300);
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn ctx(id: &str) -> RequestContext {
    RequestContext {
        connection_id: id.into(),
        domain_name: Some("abc123.execute-api.us-east-1.amazonaws.com".into()),
        stage: Some("prod".into()),
        source_ip: Some("203.0.113.7".into()),
        request_time_epoch_ms: 0,
        caller: None,
    }
}

/// Connects `id` with a token carrying `claims`.
async fn open(h: &H, id: &str, claims: Value) -> UnboundedReceiver<Vec<u8>> {
    let rx = h.pusher().register(id);
    let out = h
        .handle(Event::Connect {
            ctx: ctx(id),
            query: BTreeMap::from([("token".to_owned(), token(claims))]),
            headers: BTreeMap::new(),
        })
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Http { status: 200, .. }), "{out:?}");
    rx
}

/// Sends a client frame and returns the reply pushed back.
async fn ask(h: &H, rx: &mut UnboundedReceiver<Vec<u8>>, id: &str, frame: Value) -> Value {
    h.handle(Event::Message {
        ctx: ctx(id),
        body: Some(frame.to_string()),
    })
    .await
    .unwrap();
    next(rx)
}

fn next(rx: &mut UnboundedReceiver<Vec<u8>>) -> Value {
    let data = rx.try_recv().expect("a message was pushed");
    serde_json::from_slice(&data).expect("pushed JSON")
}

fn subscribe(topic: &str) -> Value {
    json!({"action": "subscribe", "topic": topic})
}

async fn topics_of(h: &H, id: &str) -> Vec<String> {
    let row = h.store().get(id).await.unwrap().expect("row");
    row.topics.into_iter().collect()
}

fn is_forbidden(reply: &Value, topic: &str) -> bool {
    reply["type"] == "error"
        && reply["data"]["code"] == "forbidden"
        && reply["data"]["topic"] == topic
}

async fn invoke(h: &H, payload: Value) -> MembershipReport {
    match h.handle(Event::Invoke(payload)).await.unwrap() {
        Outcome::Membership(r) => r,
        other => panic!("expected a membership report, got {other:?}"),
    }
}

#[tokio::test]
async fn with_sign_in_and_no_rules_clients_may_subscribe_and_broadcast_to_nothing() {
    let h = handler(None, true);
    let mut rx = open(&h, "A=", json!({"sub": "alice"})).await;
    for topic in ["news", "user:alice", "*"] {
        let reply = ask(&h, &mut rx, "A=", subscribe(topic)).await;
        assert!(is_forbidden(&reply, topic), "{topic}: {reply}");
    }
    assert!(topics_of(&h, "A=").await.is_empty(), "nothing written");
    let reply = ask(
        &h,
        &mut rx,
        "A=",
        json!({"action": "broadcast", "message": {"type": "t"}}),
    )
    .await;
    assert_eq!(reply["data"]["code"], "forbidden", "{reply}");
    let reply = ask(
        &h,
        &mut rx,
        "A=",
        json!({"action": "broadcast", "topic": "news", "message": {"type": "t"}}),
    )
    .await;
    assert!(is_forbidden(&reply, "news"), "{reply}");
    assert!(rx.try_recv().is_err(), "nobody heard the refused broadcast");
}

#[tokio::test]
async fn each_user_hears_its_own_topics_and_its_organisations_only() {
    let h = handler(
        Some((
            &["news", "user:{sub}", "org:{claims.org_id}:*"],
            &["org:{claims.org_id}:chat"],
        )),
        true,
    );
    let mut alice = open(
        &h,
        "A=",
        json!({"sub": "alice", "org_id": "acme", "email": "alice@acme.test", "roles": ["admin"]}),
    )
    .await;
    let mut bob = open(&h, "B=", json!({"sub": "bob", "org_id": "globex"})).await;

    // Only the claims the rules name are kept on the row.
    let row = h.store().get("A=").await.unwrap().unwrap();
    assert_eq!(row.user.as_deref(), Some("alice"));
    assert_eq!(
        row.claims,
        BTreeMap::from([("org_id".to_owned(), "acme".to_owned())])
    );

    for ok in ["news", "user:alice", "org:acme:chat", "org:acme:builds"] {
        let reply = ask(&h, &mut alice, "A=", subscribe(ok)).await;
        assert_eq!(reply, json!({"type": "subscribed", "data": {"topic": ok}}));
    }
    for no in [
        "user:bob",
        "org:globex:chat",
        "org:acme:",
        "user:alice:x",
        "User:alice",
    ] {
        let reply = ask(&h, &mut alice, "A=", subscribe(no)).await;
        assert!(is_forbidden(&reply, no), "{no}: {reply}");
    }
    assert_eq!(
        topics_of(&h, "A=").await,
        ["news", "org:acme:builds", "org:acme:chat", "user:alice"]
    );
    let reply = ask(&h, &mut bob, "B=", subscribe("org:globex:chat")).await;
    assert_eq!(reply["type"], "subscribed");

    // Bob may publish to his organisation's chat, not to Alice's, and not to everyone.
    for (topic, code) in [
        (Some("org:acme:chat"), "forbidden"),
        (None, "forbidden"),
        (Some("news"), "forbidden"),
    ] {
        let mut frame = json!({"action": "broadcast", "message": {"type": "hi"}});
        if let Some(t) = topic {
            frame["topic"] = json!(t);
        }
        let reply = ask(&h, &mut bob, "B=", frame).await;
        assert_eq!(reply["data"]["code"], code, "{topic:?}: {reply}");
    }
    assert!(alice.try_recv().is_err(), "Alice heard nothing from Bob");
    let reply = ask(
        &h,
        &mut bob,
        "B=",
        json!({"action": "broadcast", "topic": "org:globex:chat", "message": {"type": "hi"}}),
    )
    .await;
    // Bob is a subscriber: he hears his own broadcast, then its report.
    assert_eq!(reply, json!({"type": "hi"}));
    assert_eq!(next(&mut bob)["type"], "broadcast_report");
    assert!(alice.try_recv().is_err());

    // A client may always leave a topic.
    let reply = ask(
        &h,
        &mut alice,
        "A=",
        json!({"action": "unsubscribe", "topic": "news"}),
    )
    .await;
    assert_eq!(reply["type"], "unsubscribed");
}

#[tokio::test]
async fn hostile_claims_open_nothing_beyond_their_literal_value() {
    let h = handler(Some((&["user:{sub}", "org:{claims.org}:*"], &[])), false);
    let cases = [
        ("H1=", json!({"sub": "*", "org": "*"})),
        ("H2=", json!({"sub": "bob:*", "org": ""})),
        ("H3=", json!({"sub": "{sub}", "org": ["acme", "globex"]})),
        ("H4=", json!({"sub": "..", "org": {"id": "acme"}})),
    ];
    for (id, claims) in cases {
        let sub = claims["sub"].as_str().unwrap().to_owned();
        let mut rx = open(&h, id, claims).await;
        for topic in [
            "user:bob",
            "user:bob:x",
            "org:acme:x",
            "org::x",
            "org:globex:chat",
        ] {
            let reply = ask(&h, &mut rx, id, subscribe(topic)).await;
            assert!(is_forbidden(&reply, topic), "{sub}: {topic}: {reply}");
        }
        let own = format!("user:{sub}");
        let reply = ask(&h, &mut rx, id, subscribe(&own)).await;
        assert_eq!(reply["type"], "subscribed", "{own}");
    }
    // A wildcard organisation only matches the topic spelled with a `*`.
    let mut rx = open(&h, "H5=", json!({"sub": "eve", "org": "*"})).await;
    let reply = ask(&h, &mut rx, "H5=", subscribe("org:*:x")).await;
    assert_eq!(reply["type"], "subscribed");
}

#[tokio::test]
async fn a_backend_subscribes_unsubscribes_and_closes_whatever_the_rules_say() {
    let h = handler(Some((&["user:{sub}"], &[])), false);
    let mut bob1 = open(&h, "B1=", json!({"sub": "bob"})).await;
    let mut bob2 = open(&h, "B2=", json!({"sub": "bob"})).await;
    let mut alice = open(&h, "A=", json!({"sub": "alice"})).await;

    // Bob may not join "billing" himself; his backend puts every connection of his in it.
    let reply = ask(&h, &mut bob1, "B1=", subscribe("billing")).await;
    assert!(is_forbidden(&reply, "billing"));
    let report = invoke(
        &h,
        json!({"action": "subscribe", "topic": "billing", "user": "bob"}),
    )
    .await;
    assert_eq!(
        (report.done, report.gone, report.failed),
        (2, 0, 0),
        "{report:?}"
    );
    assert_eq!(report.topic.as_deref(), Some("billing"));
    for rx in [&mut bob1, &mut bob2] {
        assert_eq!(
            next(rx),
            json!({"type": "subscribed", "data": {"topic": "billing"}})
        );
    }
    // A topic broadcast reaches Bob's two connections, not Alice.
    let out = h
        .handle(Event::Invoke(
            json!({"action": "broadcast", "topic": "billing", "message": {"type": "invoice"}}),
        ))
        .await
        .unwrap();
    assert!(
        matches!(out, Outcome::Report(ref r) if r.delivered == 2),
        "{out:?}"
    );
    assert_eq!(next(&mut bob1)["type"], "invoice");
    assert_eq!(next(&mut bob2)["type"], "invoice");
    assert!(alice.try_recv().is_err());

    // One connection out; an unknown one is counted gone, not an error.
    let report = invoke(
        &h,
        json!({"action": "unsubscribe", "topic": "billing", "connection_id": "B2="}),
    )
    .await;
    assert_eq!(
        (report.done, report.connections.clone()),
        (1, vec!["B2=".to_owned()])
    );
    assert_eq!(next(&mut bob2)["type"], "unsubscribed");
    assert_eq!(topics_of(&h, "B2=").await, Vec::<String>::new());
    let report = invoke(
        &h,
        json!({"action": "subscribe", "topic": "billing", "connection_id": "NOPE="}),
    )
    .await;
    assert_eq!((report.done, report.gone), (0, 1));

    // Close every connection of Bob's: each socket is told to close; Alice stays.
    let report = invoke(&h, json!({"action": "close", "user": "bob"})).await;
    assert_eq!((report.done, report.gone), (2, 0), "{report:?}");
    for rx in [&mut bob1, &mut bob2] {
        assert_eq!(rx.try_recv().unwrap(), Vec::<u8>::new(), "closed");
    }
    assert!(alice.try_recv().is_err());

    // A connection API Gateway no longer has is gone, and its stale row goes.
    h.pusher().unregister("A=");
    let report = invoke(&h, json!({"action": "close", "connection_id": "A="})).await;
    assert_eq!((report.done, report.gone), (0, 1));
    assert!(h.store().get("A=").await.unwrap().is_none());
    assert!(serde_json::to_value(&report).unwrap()["complete"] == true);
}

#[tokio::test]
async fn the_authorizer_verifies_the_token_once_and_its_context_says_who_talks() {
    let mut auth = handler::auth::Auth::hs256(SECRET.to_vec());
    auth.claims = vec!["email".into()];
    let rules = Rules::parse(&["org:{claims.org_id}:*".into()], &[]).unwrap();
    let h: H = Handler::new(
        Settings {
            api_id: Some("abc123".into()),
            region: Some("us-east-1".into()),
            topics: Some(rules),
            ..Settings::default()
        },
        Arc::new(MemoryStore::default()),
        Arc::new(InProcessPusher::new()),
    )
    .with_auth(auth);
    let request = |query: Value| {
        handler::apigw::to_event(json!({
            "type": "REQUEST",
            "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/prod/$connect",
            "headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com"},
            "queryStringParameters": query,
            "requestContext": {"routeKey": "$connect", "eventType": "CONNECT", "connectionId": "A="},
        }))
        .unwrap()
    };
    let good =
        token(json!({"sub": "alice", "org_id": "acme", "email": "a@acme.test", "roles": ["x"]}));
    let answer = match h.handle(request(json!({"token": good}))).await.unwrap() {
        Outcome::Authorized(a) => serde_json::to_value(a).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(answer["principalId"], "alice");
    assert_eq!(answer["policyDocument"]["Statement"][0]["Effect"], "Allow");
    assert_eq!(answer["context"]["sub"], "alice");
    let claims: Value =
        serde_json::from_str(answer["context"]["claims"].as_str().unwrap()).unwrap();
    assert_eq!(claims, json!({"email": "a@acme.test", "org_id": "acme"}));

    // A refused token: the error's message is exactly what API Gateway turns into 401.
    for query in [json!({}), json!({"token": "not-a-jwt"})] {
        let e = h.handle(request(query)).await.unwrap_err();
        assert_eq!(
            (e.kind(), handler::error_chain(&e)),
            ("Unauthorized", "Unauthorized".to_owned())
        );
    }

    // $connect then carries the context (no token in it): the row keeps the rules' claims only,
    // and subscribes are checked against the context, not a token.
    let fields: std::collections::HashMap<String, Value> = answer["context"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .chain([("principalId".to_owned(), json!("alice"))])
        .collect();
    let caller = handler::authorizer::Caller::from_context(&fields);
    let with_caller = RequestContext {
        caller: caller.clone(),
        ..ctx("A=")
    };
    let mut rx = h.pusher().register("A=");
    let out = h
        .handle(Event::Connect {
            ctx: with_caller.clone(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
        })
        .await
        .unwrap();
    assert!(matches!(out, Outcome::Http { status: 200, .. }), "{out:?}");
    let row = h.store().get("A=").await.unwrap().unwrap();
    assert_eq!(row.user.as_deref(), Some("alice"));
    assert_eq!(
        row.claims,
        BTreeMap::from([("org_id".to_owned(), "acme".to_owned())])
    );
    for (topic, ok) in [("org:acme:x", true), ("org:globex:x", false)] {
        h.handle(Event::Message {
            ctx: with_caller.clone(),
            body: Some(subscribe(topic).to_string()),
        })
        .await
        .unwrap();
        let reply = next(&mut rx);
        assert_eq!(reply["type"] == "subscribed", ok, "{topic}: {reply}");
    }
}
