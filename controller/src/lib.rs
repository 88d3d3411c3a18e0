//! The metadata quorum (KRaft-like): openraft over the metadata log, with sled (or, under
//! madsim, simulated memory) underneath; the metadata image and the controller's
//! decisions; and the gRPC services brokers and peer controllers call.
//!
//! This crate knows nothing of the Kafka wire protocol; brokers translate.

pub mod error;
pub mod metadata;
pub mod network;
pub mod quorum;
pub mod rt;
pub mod service;
pub mod store;
pub mod types;

pub use error::ControllerError;
pub use quorum::{Controller, ControllerConfig};
