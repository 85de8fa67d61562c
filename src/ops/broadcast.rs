//! A broadcast by id: its status record read through the function
//! (`{"action":"broadcast_status"}`), followed to its end with a progress bar on a terminal
//! (plain lines otherwise), and the final totals.

use std::fmt;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use handler::BroadcastStatus;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

use super::invoke::invoke_text;
use crate::aws::Clients;
use crate::error::{Error, Result};

/// How often a broadcast under way is read.
const POLL: Duration = Duration::from_secs(1);
/// Plain progress lines (no terminal) come this often at most.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// The status record of broadcast `id`.
pub async fn status(c: &Clients, function: &str, id: &str) -> Result<BroadcastStatus> {
    match find(c, function, id).await? {
        Some(s) => Ok(s),
        None => crate::fail!(Failed, "no broadcast with id {id:?} (records are kept 7 days; one just started with --no-wait may not have begun yet: add --wait)"),
    }
}

/// The status record of broadcast `id`; `None` when the function has none (yet).
async fn find(c: &Clients, function: &str, id: &str) -> Result<Option<BroadcastStatus>> {
    let payload = handler::Invocation::Status {
        broadcast_id: id.to_owned(),
    }
    .payload();
    let text = match invoke_text(c, function, &payload).await {
        Ok(text) => text,
        Err(Error::Function(f)) if f.error_type == "NoSuchBroadcast" => return Ok(None),
        Err(e) => return Err(e),
    };
    serde_json::from_str(&text).map(Some).map_err(|_| {
        Error::Failed(format!(
            "{function} did not answer with a broadcast's status: {text}"
        ))
    })
}

/// Reads broadcast `id` until every segment is done or failed. Gives up when the record has
/// not changed for `stall` (a worker that died without a word, or workers still queued): the
/// broadcast may still finish, and `wsctl broadcast status ID` says so later.
pub async fn follow(
    c: &Clients,
    function: &str,
    id: &str,
    stall: Duration,
    quiet: bool,
) -> Result<BroadcastStatus> {
    let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} broadcast {prefix} [{bar:30}] {pos}/{len} segments  {msg}  {elapsed}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(id.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    });
    let mut last: Option<BroadcastStatus> = None;
    let mut changed = Instant::now();
    let mut line_at: Option<Instant> = None;
    loop {
        // An asynchronous invocation may wait in Lambda's queue before its record exists.
        let Some(s) = find(c, function, id).await? else {
            if changed.elapsed() >= stall {
                crate::fail!(
                    Failed,
                    "broadcast {id} has no record after {} s: no such broadcast, or its invocation never ran (`wsctl logs`)",
                    stall.as_secs()
                );
            }
            tokio::time::sleep(POLL).await;
            continue;
        };
        if last.as_ref() != Some(&s) {
            changed = Instant::now();
        }
        let counts = format!(
            "delivered {}, gone {}, failed {}",
            s.totals.delivered, s.totals.gone, s.totals.failed
        );
        let done = s.segments_done + s.segments_failed;
        match &bar {
            Some(bar) => {
                bar.set_length(u64::from(s.segments));
                bar.set_position(u64::from(done));
                bar.set_message(counts);
            }
            None if !quiet && line_at.is_none_or(|t| t.elapsed() >= LINE_EVERY) => {
                line_at = Some(Instant::now());
                eprintln!("broadcast {id}: {done}/{} segments, {counts}", s.segments);
            }
            None => {}
        }
        if s.finished() {
            if let Some(bar) = &bar {
                bar.finish_and_clear();
            }
            return Ok(s);
        }
        if changed.elapsed() >= stall {
            if let Some(bar) = &bar {
                bar.abandon();
            }
            crate::fail!(
                Failed,
                "broadcast {id} has not moved for {} s ({done} of {} segments finished, {} delivered so far); it may still finish: `wsctl broadcast status {id}`",
                stall.as_secs(),
                s.segments,
                s.totals.delivered
            );
        }
        last = Some(s);
        tokio::time::sleep(POLL).await;
    }
}

/// A broadcast's record as `wsctl broadcast` and `wsctl broadcast status` print it.
#[derive(Debug, Serialize)]
pub struct Followed {
    pub function: String,
    #[serde(flatten)]
    pub status: BroadcastStatus,
    /// Every segment done or failed.
    pub finished: bool,
    /// Finished with nothing failed.
    pub complete: bool,
}

impl Followed {
    pub fn new(function: &str, status: BroadcastStatus) -> Followed {
        Followed {
            function: function.to_owned(),
            finished: status.finished(),
            complete: status.complete(),
            status,
        }
    }
}

/// Undelivered ids printed in text; `--output json` has every segment's sample.
const SHOWN_IDS: usize = 20;

impl fmt::Display for Followed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.status;
        let t = &s.totals;
        writeln!(f, "broadcast {}", s.broadcast_id)?;
        write!(
            f,
            "delivered {}, gone {} (rows removed), failed {}",
            t.delivered, t.gone, t.failed
        )?;
        if t.throttled > 0 || t.retried > 0 {
            write!(
                f,
                "; {} attempts throttled, {} retried",
                t.throttled, t.retried
            )?;
        }
        writeln!(f)?;
        write!(
            f,
            "segments: {} done, {} failed, of {}",
            s.segments_done, s.segments_failed, s.segments
        )?;
        if s.handovers > 0 {
            write!(f, "; {} hand-overs to fresh invocations", s.handovers)?;
        }
        if s.takeovers > 0 {
            write!(
                f,
                "; {} taken over from workers that stopped answering",
                s.takeovers
            )?;
        }
        writeln!(f)?;
        if !self.finished {
            writeln!(
                f,
                "under way: `wsctl broadcast status {}` shows it again",
                s.broadcast_id
            )?;
            // A live worker writes every second; Lambda retries a stopped one after a minute.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            for g in &s.segment {
                let silent = now.saturating_sub(g.beat_ms) / 1000;
                if !g.done && g.failed.is_none() && g.generation > 0 && silent >= 30 {
                    writeln!(
                        f,
                        "  segment {}: no word from its worker for {silent} s (Lambda's retry of its invocation takes it over)",
                        g.index
                    )?;
                }
            }
        }
        let undelivered: Vec<&String> = s.segment.iter().flat_map(|g| &g.undelivered).collect();
        if !undelivered.is_empty() {
            write!(f, "undelivered (a sample):")?;
            for id in undelivered.iter().take(SHOWN_IDS) {
                write!(f, " {id}")?;
            }
            writeln!(f)?;
        }
        for g in &s.segment {
            if let Some(why) = &g.failed {
                writeln!(f, "  segment {} failed: {why}", g.index)?;
            } else if let Some(e) = &g.error {
                writeln!(f, "  segment {}: {e}", g.index)?;
            }
        }
        Ok(())
    }
}

/// A broadcast started with `--no-wait`.
#[derive(Debug, Serialize)]
pub struct Started {
    pub function: String,
    pub broadcast_id: String,
}

impl fmt::Display for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.broadcast_id)
    }
}
