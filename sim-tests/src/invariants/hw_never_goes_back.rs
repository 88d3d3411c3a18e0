//! The high watermark never goes back for any observer: each consumer, partition by
//! partition, is told (in Fetch answers and by ListOffsets latest) a high watermark that
//! never decreases. Broken by a zombie leader answering after its successor, or a new
//! leader answering before it caught up with its epoch's start (KIP-207).

use std::collections::BTreeMap;

use crate::workload::History;

pub fn check(h: &History) {
    let mut last: BTreeMap<(u32, i32), i64> = BTreeMap::new();
    for &(c, p, hw) in &h.high_watermarks {
        if let Some(&prev) = last.get(&(c, p)) {
            assert!(
                hw >= prev,
                "consumer {c} saw partition {p}'s high watermark go from {prev} back to {hw}"
            );
        }
        last.insert((c, p), hw);
    }
}
