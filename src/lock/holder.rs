//! Who holds a stack's lock, and the error of a run that waited for it too long: what the
//! lock's table says of its holder, and what a person reads.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// Who holds (or held) a stack's lock.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    pub command: String,
    pub version: String,
    pub started: String,
    /// When the lease ends unless renewed (epoch milliseconds).
    pub expires_ms: u64,
    #[serde(skip)]
    pub token: String,
}

impl Holder {
    pub fn lease_left(&self) -> Option<Duration> {
        self.expires_ms
            .checked_sub(now_ms())
            .filter(|left| *left > 0)
            .map(Duration::from_millis)
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`wsctl {}` (pid {} on {}, wsctl {}, since {})",
            self.command, self.pid, self.host, self.version, self.started
        )
    }
}

/// Another run held the lock for longer than `--lock-timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the stack lock of project {project} (DynamoDB table {table}) is held by {holder}; gave up after {waited:?} (--lock-timeout). If that run is dead, its lease ends within {lease:?}; `wsctl unlock` shows and removes a lock")]
pub struct LockHeld {
    pub project: String,
    pub table: String,
    pub holder: Holder,
    pub waited: Duration,
    pub lease: Duration,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
