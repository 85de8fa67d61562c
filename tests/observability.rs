//! The runbook's production checklist as configuration, end to end against moto: API
//! Gateway's logs (the stage's access log and execution log level as AWS stores them, the
//! account-wide CloudWatch role set only when allowed) and the CloudWatch dashboard.

use support::project;

use project::Project;
use serde_json::Value;

const LOGGING: &str = r#"project = "obs"
[api]
access_log = true
execution_log_level = "ERROR"
log_retention_days = 14
manage_account_log_role = true
"#;

/// The account's CloudWatch role for API Gateway, as API Gateway v1's GetAccount returns it.
async fn account_role(p: &Project) -> Option<String> {
    let sdk = p.sdk().await;
    aws_sdk_apigateway::Client::new(&sdk)
        .get_account()
        .send()
        .await
        .unwrap()
        .cloudwatch_role_arn
}

/// The stage as API Gateway v2's GetStage returns it.
async fn stage(
    p: &Project,
    api_id: &str,
) -> aws_sdk_apigatewayv2::operation::get_stage::GetStageOutput {
    let sdk = p.sdk().await;
    aws_sdk_apigatewayv2::Client::new(&sdk)
        .get_stage()
        .api_id(api_id)
        .stage_name("prod")
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn logging_and_the_dashboard_converge_then_change_nothing_and_down_leaves_the_account() {
    let p = Project::new("obs");
    p.write_config(LOGGING);

    // The plan names the account-wide change as such.
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("account_log_role"), "{out:?}");
    assert!(out.stdout.contains("every API"), "{out:?}");
    assert!(out.stdout.contains("cloudwatchRoleArn: (none) -> arn:aws:iam::123456789012:role/wsctl-apigateway-cloudwatch-logs"), "{out:?}");

    let out = p.up(&["-o", "json"]);
    let api_id = out.json()["ids"]["api_id"].as_str().unwrap().to_owned();

    // The account's role, as API Gateway v1's GetAccount returns it, and the role itself.
    assert_eq!(
        account_role(&p).await.as_deref(),
        Some("arn:aws:iam::123456789012:role/wsctl-apigateway-cloudwatch-logs")
    );
    let sdk = p.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let role = iam
        .get_role()
        .role_name("wsctl-apigateway-cloudwatch-logs")
        .send()
        .await
        .unwrap();
    let trust = project::decode_policy(role.role().unwrap().assume_role_policy_document().unwrap());
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        "apigateway.amazonaws.com"
    );
    let attached = iam
        .list_attached_role_policies()
        .role_name("wsctl-apigateway-cloudwatch-logs")
        .send()
        .await
        .unwrap();
    assert!(attached
        .attached_policies()
        .iter()
        .any(|a| a.policy_name() == Some("AmazonAPIGatewayPushToCloudWatchLogs")));

    // The stage as API Gateway v2 stores it.
    let s = stage(&p, &api_id).await;
    let access = s.access_log_settings().expect("access log settings");
    assert_eq!(
        access.destination_arn(),
        Some("arn:aws:logs:us-east-1:123456789012:log-group:/aws/apigateway/obs-websocket")
    );
    let format = access.format().unwrap();
    let line: Value = serde_json::from_str(format).expect("the default format is JSON");
    for key in [
        "requestId",
        "connectionId",
        "eventType",
        "routeKey",
        "status",
        "integrationLatency",
        "errorMessage",
    ] {
        assert!(line.get(key).is_some(), "{key} missing from {format}");
    }
    let route = s.default_route_settings().unwrap();
    assert_eq!(route.logging_level().map(|l| l.as_str()), Some("ERROR"));
    assert_eq!(route.data_trace_enabled(), Some(false));
    assert_eq!(route.throttling_burst_limit(), Some(500));

    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/apigateway/obs-websocket")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups().len(), 1);
    assert_eq!(groups.log_groups()[0].retention_in_days, Some(14));

    // The dashboard: every part of the stack, by this API's id.
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    let dashboard = cw
        .get_dashboard()
        .dashboard_name("obs-websocket")
        .send()
        .await
        .unwrap();
    let body: Value = serde_json::from_str(dashboard.dashboard_body().unwrap()).unwrap();
    let text = body.to_string();
    for needle in [
        "ConnectCount",
        "MessageCount",
        "IntegrationLatency",
        "ConcurrentExecutions",
        "obs_ws_connections",
        "obs-websocket-handler",
        &api_id,
        "Managed by wsctl",
    ] {
        assert!(
            text.contains(needle),
            "{needle} missing from the dashboard: {text}"
        );
    }

    // A second up writes nothing.
    p.proxy.clear();
    let out = p.up(&[]);
    assert!(out.stdout.contains("No changes"), "{out:?}");
    let writes = p.proxy.writes();
    assert!(writes.is_empty(), "a no-op up wrote: {writes:#?}");

    // status: logs can flow, the stage writes its access log, the dashboard's console URL.
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("ok   api_logs_can_flow"), "{out:?}");
    assert!(
        out.stdout.contains("ok   stage_writes_access_log"),
        "{out:?}"
    );
    assert!(out.stdout.contains("Dashboard:     https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/obs-websocket"), "{out:?}");

    // Drift in the dashboard's body and the stage's log level: status names the fields, up
    // puts them back.
    let mut edited = body.clone();
    edited["widgets"][2]["properties"]["period"] = Value::from(300);
    cw.put_dashboard()
        .dashboard_name("obs-websocket")
        .dashboard_body(edited.to_string())
        .send()
        .await
        .unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
    apigw
        .update_stage()
        .api_id(&api_id)
        .stage_name("prod")
        .default_route_settings(
            aws_sdk_apigatewayv2::types::RouteSettings::builder()
                .logging_level(aws_sdk_apigatewayv2::types::LoggingLevel::Info)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout
            .contains("widgets[\"Messages\"].properties.period: is 300, config says 60"),
        "{out:?}"
    );
    assert!(
        out.stdout
            .contains("execution_log_level: is INFO, config says ERROR"),
        "{out:?}"
    );
    p.up(&[]);
    assert_eq!(p.wsctl(&["status"]).code, 0);

    // Access logs off: the group goes, the stage stops logging there; the account stays.
    p.write_config("project = \"obs\"\n[api]\nexecution_log_level = \"ERROR\"\nmanage_account_log_role = true\n");
    let out = p.up(&["-o", "json"]);
    let items = out.json()["resources"].clone();
    let action = |r: &str| {
        items
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["resource"] == r)
            .map(|i| i["action"].clone())
    };
    assert_eq!(
        action("access_log_group"),
        Some(Value::from("delete")),
        "{items}"
    );
    let access = stage(&p, &api_id).await.access_log_settings().cloned();
    assert!(
        access
            .as_ref()
            .is_none_or(|a| a.destination_arn().is_none()),
        "{access:?}"
    );
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/apigateway/obs-websocket")
        .send()
        .await
        .unwrap();
    assert!(groups.log_groups().is_empty());

    // down removes the dashboard and leaves the account setting, saying so.
    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("dashboard"), "{out:?}");
    assert!(out.stdout.contains("cloudwatchRoleArn"), "{out:?}");
    assert!(cw
        .get_dashboard()
        .dashboard_name("obs-websocket")
        .send()
        .await
        .is_err());
    assert_eq!(
        account_role(&p).await.as_deref(),
        Some("arn:aws:iam::123456789012:role/wsctl-apigateway-cloudwatch-logs")
    );
    assert!(iam
        .get_role()
        .role_name("wsctl-apigateway-cloudwatch-logs")
        .send()
        .await
        .is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_account_role_is_set_only_when_allowed_and_a_working_one_is_kept() {
    let p = Project::new("acct");
    p.write_config("project = \"acct\"\n[api]\naccess_log = true\n");

    // No terminal, no manage_account_log_role: refused before anything is written.
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip", "--yes"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("manage_account_log_role = true"),
        "{out:?}"
    );
    assert!(out.stderr.contains("Nothing was changed"), "{out:?}");
    let writes: Vec<String> = p
        .proxy
        .writes()
        .iter()
        .filter(|c| !c.on_lock_table())
        .map(|c| c.to_string())
        .collect();
    assert!(writes.is_empty(), "refused but wrote: {writes:#?}");

    // status says logs cannot flow (and writes nothing either).
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(out.stdout.contains("FAIL api_logs_can_flow"), "{out:?}");
    assert!(out.stdout.contains("cloudwatchRoleArn is empty"), "{out:?}");

    // Someone else's working role is already the account's: up keeps it, without asking.
    let sdk = p.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"apigateway.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
    let theirs = iam
        .create_role()
        .role_name("platform-apigw-logs")
        .assume_role_policy_document(trust)
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    iam.attach_role_policy()
        .role_name("platform-apigw-logs")
        .policy_arn("arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
        .send()
        .await
        .unwrap();
    aws_sdk_apigateway::Client::new(&sdk)
        .update_account()
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/cloudwatchRoleArn")
                .value(&theirs)
                .build(),
        )
        .send()
        .await
        .unwrap();

    let out = p.up(&["--yes", "-o", "json"]);
    let report = out.json();
    let account = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["resource"] == "account_log_role")
        .cloned();
    assert_eq!(
        account.map(|a| a["action"].clone()),
        Some(Value::from("no_change")),
        "{report}"
    );
    assert_eq!(account_role(&p).await.as_deref(), Some(theirs.as_str()));
    assert!(
        iam.get_role()
            .role_name("wsctl-apigateway-cloudwatch-logs")
            .send()
            .await
            .is_err(),
        "wsctl made a role it did not need"
    );
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains(&format!(
            "API Gateway's CloudWatch role in us-east-1 is {theirs}"
        )),
        "{out:?}"
    );

    // That role broken behind wsctl's back (API Gateway may no longer assume it): status says
    // logs cannot flow; up replaces it only when allowed.
    let lambda_trust = trust.replace("apigateway", "lambda");
    iam.update_assume_role_policy()
        .role_name("platform-apigw-logs")
        .policy_document(lambda_trust)
        .send()
        .await
        .unwrap();
    let out = p.wsctl(&["status"]);
    assert_eq!(out.code, 3, "{out:?}");
    assert!(
        out.stdout
            .contains("cannot be assumed by apigateway.amazonaws.com"),
        "{out:?}"
    );
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip", "--yes"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stderr
            .contains("cannot be assumed by apigateway.amazonaws.com"),
        "{out:?}"
    );
    assert_eq!(account_role(&p).await.as_deref(), Some(theirs.as_str()));
    p.write_config(
        "project = \"acct\"\n[api]\naccess_log = true\nmanage_account_log_role = true\n",
    );
    p.up(&[]);
    assert_eq!(
        account_role(&p).await.as_deref(),
        Some("arn:aws:iam::123456789012:role/wsctl-apigateway-cloudwatch-logs")
    );
    assert_eq!(p.wsctl(&["status"]).code, 0);
}

#[test]
fn bad_logging_keys_are_refused_naming_the_key_and_line() {
    let cases = [
        (
            "[api]\nexecution_log_level = \"DEBUG\"\n",
            "api.execution_log_level",
            "expected \"ERROR\", \"INFO\" or \"OFF\"",
        ),
        (
            "[api]\naccess_log = true\naccess_log_format = \"$context.status\"\n",
            "api.access_log_format",
            "$context.requestId",
        ),
        (
            "[api]\naccess_log_format = \"{\\\"id\\\":\\\"$context.requestId\\\"}\"\n",
            "api.access_log_format",
            "without api.access_log = true",
        ),
        (
            "[api]\naccess_log = true\nlog_retention_days = 10\n",
            "api.log_retention_days",
            "not a CloudWatch Logs retention period",
        ),
        (
            "[api]\nmanage_account_log_role = true\n",
            "api.manage_account_log_role",
            "has no effect",
        ),
        ("[dashboard]\nenable = true\n", "dashboard", "unknown field"),
    ];
    for (text, key, message) in cases {
        let stderr = project::refused_config(&format!("project = \"x\"\n{text}"));
        assert!(
            stderr.contains(key) && stderr.contains(message),
            "{text}: {stderr}"
        );
    }
}
