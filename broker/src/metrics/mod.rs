//! What a node counts as it works, for Prometheus (`/metrics` on the admin listener).
//!
//! Counting is a relaxed atomic add on memory found without a lock on the hot paths:
//! a request's API and version index a fixed table, a partition holds its topic's
//! counters. Everything else (partitions led, under-replicated, lag, quorum state) is
//! read from the node's state when a scraper asks: see [`render`].

pub mod process;
pub mod render;
pub mod text;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};

pub use text::HistogramSnapshot;

/// Upper bounds (seconds) of the request latency buckets.
pub const LATENCY_BOUNDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram with [`LATENCY_BOUNDS`].
pub struct Histogram {
    counts: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_nanos
            .fetch_add(d.as_nanos().min(u64::MAX as u128) as u64, Relaxed);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: LATENCY_BOUNDS,
            counts: self.counts.iter().map(|c| c.load(Relaxed)).collect(),
            sum: self.sum_nanos.load(Relaxed) as f64 / 1e9,
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// One API version's requests.
#[derive(Default)]
pub struct RequestStats {
    pub latency: Histogram,
}

/// Bytes and records one topic took in from producers and gave out to consumers and
/// follower replicas on this node, since the node started.
#[derive(Default)]
pub struct TopicStats {
    pub bytes_in: AtomicU64,
    pub records_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub records_out: AtomicU64,
    pub replication_bytes_out: AtomicU64,
    pub replication_bytes_in: AtomicU64,
}

impl TopicStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}

const MAX_API_KEY: usize = 128;
const MAX_VERSION: usize = 32;

/// The node's counters.
pub struct Metrics {
    /// By `api_key * MAX_VERSION + version`, made on first use.
    requests: Box<[OnceLock<Box<RequestStats>>]>,
    /// Per-partition error codes in Produce and Fetch answers: (api key, code) → count.
    partition_errors: Mutex<BTreeMap<(i16, i16), u64>>,
    topics: RwLock<BTreeMap<String, Arc<TopicStats>>>,
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
    pub connections_accepted: AtomicU64,
    /// Connections closed at once by a limit: (setting name) → count.
    connections_refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Whether `/metrics` lists series per partition (`admin.metrics.partition.detail`).
    pub partition_detail: bool,
}

impl Metrics {
    pub fn new(partition_detail: bool) -> Arc<Metrics> {
        Arc::new(Metrics {
            requests: (0..MAX_API_KEY * MAX_VERSION)
                .map(|_| OnceLock::new())
                .collect(),
            partition_errors: Mutex::new(BTreeMap::new()),
            topics: RwLock::new(BTreeMap::new()),
            isr_shrinks: AtomicU64::new(0),
            isr_expands: AtomicU64::new(0),
            connections_accepted: AtomicU64::new(0),
            connections_refused: Mutex::new(BTreeMap::new()),
            partition_detail,
        })
    }

    /// Counts a handled request and its latency (from its last byte read to its answer
    /// ready to write).
    pub fn request(&self, api_key: i16, version: i16, took: Duration) {
        let (k, v) = (api_key as usize, version as usize);
        if api_key < 0 || version < 0 || k >= MAX_API_KEY || v >= MAX_VERSION {
            return;
        }
        self.requests[k * MAX_VERSION + v]
            .get_or_init(Default::default)
            .latency
            .observe(took);
    }

    /// Every (api key, version) seen, with its stats.
    pub fn requests(&self) -> Vec<(i16, i16, &RequestStats)> {
        self.requests
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.get().map(|s| {
                    (
                        (i / MAX_VERSION) as i16,
                        (i % MAX_VERSION) as i16,
                        s.as_ref(),
                    )
                })
            })
            .collect()
    }

    /// Counts the per-partition error codes of a Produce or Fetch answer (0 is not an
    /// error and is not counted).
    pub fn partition_errors(&self, api_key: i16, codes: impl IntoIterator<Item = i16>) {
        let mut m = None;
        for c in codes {
            if c != 0 {
                let m = m.get_or_insert_with(|| self.partition_errors.lock());
                *m.entry((api_key, c)).or_insert(0) += 1;
            }
        }
    }

    pub fn partition_error_counts(&self) -> BTreeMap<(i16, i16), u64> {
        self.partition_errors.lock().clone()
    }

    /// The counters of `topic` (made on first use; partitions keep the `Arc`).
    pub fn topic(&self, topic: &str) -> Arc<TopicStats> {
        if let Some(t) = self.topics.read().get(topic) {
            return t.clone();
        }
        self.topics
            .write()
            .entry(topic.to_string())
            .or_default()
            .clone()
    }

    /// Every topic's counters; topics `keep` rejects (deleted ones) are forgotten.
    pub fn topics(&self, keep: impl Fn(&str) -> bool) -> Vec<(String, Arc<TopicStats>)> {
        let mut t = self.topics.write();
        t.retain(|name, _| keep(name));
        t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub fn connection_refused(&self, limit: &'static str) {
        *self.connections_refused.lock().entry(limit).or_insert(0) += 1;
    }

    pub fn connections_refused(&self) -> BTreeMap<&'static str, u64> {
        self.connections_refused.lock().clone()
    }
}

/// Records in a run of record batches, from their headers (a cut last batch is not
/// counted).
pub fn batch_records(mut bytes: &[u8]) -> u64 {
    let mut n = 0u64;
    while bytes.len() >= 61 {
        let len = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let Some(total) = usize::try_from(len).ok().and_then(|l| l.checked_add(12)) else {
            break;
        };
        if total > bytes.len() || total < 61 {
            break;
        }
        let count = i32::from_be_bytes([bytes[57], bytes[58], bytes[59], bytes[60]]);
        n += count.max(0) as u64;
        bytes = &bytes[total..];
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_api_version_and_bucket() {
        let m = Metrics::new(true);
        m.request(0, 9, Duration::from_micros(300));
        m.request(0, 9, Duration::from_millis(3));
        m.request(1, 17, Duration::from_secs(100));
        m.request(-1, 0, Duration::ZERO);
        m.request(500, 0, Duration::ZERO);
        let r = m.requests();
        assert_eq!(r.len(), 2);
        let (k, v, s) = r[0];
        assert_eq!((k, v, s.latency.count()), (0, 9, 2));
        let snap = s.latency.snapshot();
        assert_eq!(snap.counts[0], 1, "0.3 ms is in the 0.5 ms bucket");
        assert_eq!(snap.counts[3], 1, "3 ms is in the 5 ms bucket");
        assert!((snap.sum - 0.0033).abs() < 1e-9);
        let (k, v, s) = r[1];
        assert_eq!((k, v), (1, 17));
        assert_eq!(
            s.latency.snapshot().counts[LATENCY_BOUNDS.len()],
            1,
            "above every bound"
        );
    }

    #[test]
    fn records_are_counted_from_whole_batch_headers() {
        let mut two = crate::log::batch::tests::make_batch(
            3,
            kafka_protocol::records::Compression::None,
            None,
        )
        .to_vec();
        let second = crate::log::batch::tests::make_batch(
            2,
            kafka_protocol::records::Compression::Lz4,
            None,
        );
        two.extend_from_slice(&second);
        assert_eq!(batch_records(&two), 5);
        assert_eq!(
            batch_records(&two[..two.len() - 1]),
            3,
            "a cut batch is not counted"
        );
        assert_eq!(batch_records(&[]), 0);
    }

    #[test]
    fn partition_errors_count_codes_but_not_success() {
        let m = Metrics::new(true);
        m.partition_errors(0, [0, 6, 6, 19]);
        m.partition_errors(1, [0, 0]);
        let c = m.partition_error_counts();
        assert_eq!(c.get(&(0, 6)), Some(&2));
        assert_eq!(c.get(&(0, 19)), Some(&1));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn topic_counters_are_shared_and_deleted_topics_forgotten() {
        let m = Metrics::new(true);
        let a = m.topic("a");
        TopicStats::add(&a.bytes_in, 10);
        TopicStats::add(&m.topic("a").bytes_in, 5);
        m.topic("b");
        let t = m.topics(|n| n == "a");
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].1.bytes_in.load(Relaxed), 15);
    }
}
