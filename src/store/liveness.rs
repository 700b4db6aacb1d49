//! Which pooled connections get a round trip before they are handed out.
//!
//! In steady state only connections idle for a while are checked, so the hot paths pay no
//! extra round trip. Once any statement has failed on a broken connection (the database
//! restarted, or the network dropped), every connection that went idle before that failure
//! may be broken too. Those are checked before use, so the first request after the database
//! comes back gets a good connection instead of a 503.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An idle connection older than this is checked before use even without a failure.
pub const IDLE_BEFORE_PING: Duration = Duration::from_secs(10);

/// Nanoseconds after `origin()` of the last broken-connection failure, plus one; 0 means none.
static LAST_TROUBLE: AtomicU64 = AtomicU64::new(0);

fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

fn since_origin(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(origin()).as_nanos()).unwrap_or(u64::MAX - 1)
}

/// Whether a statement failed because the database could not be reached or is going away
/// (restarting, recovering from a crash, shutting down, out of connections), rather than
/// because of the statement: the caller should be told to come back, not that we failed.
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| unavailable_state(&c)),
        _ => false,
    }
}

/// SQLSTATEs of a server that is unreachable or going away: class 08 (connection exception),
/// 57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now (starting up or in
/// recovery), 53300 too_many_connections.
fn unavailable_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// Records that a statement failed because its connection is unusable.
pub fn observe(error: &sqlx::Error) {
    let broken = match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| unavailable_state(&c)),
        _ => false,
    };
    if broken {
        trouble_at(Instant::now());
    }
}

fn trouble_at(at: Instant) {
    LAST_TROUBLE.fetch_max(since_origin(at) + 1, Ordering::Relaxed);
}

/// Whether a connection idle for `idle_for` must be checked before it is handed out.
pub fn needs_check(idle_for: Duration) -> bool {
    needs_check_at(Instant::now(), idle_for)
}

fn needs_check_at(now: Instant, idle_for: Duration) -> bool {
    if idle_for >= IDLE_BEFORE_PING {
        return true;
    }
    let trouble = LAST_TROUBLE.load(Ordering::Relaxed);
    if trouble == 0 {
        return false;
    }
    let idle_since = since_origin(now.checked_sub(idle_for).unwrap_or_else(origin));
    idle_since < trouble
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test, because the mark is process-wide state.
    #[test]
    fn connections_idle_since_before_a_failure_are_checked_and_later_ones_are_not() {
        let start = origin() + Duration::from_secs(1);
        assert!(needs_check_at(start, IDLE_BEFORE_PING));
        if LAST_TROUBLE.load(Ordering::Relaxed) == 0 {
            assert!(!needs_check_at(start, Duration::from_millis(5)));
        }
        let failure = Instant::now() + Duration::from_secs(3600);
        trouble_at(failure);
        let now = failure + Duration::from_millis(100);
        // Idle since 200 ms ago: went idle before the failure.
        assert!(needs_check_at(now, Duration::from_millis(200)));
        // Idle since 50 ms ago: released (and pinged by the pool) after the failure.
        assert!(!needs_check_at(now, Duration::from_millis(50)));
        // Only I/O-level errors count as broken connections.
        let later = failure + Duration::from_secs(1);
        observe(&sqlx::Error::RowNotFound);
        assert!(!needs_check_at(
            later + Duration::from_millis(10),
            Duration::from_millis(5)
        ));
    }
}
