//! The report of `wsctl load`: opening rate, failures by kind, ping round trips, and the
//! broadcast's receipt, as text or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::error::Result;
use handler::DeliveryReport;
use serde::Serialize;

use super::client::Outcome;
use super::Options;

/// p50 / p95 / p99 / max of a sample, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    fn of(mut sample: Vec<f64>) -> Option<Percentiles> {
        if sample.is_empty() {
            return None;
        }
        sample.sort_by(f64::total_cmp);
        let at = |p: f64| sample[((sample.len() - 1) as f64 * p).round() as usize];
        Some(Percentiles {
            count: sample.len(),
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: sample[sample.len() - 1],
        })
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.p50, self.p95, self.p99, self.max
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Pings {
    pub sent: u64,
    pub answered: usize,
    /// Sent but not answered within 10 s (or before the connection ended).
    pub lost: u64,
    pub rtt_ms: Option<Percentiles>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Broadcast {
    /// Connections open when it was sent.
    pub expected: usize,
    pub received: usize,
    pub missing: usize,
    /// How long the function's invocation took to answer.
    pub invoke_ms: f64,
    /// Per client: from sending the broadcast to that client's receipt.
    pub receipt_ms: Option<Percentiles>,
    /// The function's delivery report (for a broadcast split over workers: the coordinator's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery: Option<DeliveryReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The URL with query values (tokens) hidden.
    pub url: String,
    pub connections: usize,
    pub opened: usize,
    /// The opening rate asked for, per second.
    pub target_rate: f64,
    /// From the first handshake started to the last one ended.
    pub open_seconds: f64,
    /// Connections opened per second.
    pub opening_rate: f64,
    pub handshake_ms: Option<Percentiles>,
    /// Handshakes that failed, by kind (http_429, http_401, handshake_timeout...).
    pub failures: BTreeMap<String, usize>,
    /// Connections that ended before the test closed them, by kind (closed_1001...).
    pub dropped: BTreeMap<String, usize>,
    pub held_seconds: f64,
    pub pings: Pings,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<Broadcast>,
    /// Every connection opened and stayed open, every ping was answered, and the broadcast
    /// (when sent) reached every connection.
    pub ok: bool,
}

/// The URL with query values hidden (they may be tokens).
pub fn redact(url: &str) -> String {
    crate::ops::smoke::redact_url(url)
}

pub(super) fn build(
    opts: &Options,
    open_seconds: f64,
    held_seconds: f64,
    pings_requested: usize,
    outcomes: Vec<Outcome>,
    broadcast: Option<(Duration, f64, Result<DeliveryReport>, usize)>,
) -> LoadReport {
    let mut failures = BTreeMap::new();
    let mut dropped = BTreeMap::new();
    let (mut handshakes, mut rtts, mut receipts) = (vec![], vec![], vec![]);
    let (mut sent, mut lost) = (0u64, 0u64);
    let sent_at = broadcast.as_ref().map(|b| b.0);
    for o in outcomes {
        if let Some(kind) = o.failure {
            *failures.entry(kind).or_insert(0) += 1;
        }
        if let Some(kind) = o.dropped {
            *dropped.entry(kind).or_insert(0) += 1;
        }
        if let Some(h) = o.handshake {
            handshakes.push(h.as_secs_f64() * 1000.0);
        }
        if let (Some(at), Some(sent_at)) = (o.broadcast_at, sent_at) {
            receipts.push(at.saturating_sub(sent_at).as_secs_f64() * 1000.0);
        }
        sent += o.pings_sent;
        lost += o.pongs_lost;
        rtts.extend(o.rtts_ms);
    }
    let opened = handshakes.len();
    let pings = Pings {
        sent,
        answered: rtts.len(),
        lost,
        rtt_ms: Percentiles::of(rtts),
    };
    debug_assert!(sent as usize <= pings_requested);
    let broadcast = broadcast.map(|(_, invoke_ms, delivery, expected)| {
        let received = receipts.len();
        let (delivery, error) = match delivery {
            Ok(d) => (Some(d), None),
            Err(e) => (None, Some(crate::redact::redact(&format!("{e:#}")))),
        };
        Broadcast {
            expected,
            received,
            missing: expected.saturating_sub(received),
            invoke_ms,
            receipt_ms: Percentiles::of(receipts),
            delivery,
            error,
        }
    });
    let ok = opened == opts.connections
        && dropped.is_empty()
        && pings.lost == 0
        && broadcast
            .as_ref()
            .is_none_or(|b| b.error.is_none() && b.missing == 0);
    LoadReport {
        url: redact(&opts.url),
        connections: opts.connections,
        opened,
        target_rate: opts.rate,
        open_seconds,
        opening_rate: if open_seconds > 0.0 {
            opened as f64 / open_seconds
        } else {
            0.0
        },
        handshake_ms: Percentiles::of(handshakes),
        failures,
        dropped,
        held_seconds,
        pings,
        broadcast,
        ok,
    }
}

fn kinds(m: &BTreeMap<String, usize>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Load test of {}", self.url)?;
        writeln!(
            f,
            "  opened       {} of {} in {:.2} s: {:.0} per second (asked {})",
            self.opened, self.connections, self.open_seconds, self.opening_rate, self.target_rate
        )?;
        if let Some(h) = &self.handshake_ms {
            writeln!(f, "  handshake    {h}")?;
        }
        if !self.failures.is_empty() {
            writeln!(f, "  failed       {}", kinds(&self.failures))?;
        }
        if !self.dropped.is_empty() {
            writeln!(f, "  dropped      {}", kinds(&self.dropped))?;
        }
        writeln!(
            f,
            "  pings        {} sent, {} answered, {} lost over {:.1} s",
            self.pings.sent, self.pings.answered, self.pings.lost, self.held_seconds
        )?;
        if let Some(r) = &self.pings.rtt_ms {
            writeln!(f, "  ping RTT     {r}")?;
        }
        if let Some(b) = &self.broadcast {
            writeln!(
                f,
                "  broadcast    received by {} of {} ({} missing); the invocation answered in {:.0} ms",
                b.received, b.expected, b.missing, b.invoke_ms
            )?;
            if let Some(r) = &b.receipt_ms {
                writeln!(f, "  receipt      {r} (per client, from the send)")?;
            }
            if let Some(d) = &b.delivery {
                writeln!(
                    f,
                    "  delivery     {} delivered, {} gone, {} failed, {} throttled{}",
                    d.delivered,
                    d.gone,
                    d.failed,
                    d.throttled,
                    d.segments
                        .map(|s| format!(" (coordinator; split over {s} workers)"))
                        .unwrap_or_default()
                )?;
            }
            if let Some(e) = &b.error {
                writeln!(f, "  broadcast error: {e}")?;
            }
        }
        writeln!(
            f,
            "{}",
            if self.ok {
                "OK: every connection opened and stayed open; every ping and the broadcast arrived."
            } else {
                "NOT OK: see the failures above."
            }
        )
    }
}
