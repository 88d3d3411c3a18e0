//! Properties every simulated run must keep, one file per invariant.

pub mod acknowledged_topics_exist_once;
pub mod committed_offsets_never_go_back;
pub mod epochs_never_decrease;
pub mod group_ownership_is_exclusive;
pub mod hw_never_goes_back;
pub mod metadata_logs_agree;
pub mod no_duplicates;
pub mod no_lost_acked_writes;
pub mod one_value_per_offset;
pub mod reads_below_hw_stay;
pub mod replicas_agree_below_hw;

use crate::workload::{FinalLog, History, ReplicaLog};

/// Every replication check on one run's history, final logs and replica logs.
pub fn check_replication(h: &History, logs: &[FinalLog], replicas: &[ReplicaLog]) {
    no_lost_acked_writes::check(h, logs);
    one_value_per_offset::check(h, logs);
    no_duplicates::check(logs);
    replicas_agree_below_hw::check(replicas);
    hw_never_goes_back::check(h);
    epochs_never_decrease::check(replicas);
    reads_below_hw_stay::check(h, logs);
}
