//! `wsctl status` and `wsctl down` end to end: the real binary against moto through the
//! recording proxy.

use support::project;

use project::Project;
use serde_json::Value;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

/// Everything of every kind wsctl manages that exists in moto, by list calls.
async fn everything(p: &Project) -> Vec<String> {
    let sdk = p.sdk().await;
    let mut found = Vec::new();
    let apis = aws_sdk_apigatewayv2::Client::new(&sdk)
        .get_apis()
        .send()
        .await
        .unwrap();
    found.extend(
        apis.items()
            .iter()
            .map(|a| format!("api {}", a.name.clone().unwrap())),
    );
    let functions = aws_sdk_lambda::Client::new(&sdk)
        .list_functions()
        .send()
        .await
        .unwrap();
    found.extend(
        functions
            .functions()
            .iter()
            .map(|f| format!("function {}", f.function_name.clone().unwrap())),
    );
    let roles = aws_sdk_iam::Client::new(&sdk)
        .list_roles()
        .send()
        .await
        .unwrap();
    found.extend(
        roles
            .roles()
            .iter()
            .map(|r| format!("role {}", r.role_name)),
    );
    let tables = aws_sdk_dynamodb::Client::new(&sdk)
        .list_tables()
        .send()
        .await
        .unwrap();
    found.extend(tables.table_names().iter().map(|t| format!("table {t}")));
    let groups = aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .describe_log_groups()
        .send()
        .await
        .unwrap();
    found.extend(
        groups
            .log_groups()
            .iter()
            .map(|g| format!("log_group {}", g.log_group_name.clone().unwrap())),
    );
    found
}

fn check<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

#[test]
fn status_finds_a_removed_permission_up_repairs_it_down_removes_everything() {
    let p = Project::new("lifecycle");
    p.up(&[]);

    p.proxy.clear();
    let out = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["healthy"], true);
    assert_eq!(report["connections"], 0);
    assert!(report["websocket_url"]
        .as_str()
        .unwrap()
        .starts_with("wss://"));
    assert!(report["checks"].as_array().unwrap().len() >= 8);
    assert!(
        p.proxy.writes().is_empty(),
        "status wrote: {:#?}",
        p.proxy.writes()
    );

    // Behind wsctl's back: the permission goes (browsers then see "Internal server error").
    rt().block_on(async {
        aws_sdk_lambda::Client::new(&p.sdk().await)
            .remove_permission()
            .function_name("lifecycle-websocket-handler")
            .statement_id("wsctl-apigateway-invoke")
            .send()
            .await
            .unwrap();
    });
    p.proxy.clear();
    let out = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(out.code, 3, "{out:?}");
    let report = out.json();
    assert_eq!(report["healthy"], false);
    let permission = check(&report, "permission_covers_api");
    assert_eq!(permission["ok"], false);
    assert!(permission["detail"]
        .as_str()
        .unwrap()
        .contains("Internal server error"));
    let resource = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "permission")
        .unwrap();
    assert_eq!(resource["state"], "missing");
    assert_eq!(
        check(&report, "routes_target_integration")["ok"],
        true,
        "only the permission is wrong"
    );
    assert!(
        p.proxy.writes().is_empty(),
        "status wrote: {:#?}",
        p.proxy.writes()
    );
    let text = p.wsctl(&["status"]);
    assert_eq!(text.code, 3);
    assert!(
        text.stdout.contains("FAIL permission_covers_api"),
        "{text:?}"
    );

    // up repairs exactly that.
    let out = p.up(&[]);
    assert!(
        out.stdout.contains("permission") && out.stdout.contains("created"),
        "{out:?}"
    );
    assert_eq!(p.wsctl(&["status"]).code, 0);

    // down --dry-run lists and writes nothing.
    p.proxy.clear();
    let out = p.wsctl(&["down", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    for what in [
        "api",
        "function",
        "log_group",
        "role",
        "table",
        "subscriptions",
        "broadcasts",
    ] {
        assert!(out.stdout.contains(what), "{what} listed: {out:?}");
    }
    assert!(
        p.proxy.writes().is_empty(),
        "down --dry-run wrote: {:#?}",
        p.proxy.writes()
    );

    // Without a terminal, down refuses unless --yes.
    let out = p.wsctl(&["down"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("--yes"), "{out:?}");

    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("nothing wsctl manages remains"),
        "{out:?}"
    );
    let left = rt().block_on(everything(&p));
    assert!(left.is_empty(), "left behind: {left:?}");

    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Nothing to delete"), "{out:?}");

    // status of nothing: every resource missing, exit 3.
    let out = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.json()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["state"] == "missing"));
}

#[test]
fn down_removes_partial_states() {
    let p = Project::new("partial");
    // Only a role with its policy, as a run killed after CreateRole leaves it, and an API
    // without a function.
    rt().block_on(async {
        let sdk = p.sdk().await;
        let iam = aws_sdk_iam::Client::new(&sdk);
        iam.create_role()
            .role_name("partial-websocket-lambda-role")
            .assume_role_policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#)
            .tags(aws_sdk_iam::types::Tag::builder().key("ManagedBy").value("wsctl").build().unwrap())
            .send()
            .await
            .unwrap();
        iam.put_role_policy()
            .role_name("partial-websocket-lambda-role")
            .policy_name("partial-websocket-least-privilege")
            .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:us-east-1:123456789012:table/partial_ws_connections"}]}"#)
            .send()
            .await
            .unwrap();
        // An API without a function.
        aws_sdk_apigatewayv2::Client::new(&sdk)
            .create_api()
            .name("partial-websocket")
            .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Websocket)
            .route_selection_expression("$request.body.action")
            .tags("ManagedBy", "wsctl")
            .send()
            .await
            .unwrap();
    });
    let out = p.wsctl(&["down", "--yes", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let deleted: Vec<String> = out.json()["deleted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["resource"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(deleted, ["api", "role"]);
    assert!(rt().block_on(everything(&p)).is_empty());

    // A half-finished up: table and role made, then interrupted (here: the function is refused).
    p.proxy.fail("POST /2015-03-31/functions", 1);
    let out = p.wsctl_env(&["up", "--handler-zip", "handler.zip"], &[]);
    assert_eq!(out.code, 1, "{out:?}\n{:#?}", p.proxy.calls());
    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(rt().block_on(everything(&p)).is_empty());
}

#[test]
fn down_leaves_same_named_resources_without_the_tag_unless_adopting() {
    let p = Project::new("shared");
    p.run_runbook("shared");
    let before = rt().block_on(everything(&p));

    p.proxy.clear();
    let out = p.wsctl(&["down", "--yes", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert!(report["deleted"].as_array().unwrap().is_empty(), "{report}");
    assert_eq!(
        report["left_alone"].as_array().unwrap().len(),
        4,
        "api, function, role, table: {report}"
    );
    assert!(p.proxy.writes().is_empty(), "{:#?}", p.proxy.writes());
    assert_eq!(rt().block_on(everything(&p)), before, "everything survives");

    let out = p.wsctl(&["down", "--yes", "--adopt"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(rt().block_on(everything(&p)).is_empty());
}

/// The fan-out's wiring: a role that may no longer invoke its own function, and a missing
/// broadcasts table, are each named by `status` (exit 3) and repaired by `up`.
#[test]
fn status_names_broken_fan_out_wiring_and_up_repairs_it() {
    let p = Project::new("fanwire");
    p.up(&[]);
    let out = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(check(&out.json(), "role_can_fan_out")["ok"], true);

    // Behind wsctl's back: the records' table goes, and the role's policy loses its
    // InvokeFunction statement.
    rt().block_on(async {
        let sdk = p.sdk().await;
        aws_sdk_dynamodb::Client::new(&sdk)
            .delete_table()
            .table_name("fanwire_ws_broadcasts")
            .send()
            .await
            .unwrap();
        let iam = aws_sdk_iam::Client::new(&sdk);
        let policy = iam
            .get_role_policy()
            .role_name("fanwire-websocket-lambda-role")
            .policy_name("fanwire-websocket-least-privilege")
            .send()
            .await
            .unwrap();
        let mut doc = project::decode_policy(&policy.policy_document);
        doc["Statement"]
            .as_array_mut()
            .unwrap()
            .retain(|s| s["Sid"] != "FanOutToItself");
        iam.put_role_policy()
            .role_name("fanwire-websocket-lambda-role")
            .policy_name("fanwire-websocket-least-privilege")
            .policy_document(doc.to_string())
            .send()
            .await
            .unwrap();
    });
    let out = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(out.code, 3, "{out:?}");
    let report = out.json();
    let fan = check(&report, "role_can_fan_out");
    assert_eq!(fan["ok"], false, "{report}");
    assert!(
        fan["detail"]
            .as_str()
            .unwrap()
            .contains("lambda:InvokeFunction on fanwire-websocket-handler"),
        "{fan}"
    );
    let broadcasts = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "broadcasts")
        .unwrap();
    assert_eq!(broadcasts["state"], "missing", "{report}");

    p.up(&[]);
    let out = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(out.code, 0, "up repaired both: {out:?}");
}
