//! `wsctl logs`: the function's log events, polled with FilterLogEvents.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::aws::{aws_error, Clients};
use crate::error::Result;

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
                    crate::fail!(Failed, "log group {group} does not exist (the function has not logged yet, or the stack is not deployed)")
                }
                Err(e) => return Err(aws_error(format!("FilterLogEvents {group}"), &e).into()),
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
                    println!("{}", serde_json::json!(event));
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
