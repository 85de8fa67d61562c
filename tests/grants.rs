//! `[[grant]]`: backends' roles that may broadcast (a statement of the function's resource
//! policy, which `up` converges) or manage connections (a policy their owner attaches, printed
//! by `wsctl grant --print`; `status` checks it). Against moto, through the recording proxy.

use support::project;

use project::Project;
use serde_json::Value;

const ORDERS: &str = "arn:aws:iam::123456789012:role/orders-service";
const BILLING: &str = "arn:aws:iam::210987654321:role/billing";

fn config(orders_allow: &str) -> String {
    format!(
        "project = \"granted\"\n\n[[grant]]\nprincipal = \"{ORDERS}\"\nallow = [{orders_allow}]\n\n[[grant]]\nprincipal = \"{BILLING}\"\nallow = [\"manage_connections\"]\n"
    )
}

/// The function's resource policy statements as Lambda returns them.
async fn statements(p: &Project) -> Vec<Value> {
    let sdk = p.sdk().await;
    let policy = aws_sdk_lambda::Client::new(&sdk)
        .get_policy()
        .function_name("granted-websocket-handler")
        .send()
        .await
        .unwrap();
    let doc: Value = serde_json::from_str(policy.policy().unwrap()).unwrap();
    project::statements(&doc)
}

fn grant_statements(all: &[Value]) -> Vec<&Value> {
    all.iter()
        .filter(|s| {
            s["Sid"]
                .as_str()
                .unwrap_or_default()
                .starts_with("wsctl-grant-")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn grants_converge_print_the_owners_policy_and_report_whether_they_are_in_effect() {
    let p = Project::new("granted");
    let sdk = p.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    iam.create_role()
        .role_name("orders-service")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap();

    p.write_config(&config("\"broadcast\", \"manage_connections\""));
    let out = p.up(&["-o", "json"]);
    let report = out.json();
    let api_id = report["ids"]["api_id"].as_str().unwrap().to_owned();
    let grant_items: Vec<&Value> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["resource"] == "grant")
        .collect();
    assert_eq!(grant_items.len(), 1, "{report}");
    assert_eq!(
        (
            grant_items[0]["name"].as_str(),
            grant_items[0]["action"].as_str()
        ),
        (Some(ORDERS), Some("create"))
    );

    // broadcast: the function's resource policy lets the role invoke it; API Gateway's
    // statement is still there.
    let all = statements(&p).await;
    let mine = grant_statements(&all);
    assert_eq!(mine.len(), 1, "{all:?}");
    assert_eq!(
        project::string_list(&mine[0]["Action"]),
        ["lambda:InvokeFunction"]
    );
    assert!(
        mine[0]["Principal"].to_string().contains(ORDERS),
        "{}",
        mine[0]
    );
    assert!(all.iter().any(|s| s["Sid"] == "wsctl-apigateway-invoke"));

    // status: broadcast in effect; manage_connections not yet (no policy on the role); the
    // role in another account cannot be read from here, and says so.
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "ok   grant_broadcast              {ORDERS} may invoke granted-websocket-handler"
        )),
        "{out:?}"
    );
    assert!(out.stdout.contains(&format!("FAIL grant_manage_connections     no policy of {ORDERS} allows execute-api:ManageConnections")), "{out:?}");
    assert!(
        out.stdout.contains("wsctl grant --print orders-service"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains(&format!(
            "{BILLING} is in account 210987654321: not checked"
        )),
        "{out:?}"
    );

    // The policy its owner attaches: this stack's function and connections, nothing wider.
    let out = p.wsctl(&["grant", "--print", "orders-service"]);
    assert_eq!(out.code, 0, "{out:?}");
    let policy: Value = serde_json::from_str(&out.stdout).unwrap();
    let resources: Vec<String> = project::statements(&policy)
        .iter()
        .flat_map(|s| project::string_list(&s["Resource"]))
        .collect();
    assert_eq!(
        resources,
        [
            "arn:aws:lambda:us-east-1:123456789012:function:granted-websocket-handler".to_owned(),
            format!("arn:aws:execute-api:us-east-1:123456789012:{api_id}/prod/*/@connections/*"),
        ]
    );
    assert!(
        out.stderr
            .contains("aws iam put-role-policy --role-name orders-service"),
        "{out:?}"
    );
    // wsctl wrote nothing to the role it does not own.
    let inline = iam
        .list_role_policies()
        .role_name("orders-service")
        .send()
        .await
        .unwrap();
    assert!(inline.policy_names().is_empty());

    // The owner attaches it: status is healthy.
    iam.put_role_policy()
        .role_name("orders-service")
        .policy_name("granted-websocket-grant")
        .policy_document(policy.to_string())
        .send()
        .await
        .unwrap();
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&format!("ok   grant_manage_connections     {ORDERS} may call the management API of {api_id}/prod")), "{out:?}");

    // Converged: a second up writes nothing.
    p.proxy.clear();
    let out = p.up(&[]);
    assert!(out.stdout.contains("No changes"), "{out:?}");
    assert!(
        p.proxy.writes().iter().all(|c| c.on_lock_table()),
        "{:#?}",
        p.proxy.writes()
    );

    // broadcast taken away: its statement goes, and only it.
    p.write_config(&config("\"manage_connections\""));
    let out = p.up(&["-o", "json"]);
    let report = out.json();
    assert!(
        report["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["resource"] == "grant" && i["action"] == "delete"),
        "{report}"
    );
    let all = statements(&p).await;
    assert!(grant_statements(&all).is_empty(), "{all:?}");
    assert!(all.iter().any(|s| s["Sid"] == "wsctl-apigateway-invoke"));

    // A role the file does not grant is a usage error naming the grants.
    let out = p.wsctl(&["grant", "--print", "nobody"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(ORDERS) && out.stderr.contains(BILLING),
        "{out:?}"
    );

    // down leaves the backend's role (and the policy its owner attached) alone.
    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    let inline = iam
        .list_role_policies()
        .role_name("orders-service")
        .send()
        .await
        .unwrap();
    assert_eq!(inline.policy_names(), ["granted-websocket-grant"]);
}

#[test]
fn bad_grants_are_refused_naming_the_key_and_line() {
    let cases = [
        ("principal = \"orders-service\"\nallow = [\"broadcast\"]\n", "grant.principal", "not an IAM role's ARN"),
        ("principal = \"arn:aws:iam::123456789012:user/bob\"\nallow = [\"broadcast\"]\n", "grant.principal", "not an IAM role's ARN"),
        (&format!("principal = \"{ORDERS}\"\nallow = [\"invoke\"]\n"), "grant.allow", "expected \"broadcast\" or \"manage_connections\""),
        (&format!("principal = \"{ORDERS}\"\nallow = []\n"), "grant.allow", "is empty"),
        (&format!("principal = \"{ORDERS}\"\nallow = [\"broadcast\"]\n[[grant]]\nprincipal = \"{ORDERS}\"\nallow = [\"manage_connections\"]\n"), "grant.principal", "two [[grant]] entries"),
        (&format!("principal = \"{ORDERS}\"\nallow = [\"broadcast\"]\nrole = \"x\"\n"), "grant", "unknown field"),
    ];
    for (grant, key, message) in cases {
        let stderr = project::refused_config(&format!("project = \"x\"\n[[grant]]\n{grant}"));
        assert!(
            stderr.contains(key) && stderr.contains(message),
            "{grant}: {stderr}"
        );
    }
}
