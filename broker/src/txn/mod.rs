//! Transactions (KIP-98): the transaction coordinator's state per transactional id
//! (`metadata`) and its records in `__transaction_state` (`store`).

pub mod metadata;
pub mod store;
