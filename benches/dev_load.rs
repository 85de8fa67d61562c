//! Benchmark (not a test) of `wsctl dev` with a Rust load client:
//!   1. open N concurrent connections (default 10,000): connections per second, and the
//!      gateway's memory per connection (RSS delta / N);
//!   2. broadcast one message to all N through the Lambda invoke endpoint: time from the request
//!      to the last client's receipt;
//!   3. the runbook's broadcast algorithm on the same gateway (the ids it would scan, then one
//!      @connections POST at a time), for comparison;
//!   4. ping round trip with P clients (default 1,000) each pinging once a second for S seconds:
//!      p50 / p99.
//!
//!     benches/dev.sh     # raises the open-file limit, then: cargo bench --bench dev_load
//!
//! CONNS, PINGERS, PING_SECONDS, IN_FLIGHT override the sizes; CLIENT_THREADS the client's threads; WSCTL another wsctl binary to measure.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

/// CPU time (user + system) of a process so far.
fn cpu(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<u64> = rest
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // utime and stime are fields 14 and 15 of stat; here (state removed) indexes 10 and 11.
    let ticks = f.get(10).copied().unwrap_or(0) + f.get(11).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / 100.0)
}

/// `{"action":"ping"}` as a masked client text frame (mask key 0, which leaves the payload as is).
const PING_FRAME: [u8; 23] = {
    let payload = br#"{"action":"ping"}"#;
    let mut f = [0u8; 23];
    f[0] = 0x81;
    f[1] = 0x80 | payload.len() as u8;
    let mut i = 0;
    while i < payload.len() {
        f[6 + i] = payload[i];
        i += 1;
    }
    f
};

/// A WebSocket client handshake on a raw socket (the load client must not be the bottleneck:
/// tungstenite's full client costs more CPU per message than the gateway does). Returns the
/// stream and any bytes read past the handshake.
async fn raw_connect(addr: &str, path: &str) -> (tokio::net::TcpStream, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed during the handshake");
        got.extend_from_slice(&chunk[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            assert!(
                got.starts_with(b"HTTP/1.1 101"),
                "{}",
                String::from_utf8_lossy(&got)
            );
            return (s, got[end + 4..].to_vec());
        }
    }
}

/// The next complete unmasked frame in `buf`: (opcode, payload start, frame end).
fn frame(buf: &[u8]) -> Option<(u8, usize, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    let (len, start) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        127 if buf.len() >= 10 => (
            u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize,
            10,
        ),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    (buf.len() >= start + len).then_some((opcode, start, start + len))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// One HTTP/1.1 request on a kept-alive connection; returns the status.
async fn post(stream: &mut tokio::net::TcpStream, path: &str, body: &str) -> u16 {
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "server closed");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return head.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
        }
    }
}

fn main() {
    // CLIENT_THREADS: the load client's worker threads (default 2, one per core here).
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(env("CLIENT_THREADS", 2))
        .enable_all()
        .build()
        .expect("tokio runtime")
        .block_on(run());
}

async fn run() {
    let conns = env("CONNS", 10_000);
    let pingers = env("PINGERS", 1_000).min(conns);
    let ping_seconds = env("PING_SECONDS", 10);

    // WSCTL picks another wsctl binary (e.g. an installed one); default: this build's.
    let wsctl = std::env::var("WSCTL").unwrap_or_else(|_| env!("CARGO_BIN_EXE_wsctl").to_owned());
    let mut child = Command::new(&wsctl)
        .args(["dev", "--port", "0"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsctl dev");
    let pid = child.id();
    let url = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .next()
        .unwrap()
        .unwrap();
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/ws")
        .replace("localhost", "127.0.0.1");

    // Connection ids from the gateway's log (there is no "list connections" call, as on AWS).
    let ids = Arc::new(Mutex::new(Vec::new()));
    let disconnects: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let broadcasts: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    {
        let broadcasts = broadcasts.clone();
        let ids = ids.clone();
        let disconnects = disconnects.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut parts = line.split_whitespace();
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(_), Some("$connect"), Some(id)) => {
                        ids.lock().unwrap().push(id.to_owned())
                    }
                    (Some(_), Some("invoke:broadcast"), Some(_)) => broadcasts
                        .lock()
                        .unwrap()
                        .push(line.rsplit(' ').next().unwrap_or("").to_owned()),
                    (Some(_), Some("$disconnect"), Some(_)) => {
                        disconnects.lock().unwrap().push(line.clone())
                    }
                    _ => {}
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_before = rss_kb(pid);

    // 1. Open N connections, IN_FLIGHT (default 128) handshakes at a time.
    let me = std::process::id();
    let (gw_cpu0, me_cpu0) = (cpu(pid), cpu(me));
    let started = Instant::now();
    let sockets: Vec<_> = futures::stream::iter(0..conns)
        .map(|_| {
            let addr = addr.clone();
            async move { raw_connect(&addr, "/ws").await }
        })
        .buffer_unordered(env("IN_FLIGHT", 128))
        .collect()
        .await;
    let open_secs = started.elapsed().as_secs_f64();
    let (gw_cpu1, me_cpu1) = (cpu(pid), cpu(me));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = rss_kb(pid);
    let per_conn_kb = (rss_after.saturating_sub(rss_before)) as f64 / conns as f64;
    println!(
        "open {conns} connections: {open_secs:.2} s = {:.0} connections/s; gateway RSS {} -> {} KB = {:.2} KB per connection",
        conns as f64 / open_secs,
        rss_before,
        rss_after,
        per_conn_kb
    );
    println!(
        "  CPU while opening: gateway {:.0} us per connection, load client {:.0} us per connection",
        (gw_cpu1 - gw_cpu0).as_secs_f64() * 1e6 / conns as f64,
        (me_cpu1 - me_cpu0).as_secs_f64() * 1e6 / conns as f64
    );

    // Readers: every client waits for messages and reports when they arrive.
    let received = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(AtomicU64::new(0));
    let (writers, readers): (Vec<_>, Vec<_>) = sockets
        .into_iter()
        .map(|(stream, leftover)| {
            let (r, w) = stream.into_split();
            (w, (r, leftover))
        })
        .unzip();
    let (tx, mut pong_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let epoch = Instant::now();
    for (i, (mut reader, leftover)) in readers.into_iter().enumerate() {
        let received = received.clone();
        let last = last.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            // A minimal frame reader: server frames are unmasked; count text frames.
            let mut buf = leftover;
            let mut chunk = vec![0u8; 4096];
            loop {
                while let Some((opcode, payload_start, end)) = frame(&buf) {
                    if opcode == 1 {
                        let now = Instant::now();
                        if buf[payload_start..end].windows(6).any(|w| w == b"\"pong\"") {
                            let _ = tx.send((i, now));
                        } else {
                            received.fetch_add(1, Ordering::Relaxed);
                            last.fetch_max((now - epoch).as_nanos() as u64, Ordering::Relaxed);
                        }
                    } else if opcode == 8 {
                        return;
                    }
                    buf.drain(..end);
                }
                match reader.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
        });
    }
    let last_at = |last: &AtomicU64| epoch + Duration::from_nanos(last.load(Ordering::Relaxed));

    // 2. Broadcast through the invoke endpoint.
    let mut http = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut broadcast_times = Vec::new();
    let (gw_cpu0, me_cpu0) = (cpu(pid), cpu(me));
    for round in 1..=5 {
        let body = format!(
            r#"{{"action":"broadcast","message":{{"type":"bench","data":{{"round":{round}}}}}}}"#
        );
        let target = round * conns;
        let start = Instant::now();
        let status = post(&mut http, "/2015-03-31/functions/bench/invocations", &body).await;
        assert_eq!(status, 200);
        while received.load(Ordering::Relaxed) < target {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        broadcast_times.push((last_at(&last) - start).as_secs_f64());
    }
    let (gw_cpu1, me_cpu1) = (cpu(pid), cpu(me));
    broadcast_times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "broadcast to {conns} via invoke: median {:.3} s (5 rounds; request -> last client's receipt)",
        broadcast_times[2]
    );

    println!(
        "  CPU per delivered message: gateway {:.1} us, load client {:.1} us",
        (gw_cpu1 - gw_cpu0).as_secs_f64() * 1e6 / (5 * conns) as f64,
        (me_cpu1 - me_cpu0).as_secs_f64() * 1e6 / (5 * conns) as f64
    );
    println!(
        "  (the gateway's own handler time per broadcast, from its log: {:?})",
        broadcasts.lock().unwrap()
    );

    // 3. The runbook's algorithm: every id, one POST at a time.
    let ids: Vec<String> = ids.lock().unwrap().clone();
    assert!(ids.len() >= conns, "saw {} ids", ids.len());
    let before = received.load(Ordering::Relaxed);
    let start = Instant::now();
    for id in &ids {
        let enc = id
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        post(
            &mut http,
            &format!("/prod/@connections/{enc}"),
            r#"{"type":"bench","data":"runbook"}"#,
        )
        .await;
    }
    while received.load(Ordering::Relaxed) < before + ids.len() {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let runbook = (last_at(&last) - start).as_secs_f64();
    println!(
        "runbook broadcast (one POST at a time) to {}: {runbook:.3} s ({:.1}x slower)",
        ids.len(),
        runbook / broadcast_times[2]
    );

    {
        let d = disconnects.lock().unwrap();
        if !d.is_empty() {
            println!(
                "warning: {} connection(s) closed during the run, e.g. {:?}",
                d.len(),
                &d[..d.len().min(3)]
            );
        }
    }

    // 4. Ping round trips: P clients, each pinging once a second.
    let writers = Arc::new(tokio::sync::Mutex::new(writers));
    let sent_at: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; pingers]));
    let rtts = Arc::new(Mutex::new(Vec::new()));
    {
        let sent_at = sent_at.clone();
        let rtts = rtts.clone();
        tokio::spawn(async move {
            while let Some((i, at)) = pong_rx.recv().await {
                if let Some(sent) = sent_at.lock().unwrap().get_mut(i).and_then(Option::take) {
                    rtts.lock()
                        .unwrap()
                        .push((at - sent).as_secs_f64() * 1000.0);
                }
            }
        });
    }
    let mut w = writers.lock().await;
    let mut sinks: Vec<_> = w.drain(..pingers).collect();
    drop(w);
    let spacing = Duration::from_secs_f64(1.0 / pingers as f64);
    let end = Instant::now() + Duration::from_secs(ping_seconds as u64);
    let mut tick = tokio::time::interval(spacing);
    let mut i = 0;
    while Instant::now() < end {
        tick.tick().await;
        let k = i % pingers;
        sent_at.lock().unwrap()[k] = Some(Instant::now());
        sinks[k].write_all(&PING_FRAME).await.unwrap();
        i += 1;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut r = rtts.lock().unwrap().clone();
    r.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "ping round trip, {pingers} clients at 1/s each for {ping_seconds} s ({} pings): p50 {:.2} ms, p99 {:.2} ms",
        r.len(),
        percentile(&r, 0.5),
        percentile(&r, 0.99)
    );
    let _ = child.kill();
    let _ = child.wait();
}
