//! In-memory token buckets, one per key (an account, a username).

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Buckets kept before idle, full ones are forgotten.
const PRUNE_ABOVE: usize = 10_000;

/// A token bucket per key: `burst` requests at once, refilled at `per_minute`.
pub(crate) struct RateLimiter<K> {
    burst: f64,
    per_sec: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq> RateLimiter<K> {
    pub(crate) fn new(burst: u32, per_minute: u32) -> RateLimiter<K> {
        RateLimiter {
            burst: f64::from(burst.max(1)),
            per_sec: f64::from(per_minute.max(1)) / 60.0,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token for `key`, or says how long until one is available.
    pub(crate) fn take(&self, key: K) -> Result<(), Duration> {
        self.take_at(key, Instant::now())
    }

    fn take_at(&self, key: K, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock();
        if buckets.len() > PRUNE_ABOVE {
            // A bucket that has refilled is the same as no bucket.
            buckets.retain(|_, b| self.level(b, now) < self.burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let tokens = self.level(bucket, now);
        if tokens >= 1.0 {
            *bucket = Bucket {
                tokens: tokens - 1.0,
                at: now,
            };
            Ok(())
        } else {
            *bucket = Bucket { tokens, at: now };
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_sec))
        }
    }

    fn level(&self, bucket: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        (bucket.tokens + elapsed * self.per_sec).min(self.burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refill_at_the_rate() {
        let limiter = RateLimiter::new(3, 60); // one per second
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.take_at("a", t0), Ok(()));
        }
        let wait = limiter.take_at("a", t0).expect_err("burst spent");
        assert!(
            wait > Duration::from_millis(990) && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Other keys have their own bucket.
        assert_eq!(limiter.take_at("b", t0), Ok(()));
        // Half a second refills half a token: still refused, shorter wait.
        let half = t0 + Duration::from_millis(500);
        let wait = limiter.take_at("a", half).expect_err("half a token");
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        assert_eq!(
            limiter.take_at("a", t0 + Duration::from_millis(1000)),
            Ok(())
        );
        assert!(
            limiter
                .take_at("a", t0 + Duration::from_millis(1000))
                .is_err()
        );
        // A long pause refills to the burst, not beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.take_at("a", later), Ok(()));
        }
        assert!(limiter.take_at("a", later).is_err());
    }

    #[test]
    fn full_buckets_are_pruned() {
        let limiter = RateLimiter::new(1, 60);
        let t0 = Instant::now();
        for key in 0..=PRUNE_ABOVE {
            assert_eq!(limiter.take_at(key, t0), Ok(()));
        }
        let later = t0 + Duration::from_secs(2);
        assert_eq!(limiter.take_at(usize::MAX, later), Ok(()));
        assert_eq!(limiter.buckets.lock().len(), 1);
    }
}
