//! Token buckets in memory: `max` requests per `window_ms`, refilled continuously, so a
//! client that waits gets capacity back smoothly instead of at a window edge.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::Backoff;

/// One bucket. A request costs `window_ms` units; the bucket holds `max * window_ms`
/// units and gains `max` units a millisecond, so everything stays in integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    level: i64,
    at: i64,
}

impl Bucket {
    pub fn full(max: u32, window_ms: i64, now: i64) -> Bucket {
        Bucket {
            level: i64::from(max) * window_ms,
            at: now,
        }
    }

    fn refill(&mut self, max: u32, window_ms: i64, now: i64) {
        let cap = i64::from(max) * window_ms;
        if now > self.at {
            self.level = cap.min(
                self.level
                    .saturating_add((now - self.at).saturating_mul(i64::from(max))),
            );
            self.at = now;
        }
        self.level = self.level.min(cap);
    }

    fn backoff(&self, max: u32, window_ms: i64) -> Backoff {
        let max64 = i64::from(max).max(1);
        let cap = max64 * window_ms;
        let missing_for_one = (window_ms - self.level).max(0);
        let ceil = |a: i64, b: i64| (a.max(0) + b - 1) / b;
        let to_secs = |ms: i64| ceil(ms, 1000) as u64;
        Backoff {
            retry_after_secs: to_secs(ceil(missing_for_one, max64)).max(1),
            limit: u64::from(max),
            remaining: (self.level / window_ms.max(1)).max(0) as u64,
            reset_secs: to_secs(ceil(cap - self.level, max64)),
        }
    }

    /// Spends one request if there is capacity. Ok carries the state after spending.
    pub fn take(&mut self, max: u32, window_ms: i64, now: i64) -> Result<Backoff, Backoff> {
        self.refill(max, window_ms, now);
        if self.level < window_ms {
            return Err(self.backoff(max, window_ms));
        }
        self.level -= window_ms;
        Ok(self.backoff(max, window_ms))
    }
}

/// Buckets by key, for limits that apply to many clients (sign-in by account or address).
pub struct Limiter {
    max: u32,
    window_ms: i64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// Above this many tracked keys, full buckets are dropped (they carry no information).
const PRUNE_AT: usize = 10_000;

impl Limiter {
    pub fn new(max: u32, window_ms: i64) -> Limiter {
        Limiter {
            max: max.max(1),
            window_ms: window_ms.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, key: &str, now: i64, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= PRUNE_AT {
            let (max, w) = (self.max, self.window_ms);
            map.retain(|_, b| {
                b.refill(max, w, now);
                b.level < i64::from(max) * w
            });
        }
        let b = map
            .entry(key.to_owned())
            .or_insert_with(|| Bucket::full(self.max, self.window_ms, now));
        f(b)
    }

    pub fn take(&self, key: &str, now: i64) -> Result<Backoff, Backoff> {
        let (max, w) = (self.max, self.window_ms);
        self.with(key, now, |b| b.take(max, w, now))
    }

    /// Returns one request taken by `take` (an attempt that turned out fine).
    pub fn give_back(&self, key: &str, now: i64) {
        let (max, w) = (self.max, self.window_ms);
        self.with(key, now, |b| {
            b.refill(max, w, now);
            b.level = (b.level + w).min(i64::from(max) * w);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_max_then_refuses_until_it_refills() {
        let mut b = Bucket::full(3, 60_000, 0);
        for left in [2, 1, 0] {
            assert_eq!(b.take(3, 60_000, 0).unwrap().remaining, left);
        }
        let refused = b.take(3, 60_000, 0).unwrap_err();
        assert_eq!(refused.retry_after_secs, 20);
        assert_eq!(refused.reset_secs, 60);
        assert_eq!(refused.limit, 3);
        // One request comes back after a third of the window.
        assert!(b.take(3, 60_000, 19_999).is_err());
        assert!(b.take(3, 60_000, 20_000).is_ok());
        assert!(b.take(3, 60_000, 20_000).is_err());
    }

    #[test]
    fn a_request_given_back_can_be_taken_again() {
        let l = Limiter::new(1, 1000);
        assert!(l.take("a", 0).is_ok());
        assert!(l.take("a", 0).is_err());
        l.give_back("a", 0);
        assert!(l.take("a", 0).is_ok());
        assert!(l.take("b", 0).is_ok(), "keys are independent");
    }
}
