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
//! CONNS, PINGERS, PING_SECONDS, IN_FLIGHT, ROUNDS (broadcasts, default 11) override the sizes;
//! CLIENT_THREADS the client's reader threads (default 2); READ_PAUSE_US the readers' pause
//! between sparse polls during broadcasts (default 200, 0 for none; see docs/BENCHMARKS.md);
//! SHOW_ROUNDS=1 prints every broadcast's time; WSCTL another wsctl binary to measure.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
    // Fields after the command name (which may contain spaces) start after the last ')', with
    // the state (field 3); utime and stime are fields 14 and 15. Counted by position: some
    // fields before them are not numbers (the state) or are negative (tpgid is -1 without a
    // terminal).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let field = |n: usize| -> u64 {
        rest.split_whitespace()
            .nth(n - 3)
            .and_then(|x| x.parse().ok())
            .unwrap_or(0)
    };
    Duration::from_secs_f64((field(14) + field(15)) as f64 / 100.0)
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
    let mut s = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => panic!("connecting to {addr}: {e} (benches/dev.sh raises the open-file limit)"),
    };
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

/// What the reader threads report to the driver.
struct Counts {
    /// Text frames other than pongs received, all clients together.
    received: AtomicUsize,
    /// The latest receipt so far, in nanoseconds since `epoch`.
    last: AtomicU64,
    /// When each pinger's ping went out; its pong takes it.
    sent_at: Mutex<Vec<Option<Instant>>>,
    /// Ping round trips, ms.
    rtts: Mutex<Vec<f64>>,
    epoch: Instant,
    /// Whether readers pause between polls that find few sockets ready (the broadcasts), or
    /// read each message as it comes (the ping round trips).
    moderate: AtomicBool,
    /// Reader threads that have registered all their clients.
    ready: AtomicUsize,
}

/// Counts the complete frames at the start of `data` (as received at `now`) and returns how
/// many bytes they took.
fn take_frames(
    data: &[u8],
    client: usize,
    now: Instant,
    counts: &Counts,
    got: &mut usize,
) -> usize {
    let mut used = 0;
    while let Some((opcode, payload_start, end)) = frame(&data[used..]) {
        let payload = &data[used + payload_start..used + end];
        if opcode == 1 && payload.windows(6).any(|w| w == b"\"pong\"") {
            if let Some(sent) = counts
                .sent_at
                .lock()
                .unwrap()
                .get_mut(client)
                .and_then(Option::take)
            {
                counts
                    .rtts
                    .lock()
                    .unwrap()
                    .push((now - sent).as_secs_f64() * 1000.0);
            }
        } else if opcode == 1 {
            *got += 1;
        }
        used += end;
    }
    used
}

/// One reader thread: its own poll instance over its share of the clients (index, socket,
/// bytes read past the handshake). Per message it costs one readiness event and one read; a
/// tokio task per client cost more CPU per message than the gateway's own write, on the same
/// two cores.
fn read_clients(
    share: Vec<(usize, std::net::TcpStream, Vec<u8>)>,
    counts: &Counts,
    pause: Duration,
) {
    use std::io::Read;
    let mut poll = mio::Poll::new().expect("a poll instance");
    let mut clients = Vec::with_capacity(share.len());
    for (token, (index, stream, leftover)) in share.into_iter().enumerate() {
        let mut stream = mio::net::TcpStream::from_std(stream);
        poll.registry()
            .register(&mut stream, mio::Token(token), mio::Interest::READABLE)
            .expect("register a client");
        clients.push((index, stream, leftover));
    }
    counts.ready.fetch_add(1, Ordering::AcqRel);
    let mut events = mio::Events::with_capacity(1024);
    let mut chunk = vec![0u8; 4096];
    loop {
        match poll.poll(&mut events, None) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("poll: {e}"),
        }
        let mut got = 0;
        let mut latest = counts.epoch;
        for event in events.iter() {
            let (index, stream, buf) = &mut clients[event.token().0];
            loop {
                let n = match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break, // closed (the gateway's log reports it) or drained
                    Ok(n) => n,
                };
                let now = Instant::now();
                latest = latest.max(now);
                if buf.is_empty() {
                    let used = take_frames(&chunk[..n], *index, now, counts, &mut got);
                    buf.extend_from_slice(&chunk[used..n]);
                } else {
                    buf.extend_from_slice(&chunk[..n]);
                    let used = take_frames(buf, *index, now, counts, &mut got);
                    buf.drain(..used);
                }
                // A short read emptied the socket; new data raises a new event.
                if n < chunk.len() {
                    break;
                }
            }
        }
        if got > 0 {
            let at = (latest - counts.epoch).as_nanos() as u64;
            counts.last.fetch_max(at, Ordering::AcqRel);
            counts.received.fetch_add(got, Ordering::AcqRel);
        }
        if counts.moderate.load(Ordering::Relaxed) && events.iter().count() < 256 {
            std::thread::sleep(pause);
        }
    }
}

fn main() {
    // CLIENT_THREADS: the load client's runtime threads (opening) and reader threads (default
    // 2, one per core here).
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
    let child = Command::new(&wsctl)
        .args(["dev", "--port", "0"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wsctl dev");
    // Stopped however this run ends, a failed assertion included (else it outlives the client).
    let mut child = Gateway(child);
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

    // 1. Open N connections, IN_FLIGHT (default 128) handshakes at a time, on all client threads.
    let me = std::process::id();
    let (gw_cpu0, me_cpu0) = (cpu(pid), cpu(me));
    let started = Instant::now();
    let sockets: Vec<_> = futures::stream::iter(0..conns)
        .map(|_| {
            let addr = addr.clone();
            // Each handshake is a task of its own, so the client's work is spread over its
            // threads (the stream alone would run every handshake on this one thread, and its
            // ~50 us of CPU per connection then paced the gateway).
            let handshake = tokio::spawn(async move { raw_connect(&addr, "/ws").await });
            async move { handshake.await.expect("a handshake task") }
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

    // Readers: CLIENT_THREADS threads, each polling its share of the clients.
    let counts = Arc::new(Counts {
        received: AtomicUsize::new(0),
        last: AtomicU64::new(0),
        sent_at: Mutex::new(vec![None; pingers]),
        rtts: Mutex::new(Vec::new()),
        epoch: Instant::now(),
        moderate: AtomicBool::new(false),
        ready: AtomicUsize::new(0),
    });
    let threads = env("CLIENT_THREADS", 2).max(1);
    let mut shares: Vec<Vec<(usize, std::net::TcpStream, Vec<u8>)>> =
        (0..threads).map(|_| Vec::new()).collect();
    let mut sinks = Vec::with_capacity(pingers);
    for (i, (stream, leftover)) in sockets.into_iter().enumerate() {
        let stream = stream.into_std().expect("a std socket");
        if i < pingers {
            sinks.push(stream.try_clone().expect("a second handle to write pings"));
        }
        shares[i % threads].push((i, stream, leftover));
    }
    let pause = Duration::from_micros(env("READ_PAUSE_US", 200) as u64);
    for share in shares {
        let counts = counts.clone();
        std::thread::spawn(move || read_clients(share, &counts, pause));
    }
    // Registering 10,000 sockets takes the readers some milliseconds: not part of round 1.
    while counts.ready.load(Ordering::Acquire) < threads {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let received = |counts: &Counts| counts.received.load(Ordering::Acquire);
    let last_at =
        |counts: &Counts| counts.epoch + Duration::from_nanos(counts.last.load(Ordering::Acquire));

    // 2. Broadcast through the invoke endpoint.
    counts.moderate.store(!pause.is_zero(), Ordering::Relaxed);
    let mut http = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut broadcast_times = Vec::new();
    let (gw_cpu0, me_cpu0) = (cpu(pid), cpu(me));
    let rounds = env("ROUNDS", 11).max(1);
    for round in 1..=rounds {
        let body = format!(
            r#"{{"action":"broadcast","message":{{"type":"bench","data":{{"round":{round}}}}}}}"#
        );
        let target = round * conns;
        let start = Instant::now();
        let status = post(&mut http, "/2015-03-31/functions/bench/invocations", &body).await;
        assert_eq!(status, 200);
        // The time is the last receipt's own timestamp; this poll only waits for it.
        while received(&counts) < target {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        broadcast_times.push((last_at(&counts) - start).as_secs_f64());
    }
    let (gw_cpu1, me_cpu1) = (cpu(pid), cpu(me));
    if std::env::var_os("SHOW_ROUNDS").is_some() {
        eprintln!("rounds: {broadcast_times:.3?}");
    }
    broadcast_times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "broadcast to {conns} via invoke: median {:.3} s, min {:.3}, max {:.3} ({rounds} rounds; request -> last client's receipt)",
        broadcast_times[rounds / 2],
        broadcast_times[0],
        broadcast_times[rounds - 1]
    );

    println!(
        "  CPU per delivered message: gateway {:.1} us, load client {:.1} us",
        (gw_cpu1 - gw_cpu0).as_secs_f64() * 1e6 / (rounds * conns) as f64,
        (me_cpu1 - me_cpu0).as_secs_f64() * 1e6 / (rounds * conns) as f64
    );
    println!(
        "  (the gateway's own handler time per broadcast, from its log: {:?})",
        broadcasts.lock().unwrap()
    );

    // 3. The runbook's algorithm: every id, one POST at a time.
    let ids: Vec<String> = ids.lock().unwrap().clone();
    assert!(ids.len() >= conns, "saw {} ids", ids.len());
    let before = received(&counts);
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
    while received(&counts) < before + ids.len() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let runbook = (last_at(&counts) - start).as_secs_f64();
    println!(
        "runbook broadcast (one POST at a time) to {}: {runbook:.3} s ({:.1}x slower)",
        ids.len(),
        runbook / broadcast_times[rounds / 2]
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

    // 4. Ping round trips: P clients, each pinging once a second; each pong is read at once.
    counts.moderate.store(false, Ordering::Relaxed);
    let spacing = Duration::from_secs_f64(1.0 / pingers as f64);
    let end = Instant::now() + Duration::from_secs(ping_seconds as u64);
    let mut tick = tokio::time::interval(spacing);
    let mut i = 0;
    while Instant::now() < end {
        tick.tick().await;
        let k = i % pingers;
        counts.sent_at.lock().unwrap()[k] = Some(Instant::now());
        // A 23-byte frame on a socket with nothing else to send: the write never blocks.
        std::io::Write::write_all(&mut sinks[k], &PING_FRAME).expect("send a ping");
        i += 1;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut r = counts.rtts.lock().unwrap().clone();
    r.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "ping round trip, {pingers} clients at 1/s each for {ping_seconds} s ({} pings): p50 {:.2} ms, p99 {:.2} ms",
        r.len(),
        percentile(&r, 0.5),
        percentile(&r, 0.99)
    );
}

/// The gateway process; killed and reaped when dropped.
struct Gateway(std::process::Child);

impl std::ops::Deref for Gateway {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Gateway {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
