//! Benchmark (not a test): process start to first response of the `bootstrap` binary under a
//! Lambda Runtime API emulator, and the warm per-invocation time.
//!
//!     cargo bench -p wsctl-handler --bench cold_start
//!
//! Each cold start spawns the release binary, queues one API Gateway `ping` message and times
//! spawn -> the function's POST of its response. Warm invocations then run back to back in one
//! process. The ping's pong goes to a local @connections stand-in, so no AWS is involved.
//!
//! With `LAMBDA_TASK_ROOT=DIR` (a folder holding the `catalogue.json` that `wsctl build` puts
//! in the zip), every start also loads and compiles that catalogue, as on Lambda.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::connections::Connections;
use support::runtime_api::RuntimeApi;

/// Lambda's longest timeout: the deadline each invocation is given.
const TIMEOUT: Duration = Duration::from_secs(900);

fn ping_event(id: u64) -> String {
    serde_json::json!({
        "requestContext": {
            "routeKey": "$default", "eventType": "MESSAGE", "messageId": format!("m{id}"),
            "stage": "prod", "connectedAt": 1_700_000_000_000i64, "requestTimeEpoch": 1_700_000_000_000i64,
            "identity": {"sourceIp": "192.0.2.1"}, "requestId": format!("r{id}"),
            "domainName": "abcd1234.execute-api.us-east-1.amazonaws.com", "connectionId": "AAAA1111=",
            "apiId": "abcd1234"
        },
        "body": "{\"action\":\"ping\"}",
        "isBase64Encoded": false
    })
    .to_string()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let cold_runs: usize = std::env::var("COLD_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let warm_runs: u64 = std::env::var("WARM_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let rt = RuntimeApi::start().await;
    let runtime_addr = rt.addr;
    let gateway = Connections::start().await;

    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_bootstrap"))
            .env("AWS_LAMBDA_RUNTIME_API", runtime_addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("CONNECTIONS_TABLE", "bench_ws_connections")
            .env("WEBSOCKET_MANAGEMENT_ENDPOINT", gateway.endpoint())
            .env("AWS_LAMBDA_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn bootstrap")
    };

    let mut cold = Vec::new();
    let mut counter = 0u64;
    for _ in 0..cold_runs {
        counter += 1;
        rt.queue(&format!("c{counter}"), ping_event(counter), TIMEOUT);
        let start = Instant::now();
        let mut child = spawn();
        let answer = tokio::time::timeout(Duration::from_secs(10), rt.next_answer())
            .await
            .expect("answered");
        cold.push((answer.at - start).as_secs_f64() * 1000.0);
        let _ = child.kill();
        let _ = child.wait();
    }

    let mut child = spawn();
    let mut warm = Vec::new();
    for _ in 0..warm_runs {
        counter += 1;
        let start = Instant::now();
        rt.queue(&format!("w{counter}"), ping_event(counter), TIMEOUT);
        let answer = rt.next_answer().await;
        warm.push((answer.at - start).as_secs_f64() * 1000.0);
    }
    let _ = child.kill();
    let _ = child.wait();

    let cold_p50 = median(&mut cold);
    let warm_p50 = median(&mut warm);
    println!("bootstrap: {}", env!("CARGO_BIN_EXE_bootstrap"));
    match std::env::var_os("LAMBDA_TASK_ROOT") {
        Some(root) => println!("catalogue: {}/catalogue.json", root.to_string_lossy()),
        None => println!("catalogue: none"),
    }
    println!("cold start (spawn -> first response), {cold_runs} runs: median {cold_p50:.2} ms, min {:.2}, max {:.2}", cold[0], cold[cold.len() - 1]);
    println!("warm invocation (queue -> response, ping with a push), {warm_runs} runs: median {warm_p50:.3} ms, p99 {:.3} ms", warm[warm.len() * 99 / 100]);
}
