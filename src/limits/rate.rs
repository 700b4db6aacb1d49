//! Per-client request rate limits (GCRA: one "theoretical arrival time" per client).
//!
//! Kept in memory per replica: a limit is a courtesy to the database and other vendors, not a
//! contract, so N replicas allow N times the rate rather than costing a database round trip.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use uuid::Uuid;

pub struct RateLimiter {
    /// Time one request "costs".
    interval: Duration,
    /// How far ahead of now a client's arrival time may run: the burst.
    tolerance: Duration,
    arrivals: Mutex<HashMap<Uuid, Instant>>,
}

const MAX_TRACKED: usize = 100_000;

impl RateLimiter {
    pub fn new(per_second: u32, burst: u32) -> Self {
        let interval = Duration::from_secs(1) / per_second.max(1);
        Self {
            interval,
            tolerance: interval * burst.max(1),
            arrivals: Mutex::new(HashMap::new()),
        }
    }

    /// `Ok` when `client` may make a request now, else how long it should wait.
    pub fn check(&self, client: Uuid) -> Result<(), Duration> {
        self.check_at(client, Instant::now())
    }

    fn check_at(&self, client: Uuid, now: Instant) -> Result<(), Duration> {
        let mut map = self.arrivals.lock().expect("rate limiter lock");
        if map.len() >= MAX_TRACKED {
            // Entries in the past carry no debt; dropping them forgets nothing.
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(&client).copied().unwrap_or(now).max(now);
        let next = tat + self.interval;
        if next > now + self.tolerance {
            return Err(next - (now + self.tolerance));
        }
        map.insert(client, next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let l = RateLimiter::new(10, 5);
        let c = Uuid::new_v4();
        let t0 = Instant::now();
        for _ in 0..5 {
            assert!(l.check_at(c, t0).is_ok());
        }
        let wait = l.check_at(c, t0).unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        // Another client is not affected.
        assert!(l.check_at(Uuid::new_v4(), t0).is_ok());
        // After one interval, one more request fits.
        assert!(l.check_at(c, t0 + Duration::from_millis(100)).is_ok());
        assert!(l.check_at(c, t0 + Duration::from_millis(100)).is_err());
    }
}
