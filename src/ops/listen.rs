//! `wsctl listen`: a client that stays: connects, subscribes, prints each message as one JSON
//! line on stdout, and after a drop reconnects ([`RECONNECT_AFTER`] doubling to 5 s),
//! subscribes again and resumes every stream it heard (`{"action":"resume"}`), printing each
//! message once and in its stream's order; a `gap` is said on stderr. Ends after `count`
//! messages or `timeout`.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

use super::smoke::redact_url;
use crate::error::{Error, Result};

/// The first wait before reconnecting (the React client's default backoff base).
pub const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// What a listen did.
#[derive(Debug, Default)]
pub struct Listened {
    pub messages: u64,
    pub reconnects: u64,
    pub gaps: u64,
}

/// Listens on `url` to `topics` until `count` messages (0: no limit) or `timeout`.
pub async fn listen(
    url: &str,
    topics: &[String],
    count: u64,
    timeout: Duration,
    quiet: bool,
) -> Result<Listened> {
    let deadline = Instant::now() + timeout;
    let say = |line: String| {
        if !quiet {
            eprintln!("listen: {line}");
        }
    };
    let mut done = Listened::default();
    // Last position per stream, and ids seen (each message printed once).
    let mut positions: BTreeMap<String, u64> = BTreeMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut backoff = RECONNECT_AFTER;
    let mut first = true;
    loop {
        if Instant::now() >= deadline {
            return Ok(done);
        }
        let connected = tokio::time::timeout(
            deadline.saturating_duration_since(Instant::now()),
            tokio_tungstenite::connect_async(url),
        )
        .await;
        let mut ws = match connected {
            Err(_) => return Ok(done),
            Ok(Ok((ws, _))) => ws,
            Ok(Err(e)) if first => return Err(Error::Failed(format!("{}: {e}", redact_url(url)))),
            Ok(Err(e)) => {
                say(format!(
                    "reconnect failed ({e}); again in {} ms",
                    backoff.as_millis()
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        backoff = RECONNECT_AFTER;
        say(if first {
            format!("connected to {}", redact_url(url))
        } else {
            "reconnected".into()
        });
        let send = |v: Value| Message::text(v.to_string());
        for topic in topics {
            ws.send(send(json!({"action": "subscribe", "topic": topic})))
                .await
                .map_err(|e| Error::Failed(format!("subscribe {topic}: {e}")))?;
        }
        if !first && !positions.is_empty() {
            let _ = ws
                .send(send(json!({"action": "resume", "streams": positions})))
                .await;
        }
        first = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match tokio::time::timeout(left, ws.next()).await {
                Err(_) => return Ok(done),
                Ok(frame) => frame,
            };
            let text = match frame {
                Some(Ok(Message::Text(t))) => t.to_string(),
                Some(Ok(Message::Close(f))) => {
                    say(format!(
                        "closed by the gateway ({})",
                        f.map_or(1005, |f| u16::from(f.code))
                    ));
                    break;
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    say("dropped (no close frame: 1006)".into());
                    break;
                }
            };
            let Ok(message) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            match message["type"].as_str() {
                Some("subscribed") | Some("pong") => continue,
                Some("resumed") => {
                    say(format!("resumed {}", message["data"]["streams"]));
                    continue;
                }
                Some("gap") => {
                    done.gaps += 1;
                    let d = &message["data"];
                    say(format!(
                        "gap in {}: history no longer reaches back to {}",
                        d["stream"], d["after"]
                    ));
                    if let (Some(s), Some(head)) = (d["stream"].as_str(), d["head"].as_u64()) {
                        positions.insert(s.to_owned(), head);
                    }
                    continue;
                }
                _ => {}
            }
            if let Some(w) = message.get(handler::history::FIELD) {
                if let (Some(stream), Some(seq)) = (w["stream"].as_str(), w["seq"].as_u64()) {
                    let id = w["id"].as_str().unwrap_or_default().to_owned();
                    if positions.get(stream).is_some_and(|&last| seq <= last) || !seen.insert(id) {
                        continue;
                    }
                    positions.insert(stream.to_owned(), seq);
                }
            }
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{message}");
            let _ = out.flush();
            done.messages += 1;
            if count > 0 && done.messages >= count {
                let _ = ws.close(None).await;
                return Ok(done);
            }
        }
        done.reconnects += 1;
        say(format!("reconnecting in {} ms", backoff.as_millis()));
        tokio::time::sleep(backoff.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}
