//! What a broadcast or send did: the counts a caller gets back, and the ids it missed.

use serde::{Deserialize, Serialize};

/// What a broadcast or send did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryReport {
    /// Posts the endpoint accepted.
    pub delivered: u64,
    /// Connections that answered 410 Gone; their rows were deleted.
    pub gone: u64,
    /// Connections not delivered to: refused (403, 413, another 4xx) or still failing
    /// (throttled, 5xx, timed out) when the invocation's deadline came.
    pub failed: u64,
    /// Attempts the account's throttle refused (429). Each was retried.
    #[serde(default)]
    pub throttled: u64,
    /// Attempts beyond each connection's first (after a throttle, 5xx, timeout or lost
    /// connection).
    #[serde(default)]
    pub retried: u64,
    /// The ids of the connections counted in `failed`, up to
    /// [`DeliveryReport::MAX_UNDELIVERED`]: a caller may send to them again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undelivered: Vec<String>,
    /// Failed connections beyond the `undelivered` list.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub undelivered_more: u64,
    /// False when the table was not read to its end (the deadline came first, or a read
    /// failed): rows after `resume_after` were not sent to.
    #[serde(default = "yes")]
    pub complete: bool,
    /// Where reading the table stopped when `complete` is false (the scan cursor to resume
    /// from; absent when nothing was read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_after: Option<String>,
    /// Up to [`DeliveryReport::MAX_ERRORS`] descriptions of the failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The broadcast's id (`wsctl broadcast status ID`), for broadcasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast_id: Option<String>,
    /// Set when the broadcast was split over this many workers (parallel-scan segments): the
    /// counts above are then this invocation's own (none), and the broadcast's totals are in
    /// its status record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segments: Option<u32>,
}

fn yes() -> bool {
    true
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Default for DeliveryReport {
    fn default() -> Self {
        DeliveryReport {
            delivered: 0,
            gone: 0,
            failed: 0,
            throttled: 0,
            retried: 0,
            undelivered: Vec::new(),
            undelivered_more: 0,
            complete: true,
            resume_after: None,
            errors: Vec::new(),
            broadcast_id: None,
            segments: None,
        }
    }
}

impl DeliveryReport {
    pub const MAX_ERRORS: usize = 10;
    /// Ids listed in `undelivered` at most (about 20 KB of a response).
    pub const MAX_UNDELIVERED: usize = 1000;

    pub(crate) fn note_error(&mut self, message: String) {
        if self.errors.len() < Self::MAX_ERRORS {
            self.errors.push(message);
        }
    }

    /// Counts `connection_id` as failed, listing it while the list has room.
    pub(crate) fn note_undelivered(&mut self, connection_id: String) {
        self.failed += 1;
        if self.undelivered.len() < Self::MAX_UNDELIVERED {
            self.undelivered.push(connection_id);
        } else {
            self.undelivered_more += 1;
        }
    }
}
