//! The partition log: storage seam, segments, indexes, record batch checks, producer
//! state (idempotence, open transactions), transaction markers, and the per-partition
//! log built from them. Nothing here speaks the Kafka wire protocol or knows about
//! other brokers.

pub mod batch;
pub mod checkpoint;
pub mod cleaner;
pub mod config;
pub mod dir_guard;
pub mod epoch_cache;
pub mod index;
pub mod inflate;
pub mod marker;
pub mod partition;
pub mod producer_state;
pub mod records;
pub mod segment;
pub mod storage;
pub mod txn_index;

pub use config::LogConfig;
pub use dir_guard::LogDirGuard;
pub use partition::{
    AppendInfo, CompactionStats, LogError, LogOffsets, OpenOptions, PartitionLog, ReadInfo,
    TxnCheck,
};
#[cfg(not(madsim))]
pub use storage::FsStorage;
pub use storage::{DiskFault, PowerLoss, SimStorage, Storage, StorageFile};

#[cfg(test)]
mod tests;
