//! When a transiently failed job runs again.

use std::time::Duration;

use rand::Rng;

use crate::config::JobsConfig;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delay before retry n (0-based); attempts = len + 1.
    pub schedule: Vec<Duration>,
    pub jitter_percent: u8,
}

impl RetryPolicy {
    pub fn from_config(c: &JobsConfig) -> Self {
        Self {
            schedule: c.retry_schedule.clone(),
            jitter_percent: c.jitter_percent,
        }
    }

    pub fn max_attempts(&self) -> i32 {
        i32::try_from(self.schedule.len() + 1).unwrap_or(i32::MAX)
    }

    /// The delay after failed attempt number `attempt` (1-based), jittered so that jobs that
    /// failed together (e.g. a peer was down) do not all retry in the same instant.
    pub fn delay_after(&self, attempt: i32) -> Duration {
        let Some(last) = self.schedule.last() else {
            return Duration::ZERO;
        };
        let i = usize::try_from(attempt.max(1) - 1).unwrap_or(0);
        let base = *self.schedule.get(i).unwrap_or(last);
        let spread = f64::from(self.jitter_percent) / 100.0;
        if spread == 0.0 {
            return base;
        }
        let factor = rand::rng().random_range((1.0 - spread)..=(1.0 + spread));
        base.mul_f64(factor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follows_the_schedule_within_the_jitter() {
        let p = RetryPolicy {
            schedule: vec![Duration::from_secs(10), Duration::from_secs(60)],
            jitter_percent: 20,
        };
        assert_eq!(p.max_attempts(), 3);
        for _ in 0..200 {
            let d1 = p.delay_after(1).as_secs_f64();
            let d2 = p.delay_after(2).as_secs_f64();
            assert!((8.0..=12.0).contains(&d1), "{d1}");
            assert!((48.0..=72.0).contains(&d2), "{d2}");
            // Past the end of the schedule the last delay repeats.
            assert!((48.0..=72.0).contains(&p.delay_after(9).as_secs_f64()));
        }
    }

    #[test]
    fn no_jitter_is_exact() {
        let p = RetryPolicy {
            schedule: vec![Duration::from_secs(5)],
            jitter_percent: 0,
        };
        assert_eq!(p.delay_after(1), Duration::from_secs(5));
    }
}
