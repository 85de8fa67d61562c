//! `wsctl load`: a load test of a deployed stage (or of `wsctl dev`). It opens N connections
//! at a set rate, holds them for a while with pings spread over them, optionally times one
//! broadcast (sent as `wsctl broadcast` sends it) to all of them, then closes them, and
//! reports the opening rate, failures by kind, ping round trips and broadcast receipt times.
//! Every phase is bounded by its count and by time. The clients are in [`client`], the report
//! in [`report`].

mod client;
mod report;

pub use report::LoadReport;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Result;
use futures::future::BoxFuture;
use handler::DeliveryReport;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};

use client::{Order, Outcome, Shared};

/// API Gateway's default quota of new connections per second (per account and region).
pub const DEFAULT_CONNECT_QUOTA: f64 = 500.0;
/// How long pongs still in flight are waited for once pinging stops.
const PONG_SETTLE: Duration = Duration::from_secs(5);
/// How long closing every connection may take before the rest are abandoned.
const CLOSE_WAIT: Duration = Duration::from_secs(10);
/// The driver's clock for pacing opens and pings.
const TICK: Duration = Duration::from_millis(5);

/// Sends a broadcast's message to every connection and answers with the delivery report.
pub type Broadcaster =
    Box<dyn Fn(Value) -> BoxFuture<'static, Result<DeliveryReport>> + Send + Sync>;

pub struct Options {
    /// The WebSocket URL, query string (token) included.
    pub url: String,
    pub connections: usize,
    /// New connections per second.
    pub rate: f64,
    /// How long the connections are held open (and pinged) once opened.
    pub duration: Duration,
    /// Pings per second, spread over every open connection (0: none).
    pub ping_rate: f64,
    pub connect_timeout: Duration,
    /// How long the broadcast's receipt by every client is waited for.
    pub broadcast_timeout: Duration,
    pub quiet: bool,
}

/// The open-file limit of this process, when the system says (Linux).
pub fn open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

fn bar(quiet: bool, len: u64, template: &str) -> Option<ProgressBar> {
    use std::io::IsTerminal;
    (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    })
}

fn note(quiet: bool, message: String) {
    if !quiet {
        eprintln!("{message}");
    }
}

/// Runs the load test.
pub async fn run(opts: Options, broadcaster: Option<Broadcaster>) -> Result<LoadReport> {
    let n = opts.connections;
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        marker: format!("wsctl-load-{}", handler::invocation::new_broadcast_id()),
        received: AtomicUsize::new(0),
        dropped: AtomicUsize::new(0),
        pongs: AtomicUsize::new(0),
    });
    let settled = Arc::new(AtomicUsize::new(0));
    let opened = Arc::new(AtomicUsize::new(0));
    let (order_tx, order_rx) = watch::channel(Order::Hold);

    // 1. Open, paced at `rate`.
    note(
        opts.quiet,
        format!(
            "opening {n} connections at {} per second to {}",
            opts.rate,
            report::redact(&opts.url)
        ),
    );
    let bar_open = bar(
        opts.quiet,
        n as u64,
        "{spinner} opening [{bar:30}] {pos}/{len}  {msg}  {elapsed}",
    );
    let started = Instant::now();
    let mut senders = Vec::with_capacity(n);
    let mut tasks = Vec::with_capacity(n);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while tasks.len() < n {
        tick.tick().await;
        let due = ((started.elapsed().as_secs_f64() * opts.rate).floor() as usize + 1).min(n);
        while tasks.len() < due {
            let (ping_tx, ping_rx) = mpsc::unbounded_channel();
            senders.push(ping_tx);
            let (url, shared, orders) = (opts.url.clone(), shared.clone(), order_rx.clone());
            let (settled, opened) = (settled.clone(), opened.clone());
            let timeout = opts.connect_timeout;
            tasks.push(tokio::spawn(async move {
                let out = client::run(url, timeout, shared, ping_rx, orders, &|ok| {
                    if ok {
                        opened.fetch_add(1, Ordering::AcqRel);
                    }
                    settled.fetch_add(1, Ordering::AcqRel);
                })
                .await;
                out
            }));
        }
        if let Some(b) = &bar_open {
            b.set_position(settled.load(Ordering::Acquire) as u64);
            b.set_message(format!("{} open", opened.load(Ordering::Acquire)));
        }
    }
    // Every handshake ends by its own timeout; this bound only guards against a stuck one.
    let deadline = Instant::now() + opts.connect_timeout + Duration::from_secs(1);
    while settled.load(Ordering::Acquire) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        if let Some(b) = &bar_open {
            b.set_position(settled.load(Ordering::Acquire) as u64);
            b.set_message(format!("{} open", opened.load(Ordering::Acquire)));
        }
    }
    let open_seconds = started.elapsed().as_secs_f64();
    if let Some(b) = bar_open {
        b.finish_and_clear();
    }
    let opened_now = opened.load(Ordering::Acquire);
    note(
        opts.quiet,
        format!(
            "{opened_now} of {n} open in {open_seconds:.2} s; holding for {} s",
            opts.duration.as_secs_f64()
        ),
    );

    // 2. Hold, with pings spread over the connections at `ping_rate`.
    let bar_hold = bar(
        opts.quiet,
        opts.duration.as_millis() as u64,
        "{spinner} holding [{bar:30}] {msg}  {elapsed}",
    );
    let held = Instant::now();
    let mut pings_requested = 0usize;
    let mut next = 0usize;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while held.elapsed() < opts.duration {
        tick.tick().await;
        let due = (held.elapsed().as_secs_f64() * opts.ping_rate).floor() as usize;
        // Each connection at most once per pass over them, so a closed one is skipped.
        let mut tried = 0;
        while pings_requested < due && tried < senders.len() {
            let target = &senders[next % senders.len()];
            next += 1;
            tried += 1;
            if target.send(()).is_ok() {
                pings_requested += 1;
                tried = 0;
            }
        }
        if tried >= senders.len() {
            break; // no connection is left to ping
        }
        if let Some(b) = &bar_hold {
            b.set_position(held.elapsed().as_millis() as u64);
            b.set_message(format!(
                "{pings_requested} pings, {} pongs, {} dropped",
                shared.pongs.load(Ordering::Acquire),
                shared.dropped.load(Ordering::Acquire)
            ));
        }
    }
    let settle = Instant::now() + PONG_SETTLE;
    while shared.pongs.load(Ordering::Acquire) < pings_requested && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held_seconds = held.elapsed().as_secs_f64();
    if let Some(b) = bar_hold {
        b.finish_and_clear();
    }

    // 3. One broadcast to all of them.
    let mut broadcast = None;
    if let Some(send) = broadcaster {
        let alive = opened_now.saturating_sub(shared.dropped.load(Ordering::Acquire));
        note(opts.quiet, format!("broadcasting to {alive} connections"));
        let message = json!({"type": "wsctl-load", "data": {"run": shared.marker}});
        let sent_at = shared.epoch.elapsed();
        let t0 = Instant::now();
        let delivery = send(message).await;
        let invoke_ms = t0.elapsed().as_secs_f64() * 1000.0;
        let deadline = t0 + opts.broadcast_timeout;
        while shared.received.load(Ordering::Acquire) < alive && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        broadcast = Some((sent_at, invoke_ms, delivery, alive));
    }

    // 4. Close everything (bounded), and collect every client's outcome.
    let _ = order_tx.send(Order::Close);
    drop(senders);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(n);
    let close_deadline = tokio::time::Instant::now() + CLOSE_WAIT;
    for t in tasks {
        let abort = t.abort_handle();
        match tokio::time::timeout_at(close_deadline, t).await {
            Ok(Ok(out)) => outcomes.push(out),
            Ok(Err(e)) => outcomes.push(Outcome {
                failure: Some(
                    if e.is_panic() {
                        "client_panicked"
                    } else {
                        "client_cancelled"
                    }
                    .into(),
                ),
                ..Default::default()
            }),
            Err(_) => {
                abort.abort();
                outcomes.push(Outcome {
                    dropped: Some("close_timeout".into()),
                    ..Default::default()
                });
            }
        }
    }
    Ok(report::build(
        &opts,
        open_seconds,
        held_seconds,
        pings_requested,
        outcomes,
        broadcast,
    ))
}
