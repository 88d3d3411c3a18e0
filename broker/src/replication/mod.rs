//! Partition replication (Kafka's ISR model): the partitions this broker hosts and their
//! roles (leader or follower, from the metadata image), the leader's append path and
//! acks=all, followers fetching from leaders, the rules of the ISR and the high
//! watermark, and ISR changes sent to the controller (AlterPartition).
//!
//! - `manager`: hosted partitions, acting on metadata, housekeeping and checkpoints.
//! - `partition`: one partition's role and its leader/follower operations.
//! - `isr`: the pure rules (follower state, HW, ISR expand/shrink).
//! - `fetcher`: one replica fetcher per source broker.
//! - `alter_partition`: the ISR changes in flight to the controller.
//!
//! Handlers and coordinators reach partitions only through `ReplicaManager`. It must
//! not import handlers, the group coordinator or the `Broker` (they depend on it).

mod alter_partition;
mod fetcher;
pub mod isr;
mod manager;
mod partition;

pub use manager::ReplicaManager;
pub use partition::{
    Appended, ConsumerRead, FollowerRead, Partition, PartitionSettings, PartitionState,
    ProduceOutcome, ProduceRefusal, Refusal, Transition,
};

/// Replication settings, with Kafka's names and defaults.
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms`: an ISR member not caught up for this long leaves.
    pub replica_lag_time_max_ms: i64,
    /// `replica.fetch.wait.max.ms`
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes`
    pub fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes` (per partition)
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`
    pub fetch_backoff_ms: u64,
    /// `replica.high.watermark.checkpoint.interval.ms`
    pub hw_checkpoint_interval_ms: u64,
    /// `inter.broker.listener.name`: the listener followers fetch through.
    pub inter_broker_listener: String,
    /// `producer.id.expiration.ms`: a producer whose last write is older is forgotten.
    pub producer_id_expiration_ms: i64,
    /// `producer.id.expiration.check.interval.ms`
    pub producer_id_expiration_check_interval_ms: u64,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replica_lag_time_max_ms: 30_000,
            fetch_wait_max_ms: 500,
            fetch_min_bytes: 1,
            fetch_max_bytes: 1 << 20,
            fetch_response_max_bytes: 10 << 20,
            fetch_backoff_ms: 1000,
            hw_checkpoint_interval_ms: 5000,
            inter_broker_listener: "PLAINTEXT".into(),
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval_ms: 600_000,
        }
    }
}
