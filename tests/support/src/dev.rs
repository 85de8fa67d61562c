//! A running `wsctl dev` for tests: its URL, its stderr, WebSocket clients.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A running `wsctl dev`, its stderr collected.
pub struct Dev {
    pub child: Child,
    pub url: String,
    pub base: String,
    stderr: Arc<Mutex<String>>,
}

impl Dev {
    pub fn start(args: &[&str]) -> Dev {
        Dev::start_with_config(None, args)
    }

    /// `wsctl dev` in a directory whose `wsctl.toml` is `config`.
    pub fn start_with_config(config: Option<&str>, args: &[&str]) -> Dev {
        let dir = tempfile::tempdir().unwrap();
        if let Some(text) = config {
            std::fs::write(dir.path().join("wsctl.toml"), text).unwrap();
        }
        let dev = Dev::start_in(dir.path(), args);
        std::mem::forget(dir);
        dev
    }

    /// `wsctl dev` in `dir`, a project directory the test has written.
    pub fn start_in(dir: &std::path::Path, args: &[&str]) -> Dev {
        let mut child = Command::new(crate::wsctl_bin())
            .args(["dev", "--port", "0"])
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines.next().expect("dev prints its URL").unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let base = url.trim_end_matches("/ws").replace("ws://", "http://");
        Dev {
            child,
            url,
            base,
            stderr,
        }
    }

    /// Everything the gateway printed on stderr, up to the last complete line.
    pub fn stderr(&self) -> String {
        let log = self.stderr.lock().unwrap();
        log[..log.rfind('\n').map_or(0, |i| i + 1)].to_owned()
    }

    /// Waits until stderr contains `needle`.
    pub async fn wait_log(&self, needle: &str) {
        for _ in 0..200 {
            if self.stderr().contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("stderr never showed {needle:?}:\n{}", self.stderr());
    }

    /// Waits until `count` lines of stderr contain `needle`, or `limit` has passed; returns
    /// how many do.
    pub async fn wait_log_lines(&self, needle: &str, count: usize, limit: Duration) -> usize {
        let lines = || self.stderr().lines().filter(|l| l.contains(needle)).count();
        let deadline = tokio::time::Instant::now() + limit;
        // Each look copies the whole log: rarer looks for longer waits (a 10,000-client log).
        let every = (limit / 600).max(Duration::from_millis(10));
        while lines() < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(every).await;
        }
        lines()
    }

    pub async fn connect(&self) -> (Ws, String) {
        self.connect_to(&self.url).await
    }

    /// Connects and learns the connection id from a `whoami`-free trick: the id is in the
    /// `$connect` log line that appears for this connection (an accepted one: a refused
    /// connection's line, `$connect ID 401`, may be logged just after its refusal).
    pub async fn connect_to(&self, url: &str) -> (Ws, String) {
        fn accepted(log: &str) -> Vec<&str> {
            log.lines()
                .filter(|l| {
                    let mut f = l.split_whitespace().skip(1);
                    f.next() == Some("$connect") && f.nth(1) == Some("200")
                })
                .collect()
        }
        let before = accepted(&self.stderr()).len();
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        for _ in 0..200 {
            let log = self.stderr();
            let connects = accepted(&log);
            if connects.len() > before {
                let id = connects[before]
                    .split_whitespace()
                    .nth(2)
                    .unwrap()
                    .to_owned();
                return (ws, id);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no $connect logged");
    }

    pub fn http(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        crate::http(method, &format!("{}{path}", self.base), body).unwrap()
    }

    /// `wsctl ARGS...` in `dir` (its `wsctl.toml`), with Lambda's endpoint at this gateway, as a
    /// backend runs it; a clean environment besides PATH and dummy credentials.
    pub fn wsctl(&self, dir: &std::path::Path, args: &[&str]) -> crate::project::Out {
        let out = Command::new(crate::wsctl_bin())
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir)
            .env("AWS_ENDPOINT_URL_LAMBDA", &self.base)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        crate::project::Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
