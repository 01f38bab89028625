//! Token buckets in memory: `max` requests per `window_ms`, refilled continuously, so a
//! client that waits gets capacity back smoothly instead of at a window edge.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

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

    /// Whether the bucket has filled up again by `now`: then it holds nothing a fresh one
    /// would not.
    pub fn is_full(&self, max: u32, window_ms: i64, now: i64) -> bool {
        let mut b = *self;
        b.refill(max, window_ms, now);
        b.level >= i64::from(max) * window_ms
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

    /// The state `take` would start from by `now`, spending nothing.
    pub fn peek(mut self, max: u32, window_ms: i64, now: i64) -> Backoff {
        self.refill(max, window_ms, now);
        self.backoff(max, window_ms)
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

/// Buckets by key for limits that count failures (sign-in by account or address).
///
/// An attempt reserves one unit before its work starts, so attempts sent in parallel
/// cannot slip past the limit; a success gives it back, so only failures count. When the
/// bucket is empty only because attempts are still in flight, a new attempt may wait for
/// them instead of being refused (at most `max` wait per key, woken only by that key):
/// fifteen correct sign-ins at once all succeed, while a thousand parallel guesses get at
/// most `max` evaluated.
pub struct Limiter {
    max: u32,
    window_ms: i64,
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Clone)]
struct Entry {
    bucket: Bucket,
    in_flight: u32,
    waiting: u32,
    /// Counts settles, so a waiter can tell whether one came before it started to wait.
    settles: u64,
    settled: Option<Arc<Notify>>,
}

/// Above this many tracked keys, idle full buckets are dropped (they carry no
/// information).
const PRUNE_AT: usize = 10_000;

/// What `begin` decided.
#[derive(Debug)]
pub enum Begin {
    /// A unit is reserved; `settle` must follow.
    Started,
    /// The budget is held by attempts in flight: wait on `Waiting`, then ask again.
    Wait(Waiting),
    /// The budget is spent by failures, or too many attempts wait already.
    Refused(Backoff),
}

/// A place in the queue of one key's waiting attempts; `Limiter::done_waiting` ends it.
#[derive(Debug)]
pub struct Waiting {
    settled: Arc<Notify>,
    settles: u64,
}

impl Limiter {
    pub fn new(max: u32, window_ms: i64) -> Limiter {
        Limiter {
            max: max.max(1),
            window_ms: window_ms.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn with<T>(&self, key: &str, now: i64, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let (max, w) = (self.max, self.window_ms);
        if map.len() >= PRUNE_AT {
            map.retain(|_, e| {
                e.bucket.refill(max, w, now);
                e.in_flight > 0 || e.waiting > 0 || e.bucket.level < i64::from(max) * w
            });
        }
        let e = map.entry(key.to_owned()).or_insert_with(|| Entry {
            bucket: Bucket::full(max, w, now),
            in_flight: 0,
            waiting: 0,
            settles: 0,
            settled: None,
        });
        f(e)
    }

    /// Reserves one unit for an attempt on `key`.
    pub fn begin(&self, key: &str, now: i64) -> Begin {
        let (max, w) = (self.max, self.window_ms);
        self.with(key, now, |e| match e.bucket.take(max, w, now) {
            Ok(_) => {
                e.in_flight += 1;
                Begin::Started
            }
            Err(_) if e.in_flight > 0 && e.waiting < max => {
                e.waiting += 1;
                let settled = Arc::clone(e.settled.get_or_insert_with(Default::default));
                Begin::Wait(Waiting {
                    settled,
                    settles: e.settles,
                })
            }
            Err(mut b) => {
                if e.in_flight > 0 {
                    // Refused because the line is full, not because of failures.
                    b.retry_after_secs = 1;
                }
                Begin::Refused(b)
            }
        })
    }

    /// Waits until an attempt on `key` settles after `waiting` was handed out, or until
    /// `give_up`; answers false on giving up. The caller ends the wait with
    /// `done_waiting`, whatever happens.
    pub async fn wait(&self, key: &str, waiting: &Waiting, give_up: tokio::time::Instant) -> bool {
        let settled = waiting.settled.notified();
        tokio::pin!(settled);
        settled.as_mut().enable();
        let settles = {
            let map = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            map.get(key).map_or(u64::MAX, |e| e.settles)
        };
        if settles != waiting.settles {
            return true;
        }
        tokio::time::timeout_at(give_up, settled).await.is_ok()
    }

    /// Leaves the queue of waiting attempts on `key`.
    pub fn done_waiting(&self, key: &str, now: i64) {
        self.with(key, now, |e| {
            e.waiting = e.waiting.saturating_sub(1);
            if e.waiting == 0 {
                e.settled = None;
            }
        });
    }

    /// Ends an attempt that `begin` started: a failure keeps its unit spent, anything
    /// else gives it back. Wakes the attempts waiting on `key`.
    pub fn settle(&self, key: &str, now: i64, failed: bool) {
        let (max, w) = (self.max, self.window_ms);
        let settled = self.with(key, now, |e| {
            e.in_flight = e.in_flight.saturating_sub(1);
            e.settles += 1;
            if !failed {
                e.bucket.refill(max, w, now);
                e.bucket.level = (e.bucket.level + w).min(i64::from(max) * w);
            }
            e.settled.clone()
        });
        if let Some(n) = settled {
            n.notify_waiters();
        }
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
    fn only_failures_spend_the_budget_and_attempts_in_flight_make_others_wait() {
        let l = Limiter::new(1, 1000);
        assert!(matches!(l.begin("a", 0), Begin::Started));
        assert!(
            matches!(l.begin("a", 0), Begin::Wait(_)),
            "one attempt in flight holds the unit"
        );
        assert!(
            matches!(l.begin("a", 0), Begin::Refused(b) if b.retry_after_secs == 1),
            "no more than max wait"
        );
        l.done_waiting("a", 0);
        assert!(
            matches!(l.begin("b", 0), Begin::Started),
            "keys are independent"
        );
        l.settle("a", 0, false);
        assert!(
            matches!(l.begin("a", 0), Begin::Started),
            "a success gave its unit back"
        );
        l.settle("a", 0, true);
        assert!(matches!(l.begin("a", 0), Begin::Refused(b) if b.retry_after_secs == 1));
        assert!(
            matches!(l.begin("a", 1000), Begin::Started),
            "the bucket refilled"
        );
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_its_key_settles_and_not_for_another_key() {
        let l = Limiter::new(1, 1000);
        assert!(matches!(l.begin("a", 0), Begin::Started));
        assert!(matches!(l.begin("b", 0), Begin::Started));
        let Begin::Wait(w) = l.begin("a", 0) else {
            panic!("expected to wait")
        };
        let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(100);
        l.settle("b", 0, false);
        assert!(
            !l.wait("a", &w, soon).await,
            "another key's settle does not wake it"
        );
        l.settle("a", 0, false);
        let later = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        assert!(
            l.wait("a", &w, later).await,
            "a settle before the wait is not missed"
        );
        l.done_waiting("a", 0);
    }
}
