//! Partition replication: the partitions this broker hosts and their roles (leader or
//! follower, from the metadata image), the leader's append path, and the rules of the
//! high watermark and the ISR.
//!
//! It owns the hosted partitions; handlers and coordinators reach partitions only
//! through `ReplicaManager`. It must not import handlers, the group coordinator or the
//! `Broker` (they depend on it, not the other way round).

mod manager;
mod partition;

pub use manager::ReplicaManager;
pub use partition::{Partition, PartitionState, ProduceOutcome};
