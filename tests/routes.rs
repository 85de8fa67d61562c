//! `[[route]]` against moto: the integrations, routes, route response, authorizer and
//! permissions `up` makes for a team's own function and HTTP backend, exactly; a second `up`
//! writes nothing; `status` names each kind of drift; routes that leave the file are removed
//! with what only they used; `down` leaves nothing of wsctl's on the team's function.

use std::collections::HashMap;

use aws_sdk_apigatewayv2::Client as Apigw;
use serde_json::Value;
use support::project::{decode_policy, statements, Project};

const BACKEND_SECRET: &str = "backend-secret-value-never-printed-0123";

const BASE: &str = r#"project = "chat"

[auth]
secret_parameter = "/chat/ws-jwt-secret"
claims = ["org_id"]

[api]
backend_secret_parameter = "/chat/ws-backend-secret"
"#;

const SEND: &str = r#"
[[route]]
key = "sendmessage"
function = "chat-send"
two_way = true
"#;

const ORDER: &str = r#"
[[route]]
key = "order.update"
http = "https://api.example.com/ws/order-update"
timeout_ms = 10000
"#;

async fn put_secret(p: &Project, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(&p.sdk().await)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

/// The team's own function, deployed outside wsctl (with the stack's role, which moto needs
/// to exist).
async fn create_team_function(p: &Project) -> String {
    let sdk = p.sdk().await;
    let role = aws_sdk_iam::Client::new(&sdk)
        .get_role()
        .role_name("chat-websocket-lambda-role")
        .send()
        .await
        .unwrap()
        .role
        .unwrap()
        .arn;
    aws_sdk_lambda::Client::new(&sdk)
        .create_function()
        .function_name("chat-send")
        .runtime(aws_sdk_lambda::types::Runtime::Providedal2023)
        .handler("bootstrap")
        .role(role)
        .code(
            aws_sdk_lambda::types::FunctionCode::builder()
                .zip_file(aws_sdk_lambda::primitives::Blob::new(
                    std::fs::read(&p.zip).unwrap(),
                ))
                .build(),
        )
        .send()
        .await
        .unwrap()
        .function_arn
        .unwrap()
}

async fn api_id(apigw: &Apigw) -> String {
    apigw.get_apis().send().await.unwrap().items()[0]
        .api_id
        .clone()
        .unwrap()
}

/// Route key to (route, its integration).
async fn routes(
    apigw: &Apigw,
    api: &str,
) -> HashMap<
    String,
    (
        aws_sdk_apigatewayv2::types::Route,
        Option<aws_sdk_apigatewayv2::types::Integration>,
    ),
> {
    let integrations = apigw.get_integrations().api_id(api).send().await.unwrap();
    apigw
        .get_routes()
        .api_id(api)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .map(|r| {
            let id = r
                .target
                .as_deref()
                .and_then(|t| t.strip_prefix("integrations/"));
            let i = integrations
                .items()
                .iter()
                .find(|i| i.integration_id.as_deref() == id)
                .cloned();
            (r.route_key.clone().unwrap(), (r.clone(), i))
        })
        .collect()
}

async fn team_statements(p: &Project) -> Vec<Value> {
    match aws_sdk_lambda::Client::new(&p.sdk().await)
        .get_policy()
        .function_name("chat-send")
        .send()
        .await
    {
        Ok(out) => statements(&decode_policy(out.policy.as_deref().unwrap())),
        Err(_) => vec![],
    }
}

fn failed_checks(status: &Value) -> Vec<String> {
    status["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn routes_to_a_function_and_an_http_backend_converge_drift_and_go() {
    let p = Project::new("chat");
    put_secret(&p, "/chat/ws-jwt-secret", "jwt-secret-for-the-route-test").await;
    put_secret(&p, "/chat/ws-backend-secret", BACKEND_SECRET).await;
    p.write_config(BASE);
    p.up(&[]);
    let function_arn = create_team_function(&p).await;
    let sdk = p.sdk().await;
    let apigw = Apigw::new(&sdk);
    let api = api_id(&apigw).await;

    // A route to a function that does not exist is refused before any write.
    p.write_config(&format!("{BASE}{SEND}{ORDER}").replace("chat-send", "chat-missing"));
    p.proxy.clear();
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("route \"sendmessage\": function arn:aws:lambda:us-east-1:123456789012:function:chat-missing does not exist"), "{out:?}");
    assert!(p.proxy.writes().is_empty(), "{:#?}", p.proxy.writes());

    p.write_config(&format!("{BASE}{SEND}{ORDER}"));
    p.proxy.clear();
    let out = p.up(&["-o", "json"]);
    assert!(
        !out.stdout.contains(BACKEND_SECRET) && !out.stderr.contains(BACKEND_SECRET),
        "{out:?}"
    );
    let all = routes(&apigw, &api).await;

    // The function route: AWS_PROXY, two way, its permission scoped to the route.
    let (send, send_integration) = &all["sendmessage"];
    let i = send_integration
        .as_ref()
        .expect("sendmessage targets an integration");
    assert_eq!(i.integration_type.as_ref().unwrap().as_str(), "AWS_PROXY");
    assert_eq!(
        i.integration_uri.as_deref(),
        Some(format!("arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn}/invocations").as_str())
    );
    assert_eq!(
        (i.integration_method.as_deref(), i.timeout_in_millis),
        (Some("POST"), Some(29_000))
    );
    assert_eq!(
        send.route_response_selection_expression.as_deref(),
        Some("$default")
    );
    let responses = apigw
        .get_route_responses()
        .api_id(&api)
        .route_id(send.route_id.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = responses
        .items()
        .iter()
        .filter_map(|r| r.route_response_key.as_deref())
        .collect();
    assert_eq!(keys, ["$default"]);
    let mine: Vec<Value> = team_statements(&p)
        .await
        .into_iter()
        .filter(|s| {
            s["Sid"]
                .as_str()
                .unwrap_or("")
                .starts_with("wsctl-chat-route-")
        })
        .collect();
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["Principal"]["Service"], "apigateway.amazonaws.com");
    assert_eq!(
        mine[0]["Condition"]["ArnLike"]["AWS:SourceArn"],
        format!("arn:aws:execute-api:us-east-1:123456789012:{api}/prod/sendmessage")
    );

    // The HTTP route: HTTP_PROXY POST, one way, its timeout, and who is talking as headers.
    let (order, order_integration) = &all["order.update"];
    let i = order_integration.as_ref().unwrap();
    assert_eq!(i.integration_type.as_ref().unwrap().as_str(), "HTTP_PROXY");
    assert_eq!(
        i.integration_uri.as_deref(),
        Some("https://api.example.com/ws/order-update")
    );
    assert_eq!(
        (i.integration_method.as_deref(), i.timeout_in_millis),
        (Some("POST"), Some(10_000))
    );
    assert!(order
        .route_response_selection_expression
        .as_deref()
        .unwrap_or("")
        .is_empty());
    let params: HashMap<String, String> =
        i.request_parameters.clone().unwrap().into_iter().collect();
    let expected: HashMap<String, String> = [
        ("X-Wsctl-Connection-Id", "context.connectionId"),
        ("X-Wsctl-Request-Id", "context.requestId"),
        ("X-Wsctl-Route-Key", "context.routeKey"),
        ("X-Wsctl-User", "context.authorizer.principalId"),
        ("X-Wsctl-Claims", "context.authorizer.claims"),
    ]
    .into_iter()
    .map(|(h, v)| (format!("integration.request.header.{h}"), v.to_owned()))
    .chain([(
        "integration.request.header.X-Wsctl-Secret".to_owned(),
        format!("'{BACKEND_SECRET}'"),
    )])
    .collect();
    assert_eq!(params, expected);

    // $connect behind the authorizer, which the function serves.
    let (connect, _) = &all["$connect"];
    assert_eq!(
        connect.authorization_type.as_ref().unwrap().as_str(),
        "CUSTOM"
    );
    let authorizer = apigw
        .get_authorizer()
        .api_id(&api)
        .authorizer_id(connect.authorizer_id.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        authorizer.name.as_deref(),
        Some("chat-websocket-authorizer")
    );
    assert_eq!(
        authorizer.identity_source(),
        ["route.request.querystring.token"]
    );

    // Converged: nothing written again; status healthy with a check per route.
    p.proxy.clear();
    let out = p.up(&[]);
    assert!(out.stdout.contains("No changes"), "{out:?}");
    assert!(p.proxy.writes().is_empty(), "{:#?}", p.proxy.writes());
    let status = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(status.code, 0, "{status:?}");
    let report = status.json();
    assert_eq!(failed_checks(&report), Vec::<String>::new());
    for name in [
        "route:sendmessage",
        "route_can_invoke_target:sendmessage",
        "route_response:sendmessage",
        "route_target_exists:sendmessage",
        "route:order.update",
        "route_can_invoke_target:order.update",
    ] {
        assert!(
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["name"] == name),
            "{name}"
        );
    }

    // Drift: a deleted route, a wrong mapping, a removed permission. status names each (exit 3).
    apigw
        .delete_route()
        .api_id(&api)
        .route_id(send.route_id.as_deref().unwrap())
        .send()
        .await
        .unwrap();
    let mut wrong = params.clone();
    wrong.insert(
        "integration.request.header.X-Wsctl-Connection-Id".into(),
        "context.requestId".into(),
    );
    apigw
        .update_integration()
        .api_id(&api)
        .integration_id(i.integration_id.as_deref().unwrap())
        .set_request_parameters(Some(wrong))
        .send()
        .await
        .unwrap();
    aws_sdk_lambda::Client::new(&sdk)
        .remove_permission()
        .function_name("chat-send")
        .statement_id(mine[0]["Sid"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let status = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(status.code, 3, "{status:?}");
    let failed = failed_checks(&status.json());
    for name in [
        "route:sendmessage",
        "route_can_invoke_target:sendmessage",
        "route:order.update",
    ] {
        assert!(
            failed.contains(&name.to_owned()),
            "{name} not in {failed:?}"
        );
    }
    let text = p.wsctl(&["status"]);
    assert!(
        text.stdout.contains("request_parameters.integration.request.header.X-Wsctl-Connection-Id: is context.requestId, config says context.connectionId"),
        "{}",
        text.stdout
    );
    p.up(&[]);
    let status = p.wsctl(&["status", "-o", "json"]);
    assert_eq!(status.code, 0, "{status:?}");

    // A route that leaves the file goes with its integration and permission; the function stays.
    p.write_config(&format!("{BASE}{ORDER}"));
    p.up(&[]);
    let all = routes(&apigw, &api).await;
    assert!(!all.contains_key("sendmessage"), "{:?}", all.keys());
    let integrations = apigw.get_integrations().api_id(&api).send().await.unwrap();
    assert!(
        !integrations.items().iter().any(|i| i
            .integration_uri
            .as_deref()
            .unwrap_or("")
            .contains("chat-send")),
        "the function's integration went with its route"
    );
    assert!(!team_statements(&p)
        .await
        .iter()
        .any(|s| s["Sid"].as_str().unwrap_or("").starts_with("wsctl-")));

    // down: nothing of wsctl's is left on the team's function, which stays.
    p.write_config(&format!("{BASE}{SEND}{ORDER}"));
    p.up(&[]);
    assert_eq!(team_statements(&p).await.len(), 1);
    let out = p.wsctl(&["down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(team_statements(&p).await.is_empty());
    aws_sdk_lambda::Client::new(&sdk)
        .get_function()
        .function_name("chat-send")
        .send()
        .await
        .expect("the team's function stays");
    assert!(apigw.get_apis().send().await.unwrap().items().is_empty());
}
