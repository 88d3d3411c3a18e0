//! strom's own Kafka client, on the `kafka-protocol` crate and `tokio::` APIs only, so that
//! it runs under madsim as well as on real sockets. Used by the `strom` CLI, `strom bench`
//! and the simulation tests, where librdkafka cannot run.
//!
//! - [`connection`]: framing, headers, correlation ids, pipelining, version negotiation.
//! - [`client`]: bootstrap, metadata cache, leader lookup, connection pool.
//! - [`admin`]: topics and configs.
//! - [`producer`]: partitioning, record batches, acks, idempotence.
//! - [`consumer`]: assigned partitions, Fetch, ListOffsets.
//! - [`error`]: typed errors and Kafka error code names.
//!
//! - [`group_consumer`]: a consumer group member (classic protocol, range assignor).
//! - [`groups`]: consumer group administration.
//! - [`transactions`]: describing transactions and producers.

pub mod admin;
pub mod client;
pub mod connection;
pub mod consumer;
pub mod error;
pub mod group_consumer;
pub mod groups;
pub mod producer;
pub mod transactions;

pub use admin::{
    Admin, AlterConfigOp, ClusterDescription, ConfigEntry, ConfigResource, ConfigSource,
    ConfigSynonym, LogDir, LogDirPartition, NewTopic, QuorumDescription, QuorumReplica,
    Reassignment, TopicListing, TopicResult,
};
pub use client::{
    BrokerInfo, Client, ClientConfig, ClusterMetadata, PartitionMetadata, TopicMetadata,
};
pub use connection::{Connection, ConnectionConfig};
pub use consumer::{
    Consumer, ConsumerConfig, ConsumerRecord, ListedOffset, OffsetReset, OffsetSpec,
    PartitionPosition, StartOffset,
};
pub use error::{error_name, ClientError, KafkaError};
pub use group_consumer::{GroupConfig, GroupConsumer};
pub use groups::{GroupDescription, GroupListing, GroupMember};
pub use kafka_protocol::records::Compression;
pub use producer::{
    compression_from_name, murmur2, Delivery, DeliveryError, Producer, ProducerBuilder,
    ProducerConfig,
};
pub use transactions::{ProducerDescription, TransactionDescription, TransactionListing};
pub use uuid::Uuid;
