//! #8: the message parser, the router and the API Gateway event conversion, fuzzed with
//! proptest. A million message bodies (`WSCTL_FUZZ_CASES` changes it) go through the whole
//! handler as a client's frames would: none panics, each gets exactly one JSON reply, every
//! malformed one is answered with an error, and the connection stays registered throughout.

use std::collections::BTreeMap;
use std::sync::Arc;

use handler::{
    parse_client_message, select_route, Event, Handler, InProcessPusher, MemoryStore, Outcome,
    RequestContext, Settings,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};

fn cases(default: u32) -> u32 {
    std::env::var("WSCTL_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Bodies a client might send: noise, JSON of any shape, and objects built from the fields
/// the handler reads (action, topic, message) with values of every type.
fn body() -> impl Strategy<Value = String> {
    let action = prop_oneof![
        Just(json!("ping")),
        Just(json!("subscribe")),
        Just(json!("unsubscribe")),
        Just(json!("broadcast")),
        Just(json!("sendMessage")),
        json_value(),
    ];
    let field = |v: BoxedStrategy<Value>| prop::option::of(v);
    let shaped = (
        field(action.boxed()),
        field(
            prop_oneof![
                "[a-z]{1,10}".prop_map(Value::String),
                ".{0,140}".prop_map(Value::String),
                json_value()
            ]
            .boxed(),
        ),
        field(json_value().boxed()),
        prop::collection::btree_map("[a-z]{1,8}", json_value(), 0..3),
    )
        .prop_map(|(action, topic, message, extra)| {
            let mut o: serde_json::Map<String, Value> = extra.into_iter().collect();
            if let Some(a) = action {
                o.insert("action".into(), a);
            }
            if let Some(t) = topic {
                o.insert("topic".into(), t);
            }
            if let Some(m) = message {
                o.insert("message".into(), m);
            }
            Value::Object(o).to_string()
        });
    prop_oneof![
        3 => shaped,
        2 => json_value().prop_map(|v| v.to_string()),
        2 => any::<String>(),
        1 => "[{}\\[\\]\":,a-z0-9 \\\\]{0,64}",
        1 => prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn ctx() -> RequestContext {
    RequestContext {
        connection_id: "FUZZfuzzFUZZfu0=".into(),
        domain_name: Some("abc123.execute-api.us-east-1.amazonaws.com".into()),
        stage: Some("prod".into()),
        source_ip: Some("203.0.113.7".into()),
        request_time_epoch_ms: 0,
        caller: None,
    }
}

#[test]
fn every_client_frame_gets_one_reply_and_malformed_ones_an_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pusher = Arc::new(InProcessPusher::new());
    let store = Arc::new(MemoryStore::new());
    let settings = Settings {
        allow_client_broadcast: true,
        api_id: Some("abc123".into()),
        region: Some("us-east-1".into()),
        ..Settings::default()
    };
    let h = Handler::new(settings.clone(), store.clone(), pusher.clone());
    let id = ctx().connection_id;
    // TestRunner::run takes an Fn: the state the cases share lives in cells.
    let rx = std::cell::RefCell::new(pusher.register(&id));
    rt.block_on(h.handle(Event::Connect {
        ctx: ctx(),
        query: BTreeMap::new(),
        headers: BTreeMap::new(),
    }))
    .unwrap();

    let n = cases(1_000_000);
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let malformed = std::cell::Cell::new(0u64);
    let kinds: std::cell::RefCell<BTreeMap<String, u64>> = Default::default();
    runner
        .run(&body(), |body| {
            let expected_error =
                parse_client_message(Some(&body), settings.max_client_message_bytes).is_err();
            let out = rt
                .block_on(h.handle(Event::Message {
                    ctx: ctx(),
                    body: Some(body.clone()),
                }))
                .map_err(|e| TestCaseError::fail(format!("{body:?}: {e}")))?;
            prop_assert_eq!(
                out,
                Outcome::Http {
                    status: 200,
                    body: "Message processed".into(),
                    headers: Default::default(),
                }
            );
            let mut replies = Vec::new();
            while let Ok(data) = rx.borrow_mut().try_recv() {
                replies.push(data);
            }
            // A client broadcast reaches the sender too, then the sender gets its report.
            let last = replies
                .last()
                .ok_or_else(|| TestCaseError::fail(format!("no reply to {body:?}")))?;
            let reply: Value = serde_json::from_slice(last)
                .map_err(|e| TestCaseError::fail(format!("reply is not JSON: {e}")))?;
            let kind = reply["type"].as_str().unwrap_or("?").to_owned();
            if expected_error {
                malformed.set(malformed.get() + 1);
                prop_assert_eq!(&kind, "error", "{:?} -> {}", body, reply);
                prop_assert_eq!(&reply["data"]["code"], "bad_request");
            } else {
                prop_assert_ne!(&kind, "error", "{:?} -> {}", body, reply);
            }
            prop_assert!(
                replies.len() <= 2,
                "{} replies to {:?}",
                replies.len(),
                body
            );
            *kinds.borrow_mut().entry(kind).or_default() += 1;
            // The connection stays open: its row is still there.
            prop_assert_eq!(store.len(), 1);
            Ok(())
        })
        .unwrap();
    let (malformed, kinds) = (malformed.get(), kinds.into_inner());
    eprintln!("{n} bodies; {malformed} malformed; replies by type: {kinds:?}");
    assert!(
        malformed > n as u64 / 10,
        "the corpus exercises malformed input"
    );
    for kind in [
        "pong",
        "subscribed",
        "unsubscribed",
        "echo",
        "broadcast_report",
        "error",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} reply in {kinds:?}");
    }
}

#[test]
fn route_selection_never_panics_and_picks_only_configured_routes() {
    let routes = vec!["chat".to_owned(), "$connect".to_owned(), "a.b".to_owned()];
    let mut runner = TestRunner::new(Config {
        cases: cases(1_000_000) / 4,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(body(), "[a-z.]{0,12}"), |(body, path)| {
            let route = select_route(&path, &routes, &body);
            prop_assert!(route == "$default" || routes.contains(&route), "{route}");
            Ok(())
        })
        .unwrap();
    assert_eq!(
        select_route("action", &routes, r#"{"action":"chat"}"#),
        "chat"
    );
    assert_eq!(
        select_route("m.kind", &routes, r#"{"m":{"kind":"chat"}}"#),
        "chat"
    );
    assert_eq!(
        select_route("action", &routes, r#"{"action":"other"}"#),
        "$default"
    );
    assert_eq!(select_route("action", &routes, "chat"), "$default");
}

#[test]
fn api_gateway_events_of_any_shape_convert_or_are_refused_without_panic() {
    let mut runner = TestRunner::new(Config {
        cases: cases(1_000_000) / 10,
        failure_persistence: None,
        ..Config::default()
    });
    let event = (
        prop::option::of(prop_oneof![
            Just(json!("CONNECT")),
            Just(json!("MESSAGE")),
            Just(json!("DISCONNECT")),
            json_value()
        ]),
        prop::option::of(json_value()),
        prop::option::of(json_value()),
        json_value(),
    )
        .prop_map(|(event_type, connection_id, body, noise)| {
            let mut ctx = json!({"routeKey": "$default", "stage": "prod"});
            if let Some(t) = event_type {
                ctx["eventType"] = t;
            }
            if let Some(c) = connection_id {
                ctx["connectionId"] = c;
            }
            let mut e = json!({"requestContext": ctx, "noise": noise});
            if let Some(b) = body {
                e["body"] = b;
            }
            e
        });
    runner
        .run(&prop_oneof![event, json_value()], |payload| {
            let _ = handler::apigw::to_event(payload);
            Ok(())
        })
        .unwrap();
}
