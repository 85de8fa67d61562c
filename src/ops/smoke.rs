//! `wsctl smoke`: connect, ping, expect a pong (the post-deploy check).

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::Value;

#[derive(Debug, Serialize)]
pub struct SmokeReport {
    /// The URL with query values hidden (they may be tokens).
    pub url: String,
    pub ok: bool,
    pub connect_ms: Option<f64>,
    pub pong_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl fmt::Display for SmokeReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.error, self.connect_ms, self.pong_ms) {
            (None, Some(c), Some(p)) => writeln!(
                f,
                "ok: {} connected in {c:.0} ms, pong in {p:.0} ms",
                self.url
            ),
            (Some(e), _, _) => writeln!(f, "FAILED: {}: {e}", self.url),
            _ => writeln!(f, "FAILED: {}", self.url),
        }
    }
}

/// The URL with query values hidden (they may be tokens).
pub fn redact_url(url: &str) -> String {
    match url.split_once('?') {
        None => url.to_owned(),
        Some((base, query)) => {
            let hidden: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None => kv.to_owned(),
                })
                .collect();
            format!("{base}?{}", hidden.join("&"))
        }
    }
}

/// Connects, sends `{"action":"ping"}` and waits for a pong.
pub async fn smoke(url: &str, timeout: Duration) -> SmokeReport {
    let started = Instant::now();
    let mut report = SmokeReport {
        url: redact_url(url),
        ok: false,
        connect_ms: None,
        pong_ms: None,
        error: None,
    };
    let connected = tokio::time::timeout(timeout, tokio_tungstenite::connect_async(url)).await;
    let mut ws = match connected {
        Err(_) => {
            report.error = Some(format!("no connection within {timeout:?}"));
            return report;
        }
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
            let status = resp.status();
            let hint = match status.as_u16() {
                401 | 403 => " ($connect refused the client: a token or origin problem)",
                500 | 502 => {
                    " (often the Lambda permission for API Gateway is missing: run `wsctl status`)"
                }
                _ => "",
            };
            report.error = Some(format!(
                "the handshake was refused with HTTP {status}{hint}"
            ));
            return report;
        }
        Ok(Err(e)) => {
            report.error = Some(format!("cannot connect: {e}"));
            return report;
        }
        Ok(Ok((ws, _))) => ws,
    };
    report.connect_ms = Some(started.elapsed().as_secs_f64() * 1000.0);
    let ping_at = Instant::now();
    if let Err(e) = ws
        .send(tokio_tungstenite::tungstenite::Message::text(
            r#"{"action":"ping"}"#,
        ))
        .await
    {
        report.error = Some(format!("cannot send the ping: {e}"));
        return report;
    }
    let deadline = tokio::time::Instant::now() + timeout.saturating_sub(started.elapsed());
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => {
                report.error = Some(format!("no pong within {timeout:?}"));
                break;
            }
            Ok(None) | Ok(Some(Err(_))) => {
                report.error = Some("the connection closed before a pong arrived".into());
                break;
            }
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                if v["type"] == "pong" {
                    report.pong_ms = Some(ping_at.elapsed().as_secs_f64() * 1000.0);
                    report.ok = true;
                    break;
                }
            }
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame)))) => {
                report.error = Some(format!("the server closed the connection: {frame:?}"));
                break;
            }
            Ok(Some(Ok(_))) => {}
        }
    }
    let _ = ws.close(None).await;
    report
}

/// What a query string's keys and values escape: everything but RFC 3986's unreserved
/// characters (a JWT's `-`, `_` and `.` stay as they are).
const QUERY_ESCAPED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `url` with `params` (`key=value`) added to its query string.
pub fn with_query(url: &str, params: &[String]) -> Result<String> {
    let mut out = url.to_owned();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--query {p:?} must be KEY=VALUE")))?;
        let enc = |s: &str| percent_encoding::utf8_percent_encode(s, QUERY_ESCAPED).to_string();
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&format!("{}={}", enc(k), enc(v)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_hide_query_values() {
        assert_eq!(
            redact_url("wss://x/prod?token=secret&a=1"),
            "wss://x/prod?token=***&a=***"
        );
        assert_eq!(
            with_query("wss://x/prod", &["token=a b".into()]).unwrap(),
            "wss://x/prod?token=a%20b"
        );
        assert_eq!(
            with_query("wss://x/prod?a=1", &["access_token=eyJ.x-y_z~+/=".into()]).unwrap(),
            "wss://x/prod?a=1&access_token=eyJ.x-y_z~%2B%2F%3D"
        );
    }
}
