//! Streams kept in memory: `wsctl dev`'s and the tests'. Same semantics as the DynamoDB
//! table: positions from 1, entries older than the retention dropped, at most the cap kept.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::Value;

use super::{stamp, Entry, HistoryError, HistoryPort, Replay};

/// Each stream's entries by position, with when each was kept.
type Streams = HashMap<String, BTreeMap<u64, (Instant, Entry)>>;

/// In-memory streams with a retention.
pub struct MemoryHistory {
    retention: Duration,
    /// Entries beyond this many per stream are dropped (oldest first).
    cap: u32,
    streams: Mutex<Streams>,
}

impl MemoryHistory {
    pub fn new(retention: Duration, cap: u32) -> Self {
        MemoryHistory {
            retention,
            cap: cap.max(1),
            streams: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl HistoryPort for MemoryHistory {
    async fn append(&self, stream: &str, id: &str, message: &Value) -> Result<u64, HistoryError> {
        let mut streams = self.lock();
        let entries = streams.entry(stream.to_owned()).or_default();
        let seq = entries.keys().next_back().map_or(1, |last| last + 1);
        let bytes = serde_json::to_vec(&stamp(message, id, stream, seq)).unwrap_or_default();
        entries.insert(
            seq,
            (
                Instant::now(),
                Entry {
                    seq,
                    id: id.to_owned(),
                    message: bytes,
                },
            ),
        );
        // Keep the newest entry even past the cap: it holds the head's position.
        while entries.len() > self.cap as usize {
            entries.pop_first();
        }
        Ok(seq)
    }

    async fn after(&self, stream: &str, after: u64, cap: u32) -> Result<Replay, HistoryError> {
        let streams = self.lock();
        let Some(entries) = streams.get(stream) else {
            return Ok(Replay {
                gap: after > 0,
                ..Replay::default()
            });
        };
        let head = entries.keys().next_back().copied().unwrap_or(0);
        let fresh: Vec<&Entry> = entries
            .range(after + 1..)
            .filter(|(_, (at, _))| at.elapsed() <= self.retention)
            .map(|(_, (_, e))| e)
            .collect();
        let missed = head.saturating_sub(after);
        let gap = after > head
            || missed > u64::from(cap)
            || (missed > 0 && fresh.first().map(|e| e.seq) != Some(after + 1));
        Ok(Replay {
            entries: if gap {
                vec![]
            } else {
                fresh.into_iter().cloned().collect()
            },
            head,
            gap,
        })
    }
}
