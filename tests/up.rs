//! `wsctl up` end to end: the real binary against moto, through a recording proxy.

use support::project;

use std::collections::BTreeMap;

use project::{string_list, Project};
use serde_json::{json, Value};

/// Every statement of every policy wsctl writes: no wildcard action, no wildcard resource.
fn assert_least_privilege(policy: &Value) {
    for s in project::statements(policy) {
        for a in string_list(&s["Action"]) {
            assert!(!a.contains('*'), "wildcard action {a} in {policy}");
        }
        for r in string_list(&s["Resource"]) {
            assert!(
                r != "*" && !r.starts_with("arn:aws:execute-api:*"),
                "wildcard resource {r} in {policy}"
            );
            assert!(
                !r.ends_with(":*") && !r.contains(":*:"),
                "wildcard resource {r} in {policy}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn up_creates_the_whole_stack_then_changes_nothing() {
    let p = Project::new("petinsure");
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip", "--output", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    let api_id = report["ids"]["api_id"].as_str().expect("api id").to_owned();
    assert_eq!(report["changed"], true);
    assert_eq!(
        report["urls"]["websocket"],
        format!("wss://{api_id}.execute-api.us-east-1.amazonaws.com/prod")
    );
    assert_eq!(
        report["urls"]["callback"],
        format!("https://{api_id}.execute-api.us-east-1.amazonaws.com/prod/@connections")
    );
    assert!(
        report["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "create"),
        "{report}"
    );
    assert!(!out.stdout.contains("applying"), "progress stays on stderr");

    // Read every property back through the AWS APIs.
    let sdk = p.sdk().await;
    let expected_tags: BTreeMap<String, String> = [
        ("Project", "petinsure"),
        ("Component", "WebSocket"),
        ("ManagedBy", "wsctl"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = ddb
        .describe_table()
        .table_name("petinsure_ws_connections")
        .send()
        .await
        .unwrap()
        .table
        .unwrap();
    assert_eq!(table.key_schema()[0].attribute_name, "connection_id");
    assert_eq!(table.key_schema()[0].key_type.as_str(), "HASH");
    assert_eq!(
        table.attribute_definitions()[0].attribute_type.as_str(),
        "S"
    );
    assert_eq!(
        table
            .billing_mode_summary()
            .unwrap()
            .billing_mode()
            .unwrap()
            .as_str(),
        "PAY_PER_REQUEST"
    );
    let ttl = ddb
        .describe_time_to_live()
        .table_name("petinsure_ws_connections")
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description.unwrap();
    assert_eq!(ttl.time_to_live_status.unwrap().as_str(), "ENABLED");
    assert_eq!(ttl.attribute_name.as_deref(), Some("ttl"));
    let tags: BTreeMap<String, String> = ddb
        .list_tags_of_resource()
        .resource_arn(table.table_arn.clone().unwrap())
        .send()
        .await
        .unwrap()
        .tags()
        .iter()
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    assert_eq!(tags, expected_tags);

    let iam = aws_sdk_iam::Client::new(&sdk);
    let role = iam
        .get_role()
        .role_name("petinsure-websocket-lambda-role")
        .send()
        .await
        .unwrap()
        .role
        .unwrap();
    let trust = project::decode_policy(role.assume_role_policy_document().unwrap());
    assert_eq!(
        trust["Statement"][0]["Principal"]["Service"],
        "lambda.amazonaws.com"
    );
    let attached: Vec<String> = iam
        .list_attached_role_policies()
        .role_name("petinsure-websocket-lambda-role")
        .send()
        .await
        .unwrap()
        .attached_policies()
        .iter()
        .map(|p| p.policy_arn.clone().unwrap())
        .collect();
    assert_eq!(
        attached,
        ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    );
    let inline = iam
        .list_role_policies()
        .role_name("petinsure-websocket-lambda-role")
        .send()
        .await
        .unwrap();
    assert_eq!(
        inline.policy_names(),
        ["petinsure-websocket-least-privilege"]
    );
    let policy = iam
        .get_role_policy()
        .role_name("petinsure-websocket-lambda-role")
        .policy_name("petinsure-websocket-least-privilege")
        .send()
        .await
        .unwrap();
    let policy = project::decode_policy(&policy.policy_document);
    assert_least_privilege(&policy);
    let statements = policy["Statement"].as_array().unwrap();
    let table_stmt = statements
        .iter()
        .find(|s| {
            string_list(&s["Action"])
                .iter()
                .any(|a| a.starts_with("dynamodb:"))
        })
        .unwrap();
    assert_eq!(
        string_list(&table_stmt["Action"]),
        [
            "dynamodb:DeleteItem",
            "dynamodb:DescribeTable",
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Scan",
            "dynamodb:UpdateItem"
        ]
    );
    // A broadcast's fan-out: the index, the records, and invoking this function only.
    let by_sid = |sid: &str| {
        statements
            .iter()
            .find(|s| s["Sid"] == sid)
            .unwrap_or_else(|| panic!("no statement {sid}: {policy}"))
    };
    let grants = |sid: &str| {
        (
            string_list(&by_sid(sid)["Action"]),
            string_list(&by_sid(sid)["Resource"]),
        )
    };
    let arn = |what: &str| format!("arn:aws:{what}");
    assert_eq!(
        grants("SubscriptionsIndex"),
        (
            vec![
                "dynamodb:DeleteItem".to_owned(),
                "dynamodb:PutItem".into(),
                "dynamodb:Query".into()
            ],
            vec![arn(
                "dynamodb:us-east-1:123456789012:table/petinsure_ws_subscriptions"
            )]
        )
    );
    assert_eq!(
        grants("BroadcastRecords"),
        (
            vec![
                "dynamodb:GetItem".to_owned(),
                "dynamodb:PutItem".into(),
                "dynamodb:UpdateItem".into()
            ],
            vec![arn(
                "dynamodb:us-east-1:123456789012:table/petinsure_ws_broadcasts"
            )]
        )
    );
    assert_eq!(
        grants("FanOutToItself"),
        (
            vec!["lambda:InvokeFunction".to_owned()],
            vec![arn(
                "lambda:us-east-1:123456789012:function:petinsure-websocket-handler"
            )]
        )
    );
    assert_eq!(
        string_list(&table_stmt["Resource"]),
        [table.table_arn.clone().unwrap()]
    );
    let push_stmt = statements
        .iter()
        .find(|s| string_list(&s["Action"]) == ["execute-api:ManageConnections"])
        .unwrap();
    assert_eq!(
        string_list(&push_stmt["Resource"]),
        ["POST", "DELETE"].map(|method| format!(
            "arn:aws:execute-api:us-east-1:123456789012:{api_id}/prod/{method}/@connections/*"
        ))
    );

    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let f = lambda
        .get_function()
        .function_name("petinsure-websocket-handler")
        .send()
        .await
        .unwrap();
    let conf = f.configuration.unwrap();
    assert_eq!(conf.runtime.as_ref().unwrap().as_str(), "provided.al2023");
    assert_eq!(conf.handler.as_deref(), Some("bootstrap"));
    assert_eq!(conf.architectures()[0].as_str(), "x86_64");
    assert_eq!(conf.memory_size, Some(256));
    assert_eq!(conf.timeout, Some(30));
    assert_eq!(conf.role.as_deref(), role.arn.as_str().into());
    let env = conf.environment.unwrap().variables.unwrap();
    assert_eq!(env["CONNECTIONS_TABLE"], "petinsure_ws_connections");
    assert_eq!(env["WEBSOCKET_API_ID"], api_id);
    assert_eq!(env["WEBSOCKET_STAGE"], "prod");
    assert_eq!(env["CONNECTION_TTL_SECONDS"], "86400");
    assert_eq!(env["SUBSCRIPTIONS_TABLE"], "petinsure_ws_subscriptions");
    assert_eq!(env["BROADCASTS_TABLE"], "petinsure_ws_broadcasts");
    assert_eq!(env["BROADCAST_WORKERS"], "10");
    // The two tables of the fan-out: keys, on-demand, TTL, tags.
    let ddb = aws_sdk_dynamodb::Client::new(&sdk);
    for (name, keys) in [
        (
            "petinsure_ws_subscriptions",
            vec![("topic_shard", "HASH"), ("connection_id", "RANGE")],
        ),
        ("petinsure_ws_broadcasts", vec![("broadcast_id", "HASH")]),
    ] {
        let t = ddb.describe_table().table_name(name).send().await.unwrap();
        let t = t.table.unwrap();
        let got: Vec<(String, String)> = t
            .key_schema()
            .iter()
            .map(|k| (k.attribute_name.clone(), k.key_type.as_str().to_owned()))
            .collect();
        let want: Vec<(String, String)> = keys
            .iter()
            .map(|(a, k)| (a.to_string(), k.to_string()))
            .collect();
        assert_eq!(got, want, "{name}");
        let ttl = ddb
            .describe_time_to_live()
            .table_name(name)
            .send()
            .await
            .unwrap()
            .time_to_live_description
            .unwrap();
        assert_eq!(ttl.attribute_name.as_deref(), Some("ttl"), "{name}");
    }
    let zip = std::fs::read(&p.zip).unwrap();
    use base64::Engine as _;
    use sha2::Digest as _;
    let sha = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&zip));
    assert_eq!(conf.code_sha256.as_deref(), Some(sha.as_str()));
    let ftags = f.tags.unwrap();
    for (k, v) in &expected_tags {
        assert_eq!(ftags.get(k), Some(v));
    }

    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
    let apis = apigw.get_apis().send().await.unwrap();
    assert_eq!(apis.items().len(), 1);
    let api = &apis.items()[0];
    assert_eq!(api.name.as_deref(), Some("petinsure-websocket"));
    assert_eq!(api.protocol_type.as_ref().unwrap().as_str(), "WEBSOCKET");
    assert_eq!(
        api.route_selection_expression.as_deref(),
        Some("$request.body.action")
    );
    assert_eq!(api.tags.as_ref().unwrap()["ManagedBy"], "wsctl");
    let integrations = apigw
        .get_integrations()
        .api_id(&api_id)
        .send()
        .await
        .unwrap();
    assert_eq!(integrations.items().len(), 1);
    let integration = &integrations.items()[0];
    assert_eq!(
        integration.integration_type.as_ref().unwrap().as_str(),
        "AWS_PROXY"
    );
    assert_eq!(
        integration.integration_uri.as_deref(),
        Some("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:petinsure-websocket-handler/invocations")
    );
    let routes = apigw.get_routes().api_id(&api_id).send().await.unwrap();
    let mut keys: Vec<_> = routes
        .items()
        .iter()
        .map(|r| r.route_key.clone().unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, ["$connect", "$default", "$disconnect"]);
    let target = format!(
        "integrations/{}",
        integration.integration_id.as_deref().unwrap()
    );
    assert!(routes
        .items()
        .iter()
        .all(|r| r.target.as_deref() == Some(target.as_str())));
    let stage = apigw
        .get_stage()
        .api_id(&api_id)
        .stage_name("prod")
        .send()
        .await
        .unwrap();
    assert_eq!(stage.auto_deploy, Some(true));
    let settings = stage.default_route_settings.unwrap();
    assert_eq!(settings.throttling_burst_limit, Some(500));
    assert_eq!(settings.throttling_rate_limit, Some(1000.0));

    let policy = lambda
        .get_policy()
        .function_name("petinsure-websocket-handler")
        .send()
        .await
        .unwrap();
    let policy: Value = serde_json::from_str(policy.policy.as_deref().unwrap()).unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{policy}");
    assert_eq!(
        statements[0]["Principal"]["Service"],
        "apigateway.amazonaws.com"
    );
    assert_eq!(
        statements[0]["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!("arn:aws:execute-api:us-east-1:123456789012:{api_id}/prod/*")
    );

    let logs = aws_sdk_cloudwatchlogs::Client::new(&sdk);
    let groups = logs
        .describe_log_groups()
        .log_group_name_prefix("/aws/lambda/petinsure-websocket-handler")
        .send()
        .await
        .unwrap();
    assert_eq!(groups.log_groups()[0].retention_in_days, Some(30));

    // A second up makes no write call at all and says so.
    p.proxy.clear();
    let out = p.up(&[]);
    assert!(out.stdout.contains("No changes"), "{out:?}");
    assert!(
        out.stdout.contains(&format!("wss://{api_id}.execute-api")),
        "{out:?}"
    );
    let writes = p.proxy.writes();
    assert!(writes.is_empty(), "a no-op up wrote: {writes:#?}");
    assert!(!p.proxy.calls().is_empty(), "the proxy saw the reads");

    // One config value changes: exactly that is updated.
    p.write_config("project = \"petinsure\"\n[function]\nmemory_mb = 512\n");
    p.proxy.clear();
    let out = p.up(&["-o", "json"]);
    let report = out.json();
    let changed: Vec<&Value> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["action"] != "no_change")
        .collect();
    assert_eq!(changed.len(), 1, "{report}");
    assert_eq!(changed[0]["resource"], "function");
    assert_eq!(
        changed[0]["changes"],
        json!([{"field": "memory_mb", "from": "256", "to": "512"}])
    );
    let writes: Vec<String> = p
        .proxy
        .writes()
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    assert_eq!(
        writes,
        ["PUT /2015-03-31/functions/petinsure-websocket-handler/configuration"],
        "{writes:?}"
    );
    let conf = lambda
        .get_function_configuration()
        .function_name("petinsure-websocket-handler")
        .send()
        .await
        .unwrap();
    assert_eq!(conf.memory_size, Some(512));
    assert_eq!(
        conf.environment.unwrap().variables.unwrap()["WEBSOCKET_API_ID"],
        api_id
    );
}

#[test]
fn dry_run_shows_the_plan_and_writes_nothing() {
    let p = Project::new("plans");
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip", "--dry-run"]);
    assert_eq!(out.code, 0, "{out:?}");
    for resource in [
        "table",
        "subscriptions",
        "broadcasts",
        "role",
        "function",
        "api",
        "integration",
        "route $connect",
        "stage",
        "permission",
        "log_group",
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(resource) && l.trim_end().ends_with("create")),
            "{resource} planned for creation:\n{}",
            out.stdout
        );
    }
    assert!(p.proxy.writes().is_empty(), "{:#?}", p.proxy.writes());

    p.up(&[]);
    p.write_config("project = \"plans\"\n[function]\ntimeout_seconds = 60\n[api]\nthrottling_burst_limit = 50\n");
    p.proxy.clear();
    let out = p.wsctl(&[
        "up",
        "--handler-zip",
        "handler.zip",
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    let report = out.json();
    assert_eq!(report["dry_run"], true);
    let by_resource: BTreeMap<String, Value> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["resource"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    assert_eq!(
        by_resource["function"]["changes"],
        json!([{"field":"timeout_seconds","from":"30","to":"60"}])
    );
    assert_eq!(
        by_resource["stage"]["changes"],
        json!([{"field":"throttling_burst_limit","from":"500","to":"50"}])
    );
    assert_eq!(by_resource["table"]["action"], "no_change");
    assert!(p.proxy.writes().is_empty(), "{:#?}", p.proxy.writes());

    // Applying it changes those two, and the stage really carries the new limit.
    let out = p.up(&[]);
    assert!(out.stdout.contains("timeout_seconds: 30 -> 60"), "{out:?}");
    let out = p.up(&[]);
    assert!(out.stdout.contains("No changes"), "{out:?}");
}

#[test]
fn up_converges_a_stack_made_by_the_runbook() {
    let p = Project::new("legacy");
    let runbook_api = p.run_runbook("legacy");

    let out = p.up(&["-o", "json"]);
    let report = out.json();
    assert_eq!(
        report["ids"]["api_id"],
        runbook_api.as_str(),
        "the runbook's API is adopted, not duplicated"
    );
    let by_resource: BTreeMap<String, Value> = report["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["resource"].as_str().unwrap().to_owned(), r.clone()))
        .collect();
    assert_eq!(
        by_resource["table"]["action"], "update",
        "the table is adopted: {report}"
    );
    assert_eq!(by_resource["api"]["action"], "update");
    let role_changes = by_resource["role"]["changes"].to_string();
    assert!(
        role_changes.contains("AmazonDynamoDBFullAccess")
            && role_changes.contains("ApiGatewayManagement"),
        "{role_changes}"
    );
    let function_changes = by_resource["function"]["changes"].to_string();
    assert!(
        function_changes.contains("python3.11") && function_changes.contains("code"),
        "{function_changes}"
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let sdk = p.sdk().await;
        let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
        assert_eq!(
            apigw.get_apis().send().await.unwrap().items().len(),
            1,
            "no second API"
        );
        let ddb = aws_sdk_dynamodb::Client::new(&sdk);
        // The runbook's table, adopted; the subscriptions index and the broadcasts' records;
        // and the stack lock's own (src/lock/remote.rs).
        let mut tables = ddb
            .list_tables()
            .send()
            .await
            .unwrap()
            .table_names()
            .to_vec();
        tables.sort();
        assert_eq!(
            tables,
            [
                "legacy_ws_broadcasts",
                "legacy_ws_connections",
                "legacy_ws_subscriptions",
                "legacy_wsctl_lock"
            ]
        );
        let iam = aws_sdk_iam::Client::new(&sdk);
        let attached = iam
            .list_attached_role_policies()
            .role_name("legacy-websocket-lambda-role")
            .send()
            .await
            .unwrap();
        let attached: Vec<_> = attached
            .attached_policies()
            .iter()
            .map(|a| a.policy_name.clone().unwrap())
            .collect();
        assert_eq!(
            attached,
            ["AWSLambdaBasicExecutionRole"],
            "FullAccess detached"
        );
        let inline = iam
            .list_role_policies()
            .role_name("legacy-websocket-lambda-role")
            .send()
            .await
            .unwrap();
        assert_eq!(
            inline.policy_names(),
            ["legacy-websocket-least-privilege"],
            "wildcard policy replaced"
        );
        let lambda = aws_sdk_lambda::Client::new(&sdk);
        let conf = lambda
            .get_function_configuration()
            .function_name("legacy-websocket-handler")
            .send()
            .await
            .unwrap();
        assert_eq!(conf.runtime.unwrap().as_str(), "provided.al2023");
        assert_eq!(conf.handler.as_deref(), Some("bootstrap"));
        let policy = lambda
            .get_policy()
            .function_name("legacy-websocket-handler")
            .send()
            .await
            .unwrap();
        let policy: Value = serde_json::from_str(policy.policy.as_deref().unwrap()).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(
            statements.len(),
            1,
            "the runbook's API-wide statement is replaced: {policy}"
        );
        assert_eq!(
            statements[0]["Condition"]["ArnLike"]["AWS:SourceArn"],
            format!("arn:aws:execute-api:us-east-1:123456789012:{runbook_api}/prod/*")
        );
        let integrations = apigw
            .get_integrations()
            .api_id(&runbook_api)
            .send()
            .await
            .unwrap();
        assert_eq!(integrations.items().len(), 1);
        let stage = apigw
            .get_stage()
            .api_id(&runbook_api)
            .stage_name("prod")
            .send()
            .await
            .unwrap();
        assert_eq!(
            stage.default_route_settings.unwrap().throttling_burst_limit,
            Some(500)
        );
    });

    p.proxy.clear();
    let out = p.up(&[]);
    assert!(out.stdout.contains("No changes"), "{out:?}");
    assert!(p.proxy.writes().is_empty(), "{:#?}", p.proxy.writes());
}

#[test]
fn a_role_lambda_cannot_assume_yet_is_retried_until_it_can() {
    let p = Project::new("fresh");
    p.proxy.fail_create_function_role(3);
    let out = p.up(&[]);
    assert!(
        out.stderr.contains("IAM propagation"),
        "the retry is reported: {out:?}"
    );
    let creates: Vec<_> = p
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c.operation == "POST /2015-03-31/functions")
        .map(|c| c.status)
        .collect();
    assert_eq!(
        creates,
        [400, 400, 400, 201],
        "three refusals, then success"
    );
}

#[test]
fn two_apis_with_the_stack_name_is_an_error_listing_both() {
    let p = Project::new("twins");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let ids: Vec<String> = rt.block_on(async {
        let apigw = aws_sdk_apigatewayv2::Client::new(&p.sdk().await);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let api = apigw
                .create_api()
                .name("twins-websocket")
                .protocol_type(aws_sdk_apigatewayv2::types::ProtocolType::Websocket)
                .route_selection_expression("$request.body.action")
                .send()
                .await
                .unwrap();
            ids.push(api.api_id.unwrap());
        }
        ids
    });
    p.proxy.clear();
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip"]);
    assert_eq!(out.code, 1, "{out:?}");
    for id in &ids {
        assert!(out.stderr.contains(id.as_str()), "{id} is listed: {out:?}");
    }
    assert!(
        p.proxy.writes().is_empty(),
        "nothing is created: {:#?}",
        p.proxy.writes()
    );
}

#[test]
fn bad_configs_exit_2_naming_the_key_and_line_before_any_aws_call() {
    let p = Project::new("configs");
    let cases: &[(&str, &str, &str)] = &[
        (
            "project = \"ok\"\n[function]\nmemroy_mb = 512\n",
            "function.memroy_mb",
            "line 3",
        ),
        (
            "project = \"ok\"\n[function]\nmemory_mb = \"lots\"\n",
            "function.memory_mb",
            "line 3",
        ),
        (
            "project = \"ok\"\n[function]\nmemory_mb = 64\n",
            "function.memory_mb",
            ":3:",
        ),
        (
            "project = \"ok\"\n[function]\ntimeout_seconds = 901\n",
            "function.timeout_seconds",
            ":3:",
        ),
        ("project = \"has.dot\"\n", "project", ":1:"),
        (
            &format!("project = \"{}\"\n", "p".repeat(43)),
            "project",
            "64",
        ),
        ("\n\n[api]\nstage = \"prod\"\n", "project", "required"),
        (
            "project = \"ok\"\n[api]\nstage = \"bad stage\"\n",
            "api.stage",
            ":3:",
        ),
        (
            "project = \"ok\"\n[aws]\nregion = \"moon-base\"\n",
            "aws.region",
            ":3:",
        ),
        (
            "project = \"ok\"\n[function]\narchitecture = \"sparc\"\n",
            "function.architecture",
            "line 3",
        ),
        (
            "project = \"ok\"\n[function]\nlog_retention_days = 8\n",
            "function.log_retention_days",
            ":3:",
        ),
        (
            "project = \"ok\"\n[tags]\nManagedBy = \"me\"\n",
            "tags.ManagedBy",
            ":3:",
        ),
        ("project = \"ok\"\n[nope]\nx = 1\n", "nope", "line 2"),
        ("project = \"ok\"\n[function\n", "", "line 2"),
        // Syntax.
        ("project = ok\n", "project", "line 1"),
        ("project = \"ok\n", "", "line 1"),
        ("project = \"ok\"\nproject = \"again\"\n", "project", "line 2"),
        ("project = \"ok\"\n[function]\n[function]\n", "function", "line 3"),
        ("project = \"ok\"\n[function]\nmemory_mb = 1_\n", "function.memory_mb", "line 3"),
        ("project = \"ok\"\n[api]\nstage = [\"prod\"\n", "api.stage", "line 3"),
        // Unknown keys, in every table.
        ("projct = \"ok\"\n", "projct", "line 1"),
        ("project = \"ok\"\n[aws]\nprofil = \"x\"\n", "aws.profil", "line 3"),
        ("project = \"ok\"\n[api]\nstages = \"prod\"\n", "api.stages", "line 3"),
        ("project = \"ok\"\n[auth]\njwks = \"https://x\"\n", "auth.jwks", "line 3"),
        ("project = \"ok\"\n[alarm]\ntopic = \"x\"\n", "alarm.topic", "line 3"),
        // Wrong types.
        ("project = 42\n", "project", "line 1"),
        ("project = \"ok\"\n[function]\nallow_client_broadcast = \"yes\"\n", "function.allow_client_broadcast", "line 3"),
        ("project = \"ok\"\n[function]\nallowed_origins = \"https://a.example\"\n", "function.allowed_origins", "line 3"),
        ("project = \"ok\"\n[api]\nthrottling_rate_limit = \"fast\"\n", "api.throttling_rate_limit", "line 3"),
        ("project = \"ok\"\n[tags]\nTeam = 7\n", "tags.Team", "line 3"),
        ("project = \"ok\"\n[auth]\naudience = \"app\"\n", "auth.audience", "line 3"),
        ("project = \"ok\"\n[alarm]\nerrors_threshold = 1.5\n", "alarm.errors_threshold", "line 3"),
        ("project = \"ok\"\nfunction = 3\n", "function", "line 2"),
        // Names.
        ("project = \"\"\n", "project", ":1:"),
        ("project = \"-leading\"\n", "project", ":1:"),
        ("project = \"with space\"\n", "project", ":1:"),
        ("project = \"caf\u{e9}\"\n", "project", ":1:"),
        ("project = \"ok\"\n[api]\nstage = \"$default\"\n", "api.stage", ":3:"),
        (&format!("project = \"ok\"\n[api]\nstage = \"{}\"\n", "s".repeat(129)), "api.stage", ":3:"),
        ("project = \"ok\"\n[aws]\nprofile = \" \"\n", "aws.profile", ":3:"),
        ("project = \"ok\"\n[tags]\n\"aws:x\" = \"v\"\n", "tags.aws:x", ":3:"),
        (&format!("project = \"ok\"\n[tags]\nTeam = \"{}\"\n", "v".repeat(257)), "tags.Team", ":3:"),
        ("project = \"ok\"\n[api]\nroute_selection_expression = \"$request.header.x\"\n", "api.route_selection_expression", ":3:"),
        ("project = \"ok\"\n[function]\nallowed_origins = [\"app.example.com\"]\n", "function.allowed_origins", ":3:"),
        // Numbers.
        ("project = \"ok\"\n[function]\nmemory_mb = 10241\n", "function.memory_mb", ":3:"),
        ("project = \"ok\"\n[function]\ntimeout_seconds = 0\n", "function.timeout_seconds", ":3:"),
        ("project = \"ok\"\n[function]\nconnection_ttl_seconds = 59\n", "function.connection_ttl_seconds", ":3:"),
        ("project = \"ok\"\n[function]\nmax_client_message_bytes = 131073\n", "function.max_client_message_bytes", ":3:"),
        ("project = \"ok\"\n[function]\nbroadcast_concurrency = 0\n", "function.broadcast_concurrency", ":3:"),
        ("project = \"ok\"\n[function]\nmax_messages_per_second = -1\n", "function.max_messages_per_second", ":3:"),
        ("project = \"ok\"\n[function]\nmemory_mb = 99999999999999999999\n", "function.memory_mb", "line 3"),
        ("project = \"ok\"\n[api]\nthrottling_rate_limit = nan\n", "api.throttling_rate_limit", ":3:"),
        ("project = \"ok\"\n[api]\nthrottling_rate_limit = -5.0\n", "api.throttling_rate_limit", ":3:"),
        ("project = \"ok\"\n[api]\nthrottling_burst_limit = 0\n", "api.throttling_burst_limit", ":3:"),
        // [auth] and [alarm].
        ("project = \"ok\"\n[auth]\njwks_url = \"http://idp.example/jwks.json\"\n", "auth.jwks_url", ":3:"),
        ("project = \"ok\"\n[auth]\njwks_url = \"https://idp.example/jwks\"\nsecret_parameter = \"/s\"\n", "auth.secret_parameter", ":4:"),
        ("project = \"ok\"\n[auth]\nsecret_parameter = \"/aws/reserved\"\n", "auth.secret_parameter", ":3:"),
        ("project = \"ok\"\n[auth]\nsecret_parameter = \"/a b\"\n", "auth.secret_parameter", ":3:"),
        ("project = \"ok\"\n[auth]\nsecret_parameter = \"/s\"\nsecret_kms_key_arn = \"key-1\"\n", "auth.secret_kms_key_arn", ":4:"),
        ("project = \"ok\"\n[auth]\nissuer = \"https://idp.example\"\n", "auth.issuer", ":3:"),
        ("project = \"ok\"\n[auth]\nsecret_parameter = \"/s\"\ntoken_query_param = \"a=b\"\n", "auth.token_query_param", ":4:"),
        ("project = \"ok\"\n[auth]\nsecret_parameter = \"/s\"\naudience = [\"\"]\n", "auth.audience", ":4:"),
        ("project = \"ok\"\n[alarm]\nsns_topic_arn = \"ops-alerts\"\n", "alarm.sns_topic_arn", ":3:"),
        ("project = \"ok\"\n[alarm]\nsns_topic_arn = \"arn:aws:sqs:us-east-1:123456789012:q\"\n", "alarm.sns_topic_arn", ":3:"),
        ("project = \"ok\"\n[alarm]\nsns_topic_arn = \"arn:aws:sns:us-east-1:123456789012:t\"\nperiod_seconds = 45\n", "alarm.period_seconds", ":4:"),
        ("project = \"ok\"\n[alarm]\nsns_topic_arn = \"arn:aws:sns:us-east-1:123456789012:t\"\nevaluation_periods = 0\n", "alarm.evaluation_periods", ":4:"),
        ("project = \"ok\"\n[alarm]\nerrors_threshold = 3\n", "alarm.errors_threshold", ":3:"),
    ];
    assert!(cases.len() >= 50, "the corpus has {} configs", cases.len());
    for (toml, key, place) in cases {
        p.write_config(toml);
        let out = p.wsctl(&["up", "--handler-zip", "handler.zip"]);
        assert_eq!(out.code, 2, "{toml:?}: {out:?}");
        assert!(
            out.stderr.contains(key) && out.stderr.contains(place),
            "{toml:?} names {key} and {place}: {}",
            out.stderr
        );
        assert!(
            out.stderr.contains("wsctl.toml"),
            "names the file: {}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    }
    assert!(
        p.proxy.calls().is_empty(),
        "no AWS call was made: {:#?}",
        p.proxy.calls()
    );

    // --output json reports the error as JSON too.
    p.write_config("project = \"ok\"\n[function]\nmemory_mb = 1\n");
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip", "-o", "json"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.json()["error"]["kind"], "usage");
}

#[test]
fn missing_region_or_credentials_is_one_line_and_exit_2() {
    let p = Project::new("creds");
    let out = p.wsctl_env(
        &["up", "--handler-zip", "handler.zip"],
        &[("AWS_REGION", "")],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no AWS region"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    let out = p.wsctl_env(
        &["up", "--handler-zip", "handler.zip"],
        &[
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_CONFIG_FILE", "/nonexistent"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent"),
        ],
    );
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("no AWS credentials"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert!(p.proxy.calls().is_empty());
}

#[test]
fn a_bad_handler_zip_is_refused_before_any_aws_call() {
    let p = Project::new("zips");
    std::fs::write(p.path().join("junk.zip"), b"not a zip").unwrap();
    let out = p.wsctl(&["up", "--handler-zip", "junk.zip"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains("junk.zip") && out.stderr.contains("not a zip"),
        "{out:?}"
    );
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip", "--arch", "arm64"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("arm64"), "{out:?}");
    assert!(p.proxy.calls().is_empty());
}

#[test]
fn init_writes_a_config_that_up_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_wsctl"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["init", "--project", "shiny"]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(dir.path().join("wsctl.toml")).unwrap();
    assert!(text.contains("project = \"shiny\""));
    let again = run(&["init", "--project", "shiny"]);
    assert_eq!(again.status.code(), Some(2), "refuses to overwrite");
}
