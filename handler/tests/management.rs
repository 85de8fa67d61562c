//! The management API client and the delivery engine against a real HTTP endpoint on a local
//! socket that answers as API Gateway would (signed requests checked for their shape): a post
//! that hangs is abandoned at its timeout and retried, throttled and 5xx posts are retried,
//! 403 and 413 are not, and the deadline names what was not delivered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use handler::push::ManagementApiPusher;
use handler::{Connection, ConnectionStore, Handler, MemoryStore, Settings};
use serde_json::json;
use support::connections::{Connections, Reply as Answer};

/// Serves `script` on a local port; returns the endpoint and its base URL.
async fn serve(script: HashMap<String, Vec<Answer>>) -> (Connections, String) {
    let ep = Connections::scripted(script).await;
    let url = ep.endpoint();
    (ep, url)
}

fn sdk() -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("AKIDTEST", "secret", None, None, "test"),
            ),
        )
        .build()
}

async fn handler_for(
    endpoint: &str,
    ids: &[&str],
    post_timeout: Duration,
) -> Handler<MemoryStore, ManagementApiPusher> {
    let settings = Settings {
        endpoint_override: Some(endpoint.to_owned()),
        post_timeout,
        region: Some("eu-west-1".into()),
        ..Settings::default()
    };
    let store = MemoryStore::new();
    for id in ids {
        store
            .put(Connection {
                connection_id: (*id).to_owned(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let client = Arc::new(handler::signed::SignedClient::new(&sdk()).unwrap());
    let pusher = ManagementApiPusher::new(client, Some("eu-west-1"));
    Handler::new(settings, Arc::new(store), Arc::new(pusher))
}

#[tokio::test]
async fn a_post_that_hangs_is_abandoned_at_its_timeout_and_retried() {
    let script = HashMap::from([("slow=".to_owned(), vec![Answer::Hang, Answer::Ok])]);
    let (ep, url) = serve(script).await;
    let h = handler_for(&url, &["a", "slow=", "b"], Duration::from_millis(300)).await;
    let r = h
        .invoke(&json!({"action":"broadcast","message":{"type":"t"}}))
        .await
        .unwrap();
    assert_eq!((r.delivered, r.failed, r.retried), (3, 0, 1), "{r:?}");
    assert_eq!(ep.attempts("slow="), 2);
    // The id is one path segment, percent-encoded as the SDK encodes it.
    assert!(
        ep.paths()
            .contains(&"/prod/@connections/slow%3D".to_owned()),
        "{:?}",
        ep.paths()
    );
    // Every post is signed with SigV4 for execute-api in the function's region.
    let auths = ep.authorizations();
    assert_eq!(auths.len(), 4);
    for a in auths.iter() {
        assert!(
            a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/")
                && a.contains("/eu-west-1/execute-api/aws4_request")
                && a.contains("Signature="),
            "{a}"
        );
    }
}

#[tokio::test]
async fn throttled_and_failing_posts_are_retried_and_refusals_are_not() {
    let script = HashMap::from([
        (
            "t".to_owned(),
            vec![Answer::Throttle, Answer::Throttle, Answer::Ok],
        ),
        ("e".to_owned(), vec![Answer::ServerError, Answer::Ok]),
        ("f".to_owned(), vec![Answer::Forbidden]),
        ("big".to_owned(), vec![Answer::TooLarge]),
        ("g".to_owned(), vec![Answer::Gone]),
    ]);
    let (ep, url) = serve(script).await;
    let h = handler_for(
        &url,
        &["ok", "t", "e", "f", "big", "g"],
        Duration::from_secs(2),
    )
    .await;
    let r = h
        .invoke(&json!({"action":"broadcast","message":{"type":"t"}}))
        .await
        .unwrap();
    assert_eq!((r.delivered, r.gone, r.failed), (3, 1, 2), "{r:?}");
    assert_eq!((r.throttled, r.retried), (2, 3), "{r:?}");
    let mut missed = r.undelivered.clone();
    missed.sort();
    assert_eq!(missed, ["big", "f"]);
    let tried = (ep.attempts("f"), ep.attempts("big"));
    assert_eq!(tried, (1, 1), "403 and 413 are not retried");
    assert!(
        h.store().get("g").await.unwrap().is_none(),
        "410 deletes the row"
    );
}

#[tokio::test]
async fn posts_still_failing_at_the_deadline_are_reported_by_id() {
    let script = HashMap::from([
        ("x1".to_owned(), vec![Answer::Throttle]),
        ("x2".to_owned(), vec![Answer::ServerError]),
    ]);
    let (_ep, url) = serve(script).await;
    let h = handler_for(&url, &["x1", "x2", "fine"], Duration::from_millis(500)).await;
    let started = Instant::now();
    let r = h
        .invoke_until(
            &json!({"action":"broadcast","message":{"type":"t"}}),
            Instant::now() + Duration::from_secs(2),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "answered before the deadline"
    );
    assert_eq!((r.delivered, r.failed), (1, 2), "{r:?}");
    let mut missed = r.undelivered.clone();
    missed.sort();
    assert_eq!(missed, ["x1", "x2"]);
    assert!(r.retried >= 2, "retried until the deadline: {r:?}");
    assert!(r.complete, "the table was read to its end: {r:?}");
}
