//! The handler's one retry helper, for the calls outside the delivery engine (which keeps its
//! own pacing and backoff): queueing an invocation of the function, a part's last write to a
//! broadcast's record. Exponential backoff with jitter (backon), a bounded number of tries,
//! and only the errors the caller calls retryable are tried again.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// The first pause between tries (then doubling, with jitter, up to [`MAX_DELAY`]).
pub const MIN_DELAY: Duration = Duration::from_millis(100);
pub const MAX_DELAY: Duration = Duration::from_secs(2);

/// Runs `op` until it succeeds, fails with an error `retryable` refuses, or `tries` tries
/// have failed; returns the last result.
pub async fn retry<T, E, F, Fut>(
    tries: u32,
    retryable: impl FnMut(&E) -> bool,
    op: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let policy = ExponentialBuilder::default()
        .with_min_delay(MIN_DELAY)
        .with_max_delay(MAX_DELAY)
        .with_max_times(tries.saturating_sub(1) as usize)
        .with_jitter();
    op.retry(policy)
        .sleep(tokio::time::sleep)
        .when(retryable)
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn retries_only_what_may_succeed_and_only_so_often() {
        let calls = AtomicU32::new(0);
        let r: Result<(), &str> = retry(
            3,
            |e| *e == "again",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("again")
            },
        )
        .await;
        assert_eq!((r, calls.load(Ordering::SeqCst)), (Err("again"), 3));
        calls.store(0, Ordering::SeqCst);
        let r: Result<(), &str> = retry(
            3,
            |e| *e == "again",
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("never")
            },
        )
        .await;
        assert_eq!((r, calls.load(Ordering::SeqCst)), (Err("never"), 1));
        let r: Result<u32, &str> = retry(
            3,
            |_| true,
            || async {
                match calls.fetch_add(1, Ordering::SeqCst) {
                    0 | 1 => Err("again"),
                    n => Ok(n),
                }
            },
        )
        .await;
        assert_eq!(r, Ok(2));
    }
}
