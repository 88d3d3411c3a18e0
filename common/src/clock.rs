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
        let now = madsim::time::TimeHandle::current().now_time();
        let offset = sim::offset_ms();
        if offset >= 0 {
            now + Duration::from_millis(offset as u64)
        } else {
            now - Duration::from_millis(offset.unsigned_abs())
        }
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

/// Per-node wall-clock offsets under simulation: a node's clock may run ahead of or behind
/// the others', as real clocks do (monotonic time is unaffected, as with NTP steps).
#[cfg(madsim)]
pub mod sim {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    thread_local! {
        // One simulation runs on one thread; keyed by madsim's node id.
        static OFFSETS: RefCell<BTreeMap<String, i64>> = const { RefCell::new(BTreeMap::new()) };
    }

    /// The current node's offset in ms (0 when none is set).
    pub fn offset_ms() -> i64 {
        OFFSETS.with(|o| {
            let o = o.borrow();
            if o.is_empty() {
                return 0;
            }
            let k = format!("{:?}", madsim::plugin::node());
            o.get(&k).copied().unwrap_or(0)
        })
    }

    /// Sets `node`'s wall-clock offset (madsim's node id, as `{:?}` prints it).
    pub fn set_offset_ms(node: &str, offset_ms: i64) {
        OFFSETS.with(|o| o.borrow_mut().insert(node.to_string(), offset_ms));
    }

    /// Forgets every offset (a new simulation starts).
    pub fn clear() {
        OFFSETS.with(|o| o.borrow_mut().clear());
    }
}
