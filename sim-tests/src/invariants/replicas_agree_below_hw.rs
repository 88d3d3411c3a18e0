//! Replicas are byte-identical below the high watermark: for every partition, the
//! batches of every live replica below the smallest high watermark among them are the
//! same bytes (followers copy the leader's batches; truncation only ever cuts above the
//! high watermark). Broken by a follower that appends what it did not get from the
//! leader, or a leader elected without the committed records.

use std::collections::BTreeMap;

use crate::workload::ReplicaLog;

pub fn check(replicas: &[ReplicaLog]) {
    let mut by_partition: BTreeMap<i32, Vec<&ReplicaLog>> = BTreeMap::new();
    for r in replicas {
        by_partition.entry(r.1).or_default().push(r);
    }
    for (p, reps) in by_partition {
        let hw = reps.iter().map(|r| r.2).min().unwrap_or(0);
        let below = |r: &ReplicaLog| -> Vec<(i64, bytes::Bytes)> {
            r.3.iter()
                .filter(|b| b.1 < hw)
                .map(|b| (b.0, b.3.clone()))
                .collect()
        };
        let first = below(reps[0]);
        for r in &reps[1..] {
            let other = below(r);
            assert!(
                first == other,
                "partition {p}: replicas {} and {} differ below the high watermark {hw} ({} vs {} batches)",
                reps[0].0,
                r.0,
                first.len(),
                other.len()
            );
        }
    }
}
