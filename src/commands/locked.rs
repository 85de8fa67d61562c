//! The stack's locks around a command that writes: taken before, released after whatever the
//! outcome, and a lock another run took over meanwhile reported as the run's failure.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::lock::{self, StackLock};
use crate::report::Progress;
use crate::stack::Stack;

/// The stack's locks for a run that writes (none for a dry run).
pub async fn acquire(
    stack: &Stack,
    command: &str,
    dry_run: bool,
    timeout: Duration,
    progress: &Progress,
) -> Result<Option<StackLock>> {
    if dry_run {
        return Ok(None);
    }
    lock::acquire(stack, command, timeout, &|m| progress.note(m))
        .await
        .map(Some)
}

/// Releases the locks after a run, whatever its outcome (`remove_table` says, from the run's
/// result, whether the lock's table goes too), and says so when another run took the lock
/// over meanwhile.
pub async fn release<T>(
    lock: Option<StackLock>,
    result: Result<T>,
    remove_table: impl Fn(&T) -> bool,
) -> Result<T> {
    let Some(lock) = lock else {
        return result;
    };
    if lock.lost() {
        let lost = "another run took the stack lock over while this one was writing (this run stalled longer than the lease): run `wsctl status` to see what the stack is now";
        return Err(Error::Failed(match result {
            Ok(_) => lost.to_owned(),
            Err(first) => format!("{lost}: {}", handler::error_chain(&first)),
        }));
    }
    let released = match &result {
        Ok(value) if remove_table(value) => lock.remove_table().await,
        _ => lock.release().await,
    };
    match (result, released) {
        (Ok(value), Ok(())) => Ok(value),
        (Ok(_), Err(e)) => Err(Error::Failed(format!(
            "the run succeeded, but its stack lock could not be removed: its lease ends by itself: {}",
            handler::error_chain(&e)
        ))),
        (Err(e), _) => Err(e),
    }
}
