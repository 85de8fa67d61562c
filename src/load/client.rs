//! One simulated client of `wsctl load`: its handshake (ws:// or wss://, the token in the
//! query string), then a loop that answers the driver's ping requests, times the pongs, notes
//! the broadcast's arrival, and ends when the driver says so or the server closes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::{self, Message};

/// The ping the handler answers with `{"type":"pong"}`.
const PING: &str = r#"{"action":"ping"}"#;
/// A pong that has not come within this long counts as lost.
pub const PONG_TIMEOUT: Duration = Duration::from_secs(10);

/// What the driver tells a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Hold,
    /// Close the connection and report.
    Close,
}

/// What every client shares with the driver.
pub struct Shared {
    pub epoch: Instant,
    /// The text a broadcast of this run carries (clients count messages that contain it).
    pub marker: String,
    /// Clients that have received the broadcast.
    pub received: AtomicUsize,
    /// Clients whose connection ended before the driver closed it.
    pub dropped: AtomicUsize,
    /// Pongs received, all clients together.
    pub pongs: AtomicUsize,
}

/// A client's result.
#[derive(Debug, Default)]
pub struct Outcome {
    pub handshake: Option<Duration>,
    /// Why the connection could not open (a failure kind), when it did not.
    pub failure: Option<String>,
    /// Why it ended before the driver closed it (a close code or error kind).
    pub dropped: Option<String>,
    pub pings_sent: u64,
    pub rtts_ms: Vec<f64>,
    pub pongs_lost: u64,
    /// When the broadcast arrived, since `Shared::epoch`.
    pub broadcast_at: Option<Duration>,
}

/// The failure kind of a handshake error: what an operator needs to tell apart. rustls
/// reports a certificate it does not trust as invalid data on the socket.
fn failure_kind(e: &tungstenite::Error, tls: bool) -> String {
    match e {
        tungstenite::Error::Http(resp) => format!("http_{}", resp.status().as_u16()),
        tungstenite::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => "connection_refused".into(),
            std::io::ErrorKind::ConnectionReset => "connection_reset".into(),
            std::io::ErrorKind::TimedOut => "timeout".into(),
            std::io::ErrorKind::InvalidData if tls => "tls_error".into(),
            std::io::ErrorKind::UnexpectedEof => "closed_during_handshake".into(),
            _ if io.raw_os_error() == Some(24) => "too_many_open_files".into(),
            _ => "io_error".into(),
        },
        tungstenite::Error::Tls(_) => "tls_error".into(),
        tungstenite::Error::Url(_) => "bad_url".into(),
        tungstenite::Error::Protocol(_) => "protocol_error".into(),
        _ => "other_error".into(),
    }
}

/// Runs one client to its end.
pub async fn run(
    url: String,
    connect_timeout: Duration,
    shared: Arc<Shared>,
    mut pings: mpsc::UnboundedReceiver<()>,
    mut orders: watch::Receiver<Order>,
    on_handshake: &(dyn Fn(bool) + Send + Sync),
) -> Outcome {
    let mut out = Outcome::default();
    let tls = url.starts_with("wss://");
    let started = Instant::now();
    let ws =
        match tokio::time::timeout(connect_timeout, tokio_tungstenite::connect_async(url)).await {
            Err(_) => {
                out.failure = Some("handshake_timeout".into());
                on_handshake(false);
                return out;
            }
            Ok(Err(e)) => {
                out.failure = Some(failure_kind(&e, tls));
                on_handshake(false);
                return out;
            }
            Ok(Ok((ws, _))) => ws,
        };
    on_handshake(true);
    out.handshake = Some(started.elapsed());
    let (mut sink, mut stream) = ws.split();
    // Pings in flight, oldest first (the handler answers in order on one connection).
    let mut in_flight: std::collections::VecDeque<Instant> = Default::default();
    let mut pings_open = true;
    loop {
        tokio::select! {
            changed = orders.changed() => {
                if changed.is_err() || *orders.borrow() == Order::Close {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            }
            ping = pings.recv(), if pings_open => {
                match ping {
                    None => pings_open = false,
                    Some(()) => {
                        let now = Instant::now();
                        while in_flight.front().is_some_and(|t| now - *t > PONG_TIMEOUT) {
                            in_flight.pop_front();
                            out.pongs_lost += 1;
                        }
                        if sink.send(Message::text(PING)).await.is_err() {
                            out.dropped = Some("send_failed".into());
                            break;
                        }
                        out.pings_sent += 1;
                        in_flight.push_back(now);
                    }
                }
            }
            msg = stream.next() => {
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        let now = Instant::now();
                        if text.contains(&shared.marker) {
                            if out.broadcast_at.is_none() {
                                out.broadcast_at = Some(now - shared.epoch);
                                shared.received.fetch_add(1, Ordering::AcqRel);
                            }
                        } else if text.contains("\"pong\"") {
                            if let Some(sent) = in_flight.pop_front() {
                                out.rtts_ms.push((now - sent).as_secs_f64() * 1000.0);
                                shared.pongs.fetch_add(1, Ordering::AcqRel);
                            }
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        out.dropped = Some(match frame {
                            Some(f) => format!("closed_{}", u16::from(f.code)),
                            None => "closed".into(),
                        });
                        break;
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        out.dropped = Some(format!("dropped_{}", failure_kind(&e, tls)));
                        break;
                    }
                    None => {
                        out.dropped = Some("closed_without_frame".into());
                        break;
                    }
                }
            }
        }
    }
    out.pongs_lost += in_flight.len() as u64;
    if out.dropped.is_some() {
        shared.dropped.fetch_add(1, Ordering::AcqRel);
    }
    out
}
