//! #8: `up`, `status` and `down` under injected faults, kill -9 at every write, and two `up`
//! runs at once. The real binary against moto, through the fault-injecting proxy.
//!
//! Figures and the commands that reproduce them: docs/RELIABILITY.md. The number of seeded
//! runs is `WSCTL_CHAOS_RUNS` (default 50) and the fault rate `WSCTL_CHAOS_RATE` (default 0.2).

use support::project;
use support::proxy;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use project::Project;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ops-alerts";

fn config(project: &str) -> String {
    format!("project = \"{project}\"\n\n[api]\naccess_log = true\nmanage_account_log_role = true\n\n[alarm]\nsns_topic_arn = \"{TOPIC}\"\n")
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The ids of the APIs named as `project`'s.
async fn api_ids(apigw: &aws_sdk_apigatewayv2::Client, project: &str) -> Vec<String> {
    apigw
        .get_apis()
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .filter(|a| a.name() == Some(&format!("{project}-websocket")))
        .filter_map(|a| a.api_id().map(str::to_owned))
        .collect()
}

/// Everything wsctl manages for `project`, counted straight from moto (no proxy, no faults).
#[derive(Debug, Default, PartialEq, Eq)]
struct Census {
    apis: usize,
    integrations: usize,
    routes: BTreeMap<String, usize>,
    stages: usize,
    permissions: usize,
    functions: usize,
    roles: usize,
    inline_policies: usize,
    attached_policies: usize,
    /// The stack's tables: connections, subscriptions, broadcasts.
    tables: usize,
    /// The stack lock's table: made by the first `up`, removed by `down`.
    lock_tables: usize,
    log_groups: usize,
    alarms: usize,
    /// API Gateway's access log group of the stage.
    access_log_groups: usize,
    dashboards: usize,
}

async fn census(p: &Project, project: &str) -> Census {
    let sdk = p.sdk().await;
    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
    let mut c = Census::default();
    let apis = api_ids(&apigw, project).await;
    c.apis = apis.len();
    for id in &apis {
        c.integrations += apigw
            .get_integrations()
            .api_id(id)
            .send()
            .await
            .unwrap()
            .items()
            .len();
        for r in apigw.get_routes().api_id(id).send().await.unwrap().items() {
            *c.routes
                .entry(r.route_key().unwrap_or_default().to_owned())
                .or_default() += 1;
        }
        c.stages += apigw
            .get_stages()
            .api_id(id)
            .send()
            .await
            .unwrap()
            .items()
            .len();
    }
    let function = format!("{project}-websocket-handler");
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    if lambda
        .get_function()
        .function_name(&function)
        .send()
        .await
        .is_ok()
    {
        c.functions = 1;
        if let Ok(policy) = lambda.get_policy().function_name(&function).send().await {
            let doc: serde_json::Value =
                serde_json::from_str(policy.policy().unwrap_or("{}")).unwrap();
            c.permissions = doc["Statement"].as_array().map_or(0, Vec::len);
        }
    }
    let iam = aws_sdk_iam::Client::new(&sdk);
    let role = format!("{project}-websocket-lambda-role");
    if iam.get_role().role_name(&role).send().await.is_ok() {
        c.roles = 1;
        c.inline_policies = iam
            .list_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap()
            .policy_names()
            .len();
        c.attached_policies = iam
            .list_attached_role_policies()
            .role_name(&role)
            .send()
            .await
            .unwrap()
            .attached_policies()
            .len();
    }
    let tables = aws_sdk_dynamodb::Client::new(&sdk)
        .list_tables()
        .send()
        .await
        .unwrap();
    let count = |name: String| tables.table_names().iter().filter(|t| **t == name).count();
    c.tables = ["connections", "subscriptions", "broadcasts"]
        .into_iter()
        .map(|t| count(format!("{project}_ws_{t}")))
        .sum();
    c.lock_tables = count(format!("{project}_wsctl_lock"));
    c.log_groups = aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/lambda/{function}"))
        .send()
        .await
        .unwrap()
        .log_groups()
        .len();
    c.alarms = aws_sdk_cloudwatch::Client::new(&sdk)
        .describe_alarms()
        .alarm_names(format!("{project}-websocket-errors"))
        .send()
        .await
        .unwrap()
        .metric_alarms()
        .len();
    c.access_log_groups = aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .describe_log_groups()
        .log_group_name_prefix(format!("/aws/apigateway/{project}-websocket"))
        .send()
        .await
        .unwrap()
        .log_groups()
        .len();
    c.dashboards = aws_sdk_cloudwatch::Client::new(&sdk)
        .list_dashboards()
        .dashboard_name_prefix(format!("{project}-websocket"))
        .send()
        .await
        .unwrap()
        .dashboard_entries()
        .len();
    c
}

fn one_of_each() -> Census {
    Census {
        apis: 1,
        integrations: 1,
        routes: ["$connect", "$default", "$disconnect"]
            .into_iter()
            .map(|k| (k.to_owned(), 1))
            .collect(),
        stages: 1,
        permissions: 1,
        functions: 1,
        roles: 1,
        inline_policies: 1,
        attached_policies: 1,
        tables: 3,
        lock_tables: 1,
        log_groups: 1,
        alarms: 1,
        access_log_groups: 1,
        dashboards: 1,
    }
}

/// One seeded run: `up` under faults converges to exactly one of everything, `status` (no
/// faults) is healthy, `down` under faults leaves nothing. Returns the faults injected.
async fn seeded_run(p: &Project, seed: u64, rate: f64) -> BTreeMap<proxy::Fault, u64> {
    let project = format!("chaos{seed}");
    p.write_config(&config(&project));
    p.proxy.chaos(seed, rate, Duration::from_millis(1500));
    let out = p.wsctl(&["up", "--handler-zip", "handler.zip", "--yes"]);
    let mut injected = p.proxy.calm();
    assert_eq!(out.code, 0, "seed {seed}: up failed under faults: {out:?}");
    assert_eq!(
        census(p, &project).await,
        one_of_each(),
        "seed {seed}: {out:?}"
    );
    let status = p.wsctl(&["status"]);
    assert_eq!(status.code, 0, "seed {seed}: {status:?}");

    p.proxy.chaos(seed ^ 0xD0D0, rate, Duration::ZERO);
    let out = p.wsctl(&["down", "--yes"]);
    for (k, v) in p.proxy.calm() {
        *injected.entry(k).or_default() += v;
    }
    assert_eq!(
        out.code, 0,
        "seed {seed}: down failed under faults: {out:?}"
    );
    assert_eq!(
        census(p, &project).await,
        Census::default(),
        "seed {seed}: {out:?}"
    );
    injected
}

#[tokio::test(flavor = "multi_thread")]
async fn seeded_runs_at_a_20_percent_fault_rate_converge_and_tear_down() {
    let runs: u64 = env_or("WSCTL_CHAOS_RUNS", 50);
    let rate: f64 = env_or("WSCTL_CHAOS_RATE", 0.2);
    let first: u64 = env_or("WSCTL_CHAOS_FIRST_SEED", 1);
    // Four projects at a time, each with its own moto and proxy.
    let workers = 4u64;
    let started = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        handles.push(tokio::spawn(async move {
            let p = Project::new("chaos");
            let mut total: BTreeMap<proxy::Fault, u64> = BTreeMap::new();
            let mut seed = first + w;
            while seed < first + runs {
                for (k, v) in seeded_run(&p, seed, rate).await {
                    *total.entry(k).or_default() += v;
                }
                seed += workers;
            }
            total
        }));
    }
    let mut total: BTreeMap<proxy::Fault, u64> = BTreeMap::new();
    for h in handles {
        for (k, v) in h.await.unwrap() {
            *total.entry(k).or_default() += v;
        }
    }
    eprintln!(
        "{runs} seeded runs at rate {rate}: all converged and tore down in {:.1} s; faults injected: {total:?}",
        started.elapsed().as_secs_f64()
    );
    // Every kind of fault was exercised.
    for kind in [
        proxy::Fault::Throttle,
        proxy::Fault::Status500,
        proxy::Fault::Status503,
        proxy::Fault::DropBefore,
        proxy::Fault::DropAfter,
        proxy::Fault::Delay,
        proxy::Fault::RoleNotAssumable,
    ] {
        assert!(
            total.get(&kind).copied().unwrap_or(0) > 0 || runs < 5,
            "{kind:?} never injected: {total:?}"
        );
    }
}

/// Runs `wsctl up --handler-zip zip` and SIGKILLs it once `after` writes have been answered.
fn up_killed_after(p: &Project, after: usize, zip: &str) -> bool {
    let mut child = p
        .command(&["up", "--handler-zip", zip, "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    p.proxy.kill_after_writes(child.id(), after);
    let status = child.wait().unwrap();
    let killed = p.proxy.killed();
    // Disarm, whatever happened.
    p.proxy.kill_after_writes(0, usize::MAX);
    assert!(
        killed || status.success(),
        "up exited on its own with {status} before write {after}"
    );
    killed
}

/// What a person might do by hand to a deployed stack (the runbook's broad policies among
/// it): eight things `up` must repair.
async fn drift(p: &Project, project: &str) {
    let sdk = p.sdk().await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let role = format!("{project}-websocket-lambda-role");
    iam.attach_role_policy()
        .role_name(&role)
        .policy_arn("arn:aws:iam::aws:policy/AmazonDynamoDBFullAccess")
        .send()
        .await
        .unwrap();
    iam.put_role_policy()
        .role_name(&role)
        .policy_name("ApiGatewayManagement")
        .policy_document(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"execute-api:ManageConnections","Resource":"*"}]}"#)
        .send()
        .await
        .unwrap();
    let apigw = aws_sdk_apigatewayv2::Client::new(&sdk);
    let api = api_ids(&apigw, project).await.remove(0);
    let route = apigw
        .get_routes()
        .api_id(&api)
        .send()
        .await
        .unwrap()
        .items()
        .iter()
        .find(|r| r.route_key() == Some("$default"))
        .and_then(|r| r.route_id().map(str::to_owned))
        .unwrap();
    apigw
        .delete_route()
        .api_id(&api)
        .route_id(route)
        .send()
        .await
        .unwrap();
    aws_sdk_lambda::Client::new(&sdk)
        .remove_permission()
        .function_name(format!("{project}-websocket-handler"))
        .statement_id("wsctl-apigateway-invoke")
        .send()
        .await
        .unwrap();
    aws_sdk_dynamodb::Client::new(&sdk)
        .update_time_to_live()
        .table_name(format!("{project}_ws_connections"))
        .time_to_live_specification(
            aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                .attribute_name("ttl")
                .enabled(false)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    aws_sdk_cloudwatchlogs::Client::new(&sdk)
        .delete_retention_policy()
        .log_group_name(format!("/aws/lambda/{project}-websocket-handler"))
        .send()
        .await
        .unwrap();
    // The dashboard deleted and the stage's access log turned off by hand.
    aws_sdk_cloudwatch::Client::new(&sdk)
        .delete_dashboards()
        .dashboard_names(format!("{project}-websocket"))
        .send()
        .await
        .unwrap();
    apigw
        .update_stage()
        .api_id(&api)
        .stage_name("prod")
        .access_log_settings(aws_sdk_apigatewayv2::types::AccessLogSettings::builder().build())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_after_any_write_then_up_again_converges_and_down_cleans_up() {
    let p = Project::new("kills");
    let out = p.wsctl(&["build", "--binary", "/bin/false", "--out", "handler2.zip"]);
    assert_eq!(out.code, 0, "{out:?}");
    // Three scenarios; the kill points are the writes each makes.
    // fresh: a new stack, alarm included.
    p.write_config(&config("countfresh"));
    p.proxy.clear();
    p.up(&["--yes"]);
    let fresh = p.proxy.writes().len();
    // update: every updatable setting of an existing stack changes, its code included.
    let changed = |project: &str| {
        format!(
            "project = \"{project}\"\n[function]\nmemory_mb = 512\ntimeout_seconds = 10\nlog_retention_days = 7\nallowed_origins = [\"https://app.example.com\"]\n[api]\nroute_selection_expression = \"$request.body.type\"\nthrottling_burst_limit = 50\nthrottling_rate_limit = 20.0\naccess_log = true\nlog_retention_days = 7\nexecution_log_level = \"ERROR\"\nmanage_account_log_role = true\n[alarm]\nsns_topic_arn = \"{TOPIC}\"\nerrors_threshold = 3\n[tags]\nTeam = \"platform\"\n"
        )
    };
    p.write_config(&changed("countfresh"));
    p.proxy.clear();
    p.up(&["--yes", "--handler-zip", "handler2.zip"]);
    let update = p.proxy.writes().len();
    // repair: a stack changed by hand.
    p.write_config(&config("countrepair"));
    p.up(&["--yes"]);
    drift(&p, "countrepair").await;
    p.proxy.clear();
    p.up(&["--yes"]);
    let repair = p.proxy.writes().len();
    assert!(
        fresh + update + repair >= 30,
        "{fresh} + {update} + {repair} writes: fewer than 30 kill points"
    );

    // Each kill point twice: once followed by `up` (which must converge), once followed
    // straight by `down` (which must leave nothing).
    let mut points = 0;
    let mut downs = 0;
    for (scenario, total) in [("fresh", fresh), ("update", update), ("repair", repair)] {
        for k in 1..=total {
            for then_down in [false, true] {
                let project = format!("kill{scenario}{k}{}", if then_down { "d" } else { "" });
                p.write_config(&config(&project));
                let zip = match scenario {
                    "update" => {
                        p.up(&["--yes"]);
                        p.write_config(&changed(&project));
                        "handler2.zip"
                    }
                    "repair" => {
                        p.up(&["--yes"]);
                        drift(&p, &project).await;
                        "handler.zip"
                    }
                    _ => "handler.zip",
                };
                assert!(
                    up_killed_after(&p, k, zip),
                    "{scenario}: the run finished before write {k}"
                );
                if then_down {
                    downs += 1;
                    let out = p.wsctl(&["down", "--yes"]);
                    assert_eq!(
                        out.code, 0,
                        "{scenario}, killed after write {k}, then down: {out:?}"
                    );
                    assert_eq!(census(&p, &project).await, Census::default(), "{out:?}");
                    continue;
                }
                points += 1;
                let out = p.up(&["--yes", "--handler-zip", zip]);
                assert_eq!(
                    census(&p, &project).await,
                    one_of_each(),
                    "{scenario}, killed after write {k}: {out:?}"
                );
                let status = p.wsctl(&["status"]);
                assert_eq!(status.code, 0, "{scenario} {k}: {status:?}");
                p.proxy.clear();
                let again = p.up(&["--yes", "--handler-zip", zip]);
                assert!(
                    p.proxy.writes().is_empty(),
                    "{scenario} {k}: not converged: {:?}\n{again:?}",
                    p.proxy.writes()
                );
                let out = p.wsctl(&["down", "--yes"]);
                assert_eq!(out.code, 0, "{out:?}");
                assert_eq!(census(&p, &project).await, Census::default());
            }
        }
    }
    assert!(points >= 30);
    eprintln!(
        "kill -9 at {points} points ({fresh} writes fresh, {update} on update, {repair} on repair): up converged every time; down from each killed state ({downs}) left nothing"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_ups_at_once_make_one_stack() {
    let p = Project::new("twins");
    let mut waited = 0;
    for round in 0..5 {
        let project = format!("twins{round}");
        p.write_config(&config(&project));
        let spawn = || {
            p.command(&["up", "--handler-zip", "handler.zip", "--yes"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let text = |o: &std::process::Output| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        };
        assert!(a.status.success(), "{}", text(&a));
        assert!(b.status.success(), "{}", text(&b));
        assert_eq!(census(&p, &project).await, one_of_each(), "round {round}");
        if text(&a).contains("waiting for") || text(&b).contains("waiting for") {
            waited += 1;
        }
    }
    // The runs did overlap (so the lock, not luck, kept them apart).
    assert!(waited > 0, "no run ever waited for the other");
}
