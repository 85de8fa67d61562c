//! The production checklist of #7 against moto: the HS256 secret in SSM, the errors alarm,
//! every policy wsctl writes, and secrets kept out of everything wsctl prints.

use support::project;

use project::{string_list, Project};
use serde_json::Value;

const PARAM: &str = "/petinsure/ws-jwt-secret";
const SECRET: &str = "hs256-secret-value-never-printed-7f3a9c";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops-alerts";

fn auth_config(project: &str) -> String {
    format!(
        "project = \"{project}\"\n\n[auth]\nsecret_parameter = \"{PARAM}\"\nissuer = \"https://issuer.example\"\naudience = [\"web\", \"mobile\"]\ntoken_query_param = \"access_token\"\ntoken_source = \"either\"\n"
    )
}

async fn put_parameter(p: &Project, kind: aws_sdk_ssm::types::ParameterType) {
    aws_sdk_ssm::Client::new(&p.sdk().await)
        .put_parameter()
        .name(PARAM)
        .value(SECRET)
        .r#type(kind)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_ssm_secret_is_checked_before_any_write_and_only_its_name_is_deployed() {
    use aws_sdk_ssm::types::ParameterType;
    let p = Project::new("petinsure");
    p.write_config(&auth_config("petinsure"));

    // Missing: refused before the first write, naming the parameter and the fix.
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains(PARAM), "{out:?}");
    assert!(out.stderr.contains("does not exist"), "{out:?}");
    assert!(out.stderr.contains("--type SecureString"), "{out:?}");
    assert!(p.proxy.writes().is_empty(), "{:?}", p.proxy.writes());

    // A plain String is not a secret store.
    put_parameter(&p, ParameterType::String).await;
    p.proxy.clear();
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("not a SecureString"), "{out:?}");
    assert!(p.proxy.writes().is_empty());

    put_parameter(&p, ParameterType::SecureString).await;
    p.proxy.clear();
    p.up(&[]);

    let sdk = p.sdk().await;
    let config = aws_sdk_lambda::Client::new(&sdk)
        .get_function_configuration()
        .function_name("petinsure-websocket-handler")
        .send()
        .await
        .unwrap();
    let env = config.environment().unwrap().variables().unwrap();
    assert_eq!(env["AUTH_SECRET_PARAMETER"], PARAM);
    assert_eq!(env["AUTH_ISSUER"], "https://issuer.example");
    assert_eq!(env["AUTH_AUDIENCE"], "web,mobile");
    assert_eq!(env["AUTH_QUERY_PARAM"], "access_token");
    assert_eq!(env["AUTH_TOKEN_SOURCE"], "either");
    assert!(!env.contains_key("AUTH_JWKS_URL"));
    assert!(env.values().all(|v| !v.contains(SECRET)), "{env:?}");

    // The role may read that one parameter, and wsctl itself never read its value.
    let policy = aws_sdk_iam::Client::new(&sdk)
        .get_role_policy()
        .role_name("petinsure-websocket-lambda-role")
        .policy_name("petinsure-websocket-least-privilege")
        .send()
        .await
        .unwrap();
    let policy = project::decode_policy(&policy.policy_document);
    let ssm: Vec<&Value> = policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Action"].to_string().contains("ssm:"))
        .collect();
    assert_eq!(ssm.len(), 1, "{policy}");
    assert_eq!(ssm[0]["Action"], "ssm:GetParameter");
    assert_eq!(
        ssm[0]["Resource"],
        "arn:aws:ssm:us-east-1:123456789012:parameter/petinsure/ws-jwt-secret"
    );
    let calls = p.proxy.calls();
    assert!(
        calls
            .iter()
            .all(|c| c.operation != "GetParameter" && !c.body.contains(SECRET)),
        "{calls:?}"
    );

    // status checks the parameter too, and a second up changes nothing.
    let out = p.wsctl(&["status", "--output", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let check = out.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "jwt_secret_usable")
        .cloned()
        .expect("the secret check");
    assert_eq!(check["ok"], true, "{check}");
    p.proxy.clear();
    p.up(&[]);
    assert!(p.proxy.writes().is_empty(), "{:?}", p.proxy.writes());
}

async fn describe_alarm(p: &Project) -> Option<aws_sdk_cloudwatch::types::MetricAlarm> {
    aws_sdk_cloudwatch::Client::new(&p.sdk().await)
        .describe_alarms()
        .alarm_names("petinsure-websocket-errors")
        .send()
        .await
        .unwrap()
        .metric_alarms()
        .first()
        .cloned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_errors_alarm_is_created_converged_removed_with_the_config_and_by_down() {
    let p = Project::new("petinsure");
    let with_alarm = |threshold: u32| {
        format!(
            "project = \"petinsure\"\n\n[alarm]\nsns_topic_arn = \"{TOPIC}\"\nerrors_threshold = {threshold}\nperiod_seconds = 60\nevaluation_periods = 2\n"
        )
    };
    p.write_config(&with_alarm(5));
    p.up(&[]);
    let alarm = describe_alarm(&p).await.expect("the alarm exists");
    assert_eq!(alarm.namespace(), Some("AWS/Lambda"));
    assert_eq!(alarm.metric_name(), Some("Errors"));
    assert_eq!(alarm.dimensions()[0].name(), Some("FunctionName"));
    assert_eq!(
        alarm.dimensions()[0].value(),
        Some("petinsure-websocket-handler")
    );
    assert_eq!(alarm.threshold(), Some(5.0));
    assert_eq!(alarm.period(), Some(60));
    assert_eq!(alarm.evaluation_periods(), Some(2));
    assert_eq!(alarm.alarm_actions(), [TOPIC]);
    let tags = aws_sdk_cloudwatch::Client::new(&p.sdk().await)
        .list_tags_for_resource()
        .resource_arn(alarm.alarm_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags()
            .iter()
            .any(|t| t.key() == Some("ManagedBy") && t.value() == Some("wsctl")),
        "{tags:?}"
    );

    // Converged: nothing to write. One changed value: one write.
    p.proxy.clear();
    let out = p.up(&[]);
    assert!(out.stdout.contains("No changes"), "{out:?}");
    assert!(p.proxy.writes().is_empty(), "{:?}", p.proxy.writes());
    p.write_config(&with_alarm(9));
    p.proxy.clear();
    p.up(&[]);
    let writes: Vec<String> = p
        .proxy
        .writes()
        .iter()
        .map(|c| c.operation.clone())
        .collect();
    assert_eq!(writes, ["PutMetricAlarm"]);
    assert_eq!(describe_alarm(&p).await.unwrap().threshold(), Some(9.0));

    // status sees it; drift shows.
    let out = p.wsctl(&["status", "--output", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let res = out.json()["resources"].clone();
    let alarm_status = res
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["resource"] == "alarm")
        .cloned()
        .unwrap();
    assert_eq!(alarm_status["state"], "present", "{alarm_status}");

    // Turned off in the config: up deletes it.
    p.write_config("project = \"petinsure\"\n");
    let out = p.up(&["--output", "json"]);
    let report = out.json();
    assert!(
        report["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resource"] == "alarm" && r["action"] == "delete"),
        "{report}"
    );
    assert!(describe_alarm(&p).await.is_none());

    // And down removes it with the rest.
    p.write_config(&with_alarm(1));
    p.up(&[]);
    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("alarm"), "{out:?}");
    assert!(describe_alarm(&p).await.is_none());
}

/// Form fields of a query-protocol body (IAM), URL-decoded.
fn form(body: &str) -> Vec<(String, String)> {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| {
            let d = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (d(k), d(v))
        })
        .collect()
}

/// A resource is allowed one wildcard only: the connection id at the end of a
/// `.../POST/@connections/*` or `.../DELETE/@connections/*` ARN, or the route at the end of the
/// permission's `{api}/{stage}/*`.
fn assert_scoped_resource(r: &str, api_id: &str, context: &str) {
    assert_ne!(r, "*", "wildcard resource in {context}");
    let allowed_tails = [
        format!("{api_id}/prod/POST/@connections/*"),
        format!("{api_id}/prod/DELETE/@connections/*"),
        format!("{api_id}/prod/*"),
    ];
    let stripped = allowed_tails
        .iter()
        .find_map(|t| r.strip_suffix(t.as_str()))
        .unwrap_or(r);
    assert!(
        !stripped.contains('*') && !stripped.contains('?'),
        "wildcard in resource {r} ({context})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_policy_wsctl_writes_names_its_actions_and_resources() {
    use aws_sdk_ssm::types::ParameterType;
    let p = Project::new("petinsure");
    p.write_config(&format!(
        "{}\n[alarm]\nsns_topic_arn = \"{TOPIC}\"\n",
        auth_config("petinsure").replace(
                "[auth]\n",
                "[auth]\nsecret_kms_key_arn = \"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab\"\n"
            )
    ));
    put_parameter(&p, ParameterType::SecureString).await;
    p.proxy.clear();
    let out = p.up(&["--output", "json"]);
    let api_id = out.json()["ids"]["api_id"].as_str().unwrap().to_owned();

    let mut documents = 0;
    let mut managed = Vec::new();
    for call in p.proxy.writes() {
        match (call.service.as_str(), call.operation.as_str()) {
            ("iam", "CreateRole" | "UpdateAssumeRolePolicy" | "PutRolePolicy") => {
                for (k, v) in form(&call.body) {
                    if k != "PolicyDocument" && k != "AssumeRolePolicyDocument" {
                        continue;
                    }
                    documents += 1;
                    let doc: Value = serde_json::from_str(&v).unwrap();
                    for s in project::statements(&doc) {
                        assert_eq!(s["Effect"], "Allow", "{doc}");
                        assert!(s.get("NotAction").is_none() && s.get("NotResource").is_none());
                        for a in string_list(&s["Action"]) {
                            assert!(
                                !a.contains('*') && !a.contains('?'),
                                "wildcard action {a} in {doc}"
                            );
                        }
                        // A trust policy names a principal, not resources.
                        let resources = s.get("Resource").map(string_list).unwrap_or_default();
                        for r in resources {
                            assert_scoped_resource(&r, &api_id, &doc.to_string());
                        }
                        if k == "AssumeRolePolicyDocument" {
                            assert_eq!(s["Principal"]["Service"], "lambda.amazonaws.com");
                        }
                    }
                }
            }
            ("iam", "AttachRolePolicy") => {
                managed.extend(
                    form(&call.body)
                        .into_iter()
                        .filter(|(k, _)| k == "PolicyArn")
                        .map(|(_, v)| v),
                );
            }
            ("lambda", op) if op.contains("/policy") => {
                let body: Value = serde_json::from_str(&call.body).unwrap();
                assert_eq!(body["Action"], "lambda:InvokeFunction", "{body}");
                assert_eq!(body["Principal"], "apigateway.amazonaws.com", "{body}");
                assert_scoped_resource(body["SourceArn"].as_str().unwrap(), &api_id, &call.body);
                documents += 1;
            }
            _ => {}
        }
    }
    // Trust policy, inline policy, Lambda permission.
    assert!(
        documents >= 3,
        "{documents} documents seen: {:?}",
        p.proxy.writes()
    );
    // The one wildcard policy allowed: AWS's managed logging policy.
    assert_eq!(
        managed,
        ["arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_and_secrets_never_appear_in_output_logs_or_errors() {
    let p = Project::new("petinsure");
    let key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY42";
    let token = "FwoGZXIvYXdzSESSIONTOKENabcdef0123456789";
    let env = [
        ("AWS_SECRET_ACCESS_KEY", key),
        ("AWS_SESSION_TOKEN", token),
        ("WSCTL_LOG", "trace"),
    ];
    let mut seen = Vec::new();
    let mut run = |args: &[&str]| {
        let out = p.wsctl_env(args, &env);
        seen.push(format!("{args:?}\n{}\n{}", out.stdout, out.stderr));
        out
    };
    let out = run(&["up", "--handler-zip", "handler.zip", "--output", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    // The SDK's trace logs did run (they are where a session token would leak).
    assert!(out.stderr.contains("aws_"), "no SDK logs at trace level");
    run(&["status", "--output", "json"]);
    run(&["connections", "--output", "json"]);
    run(&["logs", "--since", "5m"]);
    // An AWS error on the way: the message is printed, the credentials are not.
    p.proxy.fail_echoing_session_token("DeleteTable", 1);
    let out = run(&["down", "--yes", "--output", "json"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("[REDACTED]"), "{out:?}");
    assert!(out.stderr.contains("DeleteTable"), "{out:?}");
    assert!(
        out.stderr
            .contains("request with token [REDACTED] was refused"),
        "{out:?}"
    );
    for text in &seen {
        assert!(!text.contains(key), "the secret key was printed:\n{text}");
        assert!(
            !text.contains(token),
            "the session token was printed:\n{text}"
        );
    }
}
