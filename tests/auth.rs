//! Tokens on `$connect`, through `wsctl dev` with real clients: HS256 with a secret, and
//! ES256 against a local JWKS server whose key rotates.

use support::dev as devkit;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::Engine as _;
use devkit::Dev;
use futures::{SinkExt, StreamExt};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn hs256(secret: &[u8], claims: Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

/// Connects with `?token=...`; Ok(()) when the handshake succeeds and a ping is answered,
/// Err(status) when it is refused.
async fn try_connect(dev: &Dev, token: Option<&str>) -> Result<(), u16> {
    let url = match token {
        Some(t) => format!("{}?token={t}", dev.url),
        None => dev.url.clone(),
    };
    match tokio_tungstenite::connect_async(&url).await {
        Ok((mut ws, _)) => {
            ws.send(Message::text(r#"{"action":"ping"}"#))
                .await
                .unwrap();
            let reply = ws.next().await.unwrap().unwrap();
            assert!(reply.to_text().unwrap().contains("pong"));
            Ok(())
        }
        Err(WsError::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test]
async fn hs256_tokens_are_checked_for_signature_time_issuer_and_audience() {
    // The secret reaches wsctl dev through an environment variable, never the command line.
    std::env::set_var("WSCTL_TEST_JWT_SECRET", "s3cr3t-for-tests");
    let dev = Dev::start(&[
        "--jwt-secret-env",
        "WSCTL_TEST_JWT_SECRET",
        "--jwt-issuer",
        "https://issuer.example",
        "--jwt-audience",
        "app",
    ]);
    let secret = b"s3cr3t-for-tests";
    let base =
        json!({"sub": "user-1", "iss": "https://issuer.example", "aud": "app", "exp": now() + 300});
    let with = |patch: Value| {
        let mut c = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    assert_eq!(
        try_connect(&dev, Some(&hs256(secret, base.clone()))).await,
        Ok(()),
        "a good token"
    );
    assert_eq!(try_connect(&dev, None).await, Err(401), "missing");
    assert_eq!(
        try_connect(
            &dev,
            Some(&hs256(secret, with(json!({"exp": now() - 120}))))
        )
        .await,
        Err(401),
        "expired"
    );
    assert_eq!(
        try_connect(
            &dev,
            Some(&hs256(secret, with(json!({"nbf": now() + 600}))))
        )
        .await,
        Err(401),
        "not yet valid"
    );
    assert_eq!(
        try_connect(&dev, Some(&hs256(b"another secret", base.clone()))).await,
        Err(401),
        "wrong signature"
    );
    assert_eq!(
        try_connect(&dev, Some(&hs256(secret, with(json!({"aud": "other"}))))).await,
        Err(401),
        "wrong audience"
    );
    assert_eq!(
        try_connect(
            &dev,
            Some(&hs256(secret, with(json!({"iss": "https://evil"}))))
        )
        .await,
        Err(401),
        "wrong issuer"
    );
    assert_eq!(
        try_connect(&dev, Some("not.a.jwt")).await,
        Err(401),
        "garbage"
    );
    dev.wait_log(" 401 ").await;
    let log = dev.stderr();
    assert!(
        !log.contains("s3cr3t"),
        "the secret is never printed:\n{log}"
    );
    assert!(
        !log.contains(&hs256(secret, base.clone())[..40]),
        "tokens are never printed"
    );
}

#[tokio::test]
async fn the_project_auth_section_drives_dev_with_a_local_secret() {
    let config = "project = \"demo\"\n[auth]\nsecret_parameter = \"/demo/ws-jwt-secret\"\nissuer = \"https://issuer.example\"\naudience = [\"app\"]\ntoken_query_param = \"access_token\"\n";
    // dev reads nothing from AWS: it says how to run instead of silently dropping auth.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wsctl.toml"), config).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsctl"))
        .args(["dev", "--port", "0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("/demo/ws-jwt-secret")
            && stderr.contains("--jwt-secret-env")
            && stderr.contains("--no-auth"),
        "{stderr}"
    );

    std::env::set_var("WSCTL_TEST_CONFIG_SECRET", "config-driven-secret");
    let dev = Dev::start_with_config(
        Some(config),
        &["--jwt-secret-env", "WSCTL_TEST_CONFIG_SECRET"],
    );
    let secret = b"config-driven-secret";
    let claims =
        json!({"sub": "u", "iss": "https://issuer.example", "aud": "app", "exp": now() + 300});
    let token = hs256(secret, claims.clone());
    let status = |url: String| async move {
        match tokio_tungstenite::connect_async(&url).await {
            Ok(_) => 101,
            Err(WsError::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(
        status(format!("{}?access_token={token}", dev.url)).await,
        101
    );
    assert_eq!(
        status(format!("{}?token={token}", dev.url)).await,
        401,
        "the configured parameter only"
    );
    let mut wrong_aud = claims.clone();
    wrong_aud["aud"] = json!("other");
    assert_eq!(
        status(format!(
            "{}?access_token={}",
            dev.url,
            hs256(secret, wrong_aud)
        ))
        .await,
        401,
        "the configured audience"
    );

    let open = Dev::start_with_config(Some(config), &["--no-auth"]);
    assert_eq!(status(open.url.clone()).await, 101);
}

struct EcKey {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

fn ec_key(kid: &str) -> EcKey {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
    let public = pair.public_key().as_ref().to_vec(); // 0x04 || X || Y
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    EcKey {
        kid: kid.to_owned(),
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({"kty": "EC", "crv": "P-256", "x": b64(&public[1..33]), "y": b64(&public[33..65]), "kid": kid, "alg": "ES256", "use": "sig"}),
    }
}

fn es256(key: &EcKey, claims: Value) -> String {
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(key.kid.clone());
    encode(&header, &claims, &EncodingKey::from_ec_der(&key.pkcs8)).unwrap()
}

#[tokio::test]
async fn es256_tokens_verify_against_a_jwks_that_rotates() {
    let k1 = ec_key("k1");
    let k2 = ec_key("k2");
    let served = Arc::new(Mutex::new(json!({"keys": [k1.jwk.clone()]})));
    let fetches = Arc::new(Mutex::new(0u32));
    let app = {
        let served = served.clone();
        let fetches = fetches.clone();
        axum::Router::new().route(
            "/.well-known/jwks.json",
            axum::routing::get(move || {
                let served = served.clone();
                let fetches = fetches.clone();
                async move {
                    *fetches.lock().unwrap() += 1;
                    axum::Json(served.lock().unwrap().clone())
                }
            }),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jwks = format!(
        "http://{}/.well-known/jwks.json",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dev = Dev::start(&[
        "--jwks-url",
        &jwks,
        "--jwt-audience",
        "app",
        "--jwks-min-refetch",
        "200ms",
    ]);
    let claims = json!({"sub": "user-2", "aud": "app", "exp": now() + 300});
    assert_eq!(
        try_connect(&dev, Some(&es256(&k1, claims.clone()))).await,
        Ok(())
    );
    assert_eq!(
        try_connect(&dev, Some(&es256(&k1, claims.clone()))).await,
        Ok(())
    );
    assert_eq!(*fetches.lock().unwrap(), 1, "keys are cached");
    assert_eq!(
        try_connect(
            &dev,
            Some(&es256(
                &k1,
                json!({"sub":"u","aud":"other","exp": now() + 300})
            ))
        )
        .await,
        Err(401)
    );

    // The issuer rotates to k2 and drops k1.
    *served.lock().unwrap() = json!({"keys": [k2.jwk.clone()]});
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        try_connect(&dev, Some(&es256(&k2, claims.clone()))).await,
        Ok(()),
        "a token with the new key"
    );
    assert_eq!(
        *fetches.lock().unwrap(),
        2,
        "the unknown kid triggered one refetch"
    );
    // An ES256 token signed by a key the JWKS does not hold is refused.
    let stranger = ec_key("k2");
    assert_eq!(
        try_connect(&dev, Some(&es256(&stranger, claims.clone()))).await,
        Err(401),
        "wrong signature"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn wsctl_send_user_reaches_every_connection_of_a_subject() {
    std::env::set_var("WSCTL_TEST_JWT_SECRET_2", "another-test-secret");
    let dev = Dev::start(&["--jwt-secret-env", "WSCTL_TEST_JWT_SECRET_2"]);
    let token = |sub: &str| {
        hs256(
            b"another-test-secret",
            json!({"sub": sub, "exp": now() + 300}),
        )
    };
    let mut alice1 =
        tokio_tungstenite::connect_async(format!("{}?token={}", dev.url, token("alice")))
            .await
            .unwrap()
            .0;
    let mut alice2 =
        tokio_tungstenite::connect_async(format!("{}?token={}", dev.url, token("alice")))
            .await
            .unwrap()
            .0;
    let mut bob = tokio_tungstenite::connect_async(format!("{}?token={}", dev.url, token("bob")))
        .await
        .unwrap()
        .0;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wsctl.toml"), "project = \"demo\"\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsctl"))
        .args([
            "send",
            "--user",
            "alice",
            "--type",
            "for_alice",
            "-o",
            "json",
        ])
        .current_dir(dir.path())
        .env("AWS_ENDPOINT_URL_LAMBDA", &dev.base)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["delivered"], 2, "{report}");
    for ws in [&mut alice1, &mut alice2] {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(msg.to_text().unwrap().contains("for_alice"));
    }
    let none = tokio::time::timeout(std::time::Duration::from_millis(300), bob.next()).await;
    assert!(none.is_err(), "bob got nothing");
}

/// Opens a WebSocket offering `protocols` (Sec-WebSocket-Protocol) and `query`; Ok(the
/// subprotocol the server chose) or Err(why): an HTTP status, or the client refusing a 101
/// that does not choose one of the offered subprotocols (as browsers do).
async fn open_with(
    dev: &Dev,
    protocols: Option<&str>,
    query: &str,
) -> Result<Option<String>, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!("{}{query}", dev.url).into_client_request().unwrap();
    if let Some(p) = protocols {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((mut ws, resp)) => {
            ws.send(Message::text(r#"{"action":"ping"}"#))
                .await
                .unwrap();
            let reply = ws.next().await.unwrap().unwrap();
            assert!(reply.to_text().unwrap().contains("pong"));
            Ok(resp
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned()))
        }
        Err(WsError::Http(resp)) => Err(format!("http {}", resp.status().as_u16())),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test]
async fn tokens_travel_in_the_subprotocol_header_when_configured() {
    std::env::set_var("WSCTL_TEST_PROTOCOL_SECRET", "protocol-secret");
    let token = hs256(b"protocol-secret", json!({"sub": "u", "exp": now() + 300}));
    let offer = format!("wsctl, {token}");
    let config = |source: &str| {
        format!("project = \"demo\"\n[auth]\njwks_url = \"https://issuer.example/jwks\"\ntoken_source = \"{source}\"\n")
    };
    let secret = ["--jwt-secret-env", "WSCTL_TEST_PROTOCOL_SECRET"];

    // protocol: the header's token opens the connection and the 101 chooses "wsctl"; the
    // query string's is not read.
    let dev = Dev::start_with_config(Some(&config("protocol")), &secret);
    assert_eq!(
        open_with(&dev, Some(&offer), "").await,
        Ok(Some("wsctl".into()))
    );
    assert_eq!(
        open_with(&dev, None, &format!("?token={token}")).await,
        Err("http 401".into())
    );
    let bad = hs256(b"another-secret", json!({"sub": "u", "exp": now() + 300}));
    assert_eq!(
        open_with(&dev, Some(&format!("wsctl, {bad}")), "").await,
        Err("http 401".into())
    );
    assert!(dev.stderr().contains("$connect"));
    assert!(!dev.stderr().contains(&token), "the token is never logged");

    // either: both ways; the 101 names the subprotocol only when it was offered.
    let dev = Dev::start_with_config(Some(&config("either")), &secret);
    assert_eq!(
        open_with(&dev, Some(&offer), "").await,
        Ok(Some("wsctl".into()))
    );
    assert_eq!(
        open_with(&dev, None, &format!("?token={token}")).await,
        Ok(None)
    );

    // query (the default): a subprotocol offer does not carry the token, but is still chosen
    // when the token comes in the query string.
    let dev = Dev::start_with_config(Some(&config("query")), &secret);
    assert_eq!(
        open_with(&dev, Some(&offer), "").await,
        Err("http 401".into())
    );
    assert_eq!(
        open_with(&dev, Some("wsctl"), &format!("?token={token}")).await,
        Ok(Some("wsctl".into()))
    );

    // As API Gateway: a 101 carries a subprotocol only when $connect's answer chose one, so
    // a client offering one the handler does not know fails its handshake, as a browser does.
    let dev = Dev::start(&["--no-auth"]);
    let refused = open_with(&dev, Some("graphql-ws"), "").await;
    assert!(
        refused.as_ref().is_err_and(|e| e.contains("ubprotocol")),
        "{refused:?}"
    );
    assert_eq!(
        open_with(&dev, Some("wsctl"), "").await,
        Ok(Some("wsctl".into()))
    );
}
