//! Durable state of a controller: the Raft log, vote and snapshot (`log_store`), and the
//! state machine holding the metadata image (`state_machine`).
//!
//! Both sit on a small key-value `Backend`: sled in production and in real-tokio tests,
//! and `SimBackend` (memory that survives simulated restarts and loses unflushed writes
//! on a simulated power failure) under madsim, where sled's threads cannot run. Every
//! write openraft is told about is flushed first.

pub mod backend;
pub mod log_store;
pub mod state_machine;

#[cfg(not(madsim))]
pub use backend::SledBackend;
pub use backend::{Backend, SimBackend};
pub use log_store::LogStore;
pub use state_machine::{ApplyObserver, SmShared, StateMachineStore};
