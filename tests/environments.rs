//! Several environments from one project file (`[env.NAME]`, `--env`, `WSCTL_ENV`): separate
//! stacks named `{project}-{env}-...` side by side with the runbook-named one, each with its
//! overrides; unknown environments and keys refused; `wsctl dev --env` using the environment.

use support::dev;
use support::project;

use project::Project;

const CONFIG: &str = r#"project = "envs"

[function]
memory_mb = 256

[env.staging.function]
memory_mb = 512

[env.staging.tags]
CostCenter = "qa"

[env.prod.api]
stage = "live"
throttling_rate_limit = 5000.0

[env.prod.dashboard]
enabled = false
"#;

async fn memory(p: &Project, function: &str) -> Option<i32> {
    let sdk = p.sdk().await;
    aws_sdk_lambda::Client::new(&sdk)
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .ok()
        .and_then(|f| f.memory_size)
}

async fn tables(p: &Project) -> Vec<String> {
    let sdk = p.sdk().await;
    let mut t = aws_sdk_dynamodb::Client::new(&sdk)
        .list_tables()
        .send()
        .await
        .unwrap()
        .table_names()
        .to_vec();
    t.sort();
    t
}

#[tokio::test(flavor = "multi_thread")]
async fn each_environment_is_a_stack_of_its_own_with_its_overrides() {
    let p = Project::new("envs");
    p.write_config(CONFIG);

    // Without --env: today's names, the file's own values.
    let plain = p.up(&["-o", "json"]).json();
    // --env staging, and WSCTL_ENV=prod: two more stacks.
    let staging = p.up(&["--env", "staging", "-o", "json"]).json();
    let out = p.wsctl_env(
        &["up", "--handler-zip", "handler.zip", "-o", "json"],
        &[("WSCTL_ENV", "prod")],
    );
    assert_eq!(out.code, 0, "{out:?}");
    let prod = out.json();

    assert_eq!(memory(&p, "envs-websocket-handler").await, Some(256));
    assert_eq!(
        memory(&p, "envs-staging-websocket-handler").await,
        Some(512)
    );
    assert_eq!(memory(&p, "envs-prod-websocket-handler").await, Some(256));
    let ids: Vec<&str> = [&plain, &staging, &prod]
        .iter()
        .map(|r| r["ids"]["api_id"].as_str().unwrap())
        .collect();
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    assert!(prod["urls"]["websocket"]
        .as_str()
        .unwrap()
        .ends_with("/live"));
    assert!(staging["urls"]["websocket"]
        .as_str()
        .unwrap()
        .ends_with("/prod"));
    let all = tables(&p).await;
    for t in [
        "envs_ws_connections",
        "envs_staging_ws_connections",
        "envs_prod_ws_connections",
        "envs_staging_ws_subscriptions",
        "envs_prod_ws_broadcasts",
        "envs_staging_wsctl_lock",
    ] {
        assert!(all.contains(&t.to_owned()), "{t} missing from {all:?}");
    }

    // The environment's tags, and its own dashboard setting.
    let sdk = p.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let arn = staging["ids"]["function_arn"].as_str().unwrap();
    let tags = lambda
        .list_tags()
        .resource(arn)
        .send()
        .await
        .unwrap()
        .tags
        .unwrap();
    assert_eq!(tags.get("Environment").map(String::as_str), Some("staging"));
    assert_eq!(tags.get("CostCenter").map(String::as_str), Some("qa"));
    let cw = aws_sdk_cloudwatch::Client::new(&sdk);
    assert!(cw
        .get_dashboard()
        .dashboard_name("envs-staging-websocket")
        .send()
        .await
        .is_ok());
    assert!(cw
        .get_dashboard()
        .dashboard_name("envs-prod-websocket")
        .send()
        .await
        .is_err());

    // Each is converged and healthy on its own; a second up of one writes nothing.
    for env in [None, Some("staging"), Some("prod")] {
        let mut args = vec!["status"];
        if let Some(e) = env {
            args.extend(["--env", e]);
        }
        let out = p.wsctl(&args);
        assert_eq!(out.code, 0, "{env:?}: {out:?}");
        // The report names the environment it is about.
        let header = match env {
            Some(e) => format!("Project envs (environment {e}) in us-east-1"),
            None => "Project envs in us-east-1".to_owned(),
        };
        assert!(out.stdout.starts_with(&header), "{env:?}: {out:?}");
    }
    assert_eq!(staging["env"], "staging");
    assert!(plain.get("env").is_none(), "{plain}");
    p.proxy.clear();
    p.up(&["--env", "staging"]);
    assert!(
        p.proxy.writes().iter().all(|c| c.on_lock_table()),
        "{:#?}",
        p.proxy.writes()
    );

    // What a backend of the staging stack needs, as JSON and as dotenv lines.
    let out = p.wsctl(&["--env", "staging", "outputs", "-o", "json"]);
    assert_eq!(out.code, 0, "{out:?}");
    let o = out.json();
    assert_eq!(o["function_name"], "envs-staging-websocket-handler");
    assert_eq!(o["function_arn"], staging["ids"]["function_arn"]);
    assert_eq!(o["websocket_url"], staging["urls"]["websocket"]);
    assert_eq!(o["callback_url"], staging["urls"]["callback"]);
    assert_eq!(o["connections_table"], "envs_staging_ws_connections");
    assert_eq!(
        (o["region"].as_str(), o["env"].as_str()),
        (Some("us-east-1"), Some("staging"))
    );
    let out = p.wsctl(&["--env", "staging", "outputs", "--format", "env"]);
    assert_eq!(out.code, 0, "{out:?}");
    for line in [
        "WEBSOCKET_FUNCTION_NAME=envs-staging-websocket-handler".to_owned(),
        "CONNECTIONS_TABLE=envs_staging_ws_connections".to_owned(),
        "REGION_NAME=us-east-1".to_owned(),
        format!("WEBSOCKET_API_ID={}", ids[1]),
        format!(
            "WEBSOCKET_URL={}",
            staging["urls"]["websocket"].as_str().unwrap()
        ),
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "{line} missing: {out:?}"
        );
    }

    // down of one environment leaves the others.
    let out = p.wsctl(&["--env", "staging", "down", "--yes"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(memory(&p, "envs-staging-websocket-handler").await, None);
    assert_eq!(memory(&p, "envs-websocket-handler").await, Some(256));
    assert_eq!(memory(&p, "envs-prod-websocket-handler").await, Some(256));
    let all = tables(&p).await;
    assert!(
        !all.iter().any(|t| t.starts_with("envs_staging_")),
        "{all:?}"
    );
    assert!(all.contains(&"envs_ws_connections".to_owned()));
    assert_eq!(p.wsctl(&["status"]).code, 0);
    let out = p.wsctl(&["--env", "staging", "outputs"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("run `wsctl up` first"), "{out:?}");
}

#[test]
fn unknown_environments_and_keys_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = |text: &str, args: &[&str]| {
        std::fs::write(dir.path().join("wsctl.toml"), text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wsctl"))
            .args(args)
            .current_dir(dir.path())
            .env("AWS_REGION", "us-east-1")
            .env_remove("WSCTL_ENV")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(CONFIG, &["--env", "qa", "up", "--dry-run"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("wsctl.toml")
            && err.contains("no environment \"qa\"")
            && err.contains("prod, staging"),
        "{err}"
    );
    let (code, err) = run(
        "project = \"envs\"\n[env.staging.function]\nmemroy_mb = 512\n",
        &["--env", "staging", "up", "--dry-run"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("wsctl.toml") && err.contains("line 3") && err.contains("memroy_mb"),
        "{err}"
    );
    // A bad value in an environment is refused at its own line.
    let (code, err) = run(
        "project = \"envs\"\n[env.staging.function]\nmemory_mb = 64\n",
        &["--env", "staging", "up", "--dry-run"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("wsctl.toml:3") && err.contains("memory_mb"),
        "{err}"
    );
    let (code, err) = run(
        "project = \"envs\"\n[env.\"st ag\"]\n",
        &["up", "--dry-run"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("env.st ag"), "{err}");
    let (code, err) = run(
        "project = \"envs\"\n[env.staging]\nproject = \"other\"\n",
        &["up", "--dry-run"],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("project"), "{err}");
}

#[tokio::test]
async fn wsctl_dev_uses_the_environments_settings() {
    use futures::{SinkExt, StreamExt};
    let config = "project = \"envs\"\n[function]\nmax_client_message_bytes = 64\n[env.big.function]\nmax_client_message_bytes = 4096\n";
    let big = "x".repeat(1000);
    let message = format!(r#"{{"action":"ping","pad":"{big}"}}"#);
    for (env, accepted) in [(None, false), (Some("big"), true)] {
        let args: Vec<&str> = env.map(|e| vec!["--env", e]).unwrap_or_default();
        let dev = dev::Dev::start_with_config(Some(config), &args);
        let (mut ws, _) = tokio_tungstenite::connect_async(&dev.url).await.unwrap();
        ws.send(tokio_tungstenite::tungstenite::Message::text(
            message.clone(),
        ))
        .await
        .unwrap();
        let reply = ws.next().await.unwrap().unwrap();
        let text = reply.to_text().unwrap();
        assert_eq!(text.contains("pong"), accepted, "{env:?}: {text}");
    }
}
