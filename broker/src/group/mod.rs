//! Consumer groups: the classic protocol (`classic`), KIP-848 (`consumer`), the records
//! of `__consumer_offsets` (`store`), and the coordinator that owns the groups of the
//! `__consumer_offsets` partitions this broker leads (`coordinator`).

pub mod api;
pub mod classic;
pub mod consumer;
pub mod coordinator;
pub mod protocol;
pub mod store;

pub use coordinator::{GroupCoordinator, GroupEntry, GroupKind, OFFSETS_TOPIC};
