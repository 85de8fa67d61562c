//! `[history]` against moto: `up` creates the streams' table (stream S / seq N, TTL on `ttl`),
//! gives the function its environment and its role the two actions it needs on that table
//! only; `status` checks it; removing the section deletes it; `down` leaves nothing.

use serde_json::Value;
use support::project::{decode_policy, statements, string_list, Project};

#[tokio::test(flavor = "multi_thread")]
async fn the_history_table_is_created_checked_and_removed_with_the_section() {
    let p = Project::new("claims");
    p.write_config(
        "project = \"claims\"\n\n[history]\nretention = \"15m\"\nmax_per_stream = 200\n",
    );
    p.up(&[]);
    let sdk = p.sdk().await;
    let db = aws_sdk_dynamodb::Client::new(&sdk);
    let table = db
        .describe_table()
        .table_name("claims_ws_history")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    let keys: Vec<(String, String)> = table
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name.clone(), k.key_type.as_str().to_owned()))
        .collect();
    assert_eq!(
        keys,
        [
            ("stream".to_owned(), "HASH".to_owned()),
            ("seq".to_owned(), "RANGE".to_owned())
        ]
    );
    let seq_type = table
        .attribute_definitions()
        .iter()
        .find(|a| a.attribute_name == "seq")
        .unwrap()
        .attribute_type
        .as_str()
        .to_owned();
    assert_eq!(seq_type, "N");
    let ttl = db
        .describe_time_to_live()
        .table_name("claims_ws_history")
        .send()
        .await
        .unwrap()
        .time_to_live_description
        .unwrap();
    assert_eq!(ttl.attribute_name.as_deref(), Some("ttl"));

    let vars = aws_sdk_lambda::Client::new(&sdk)
        .get_function_configuration()
        .function_name("claims-websocket-handler")
        .send()
        .await
        .unwrap()
        .environment
        .unwrap()
        .variables
        .unwrap();
    assert_eq!(vars["HISTORY_TABLE"], "claims_ws_history");
    assert_eq!(vars["HISTORY_RETENTION_SECONDS"], "900");
    assert_eq!(vars["HISTORY_MAX_PER_STREAM"], "200");

    let iam = aws_sdk_iam::Client::new(&sdk);
    let doc = iam
        .get_role_policy()
        .role_name("claims-websocket-lambda-role")
        .policy_name("claims-websocket-least-privilege")
        .send()
        .await
        .unwrap()
        .policy_document;
    let history: Vec<Value> = statements(&decode_policy(&doc))
        .into_iter()
        .filter(|s| s["Sid"] == "StreamHistory")
        .collect();
    assert_eq!(history.len(), 1);
    assert_eq!(
        string_list(&history[0]["Action"]),
        ["dynamodb:PutItem", "dynamodb:Query"]
    );
    assert_eq!(
        string_list(&history[0]["Resource"]),
        ["arn:aws:dynamodb:us-east-1:123456789012:table/claims_ws_history"]
    );

    let status = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let check = status.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "history_kept")
        .cloned()
        .unwrap();
    assert_eq!(check["ok"], true, "{check}");
    assert!(check["detail"].as_str().unwrap().contains("15m"), "{check}");
    p.proxy.clear();
    assert!(p.up(&[]).stdout.contains("No changes"));
    assert!(p.proxy.writes().is_empty(), "{:#?}", p.proxy.writes());

    // The section goes: so do the table, the variables and the statement.
    p.write_config("project = \"claims\"\n");
    let report = p.up(&["-o", "json"]).json();
    let history_item = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "history")
        .cloned()
        .unwrap();
    assert_eq!(history_item["action"], "delete", "{history_item}");
    assert!(db
        .describe_table()
        .table_name("claims_ws_history")
        .send()
        .await
        .is_err());

    // down leaves nothing, the history table included.
    p.write_config("project = \"claims\"\n\n[history]\n");
    p.up(&[]);
    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    let tables = db.list_tables().send().await.unwrap();
    assert!(
        !tables
            .table_names()
            .iter()
            .any(|t| t.starts_with("claims_ws")),
        "{:?}",
        tables.table_names()
    );
}
