//! The gateway's sockets. The HTTP server and the WebSocket upgrade are done here, not by
//! `axum::serve` and axum's `WebSocketUpgrade`, so that the gateway keeps each connection's TCP
//! stream. A push (a broadcast, a reply, a POST to `@connections`) is then written to the socket
//! by a writer task per core ([`Lanes`]), in batches, instead of being handed to the connection's
//! own task, which cost a task wake-up and a turn of its event loop per message. Reading, control
//! frames and the close handshake stay with tungstenite, whose writes go through the same
//! [`Outlet`] so that everything leaves in order.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use handler::push::Closed;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::lock;

/// A WebSocket opening handshake, checked as axum's `WebSocketUpgrade` checks it (same
/// statuses), keeping hyper's upgrade handle.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
}

fn rejection(status: StatusCode, message: &'static str) -> Response {
    (status, message).into_response()
}

fn header_has(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|v| {
        v.as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        if parts.method != Method::GET {
            return Err(rejection(
                StatusCode::METHOD_NOT_ALLOWED,
                "Request method must be `GET`",
            ));
        }
        if !header_has(&parts.headers, header::CONNECTION, "upgrade") {
            return Err(rejection(
                StatusCode::BAD_REQUEST,
                "Connection header did not include 'upgrade'",
            ));
        }
        if !header_has(&parts.headers, header::UPGRADE, "websocket") {
            return Err(rejection(
                StatusCode::BAD_REQUEST,
                "`Upgrade` header did not include 'websocket'",
            ));
        }
        let version_13 = parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v.as_bytes() == b"13");
        if !version_13 {
            return Err(rejection(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Version` header did not include '13'",
            ));
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return Err(rejection(
                StatusCode::BAD_REQUEST,
                "`Sec-WebSocket-Key` header missing",
            ));
        };
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return Err(rejection(
                StatusCode::UPGRADE_REQUIRED,
                "WebSocket request couldn't be upgraded since no upgrade state was present",
            ));
        };
        Ok(Upgrade { key, on_upgrade })
    }
}

impl Upgrade {
    /// Answers 101 and runs `serve` with the connection's stream (and any bytes the client sent
    /// after its handshake) once hyper hands it over; `failed` runs instead if it cannot.
    pub fn accept<F, Fut>(
        self,
        serve: F,
        failed: impl FnOnce(io::Error) + Send + 'static,
    ) -> Response
    where
        F: FnOnce(TcpStream, Vec<u8>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let accept = derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            let upgraded = match on_upgrade.await {
                Ok(u) => u,
                Err(e) => return failed(io::Error::other(e)),
            };
            match upgraded.downcast::<TokioIo<TcpStream>>() {
                Ok(parts) => {
                    // Copy what the client sent early and let hyper's read buffer go now: held
                    // for the connection's life, it would cost kilobytes per connection.
                    let hyper::upgrade::Parts { io, read_buf, .. } = parts;
                    let read_ahead = read_buf.to_vec();
                    drop(read_buf);
                    serve(io.into_inner(), read_ahead).await
                }
                Err(_) => failed(io::Error::other(
                    "the upgraded connection is not a TCP stream",
                )),
            }
        });
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        response
    }
}

/// A server frame header (unmasked, final) for a payload of `len` bytes.
fn frame_header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut h = [0u8; 10];
    h[0] = 0x80 | opcode;
    if len < 126 {
        h[1] = len as u8;
        (h, 2)
    } else if let Ok(short) = u16::try_from(len) {
        h[1] = 126;
        h[2..4].copy_from_slice(&short.to_be_bytes());
        (h, 4)
    } else {
        h[1] = 127;
        h[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (h, 10)
    }
}

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;

struct Out {
    /// The socket's writing half, once the handshake has handed the stream over.
    half: Option<OwnedWriteHalf>,
    /// Bytes the socket did not take yet; written before anything newer, by the connection's
    /// task ([`Outlet::drain`]) or by tungstenite's flush.
    pending: Vec<u8>,
    done: usize,
    broken: bool,
}

impl Out {
    fn queued(&self) -> bool {
        self.done < self.pending.len()
    }

    /// Writes `bytes` now if nothing is queued, queueing what the socket does not take.
    /// Returns whether anything was queued.
    fn write_or_queue(&mut self, bytes: &[u8]) -> io::Result<bool> {
        if self.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if self.queued() {
            self.pending.extend_from_slice(bytes);
            return Ok(true);
        }
        let Some(half) = &self.half else {
            // Not connected yet: `Outlet::connect` has the connection's task write it.
            self.pending.extend_from_slice(bytes);
            return Ok(true);
        };
        match half.try_write(bytes) {
            Ok(n) if n == bytes.len() => Ok(false),
            Ok(n) => {
                self.pending.extend_from_slice(&bytes[n..]);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.pending.extend_from_slice(bytes);
                Ok(true)
            }
            Err(e) => {
                self.broken = true;
                Err(e)
            }
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.broken {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        while self.queued() {
            let Out {
                half: Some(half),
                pending,
                done,
                ..
            } = self
            else {
                // Not connected yet: kept for `Outlet::connect`.
                return Poll::Ready(Ok(()));
            };
            match Pin::new(half).poll_write(cx, &pending[*done..]) {
                Poll::Ready(Ok(0)) => {
                    self.broken = true;
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => *done += n,
                Poll::Ready(Err(e)) => {
                    self.broken = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        self.done = 0;
        self.pending.clear();
        if self.pending.capacity() > 64 * 1024 {
            self.pending = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

/// How the gateway ends a connection: as `DELETE @connections/{id}` does, or the ways the
/// internet and API Gateway drop one (`wsctl dev --drop-every`, `wsctl dev drop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Ending {
    /// `DELETE @connections/{id}`: a close frame 1000.
    Deleted = 1,
    /// The network fails: no close frame, the client sees 1006.
    Abrupt = 2,
    /// API Gateway's 1001 "Going away" (its 2-hour cut, a deployment).
    GoingAway = 3,
    /// API Gateway's idle cut: 1001 after 10 idle minutes.
    Idle = 4,
}

impl Ending {
    fn from_u8(n: u8) -> Option<Ending> {
        match n {
            1 => Some(Ending::Deleted),
            2 => Some(Ending::Abrupt),
            3 => Some(Ending::GoingAway),
            4 => Some(Ending::Idle),
            _ => None,
        }
    }

    /// The name [`Ending::parse_drop`] reads.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Deleted => "deleted",
            Ending::Abrupt => "abrupt",
            Ending::GoingAway => "going-away",
            Ending::Idle => "idle",
        }
    }

    /// `abrupt`, `going-away` or `idle`: the kinds of drop a person asks for.
    pub fn parse_drop(s: &str) -> Result<Ending, String> {
        match s {
            "abrupt" => Ok(Ending::Abrupt),
            "going-away" => Ok(Ending::GoingAway),
            "idle" => Ok(Ending::Idle),
            other => Err(format!(
                "unknown drop {other:?}: expected abrupt (no close frame, 1006), going-away (1001) or idle (1001 Idle timeout)"
            )),
        }
    }
}

/// One connection's writing side, shared by its lane (pushes) and its task (tungstenite's control
/// frames, the close handshake). A frame is written to the socket at once; what the socket does
/// not take is queued, in order, and the connection's task is woken to write it when the socket
/// allows. A client that stops reading therefore holds memory in the gateway, as it would hold
/// messages in a channel to its task.
pub struct Outlet {
    out: Mutex<Out>,
    /// Set when the connection starts closing: later pushes answer Gone, as on AWS.
    closing: AtomicBool,
    /// How the gateway is to end the connection ([`Ending`] as a number; 0: it is not).
    ending: std::sync::atomic::AtomicU8,
    /// Wakes the connection's task: queued bytes to write, or a close requested.
    wake: Notify,
}

impl Outlet {
    /// An outlet for a connection whose handshake is being answered: pushes are accepted (and
    /// queued) from the moment `$connect` has succeeded, as on AWS.
    pub fn new() -> Arc<Outlet> {
        Arc::new(Outlet {
            out: Mutex::new(Out {
                half: None,
                pending: Vec::new(),
                done: 0,
                broken: false,
            }),
            closing: AtomicBool::new(false),
            ending: std::sync::atomic::AtomicU8::new(0),
            wake: Notify::new(),
        })
    }

    /// Takes the upgraded stream: its writing half for the outlet (the connection's task is
    /// woken to write what was queued meanwhile), its reading half for tungstenite.
    pub fn connect(&self, stream: TcpStream) -> OwnedReadHalf {
        let (read, write) = stream.into_split();
        let mut out = lock(&self.out);
        out.half = Some(write);
        if out.queued() {
            self.wake.notify_one();
        }
        read
    }

    /// Asks the connection's task to close the connection (DELETE @connections/{id}).
    pub fn request_close(&self) {
        self.end(Ending::Deleted);
    }

    /// Asks the connection's task to end the connection as `how` says.
    pub fn end(&self, how: Ending) {
        self.ending.store(how as u8, Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// How the connection is to end, once asked.
    pub fn ending(&self) -> Option<Ending> {
        Ending::from_u8(self.ending.load(Ordering::SeqCst))
    }

    /// Shuts the TCP connection without a close frame (the client sees 1006).
    pub fn abort(&self) {
        self.closing.store(true, Ordering::SeqCst);
        let half = lock(&self.out).half.take();
        drop(half);
    }

    /// No pushes from now on (the connection is closing).
    pub fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// Resolves when the connection's task has something to do: queued bytes or a close.
    pub async fn woken(&self) {
        self.wake.notified().await
    }

    /// Writes whatever is queued, waiting for the socket as needed.
    pub async fn drain(&self) -> io::Result<()> {
        std::future::poll_fn(|cx| lock(&self.out).poll_drain(cx)).await
    }

    /// Writes one whole frame, unless the connection has started closing (then a close frame
    /// may already be out, and nothing may follow it).
    fn write_frame(&self, frame: &[u8]) {
        let mut out = lock(&self.out);
        if self.closing.load(Ordering::SeqCst) {
            return;
        }
        if !matches!(out.write_or_queue(frame), Ok(false)) {
            // Queued bytes to write, or a broken socket the task will notice.
            drop(out);
            self.wake.notify_one();
        }
    }
}

type Lane = mpsc::UnboundedSender<(Arc<Outlet>, Vec<u8>)>;

/// The writers pushes go through: one task per worker thread, each serving a share of the
/// connections. A broadcast hands each frame to its connection's lane and the lanes write them
/// in batches, on all cores at once, with no task of the connection's own woken per message.
pub struct Lanes {
    lanes: Vec<Lane>,
    next: AtomicUsize,
}

impl Lanes {
    /// Starts `count` (at least one) writer tasks; they end when the `Lanes` and every
    /// [`Route`] made from it are dropped.
    pub fn start(count: usize) -> Lanes {
        let lanes = (0..count.max(1))
            .map(|_| {
                let (tx, mut rx) = mpsc::unbounded_channel::<(Arc<Outlet>, Vec<u8>)>();
                tokio::spawn(async move {
                    let mut batch = Vec::with_capacity(256);
                    while rx.recv_many(&mut batch, 256).await > 0 {
                        for (outlet, frame) in batch.drain(..) {
                            // An empty frame is a close, ordered after the pushes before it.
                            if frame.is_empty() {
                                outlet.request_close();
                            } else {
                                outlet.write_frame(&frame);
                            }
                        }
                    }
                });
                tx
            })
            .collect();
        Lanes {
            lanes,
            next: AtomicUsize::new(0),
        }
    }

    /// The pusher's handle for a new connection: its outlet on the next lane in turn.
    pub fn route(&self, outlet: Arc<Outlet>) -> Route {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        Route {
            outlet,
            lane: self.lanes[i].clone(),
        }
    }
}

/// What the pusher holds for one connection.
pub struct Route {
    outlet: Arc<Outlet>,
    lane: Lane,
}

impl handler::Sink for Route {
    fn deliver(&self, data: &[u8]) -> Result<(), Closed> {
        if self.outlet.closing.load(Ordering::SeqCst) || lock(&self.outlet.out).broken {
            return Err(Closed);
        }
        let opcode = if std::str::from_utf8(data).is_ok() {
            TEXT
        } else {
            BINARY
        };
        let (header, len) = frame_header(opcode, data.len());
        let mut frame = Vec::with_capacity(len + data.len());
        frame.extend_from_slice(&header[..len]);
        frame.extend_from_slice(data);
        self.lane
            .send((self.outlet.clone(), frame))
            .map_err(|_| Closed)
    }

    fn close(&self) -> Result<(), Closed> {
        if self.outlet.closing.load(Ordering::SeqCst) {
            return Err(Closed);
        }
        self.lane
            .send((self.outlet.clone(), Vec::new()))
            .map_err(|_| Closed)
    }
}

/// The stream tungstenite works on: reads from the socket, writes through the outlet (so its
/// control frames and close handshake are ordered with pushes).
pub struct Io {
    read: OwnedReadHalf,
    outlet: Arc<Outlet>,
}

impl Io {
    pub fn new(read: OwnedReadHalf, outlet: Arc<Outlet>) -> Io {
        Io { read, outlet }
    }
}

impl AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        // Always taken whole: what the socket refuses is queued and written by poll_flush.
        Poll::Ready(
            lock(&self.outlet.out)
                .write_or_queue(buf)
                .map(|_| buf.len()),
        )
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        lock(&self.outlet.out).poll_drain(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut out = lock(&self.outlet.out);
        ready!(out.poll_drain(cx))?;
        match out.half.as_mut() {
            Some(half) => Pin::new(half).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// Connections the kernel may hold for the accept loop; it caps this at `net.core.somaxconn`
/// (4096 on current Linux). `TcpListener::bind` asks for 128, and a burst of more handshakes
/// than that (clients reconnecting together) overflowed the queue: the kernel dropped the
/// handshakes that did not fit, and those clients waited a second or more for their retry.
const BACKLOG: u32 = 4096;

/// Listens on `host:port` as `TcpListener::bind` does (each address the name resolves to in
/// turn, `SO_REUSEADDR` on Unix) but with a deep accept queue ([`BACKLOG`]).
pub async fn listen(host: &str, port: u16) -> io::Result<TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host((host, port)).await? {
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()
        } else {
            TcpSocket::new_v6()
        };
        let bound = socket.and_then(|socket| {
            #[cfg(unix)]
            socket.set_reuseaddr(true)?;
            socket.bind(addr)?;
            socket.listen(BACKLOG)
        });
        match bound {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "the name resolved to no address",
        )
    }))
}

/// Serves `app` on `listener` (HTTP/1.1 with upgrades, the peer address as `ConnectInfo`) until
/// `shutdown` resolves; then stops accepting and lets requests in progress finish (for up to
/// 10 s), as `axum::serve`'s graceful shutdown does.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    // `signal` tells connections to finish; each holds a `done` receiver until it has.
    let (signal_tx, signal_rx) = tokio::sync::watch::channel(());
    let (done_tx, done_rx) = tokio::sync::watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning, as axum does.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                let mut app = app.clone();
                async move {
                    Ok::<_, Infallible>(
                        tower_service::Service::call(&mut app, req)
                            .await
                            .unwrap_or_else(|never| match never {}),
                    )
                }
            });
        let mut signal = signal_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = signal.changed() => {
                    // Finish the request in progress, then close (an upgraded connection has
                    // already left hyper and closes on the gateway's own signal).
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(done);
        });
    }
    drop(listener);
    let _ = signal_tx.send(());
    drop(done_rx);
    let _ = tokio::time::timeout(Duration::from_secs(10), done_tx.closed()).await;
}

#[cfg(test)]
mod tests {
    use super::frame_header;

    #[test]
    fn frame_headers_use_the_shortest_length_form() {
        assert_eq!(frame_header(1, 5).0[..2], [0x81, 5]);
        assert_eq!(frame_header(1, 125).1, 2);
        let (h, n) = frame_header(2, 126);
        assert_eq!((&h[..n], n), (&[0x82, 126, 0, 126][..], 4));
        let (h, n) = frame_header(1, 70_000);
        assert_eq!(n, 10);
        assert_eq!(&h[..n], &[0x81, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
    }
}
