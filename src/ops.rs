//! Day-two operations on a deployed stack (or on `wsctl dev`, through endpoint overrides):
//! connections, prune, broadcast, send, logs, smoke test, frontend env file.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use aws_sdk_lambda::primitives::Blob;
use futures::{SinkExt, StreamExt};
use handler::store::DynamoStore;
use handler::{Connection, ConnectionStore, DeliveryReport};
use serde::Serialize;
use serde_json::{json, Value};

use crate::aws::Clients;
use crate::naming::Names;
use crate::resources::{api, AwsContext};

/// Where the stack's management API is: `--management-endpoint` / `WSCTL_MANAGEMENT_ENDPOINT`
/// (e.g. `wsctl dev`'s `http://localhost:3002/prod`), else the deployed API's.
pub async fn management_endpoint(
    c: &Clients,
    names: &Names,
    explicit: Option<&str>,
) -> Result<String> {
    if let Some(e) = explicit {
        return Ok(e.trim_end_matches('/').to_owned());
    }
    let api = api_id(c, names).await?;
    Ok(names
        .callback_url(&api)
        .trim_end_matches("/@connections")
        .to_owned())
}

/// The deployed API's id.
pub async fn api_id(c: &Clients, names: &Names) -> Result<String> {
    match api::choose(api::candidates(c, &names.api).await?, &names.api)? {
        Some(a) => Ok(a.id),
        None => bail!(
            "no WebSocket API named {} in {}: run `wsctl up` first (or pass --url / --management-endpoint)",
            names.api,
            names.region
        ),
    }
}

// ---------------------------------------------------------------- connections

#[derive(Debug, Serialize)]
pub struct ConnectionRow {
    pub connection_id: String,
    pub connected_at: String,
    pub age_seconds: Option<i64>,
    pub topics: BTreeSet<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ConnectionList {
    pub table: String,
    pub count: usize,
    pub pages: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connections: Option<Vec<ConnectionRow>>,
}

impl fmt::Display for ConnectionList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.connections {
            None => writeln!(f, "{}", self.count),
            Some(rows) => {
                writeln!(
                    f,
                    "{:<18} {:<26} {:>8}  TOPICS",
                    "CONNECTION", "CONNECTED AT", "AGE"
                )?;
                for r in rows {
                    let age = r.age_seconds.map_or("?".into(), human_age);
                    let topics = r.topics.iter().cloned().collect::<Vec<_>>().join(",");
                    writeln!(
                        f,
                        "{:<18} {:<26} {:>8}  {topics}",
                        r.connection_id, r.connected_at, age
                    )?;
                }
                writeln!(
                    f,
                    "{} connection(s) in {} ({} page(s) read)",
                    self.count, self.table, self.pages
                )
            }
        }
    }
}

fn human_age(s: i64) -> String {
    match s {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Every row of the table, reading every page.
pub async fn all_rows(store: &DynamoStore) -> Result<(Vec<Connection>, usize)> {
    let mut rows = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let page = store
            .scan(handler::Filter::All, cursor)
            .await
            .map_err(|e| anyhow::anyhow!(handler::error_chain(&e)))?;
        pages += 1;
        rows.extend(page.items);
        cursor = page.next;
        if cursor.is_none() {
            return Ok((rows, pages));
        }
    }
}

pub async fn connections(
    c: &Clients,
    names: &Names,
    count_only: bool,
    page_size: Option<i32>,
) -> Result<ConnectionList> {
    let store = DynamoStore::new(c.dynamodb.clone(), &names.table).with_page_size(page_size);
    let (rows, pages) = all_rows(&store).await?;
    let now = time::OffsetDateTime::now_utc();
    let mut list: Vec<ConnectionRow> = rows
        .into_iter()
        .map(|r| ConnectionRow {
            age_seconds: time::OffsetDateTime::parse(
                &r.connected_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
            .map(|t| (now - t).whole_seconds()),
            connection_id: r.connection_id,
            connected_at: r.connected_at,
            topics: r.topics,
            user: r.user,
        })
        .collect();
    list.sort_by(|a, b| a.connected_at.cmp(&b.connected_at));
    Ok(ConnectionList {
        table: names.table.clone(),
        count: list.len(),
        pages,
        connections: (!count_only).then_some(list),
    })
}

#[derive(Debug, Serialize)]
pub struct PruneReport {
    pub checked: usize,
    pub removed: usize,
    pub alive: usize,
    pub failed: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

impl fmt::Display for PruneReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "checked {} connection(s): removed {} gone, {} alive, {} failed",
            self.checked, self.removed, self.alive, self.failed
        )?;
        for e in &self.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Asks the management API about every row and deletes the rows of connections that answer
/// 410 Gone.
pub async fn prune(
    c: &Clients,
    names: &Names,
    endpoint: &str,
    page_size: Option<i32>,
) -> Result<PruneReport> {
    let store =
        Arc::new(DynamoStore::new(c.dynamodb.clone(), &names.table).with_page_size(page_size));
    let (rows, _) = all_rows(&store).await?;
    let conf = aws_sdk_apigatewaymanagement::config::Builder::from(&c.sdk)
        .endpoint_url(endpoint)
        .build();
    let mgmt = aws_sdk_apigatewaymanagement::Client::from_conf(conf);
    let results: Vec<Result<bool, String>> = futures::stream::iter(rows)
        .map(|row| {
            let mgmt = mgmt.clone();
            let store = store.clone();
            async move {
                match mgmt
                    .get_connection()
                    .connection_id(&row.connection_id)
                    .send()
                    .await
                {
                    Ok(_) => Ok(false),
                    Err(e) if e.as_service_error().is_some_and(|s| s.is_gone_exception()) => {
                        store.delete(&row.connection_id).await.map_err(|e| {
                            format!("{}: {}", row.connection_id, handler::error_chain(&e))
                        })?;
                        Ok(true)
                    }
                    Err(e) => Err(format!(
                        "{}: {}",
                        row.connection_id,
                        crate::resources::describe_sdk_error(&e)
                    )),
                }
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut report = PruneReport {
        checked: results.len(),
        removed: 0,
        alive: 0,
        failed: 0,
        errors: vec![],
    };
    for r in results {
        match r {
            Ok(true) => report.removed += 1,
            Ok(false) => report.alive += 1,
            Err(e) => {
                report.failed += 1;
                if report.errors.len() < 10 {
                    report.errors.push(e);
                }
            }
        }
    }
    Ok(report)
}

// ---------------------------------------------------------------- broadcast / send

/// The message to send: JSON from the argument, a file, or stdin; or `{type, data}` built from
/// `--type` and `--data`.
pub fn message(
    arg: Option<&str>,
    file: Option<&Path>,
    kind: Option<&str>,
    data: Option<&str>,
) -> Result<Value, String> {
    let parse = |text: &str, from: &str| -> Result<Value, String> {
        serde_json::from_str(text).map_err(|e| {
            format!("the message from {from} is not JSON ({e}); use --type NAME --data JSON to build {{\"type\",\"data\"}}")
        })
    };
    if data.is_some() && kind.is_none() {
        return Err("--data needs --type".into());
    }
    if let Some(kind) = kind {
        if arg.is_some() || file.is_some() {
            return Err("--type/--data build the message; do not also pass one".into());
        }
        let data = match data {
            Some(d) => parse(d, "--data")?,
            None => Value::Null,
        };
        return Ok(json!({"type": kind, "data": data}));
    }
    match (arg, file) {
        (Some(_), Some(_)) => {
            Err("give the message as an argument or with --file, not both".into())
        }
        (Some(text), None) if text != "-" => parse(text, "the argument"),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            parse(&text, &path.display().to_string())
        }
        _ => {
            use std::io::{IsTerminal, Read};
            if std::io::stdin().is_terminal() {
                return Err(
                    "no message: pass one as an argument, with --file, --type/--data, or on stdin"
                        .into(),
                );
            }
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|e| format!("reading stdin: {e}"))?;
            parse(&text, "stdin")
        }
    }
}

/// Invokes the function with `payload` and returns its delivery report.
pub async fn invoke(c: &Clients, function: &str, payload: &Value) -> Result<DeliveryReport> {
    let out = c
        .lambda
        .invoke()
        .function_name(function)
        .payload(Blob::new(serde_json::to_vec(payload)?))
        .send()
        .await
        .aws(format!("Invoke {function}"))?;
    let body = out.payload.map(|p| p.into_inner()).unwrap_or_default();
    let text = String::from_utf8_lossy(&body);
    if let Some(kind) = out.function_error {
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        bail!(
            "the function failed ({kind}): {} {}",
            v["errorType"].as_str().unwrap_or(""),
            v["errorMessage"].as_str().unwrap_or(&text)
        );
    }
    serde_json::from_str(&text).with_context(|| {
        format!("{function} did not answer with a delivery report ({{\"delivered\",\"gone\",\"failed\"}}): {text}")
    })
}

#[derive(Debug, Serialize)]
pub struct Sent {
    pub function: String,
    #[serde(flatten)]
    pub report: DeliveryReport,
}

impl fmt::Display for Sent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "delivered {}, gone {} (rows removed), failed {}",
            self.report.delivered, self.report.gone, self.report.failed
        )?;
        for e in &self.report.errors {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- logs

#[derive(Debug, Serialize)]
pub struct LogEvent {
    pub timestamp: String,
    pub stream: String,
    pub message: String,
}

impl fmt::Display for LogEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.timestamp, self.message.trim_end())
    }
}

/// Prints the function's log events since `since` matching `filter`; with `follow`, keeps
/// polling FilterLogEvents (live tail does not work against emulators).
pub async fn logs(
    c: &Clients,
    group: &str,
    since: Duration,
    filter: Option<&str>,
    follow: Option<Duration>,
    json_lines: bool,
) -> Result<()> {
    let mut start = (time::OffsetDateTime::now_utc() - since).unix_timestamp_nanos() / 1_000_000;
    let mut seen: BTreeSet<String> = BTreeSet::new();
    loop {
        let mut token = None;
        let mut newest = start;
        loop {
            let out = c
                .logs
                .filter_log_events()
                .log_group_name(group)
                .start_time(start as i64)
                .set_filter_pattern(filter.map(str::to_owned))
                .set_next_token(token)
                .send()
                .await;
            let out = match out {
                Ok(o) => o,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) =>
                {
                    bail!("log group {group} does not exist (the function has not logged yet, or the stack is not deployed)")
                }
                Err(e) => return Err(e).aws(format!("FilterLogEvents {group}")),
            };
            for e in out.events() {
                let id = e.event_id.clone().unwrap_or_default();
                if !seen.insert(id) {
                    continue;
                }
                let ts = e.timestamp.unwrap_or_default();
                newest = newest.max(ts as i128);
                let event = LogEvent {
                    timestamp: time::OffsetDateTime::from_unix_timestamp_nanos(
                        ts as i128 * 1_000_000,
                    )
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default(),
                    stream: e.log_stream_name.clone().unwrap_or_default(),
                    message: e.message.clone().unwrap_or_default(),
                };
                if json_lines {
                    println!("{}", serde_json::to_string(&event)?);
                } else {
                    println!("{event}");
                }
            }
            token = out.next_token;
            if token.is_none() {
                break;
            }
        }
        let Some(every) = follow else {
            return Ok(());
        };
        // Re-read from the newest timestamp seen (events can share a millisecond); ids dedupe.
        start = newest;
        tokio::time::sleep(every).await;
    }
}

// ---------------------------------------------------------------- smoke

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

/// `url` with `params` (`key=value`) added to its query string.
pub fn with_query(url: &str, params: &[String]) -> Result<String, String> {
    let mut out = url.to_owned();
    for p in params {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| format!("--query {p:?} must be KEY=VALUE"))?;
        let enc = |s: &str| {
            percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        out.push(if out.contains('?') { '&' } else { '?' });
        out.push_str(&format!("{}={}", enc(k), enc(v)));
    }
    Ok(out)
}

// ---------------------------------------------------------------- env

#[derive(Debug, Serialize)]
pub struct EnvWritten {
    pub file: PathBuf,
    pub name: String,
    pub value: String,
    pub replaced: bool,
}

impl fmt::Display for EnvWritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} {}={} in {}",
            if self.replaced { "updated" } else { "added" },
            self.name,
            self.value,
            self.file.display()
        )
    }
}

/// Sets `name=value` in a dotenv file, replacing only that variable's line (also an
/// `export name=` line) and keeping everything else byte for byte.
pub fn write_env(file: &Path, name: &str, value: &str) -> Result<EnvWritten> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let is_ours = |line: &str| {
        let l = line.trim_start();
        let l = l.strip_prefix("export ").map(str::trim_start).unwrap_or(l);
        l.strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let mut replaced = false;
    let mut out = String::with_capacity(text.len() + name.len() + value.len() + 2);
    for line in text.split_inclusive('\n') {
        if !replaced && is_ours(line) {
            let ending = if line.ends_with("\r\n") {
                "\r\n"
            } else if line.ends_with('\n') {
                "\n"
            } else {
                ""
            };
            let export = if line.trim_start().starts_with("export ") {
                "export "
            } else {
                ""
            };
            out.push_str(&format!("{export}{name}={value}{ending}"));
            replaced = true;
        } else if replaced && is_ours(line) {
            // A duplicate definition would shadow ours; drop it.
        } else {
            out.push_str(line);
        }
    }
    if !replaced {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{name}={value}\n"));
    }
    std::fs::write(file, out).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(EnvWritten {
        file: file.to_path_buf(),
        name: name.to_owned(),
        value: value.to_owned(),
        replaced,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replaces_only_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join(".env.production");
        std::fs::write(
            &f,
            "# comment\nVITE_API=https://api\nVITE_SOCKET_URL=wss://old/prod\nOTHER=1",
        )
        .unwrap();
        let w = write_env(&f, "VITE_SOCKET_URL", "wss://new/prod").unwrap();
        assert!(w.replaced);
        assert_eq!(
            std::fs::read_to_string(&f).unwrap(),
            "# comment\nVITE_API=https://api\nVITE_SOCKET_URL=wss://new/prod\nOTHER=1"
        );
        let w = write_env(&f, "NEXT_PUBLIC_WS", "wss://x").unwrap();
        assert!(!w.replaced);
        assert!(std::fs::read_to_string(&f)
            .unwrap()
            .ends_with("OTHER=1\nNEXT_PUBLIC_WS=wss://x\n"));
    }

    #[test]
    fn messages_come_from_one_place() {
        assert_eq!(
            message(Some(r#"{"type":"t"}"#), None, None, None),
            Ok(json!({"type":"t"}))
        );
        assert_eq!(
            message(None, None, Some("claim"), Some(r#"{"id":1}"#)),
            Ok(json!({"type":"claim","data":{"id":1}}))
        );
        assert!(message(Some("not json"), None, None, None)
            .unwrap_err()
            .contains("--type"));
        assert!(message(None, None, None, Some("1")).is_err());
    }

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
    }
}
