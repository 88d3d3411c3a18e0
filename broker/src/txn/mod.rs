//! Transactions (KIP-98): the transaction coordinator's state per transactional id
//! (`metadata`).

pub mod metadata;
