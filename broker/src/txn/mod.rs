//! Transactions (KIP-98): the transaction coordinator (`coordinator`), its state per
//! transactional id (`metadata`) and its records in `__transaction_state` (`store`).

pub mod coordinator;
pub mod markers;
pub mod metadata;
pub mod store;
pub mod verify;
