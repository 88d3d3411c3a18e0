//! Batch epochs never decrease in a log: in every replica, the partition leader epoch
//! stamped on batches is non-decreasing with the offset (and offsets strictly increase).
//! Broken by a deposed leader appending after its successor's records reached it, or a
//! follower appending under an epoch it no longer follows.

use crate::workload::ReplicaLog;

pub fn check(replicas: &[ReplicaLog]) {
    for (broker, p, _, batches) in replicas {
        for w in batches.windows(2) {
            assert!(
                w[1].0 > w[0].1,
                "broker {broker} partition {p}: batch at {} overlaps the one ending at {}",
                w[1].0,
                w[0].1
            );
            assert!(
                w[1].2 >= w[0].2,
                "broker {broker} partition {p}: epoch {} at offset {} after epoch {} at {}",
                w[1].2,
                w[1].0,
                w[0].2,
                w[0].0
            );
        }
    }
}
