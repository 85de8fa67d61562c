//! How many posts a delivery keeps in flight: an AIMD window, as TCP's congestion control.
//!
//! The window grows while posts succeed (by one per success until the first throttle, slow
//! start; then by one per window's worth of successes, one post per round trip) and is cut
//! multiplicatively on a throttle (429) or a lost post (timeout, connection error), at most
//! once per round trip: to the share of it that got through, that is the delivered rate over
//! the last two round trips times the shortest round trip seen (the pipe the throttle lets
//! through). Halving blindly, as TCP does, would leave a throttled broadcast idling below the
//! throttle half the time; cutting to what got through settles it at the throttle, whatever
//! the throttle is, with a throttled attempt or two per round trip while it probes upwards.
//! Without a measurement yet, a cut halves. The window never passes the configured upper
//! bound (`broadcast_concurrency`).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window a delivery starts with (it doubles every round trip until the first throttle).
const INITIAL_WINDOW: f64 = 16.0;
/// The multiplicative decrease when nothing has been measured yet.
const BETA: f64 = 0.5;
/// Deliveries are counted over at least this long to measure the delivered rate.
const MIN_RATE_SPAN: Duration = Duration::from_millis(10);
/// Round trips counted into the delivered rate.
const RATE_ROUND_TRIPS: u32 = 2;

/// The window controller of one delivery.
#[derive(Debug)]
pub struct Pacer {
    window: f64,
    max: f64,
    slow_start: bool,
    min_rtt: Option<Duration>,
    srtt: Option<Duration>,
    last_cut: Option<Instant>,
    /// Success times within the rate span, oldest first.
    recent: VecDeque<Instant>,
    cuts: u64,
}

impl Pacer {
    /// A controller whose window never passes `max` posts in flight.
    pub fn new(max: usize) -> Pacer {
        let max = max.max(1) as f64;
        Pacer {
            window: INITIAL_WINDOW.min(max),
            max,
            slow_start: true,
            min_rtt: None,
            srtt: None,
            last_cut: None,
            recent: VecDeque::new(),
            cuts: 0,
        }
    }

    /// Posts that may be in flight now.
    pub fn window(&self) -> usize {
        (self.window.floor() as usize).max(1)
    }

    /// How many times the window was cut.
    pub fn cuts(&self) -> u64 {
        self.cuts
    }

    fn rate_span(&self) -> Duration {
        self.srtt
            .map_or(MIN_RATE_SPAN, |rtt| rtt * RATE_ROUND_TRIPS)
            .max(MIN_RATE_SPAN)
    }

    /// A post was accepted after `rtt`.
    pub fn on_success(&mut self, now: Instant, rtt: Duration) {
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        self.srtt = Some(match self.srtt {
            None => rtt,
            Some(s) => (s * 7 + rtt) / 8,
        });
        self.recent.push_back(now);
        self.prune(now);
        self.window += if self.slow_start {
            1.0
        } else {
            1.0 / self.window
        };
        self.window = self.window.min(self.max);
    }

    fn prune(&mut self, now: Instant) {
        let span = self.rate_span();
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= span)
        {
            self.recent.pop_front();
        }
    }

    /// A post was throttled or lost: cut the window, once per round trip.
    pub fn on_congestion(&mut self, now: Instant) {
        let guard = self.srtt.unwrap_or(MIN_RATE_SPAN);
        if self
            .last_cut
            .is_some_and(|at| now.duration_since(at) < guard)
        {
            return;
        }
        self.last_cut = Some(now);
        self.slow_start = false;
        self.cuts += 1;
        self.prune(now);
        let through = self.min_rtt.map(|min_rtt| {
            let rate = self.recent.len() as f64 / self.rate_span().as_secs_f64();
            rate * min_rtt.as_secs_f64()
        });
        let cut = match through {
            Some(through) => through.min(self.window),
            None => self.window * BETA,
        };
        self.window = cut.clamp(1.0, self.max);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A token bucket answering posts the way API Gateway's account throttle does, and a
    /// fixed latency: what the window settles at, and what it delivers.
    fn simulate(rate: f64, burst: f64, latency: Duration, max: usize, posts: usize) -> (f64, u64) {
        let start = Instant::now();
        let mut pacer = Pacer::new(max);
        let mut tokens = burst;
        let mut now = start;
        let mut delivered = 0usize;
        let mut throttled = 0u64;
        let tick = Duration::from_millis(1);
        // Posts in flight, by the time they answer, and whether they were accepted.
        let mut in_flight: VecDeque<(Instant, bool)> = VecDeque::new();
        let mut last = now;
        while delivered < posts {
            tokens = (tokens + rate * now.duration_since(last).as_secs_f64()).min(burst);
            last = now;
            while in_flight.front().is_some_and(|(at, _)| *at <= now) {
                let (_, ok) = in_flight.pop_front().unwrap();
                if ok {
                    delivered += 1;
                    pacer.on_success(now, latency);
                } else {
                    throttled += 1;
                    pacer.on_congestion(now);
                }
            }
            while in_flight.len() < pacer.window() && delivered + in_flight.len() < posts * 2 {
                let ok = tokens >= 1.0;
                if ok {
                    tokens -= 1.0;
                }
                in_flight.push_back((now + latency, ok));
            }
            now += tick;
        }
        (now.duration_since(start).as_secs_f64(), throttled)
    }

    #[test]
    fn a_throttled_delivery_runs_at_the_throttle() {
        // 2,000/s, burst 1,000, 20 ms a post, up to 1,000 in flight: the floor for 20,000
        // posts is (20,000 - 1,000) / 2,000 = 9.5 s.
        let (elapsed, throttled) =
            simulate(2000.0, 1000.0, Duration::from_millis(20), 1000, 20_000);
        assert!(elapsed < 9.5 * 1.1, "took {elapsed:.2} s, floor 9.5 s");
        assert!(
            throttled < 20_000 / 10,
            "{throttled} throttled attempts for 20,000 posts"
        );
    }

    #[test]
    fn an_unthrottled_delivery_fills_its_upper_bound() {
        let mut pacer = Pacer::new(256);
        let now = Instant::now();
        for _ in 0..1000 {
            pacer.on_success(now, Duration::from_millis(20));
        }
        assert_eq!(pacer.window(), 256);
    }

    #[test]
    fn a_throttle_cuts_the_window_once_per_round_trip() {
        let mut pacer = Pacer::new(1000);
        let t0 = Instant::now();
        for _ in 0..200 {
            pacer.on_success(t0, Duration::from_millis(20));
        }
        let before = pacer.window();
        let t1 = t0 + Duration::from_secs(1);
        pacer.on_congestion(t1);
        pacer.on_congestion(t1 + Duration::from_millis(1));
        assert_eq!(pacer.cuts(), 1);
        assert!(
            pacer.window() < before,
            "{} then {}",
            before,
            pacer.window()
        );
    }
}
