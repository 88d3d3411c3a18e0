//! The strom broker: the Kafka front (wire codec, one handler per API), the partition
//! log, the metadata cache that follows the controller quorum, and the node that ties
//! them together. `node::start` is the entry point for the binary and the simulation
//! tests.

pub mod admin;
pub mod broker;
pub mod config;
pub mod controller_client;
pub mod coordinator;
pub mod error;
pub mod fetch_session;
pub mod group;
pub mod handlers;
pub mod health;
#[cfg(not(madsim))]
pub mod http;
pub mod inter_broker;
pub mod log;
pub mod metadata_cache;
pub mod metrics;
pub mod node;
pub mod producer_ids;
#[cfg(not(madsim))]
pub mod registry;
pub mod replication;
pub mod runtime;
pub mod server;
pub mod txn;

pub use config::NodeConfig;
pub use node::{start, Node, NodeEnv};
