//! The one clock (and randomness) seam. Every wall-clock timestamp a node reads comes from here, so that
//! under `--cfg madsim` time is the simulator's (madsim also intercepts
//! `clock_gettime`, but naming one place keeps that assumption in one file).
//!
//! Monotonic time is `tokio::time::Instant` (madsim-tokio's under simulation).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as Kafka timestamps are.
pub fn now_ms() -> i64 {
    let now = system_now();
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(_) => 0,
    }
}

/// The wall-clock time.
pub fn system_now() -> SystemTime {
    #[cfg(madsim)]
    {
        madsim::time::TimeHandle::current().now_time()
    }
    #[cfg(not(madsim))]
    {
        SystemTime::now()
    }
}

/// The monotonic clock (simulated under madsim).
pub fn monotonic() -> tokio::time::Instant {
    tokio::time::Instant::now()
}

/// A `Duration` from a Kafka millisecond setting, treating negatives as zero.
pub fn millis(ms: i64) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}

/// A random 128-bit value (topic ids, cluster ids, incarnation ids): madsim's seeded
/// generator under simulation, the OS's otherwise.
pub fn random_u128() -> u128 {
    #[cfg(madsim)]
    {
        use madsim::rand::Rng;
        madsim::rand::thread_rng().gen()
    }
    #[cfg(not(madsim))]
    {
        rand::random()
    }
}
