//! Benchmark (not a test) of `wsctl dev` under `wsctl load`, the product's own load test:
//!   1. open N concurrent connections (default 10,000) as fast as `--rate` allows: connections
//!      per second, and the gateway's memory per connection (its peak RSS delta / N);
//!   2. hold them for S seconds with P pings per second spread over them (default 1,000/s for
//!      10 s): round-trip p50 / p99;
//!   3. one broadcast to all N through the function's invoke endpoint, as `wsctl broadcast`
//!      sends it: time from the send to the last client's receipt.
//!
//!     benches/dev.sh     # raises the open-file limit, then: cargo bench --bench dev_load
//!
//! CONNS, RATE (opening, default 20000/s), PINGS (per second), PING_SECONDS, ROUNDS (whole
//! runs, default 5) override the sizes; WSCTL another wsctl binary to measure (both the
//! gateway and the load client). Under `cargo test` (which does not pass `--bench`) it is a
//! quick check instead: one round of 1,000 connections held for 2 s, with the debug build.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The gateway process; killed and reaped when dropped (a failed run must not leave it).
struct Gateway(std::process::Child);

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn range(v: &[f64]) -> (f64, f64) {
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let (conns, ping_seconds, rounds) = match benchmarking {
        true => (
            env("CONNS", 10_000),
            env("PING_SECONDS", 10),
            env("ROUNDS", 5).max(1),
        ),
        false => (env("CONNS", 1_000), env("PING_SECONDS", 2), 1),
    };
    let rate = env("RATE", 20_000);
    let pings = env("PINGS", 1_000);
    let wsctl = std::env::var("WSCTL").unwrap_or_else(|_| env!("CARGO_BIN_EXE_wsctl").to_owned());
    let dir = std::env::temp_dir().join(format!("wsctl-dev-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("wsctl.toml"), "project = \"bench\"\n").unwrap();

    let (mut opening, mut per_conn, mut last_receipt, mut p50s, mut p99s) =
        (vec![], vec![], vec![], vec![], vec![]);
    for round in 1..=rounds {
        let mut child = Command::new(&wsctl)
            .args(["dev", "--port", "0"])
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wsctl dev");
        let url = BufReader::new(child.stdout.take().unwrap())
            .lines()
            .next()
            .unwrap()
            .unwrap();
        let gateway = Gateway(child);
        let pid = gateway.0.id();
        std::thread::sleep(Duration::from_millis(200));
        let before = rss_kb(pid);
        // The gateway's peak RSS while the load runs.
        let peak = Arc::new(AtomicU64::new(before));
        let done = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, done) = (peak.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::Acquire) {
                    peak.fetch_max(rss_kb(pid), Ordering::AcqRel);
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        let base = url.trim_end_matches("/ws").replace("ws://", "http://");
        let out = Command::new(&wsctl)
            .args(["load", "--url", &url, "--broadcast", "-q", "-o", "json"])
            .args(["--connections", &conns.to_string()])
            .args(["--rate", &rate.to_string(), "--i-have-a-quota-increase"])
            .args(["--duration", &format!("{ping_seconds}s")])
            .args(["--ping-rate", &pings.to_string()])
            .current_dir(&dir)
            .env("AWS_ENDPOINT_URL_LAMBDA", &base)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "bench")
            .env("AWS_SECRET_ACCESS_KEY", "bench")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run wsctl load");
        done.store(true, Ordering::Release);
        sampler.join().unwrap();
        drop(gateway);
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "wsctl load did not report ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(r["ok"], true, "round {round}: {r:#}");
        let f = |v: &serde_json::Value| v.as_f64().unwrap();
        opening.push(f(&r["opening_rate"]));
        per_conn.push((peak.load(Ordering::Acquire) - before) as f64 / conns as f64);
        last_receipt.push(f(&r["broadcast"]["receipt_ms"]["max"]) / 1000.0);
        p50s.push(f(&r["pings"]["rtt_ms"]["p50"]));
        p99s.push(f(&r["pings"]["rtt_ms"]["p99"]));
        eprintln!(
            "round {round}: open {:.0}/s, {:.2} KB per connection, broadcast to the last client {:.3} s, ping p50 {:.2} ms p99 {:.2} ms",
            opening[round - 1], per_conn[round - 1], last_receipt[round - 1], p50s[round - 1], p99s[round - 1]
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let show = |name: &str, v: &[f64], unit: &str, digits: usize| {
        let (lo, hi) = range(v);
        println!(
            "{name}: median {:.digits$}{unit} (range {lo:.digits$} - {hi:.digits$}, {rounds} runs)",
            median(v.to_vec())
        );
    };
    println!("wsctl dev under wsctl load: {conns} connections, {pings} pings/s for {ping_seconds} s, one broadcast");
    show("open", &opening, " connections/s", 0);
    show(
        "gateway memory per connection (peak RSS delta / N)",
        &per_conn,
        " KB",
        2,
    );
    show(
        "broadcast, send to the last client's receipt",
        &last_receipt,
        " s",
        3,
    );
    show("ping round trip p50", &p50s, " ms", 2);
    show("ping round trip p99", &p99s, " ms", 2);
}
