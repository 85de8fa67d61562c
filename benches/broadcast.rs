//! Benchmark (not a test): one broadcast by the release `bootstrap` under a Lambda Runtime API
//! emulator, the rows in an in-memory DynamoDB table served on DynamoDB's wire protocol (moto's
//! Scan would set the pace, see tests/support/src/scan_table.rs), posting to `wsctl dev`'s
//! management API with API Gateway's account throttle emulated, to N real WebSocket clients
//! that count what they get.
//!
//!     benches/broadcast.sh          # builds the release binaries, then runs this
//!
//! Settings (environment): N (18000: a process here may open 20,000 files, and `wsctl dev` holds
//! the N client sockets plus up to 1,000 of the function's management connections), RATE (2000), BURST
//! (1000), LATENCY_MS (20), SCENARIOS (throttled,largest,unthrottled), SCAN_PAGE_SIZE (1000),
//! WSCTL and BOOTSTRAP (the binaries of the bench's own profile). Run by `cargo test` (without
//! `--bench`), it is a quick check instead: 2,000 clients, the throttled scenario, the debug
//! binaries. Either way it fails if a client got the message twice or not at all. Scenarios:
//! - throttled: RATE/BURST/LATENCY_MS, the default `broadcast_concurrency` (256);
//! - largest: the same throttle with the largest concurrency the config accepts (1000);
//! - unthrottled: LATENCY_MS per post and no rate limit, the default concurrency;
//! - history: the unthrottled scenario with `[history]` on (`HISTORY_TABLE` in moto): the
//!   message gets its position (a consistent one-item Query and a conditional PutItem) before
//!   the posts; compare with `unthrottled` for what keeping history costs the broadcast path;
//! - fanout: the throttled scenario split over WORKERS (4) `bootstrap` processes, as Lambda runs
//!   a broadcast's workers: the broadcasts table (`BROADCASTS_TABLE`) in moto, the function's
//!   Event invocations of itself queued by the Runtime API emulator's Invoke API, and the
//!   elapsed time running to the last worker's answer. Under `cargo test` it runs with 6,000
//!   clients (2 segments; the table must be over 2,000 rows to fan out).
//!
//! For each it prints: elapsed (invocation to response), the floor (N - burst) / rate, their
//! ratio, delivered (counted by the clients, unique), lost, duplicates, the report's counts,
//! posts per second, and the bootstrap's CPU time (user + system) per post attempted.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use support::runtime_api::RuntimeApi;
use support::scan_table::ScanTable;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// user + system CPU of a process, from /proc/PID/stat (fields 14 and 15 after the command).
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wsctl dev` with the scenario's throttle; returns it, its address and its log lines.
fn start_dev(wsctl: &str, args: &[String]) -> (Killed, SocketAddr, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(wsctl)
        // On every address, so that the function can reach it on one the clients do not use.
        .args([
            "dev",
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--idle-timeout",
            "1h",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {wsctl}: {e}"));
    let url = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .expect("dev prints its URL")
        .unwrap();
    let port: u16 = url
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("$connect ") {
                sink.lock().unwrap().push(line);
            }
        }
    });
    (Killed(child), SocketAddr::from(([127, 0, 0, 1], port)), log)
}

/// A WebSocket client on a raw socket: the handshake, then it counts the text frames it gets.
async fn client(
    addr: SocketAddr,
    count: Arc<AtomicU32>,
    handshake: tokio::sync::OwnedSemaphorePermit,
) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).unwrap();
    let req = format!(
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "closed during the handshake");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    assert!(
        buf.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&buf)
    );
    drop(handshake);
    buf.drain(..head_end);
    loop {
        // Frames from the server are unmasked: opcode, then a 7-bit, 16-bit or 64-bit length.
        while buf.len() >= 2 {
            let opcode = buf[0] & 0x0f;
            let (len, header) = match buf[1] & 0x7f {
                126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
                127 if buf.len() >= 10 => (
                    u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                126 | 127 => break,
                n => (n as usize, 2),
            };
            if buf.len() < header + len {
                break;
            }
            if opcode == 1 {
                count.fetch_add(1, Ordering::Relaxed);
            }
            buf.drain(..header + len);
        }
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

struct Scenario {
    name: &'static str,
    throttled: bool,
    concurrency: usize,
    /// Worker processes of a fanned-out broadcast (0: one function, no broadcasts table).
    workers: usize,
    /// Keep history (`HISTORY_TABLE` in moto).
    history: bool,
}

/// The broadcast records' table, in moto (created once).
const BROADCASTS: &str = "bench_ws_broadcasts";
/// The streams' history table, in moto (created once).
const HISTORY: &str = "bench_ws_history";

#[allow(clippy::too_many_arguments)]
async fn run(
    s: &Scenario,
    wsctl: &str,
    bootstrap: &str,
    table: &ScanTable,
    n: usize,
    (rate, burst, latency_ms): (f64, f64, u64),
    round: usize,
) {
    let mut args = vec!["--management-latency".to_owned(), format!("{latency_ms}ms")];
    if s.throttled {
        args.extend([
            "--management-rate".into(),
            rate.to_string(),
            "--management-burst".into(),
            burst.to_string(),
        ]);
    }
    let (_dev, addr, log) = start_dev(wsctl, &args);

    let opened = Instant::now();
    let counts: Vec<Arc<AtomicU32>> = (0..n).map(|_| Arc::new(AtomicU32::new(0))).collect();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(256));
    for c in &counts {
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let c = c.clone();
        tokio::spawn(client(addr, c, permit));
    }
    while log.lock().unwrap().len() < n {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            opened.elapsed() < Duration::from_secs(300),
            "clients did not all connect"
        );
    }
    let ids: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap().to_owned())
        .collect();
    eprintln!(
        "  {n} clients connected in {:.1} s; their {n} rows are in the table",
        opened.elapsed().as_secs_f64()
    );
    table.fill(&ids);
    let rt = RuntimeApi::start().await;
    let spawn = || {
        let mut cmd = Command::new(bootstrap);
        cmd.env("AWS_LAMBDA_RUNTIME_API", rt.addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL_DYNAMODB", table.url())
            .env("CONNECTIONS_TABLE", "bench_ws_connections")
            .env(
                "SCAN_PAGE_SIZE",
                env("SCAN_PAGE_SIZE", 1000usize).to_string(),
            )
            .env("BROADCAST_CONCURRENCY", s.concurrency.to_string())
            .env(
                "WEBSOCKET_MANAGEMENT_ENDPOINT",
                // 127.0.0.2: the clients' N connections to 127.0.0.1 fill the ephemeral port
                // range towards dev's port; sharing it, each of the function's connects would
                // search that range in the kernel (a third of its CPU at N = 18,000), a cost a
                // function never pays against API Gateway.
                format!("http://127.0.0.2:{}/prod", addr.port()),
            )
            .env("AWS_LAMBDA_LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if s.history {
            cmd.env("HISTORY_TABLE", HISTORY);
        }
        if s.workers > 0 {
            cmd.env("BROADCASTS_TABLE", BROADCASTS)
                .env("BROADCAST_WORKERS", s.workers.to_string())
                .env("AWS_ENDPOINT_URL_LAMBDA", format!("http://{}", rt.addr));
        }
        Killed(
            cmd.spawn()
                .unwrap_or_else(|e| panic!("cannot start {bootstrap}: {e}")),
        )
    };
    // One process, or one per worker (the coordinator's then takes a segment too).
    let functions: Vec<Killed> = (0..s.workers.max(1)).map(|_| spawn()).collect();
    let cpu_all = || -> Duration { functions.iter().map(|f| cpu(f.0.id())).sum() };
    // Let them start (a cold start is not what is measured), then broadcast.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = cpu_all();
    let started = Instant::now();
    let event =
        serde_json::json!({"action": "broadcast", "message": {"type": "bench", "data": round}});
    rt.queue("b1", event.to_string(), Duration::from_secs(900));
    let mut answer = tokio::time::timeout(Duration::from_secs(900), rt.next_answer())
        .await
        .expect("the broadcast answered within 15 minutes");
    let mut report: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
    let segments = report["segments"].as_u64().unwrap_or(0);
    if s.workers > 0 {
        assert!(
            segments >= 2,
            "{}: the broadcast fanned out: {report}",
            s.name
        );
        // Each segment's worker answers when its segment is done; their counts add up.
        let mut total = serde_json::json!({"delivered": 0, "gone": 0, "failed": 0, "throttled": 0, "retried": 0});
        for _ in 0..segments {
            answer = tokio::time::timeout(Duration::from_secs(900), rt.next_answer())
                .await
                .expect("every worker answered within 15 minutes");
            assert!(!answer.error, "a worker failed: {}", answer.body);
            let part: serde_json::Value = serde_json::from_str(&answer.body).unwrap_or_default();
            for k in ["delivered", "gone", "failed", "throttled", "retried"] {
                total[k] = (total[k].as_u64().unwrap_or(0) + part[k].as_u64().unwrap_or(0)).into();
            }
        }
        report = total;
    }
    let elapsed = (answer.at - started).as_secs_f64();
    let cpu_used = cpu_all() - cpu_before;
    // Let the last messages reach their clients.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let got: Vec<u32> = counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
    let unique = got.iter().filter(|c| **c > 0).count();
    let lost = got.iter().filter(|c| **c == 0).count();
    let duplicates: u32 = got.iter().map(|c| c.saturating_sub(1)).sum();
    let attempts = report["delivered"].as_u64().unwrap_or(0)
        + report["gone"].as_u64().unwrap_or(0)
        + report["failed"].as_u64().unwrap_or(0)
        + report["retried"].as_u64().unwrap_or(0);
    let floor = if s.throttled {
        (n as f64 - burst).max(0.0) / rate
    } else {
        0.0
    };
    assert_eq!(
        (lost, duplicates),
        (0, 0),
        "{}: every client gets the broadcast once ({report})",
        s.name
    );
    println!(
        "{name}: N {n}, concurrency {conc}, {workers}{throttle}: elapsed {elapsed:.2} s, floor {floor:.2} s, ratio {ratio}; \
         delivered {unique} (clients, unique), lost {lost}, duplicates {duplicates}; \
         report delivered {d} failed {f} throttled {t} retried {r}; {pps:.0} posts/s; \
         bootstrap CPU {cpu:.2} s, {per:.1} us per post attempted",
        name = s.name,
        conc = s.concurrency,
        workers = if s.workers > 0 { format!("{segments} segments over {} processes, ", s.workers) } else { String::new() },
        throttle = if s.throttled { format!("throttle {rate}/s burst {burst}, {latency_ms} ms per post") } else { format!("no throttle, {latency_ms} ms per post") },
        ratio = if floor > 0.0 { format!("{:.3}x", elapsed / floor) } else { "-".into() },
        d = report["delivered"], f = report["failed"], t = report["throttled"], r = report["retried"],
        pps = unique as f64 / elapsed,
        cpu = cpu_used.as_secs_f64(),
        per = cpu_used.as_secs_f64() * 1e6 / attempts.max(1) as f64,
    );
    drop(functions);
}

/// The history table as `up` makes it: `stream` (S) and `seq` (N).
async fn create_history_table(client: &aws_sdk_dynamodb::Client) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    let attribute = |name: &str, t: ScalarAttributeType| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(t)
            .build()
            .unwrap()
    };
    let key = |name: &str, k: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(k)
            .build()
            .unwrap()
    };
    client
        .create_table()
        .table_name(HISTORY)
        .attribute_definitions(attribute("stream", ScalarAttributeType::S))
        .attribute_definitions(attribute("seq", ScalarAttributeType::N))
        .key_schema(key("stream", KeyType::Hash))
        .key_schema(key("seq", KeyType::Range))
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    // This executable is target/<profile>/deps/broadcast-<hash>: the binaries are two up.
    let profile_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent()?.parent().map(|d| d.to_path_buf()))
        .expect("the benchmark's profile directory");
    let wsctl =
        std::env::var("WSCTL").unwrap_or_else(|_| profile_dir.join("wsctl").display().to_string());
    let bootstrap = std::env::var("BOOTSTRAP")
        .unwrap_or_else(|_| profile_dir.join("bootstrap").display().to_string());
    let n: usize = env("N", if benchmarking { 18_000 } else { 2_000 });
    let rate: f64 = env("RATE", if benchmarking { 2000.0 } else { 1000.0 });
    let burst: f64 = env("BURST", if benchmarking { 1000.0 } else { 200.0 });
    let latency_ms: u64 = env("LATENCY_MS", 20);
    let all = if benchmarking {
        "throttled,largest,unthrottled,fanout"
    } else {
        "throttled,fanout"
    };
    let wanted = std::env::var("SCENARIOS").unwrap_or_else(|_| all.into());
    let scenarios = [
        Scenario {
            name: "throttled",
            throttled: true,
            concurrency: 256,
            workers: 0,
            history: false,
        },
        Scenario {
            name: "largest",
            throttled: true,
            concurrency: 1000,
            workers: 0,
            history: false,
        },
        Scenario {
            name: "unthrottled",
            throttled: false,
            concurrency: 256,
            workers: 0,
            history: false,
        },
        Scenario {
            name: "fanout",
            throttled: true,
            concurrency: 256,
            workers: env("WORKERS", 4),
            history: false,
        },
        Scenario {
            name: "history",
            throttled: false,
            concurrency: 256,
            workers: 0,
            history: true,
        },
    ];
    let fanning = wanted
        .split(',')
        .any(|w| w.trim() == "fanout" || w.trim() == "history");
    // moto keeps the broadcast records: a few writes a second, off the posting path.
    let moto = match fanning {
        true => {
            let moto = support::Moto::start(false);
            let client = aws_sdk_dynamodb::Client::new(&moto.sdk_config().await);
            support::create_table(&client, BROADCASTS, "broadcast_id", None).await;
            create_history_table(&client).await;
            Some(moto)
        }
        false => None,
    };
    let table = ScanTable::start_with_upstream(moto.as_ref().map(|m| m.url())).await;
    println!("bootstrap {bootstrap}, wsctl {wsctl}");
    for (round, s) in scenarios.iter().enumerate() {
        if wanted.split(',').any(|w| w.trim() == s.name) {
            eprintln!("{}:", s.name);
            // Under `cargo test` the fan-out needs more than the quick check's 2,000 rows.
            let n = match (s.workers > 0, benchmarking) {
                (true, false) => env("N", 6_000),
                _ => n,
            };
            run(
                s,
                &wsctl,
                &bootstrap,
                &table,
                n,
                (rate, burst, latency_ms),
                round,
            )
            .await;
        }
    }
}
