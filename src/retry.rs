//! The CLI's one retry helper, with three policies (exponential backoff from backon):
//! - [`refusals`]: a call AWS refused (throttled, unavailable) is sent again, a few times,
//!   with jitter; used for the creates that must never be repeated blindly;
//! - [`propagating`]: a call that fails while IAM propagates a new role is tried until a
//!   deadline, each wait announced;
//! - [`passes`]: `up` and `down` observe and apply again after a transient failure, each pass
//!   announced.
//!
//! Waiting for a lock or following a broadcast are polls, not retries, and live with their
//! commands.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// Runs `call` until it succeeds or fails with an error that `refused` does not call a
/// refusal; a refusal is tried again up to 7 more times (200 ms doubling to 5 s, jittered).
pub async fn refusals<T, E, F, Fut>(call: F, refused: impl FnMut(&E) -> bool) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let policy = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .with_max_times(7)
        .with_jitter();
    call.retry(policy)
        .sleep(tokio::time::sleep)
        .when(refused)
        .await
}

/// Runs `call` until it succeeds or fails otherwise than `not_ready` says (a new role not yet
/// assumable), trying again from `first` doubling to `max` until `deadline` has passed in
/// pauses; `wait` hears each pause before it starts.
pub async fn propagating<T, E, F, Fut>(
    deadline: Duration,
    (first, max): (Duration, Duration),
    not_ready: impl FnMut(&E) -> bool,
    wait: impl FnMut(&E, Duration),
    call: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let policy = ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(max)
        .without_max_times()
        .with_total_delay(Some(deadline));
    call.retry(policy)
        .sleep(tokio::time::sleep)
        .when(not_ready)
        .notify(wait)
        .await
}

/// Runs `pass` until it succeeds, fails for good (`transient` says no), or `passes` passes
/// have failed transiently; the pause before pass n is 250 ms << n, at most 8 s. `again`
/// hears each failure that is tried again.
pub async fn passes<T, E, F, Fut>(
    passes: u32,
    transient: impl FnMut(&E) -> bool,
    again: impl FnMut(&E, Duration),
    pass: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let policy = ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(Duration::from_secs(8))
        .with_max_times(passes.saturating_sub(1) as usize);
    pass.retry(policy)
        .sleep(tokio::time::sleep)
        .when(transient)
        .notify(again)
        .await
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Instant;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn propagation_is_waited_for_until_the_deadline() {
        let calls = AtomicU32::new(0);
        let started = Instant::now();
        let mut waits = Vec::new();
        let r: Result<(), &str> = propagating(
            Duration::from_secs(10),
            (Duration::from_millis(250), Duration::from_secs(5)),
            |e| *e == "not yet",
            |_, d| waits.push(d),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("not yet")
            },
        )
        .await;
        assert_eq!(r, Err("not yet"));
        assert_eq!(
            waits[..4],
            [250, 500, 1000, 2000].map(Duration::from_millis)
        );
        assert!(
            waits.iter().sum::<Duration>() <= Duration::from_secs(10),
            "{waits:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst) as usize, waits.len() + 1);
        let _ = started;
    }

    #[tokio::test(start_paused = true)]
    async fn passes_pause_longer_each_time_and_stop_at_the_bound() {
        let mut waits = Vec::new();
        let calls = AtomicU32::new(0);
        let r: Result<(), &str> = passes(
            6,
            |_| true,
            |_, d| waits.push(d),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("transient")
            },
        )
        .await;
        assert_eq!(r, Err("transient"));
        assert_eq!(calls.load(Ordering::SeqCst), 6);
        assert_eq!(waits, [1, 2, 4, 8, 8].map(Duration::from_secs));
    }

    #[tokio::test(start_paused = true)]
    async fn only_refusals_are_sent_again() {
        let calls = AtomicU32::new(0);
        let r: Result<(), &str> = refusals(
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("ambiguous")
            },
            |e| *e == "refused",
        )
        .await;
        assert_eq!((r, calls.load(Ordering::SeqCst)), (Err("ambiguous"), 1));
        calls.store(0, Ordering::SeqCst);
        let r: Result<(), &str> = refusals(
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err("refused")
            },
            |e| *e == "refused",
        )
        .await;
        assert_eq!((r, calls.load(Ordering::SeqCst)), (Err("refused"), 8));
    }
}
