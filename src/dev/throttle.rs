//! API Gateway's account throttle, emulated by `wsctl dev` when asked
//! (`--management-rate`, `--management-burst`, `--management-latency`): one token bucket shared
//! by every management API call and every post of the in-process handler, a 429
//! `LimitExceededException` over it, and every answer after a fixed latency. Off by default.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use handler::{InProcessPusher, PushError, Pusher};

/// The token bucket and the latency.
#[derive(Debug)]
pub struct Throttle {
    /// Tokens added per second; `None`: no throttle (the latency alone).
    rate: Option<f64>,
    burst: f64,
    latency: Duration,
    bucket: Mutex<(f64, Instant)>,
}

impl Throttle {
    /// A throttle of `rate` calls per second with a bucket of `burst` (default: one second's
    /// worth), answering after `latency`; `None` when neither is asked for.
    pub fn new(
        rate: Option<f64>,
        burst: Option<f64>,
        latency: Option<Duration>,
    ) -> Option<Arc<Throttle>> {
        if rate.is_none() && latency.is_none() {
            return None;
        }
        let burst = burst.or(rate).unwrap_or(0.0).max(1.0);
        Some(Arc::new(Throttle {
            rate,
            burst,
            latency: latency.unwrap_or_default(),
            bucket: Mutex::new((burst, Instant::now())),
        }))
    }

    /// Takes a token; false when the bucket is empty (the call is throttled).
    pub fn admit(&self) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        let mut bucket = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = *bucket;
        let tokens = (tokens + rate * now.duration_since(last).as_secs_f64()).min(self.burst);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            true
        } else {
            *bucket = (tokens, now);
            false
        }
    }

    /// Waits out the latency before an answer.
    pub async fn answer_after(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// Whether the call may proceed, answered after the latency: the throttle is decided when
    /// the call arrives, as API Gateway decides it.
    pub async fn pass(&self) -> bool {
        let admitted = self.admit();
        self.answer_after().await;
        admitted
    }
}

impl std::fmt::Display for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.rate {
            Some(rate) => write!(f, "{rate}/s, burst {}", self.burst)?,
            None => write!(f, "no rate limit")?,
        }
        write!(f, ", {} ms per answer", self.latency.as_millis())
    }
}

/// The in-process pusher behind the emulated throttle: what the handler posts through in
/// `wsctl dev`. Derefs to the [`InProcessPusher`] for registration and unthrottled sends.
pub struct DevPusher {
    inner: InProcessPusher,
    throttle: Option<Arc<Throttle>>,
}

impl DevPusher {
    pub fn new(throttle: Option<Arc<Throttle>>) -> DevPusher {
        DevPusher {
            inner: InProcessPusher::new(),
            throttle,
        }
    }
}

impl std::ops::Deref for DevPusher {
    type Target = InProcessPusher;
    fn deref(&self) -> &InProcessPusher {
        &self.inner
    }
}

#[async_trait]
impl Pusher for DevPusher {
    async fn post(
        &self,
        _endpoint: &str,
        connection_id: &str,
        data: &[u8],
    ) -> Result<(), PushError> {
        if let Some(throttle) = &self.throttle {
            if !throttle.pass().await {
                return Err(PushError::Throttled {
                    connection_id: connection_id.to_owned(),
                });
            }
        }
        self.inner.send(connection_id, data)
    }

    /// `DELETE @connections/{id}` from the handler: the same bucket as its posts.
    async fn close(&self, _endpoint: &str, connection_id: &str) -> Result<(), PushError> {
        if let Some(throttle) = &self.throttle {
            if !throttle.pass().await {
                return Err(PushError::Throttled {
                    connection_id: connection_id.to_owned(),
                });
            }
        }
        self.inner.close_now(connection_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_holds_its_burst_then_refills_at_the_rate() {
        let t = Throttle::new(Some(100.0), Some(10.0), None).unwrap();
        let admitted = (0..50).filter(|_| t.admit()).count();
        assert!(
            (10..=11).contains(&admitted),
            "burst of 10, {admitted} admitted"
        );
        std::thread::sleep(Duration::from_millis(100));
        let admitted = (0..50).filter(|_| t.admit()).count();
        assert!(
            (9..=12).contains(&admitted),
            "about 10 after 0.1 s at 100/s: {admitted}"
        );
    }

    #[test]
    fn off_unless_asked() {
        assert!(Throttle::new(None, None, None).is_none());
        let t = Throttle::new(None, None, Some(Duration::from_millis(5))).unwrap();
        assert!(
            (0..1000).all(|_| t.admit()),
            "latency alone throttles nothing"
        );
    }
}
