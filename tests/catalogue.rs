//! The catalogue (`[catalogue]`), as a team uses it: three events and one action declared in
//! files; a bad file refused at load time naming it; `wsctl broadcast` / `send` refusing a
//! message that breaks it (exit 2, the JSON pointer and the rule) with zero AWS calls; `wsctl
//! dev`'s function refusing the same through the Lambda invoke API (the runbook's Step 6), and
//! never delivering it; the catalogue bundled into the deployable zip and redeployed when it
//! changes; `wsctl types` compiled by `tsc` against an app that uses it right (and apps that
//! misspell an event, a field or an action, which must not compile); `wsctl asyncapi` parsed by
//! `@asyncapi/parser` with no error.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use futures::StreamExt;
use serde_json::{json, Value};
use support::dev::Dev;
use support::project::Project;
use support::workspace_root;
use tokio_tungstenite::tungstenite::Message;

const CONFIG: &str = r#"project = "claims"

[catalogue]
dir = "catalogue"

[api]
backend_secret_parameter = "/claims/ws-backend-secret"

[[route]]
key = "claim.comment"
http = "https://api.example.com/ws/claim-comment"
two_way = true
"#;

const FILES: &[(&str, &str)] = &[
    (
        "catalogue/events/claim_submitted.json",
        r#"{
  "description": "A claim was filed.",
  "type": "object",
  "required": ["claimId", "amount"],
  "properties": {
    "claimId": {"type": "string", "pattern": "^c[0-9]+$"},
    "amount": {"type": "number", "exclusiveMinimum": 0},
    "status": {"enum": ["new", "review"]}
  },
  "additionalProperties": false,
  "examples": [{"claimId": "c1", "amount": 120.5, "status": "new"}]
}"#,
    ),
    (
        "catalogue/events/claim_paid.json",
        r#"{
  "type": "object",
  "required": ["claimId", "paidAt"],
  "properties": {"claimId": {"type": "string"}, "paidAt": {"type": "string"}}
}"#,
    ),
    (
        "catalogue/events/claim_status_update.json",
        r#"{"type": "object", "required": ["claim"], "properties": {"claim": {"type": "integer"}}}"#,
    ),
    (
        "catalogue/actions/claim.comment.json",
        r#"{
  "type": "object",
  "required": ["claimId", "text"],
  "properties": {"claimId": {"type": "string"}, "text": {"type": "string", "maxLength": 500}}
}"#,
    ),
];

fn write_catalogue(dir: &Path) {
    std::fs::write(dir.join("wsctl.toml"), CONFIG).unwrap();
    for (path, text) in FILES {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

#[test]
fn messages_that_break_the_catalogue_are_refused_before_any_aws_call() {
    let p = Project::new("claims");
    write_catalogue(p.path());
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "broadcast",
                "--type",
                "claim_submitted",
                "--data",
                r#"{"claimId":"c1"}"#,
            ],
            "/data: \"amount\" is required",
        ),
        (
            &[
                "broadcast",
                "--type",
                "claim_submitted",
                "--data",
                r#"{"claimId":"x","amount":1}"#,
            ],
            "/data/claimId: must match the pattern",
        ),
        (
            &[
                "broadcast",
                "--type",
                "claim_submited",
                "--data",
                r#"{"claimId":"c1","amount":1}"#,
            ],
            "/type: ",
        ),
        (
            &[
                "broadcast",
                r#"{"type":"claim_status_update","data":{"claim":"7"}}"#,
            ],
            "/data/claim: must be integer",
        ),
        (
            &[
                "send",
                "AAAA1111=",
                "--type",
                "claim_paid",
                "--data",
                r#"{"claimId":5,"paidAt":"now"}"#,
            ],
            "/data/claimId: must be string",
        ),
    ];
    for (args, want) in cases {
        let out = p.wsctl(args);
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(want),
            "{args:?} names {want:?}: {out:?}"
        );
        assert!(out.stderr.contains("catalogue"), "{out:?}");
    }
    assert!(
        p.proxy.calls().is_empty(),
        "a refused message makes no AWS call: {:#?}",
        p.proxy.calls()
    );
    // A message that fits goes on to the function (which this project has not deployed).
    let out = p.wsctl(&[
        "broadcast",
        "--type",
        "claim_submitted",
        "--data",
        r#"{"claimId":"c1","amount":1}"#,
    ]);
    assert!(!out.stderr.contains("catalogue"), "{out:?}");
    assert!(!p.proxy.calls().is_empty(), "it reached AWS: {out:?}");
}

#[test]
fn a_catalogue_file_that_is_wrong_is_refused_at_load_naming_it() {
    let p = Project::new("claims");
    write_catalogue(p.path());
    for (file, text, want) in [
        (
            "catalogue/events/claim_paid.json",
            r#"{"type": "object", "required": "claimId"}"#,
            "catalogue/events/claim_paid.json: event \"claim_paid\": /required: ",
        ),
        (
            "catalogue/events/pong.json",
            "{}",
            "catalogue/events/pong.json: event \"pong\": is wsctl's own",
        ),
        (
            "catalogue/actions/claim.approve.json",
            "{}",
            "catalogue/actions/claim.approve.json: action \"claim.approve\" has no [[route]]",
        ),
    ] {
        let path = p.path().join(file);
        let before = std::fs::read_to_string(&path).ok();
        std::fs::write(&path, text).unwrap();
        let out = p.wsctl(&["status"]);
        assert_eq!(out.code, 2, "{file}: {out:?}");
        assert!(
            out.stderr.contains(want),
            "{file}: wanted {want:?}: {out:?}"
        );
        match before {
            Some(t) => std::fs::write(&path, t).unwrap(),
            None => std::fs::remove_file(&path).unwrap(),
        }
    }
    std::fs::remove_dir_all(p.path().join("catalogue")).unwrap();
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("catalogue.dir"), "{out:?}");
    assert!(p.proxy.calls().is_empty(), "{:#?}", p.proxy.calls());
}

async fn recv(ws: &mut support::dev::Ws) -> Value {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
        {
            Some(Ok(Message::Text(t))) => return serde_json::from_str(&t).unwrap(),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a text frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn dev_refuses_through_the_lambda_invoke_api_and_delivers_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_catalogue(dir.path());
    let dev = Dev::start_in(dir.path(), &[]);
    let (mut ws, _) = dev.connect().await;
    let invoke = |payload: Value| {
        dev.http(
            "POST",
            "/2015-03-31/functions/claims-websocket-handler/invocations",
            &payload.to_string(),
        )
    };
    // The runbook's Step 6 from boto3, with a typo in a field name.
    let (status, body) = invoke(json!({
        "action": "broadcast",
        "message": {"type": "claim_submitted", "data": {"claimID": "c1", "amount": 3}}
    }));
    assert_eq!(status, 200, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["errorType"], "InvalidMessage", "{error}");
    let message = error["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("/data: \"claimId\" is required"),
        "{message}"
    );
    // To one connection, a type that was never declared.
    let (_, body) = invoke(json!({
        "action": "send",
        "connection_id": "AAAA1111=",
        "message": {"type": "claim_rejected", "data": {}}
    }));
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["errorType"], "InvalidMessage", "{error}");
    assert!(
        error["errorMessage"].as_str().unwrap().contains("/type: "),
        "{error}"
    );
    // And from the command line against dev: refused before the call.
    let out = dev.wsctl(
        dir.path(),
        &[
            "broadcast",
            "--type",
            "claim_paid",
            "--data",
            r#"{"claimId":"c1"}"#,
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("/data: \"paidAt\" is required"),
        "{out:?}"
    );

    let (status, body) = invoke(json!({
        "action": "broadcast",
        "message": {"type": "claim_submitted", "data": {"claimId": "c1", "amount": 3}}
    }));
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["delivered"],
        1,
        "{body}"
    );
    assert_eq!(
        recv(&mut ws).await,
        json!({"type": "claim_submitted", "data": {"claimId": "c1", "amount": 3}}),
        "the first message the client hears is the valid one"
    );
}

fn zip_entry(zip: &Path, name: &str) -> Option<String> {
    let bytes = std::fs::read(zip).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut entry = archive.by_name(name).ok()?;
    let mut text = String::new();
    entry.read_to_string(&mut text).unwrap();
    Some(text)
}

#[tokio::test]
async fn the_catalogue_travels_in_the_zip_and_a_change_redeploys_the_code() {
    let p = Project::new("claims");
    assert_eq!(zip_entry(&p.zip, "catalogue.json"), None);
    write_catalogue(p.path());
    let out = p.wsctl(&["build", "--binary", "/bin/true", "--out", "handler.zip"]);
    assert_eq!(out.code, 0, "{out:?}");
    let bundled: Value =
        serde_json::from_str(&zip_entry(&p.zip, "catalogue.json").unwrap()).unwrap();
    let events: Vec<&String> = bundled["events"].as_object().unwrap().keys().collect();
    assert_eq!(
        events,
        ["claim_paid", "claim_status_update", "claim_submitted"]
    );
    assert_eq!(bundled["open"], false);

    aws_sdk_ssm::Client::new(&p.sdk().await)
        .put_parameter()
        .name("/claims/ws-backend-secret")
        .value("backend-secret-for-the-catalogue-test")
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    p.up(&[]);
    p.proxy.clear();
    let second = p.up(&["-o", "json"]);
    let writes = |p: &Project| -> Vec<String> {
        p.proxy
            .writes()
            .iter()
            .filter(|c| !c.on_lock_table())
            .map(|c| c.operation.clone())
            .collect()
    };
    assert_eq!(
        writes(&p),
        Vec::<String>::new(),
        "the same catalogue: nothing to do: {}",
        second.stdout
    );

    let tightened = FILES[2]
        .1
        .replace("\"integer\"", "\"integer\", \"minimum\": 1");
    std::fs::write(p.path().join(FILES[2].0), tightened).unwrap();
    p.proxy.clear();
    p.up(&[]);
    // New code, and the function's tag naming its source.
    assert_eq!(
        writes(&p),
        [
            "PUT /2015-03-31/functions/claims-websocket-handler/code",
            "POST /2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Aclaims-websocket-handler"
        ],
        "a changed catalogue is new code"
    );

    // The deployed stage's document names its wss:// URL.
    let out = p.wsctl(&["asyncapi"]);
    assert_eq!(out.code, 0, "{out:?}");
    let doc: Value = serde_json::from_str(&out.stdout).unwrap();
    let host = doc["servers"]["stage"]["host"].as_str().unwrap();
    assert!(host.contains(".execute-api.us-east-1."), "{host}");
    assert_eq!(doc["servers"]["stage"]["protocol"], "wss");
}

fn react_dir() -> PathBuf {
    let dir = workspace_root().join("clients/react");
    assert!(
        dir.join("node_modules/.bin/tsc").exists(),
        "clients/react's packages are not installed (scripts/test.sh runs npm ci there)"
    );
    dir
}

/// `tsc --noEmit` on `app` (beside the generated `events.ts`, in a folder of clients/react so
/// that the hook and React's types resolve); its output when it fails.
fn typecheck(dir: &Path, name: &str, app: &str) -> Result<(), String> {
    let file = dir.join(format!("{name}.ts"));
    std::fs::write(&file, app).unwrap();
    let out = Command::new(react_dir().join("node_modules/.bin/tsc"))
        .args([
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--target",
            "es2020",
            "--lib",
            "es2020,dom",
            "--module",
            "esnext",
            "--moduleResolution",
            "bundler",
        ])
        .arg(&file)
        .output()
        .unwrap();
    match out.status.success() {
        true => Ok(()),
        false => Err(String::from_utf8_lossy(&out.stdout).into_owned()),
    }
}

const GOOD_APP: &str = r#"
import { useWebSocket } from '../src/index.js';
import type { Actions, Events } from './events.js';

export function useClaims() {
  const ws = useWebSocket<Events, Actions>('ws://localhost:3001/ws');
  ws.on('claim_submitted', (d) => {
    const id: string = d.claimId;
    const amount: number = d.amount;
    const status: 'new' | 'review' | undefined = d.status;
    return [id, amount, status];
  });
  ws.on('claim_paid', (d) => d.paidAt.toUpperCase());
  ws.on('claim_status_update', (d) => d.claim + 1);
  ws.on('pong', (d) => d.timestamp);
  ws.on('forbidden', (d) => d.topic);
  ws.send('claim.comment', { claimId: 'c1', text: 'looks right' });
  ws.send('subscribe', { topic: 'claims' });
  ws.send('ping');
  void ws.request<{ ok: boolean }>('claim.comment', { claimId: 'c1', text: 'and paid?' });
  return ws;
}
"#;

#[test]
fn the_generated_types_compile_against_an_app_and_catch_its_mistakes() {
    let project = tempfile::tempdir().unwrap();
    write_catalogue(project.path());
    let run = || {
        let out = Command::new(support::wsctl_bin())
            .args(["types"])
            .current_dir(project.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let module = run();
    assert_eq!(run(), module, "the same catalogue gives the same bytes");
    assert!(
        module.starts_with("// Generated by `wsctl types` from catalogue/."),
        "{module}"
    );

    let dir = tempfile::Builder::new()
        .prefix(".typecheck-")
        .tempdir_in(react_dir())
        .unwrap();
    std::fs::write(dir.path().join("events.ts"), &module).unwrap();
    typecheck(dir.path(), "good", GOOD_APP)
        .expect("the app that uses the catalogue right compiles");

    let mistakes = [
        (
            "event",
            "ws.on('claim_submitted', (d) =>",
            "ws.on('claim_submited', (d) =>",
            "claim_submited",
        ),
        (
            "field",
            "const id: string = d.claimId;",
            "const id: string = d.claimID;",
            "claimID",
        ),
        (
            "action",
            "ws.send('claim.comment', { claimId: 'c1', text: 'looks right' });",
            "ws.send('claim.coment', { claimId: 'c1', text: 'looks right' });",
            "claim.coment",
        ),
        (
            "missing",
            "ws.send('claim.comment', { claimId: 'c1', text: 'looks right' });",
            "ws.send('claim.comment', { claimId: 'c1' });",
            "text",
        ),
        (
            "request",
            "{ claimId: 'c1', text: 'and paid?' }",
            "{ claimId: 1, text: 'and paid?' }",
            "number",
        ),
    ];
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = mistakes
            .iter()
            .map(|(name, from, to, _)| {
                assert!(GOOD_APP.contains(from), "{from}");
                let app = GOOD_APP.replace(from, to);
                let dir = dir.path();
                s.spawn(move || typecheck(dir, name, &app))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((name, _, _, names), result) in mistakes.iter().zip(results) {
        let errors = result.expect_err(&format!("the {name} mistake must not compile"));
        assert!(errors.contains("error TS"), "{name}: {errors}");
        assert!(
            errors.contains(names),
            "{name}: the error names {names}: {errors}"
        );
    }
}

#[test]
fn the_asyncapi_document_parses_with_the_asyncapi_parser() {
    let project = tempfile::tempdir().unwrap();
    write_catalogue(project.path());
    let out = Command::new(support::wsctl_bin())
        .args([
            "asyncapi",
            "--url",
            "ws://localhost:3001/ws",
            "--out",
            "asyncapi.json",
        ])
        .current_dir(project.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let file = project.path().join("asyncapi.json");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let messages = doc["components"]["messages"].as_object().unwrap();
    for name in [
        "claim_submitted",
        "claim_paid",
        "claim_status_update",
        "claim.comment",
        "pong",
        "gap",
    ] {
        assert!(
            messages
                .keys()
                .any(|k| k.contains(&name.replace('.', "_")) || k.contains(name)),
            "{name} in {:?}",
            messages.keys().collect::<Vec<_>>()
        );
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("\"amount\": 120.5"),
        "the schema's example is a message example"
    );

    let checker = workspace_root().join("tests/asyncapi");
    assert!(
        checker.join("node_modules/@asyncapi/parser").exists(),
        "tests/asyncapi's packages are not installed (scripts/test.sh runs npm ci there)"
    );
    let parse = |file: &Path| {
        Command::new("node")
            .arg(checker.join("check.mjs"))
            .arg(file)
            .output()
            .unwrap()
    };
    let out = parse(&file);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The checker fails on a document with an error (a channel's message that is not there).
    let mut broken = doc.clone();
    broken["channels"]["connection"]["messages"]["nothing"] =
        json!({"$ref": "#/components/messages/nothing"});
    let broken_file = project.path().join("broken.json");
    std::fs::write(&broken_file, broken.to_string()).unwrap();
    assert!(
        !parse(&broken_file).status.success(),
        "a broken document is an error"
    );
}
