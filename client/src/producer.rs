//! A simple producer: records are buffered per partition (chosen like Kafka's default
//! partitioner: murmur2 of the key, round robin without one) and `flush` sends each
//! partition's records as one v2 record batch, one Produce request per leader, with
//! optional idempotence (producer id, epoch and per-partition sequences).
//!
//! Each batch is encoded once, so a retry after NOT_LEADER_OR_FOLLOWER or a lost
//! connection resends the same bytes with the same sequence. There is no background
//! sender or linger timer.
//!
//! With a `transactional_id` the producer is transactional, as Kafka's (KIP-98, the
//! client side of transaction version 1): `init_transactions` gets the producer id and
//! epoch from the transaction coordinator (fencing older instances), each partition is
//! added to the open transaction (AddPartitionsToTxn) before its first batch goes, and
//! `commit_transaction`/`abort_transaction` flush and end it (EndTxn). A transaction
//! in which a batch failed can only be aborted.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use indexmap::IndexMap;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::produce_response::PartitionProduceResponse;
use kafka_protocol::messages::{
    EndTxnRequest, InitProducerIdRequest, ProduceRequest, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use crate::client::Client;
use crate::error::{is_retriable, is_stale_metadata, ClientError, KafkaError};

/// Highest Produce version used (v13 names topics by id).
const PRODUCE_MAX_VERSION: i16 = 12;
/// Bytes of a record batch header.
const BATCH_OVERHEAD: usize = 61;

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// 0 (no answer), 1 (leader appended) or -1 (all in-sync replicas).
    pub acks: i16,
    /// Compression of every batch.
    pub compression: Compression,
    /// Whether to use a producer id and sequences (requires acks=-1, as in Kafka).
    pub idempotent: bool,
    /// How long the broker may wait for replication (`timeout_ms` of Produce).
    pub produce_timeout: Duration,
    /// A partition's buffer is sent once its records would exceed this (uncompressed).
    pub max_batch_bytes: usize,
    /// Resends after a retriable error (stale leader, lost connection) before giving up.
    pub retries: u32,
    /// `transactional.id`: makes the producer transactional (and idempotent).
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms` (60 s): the coordinator aborts a transaction open longer.
    pub transaction_timeout: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: -1,
            compression: Compression::None,
            idempotent: false,
            produce_timeout: Duration::from_secs(30),
            max_batch_bytes: 1024 * 1024,
            retries: 3,
            transactional_id: None,
            transaction_timeout: Duration::from_secs(60),
        }
    }
}

/// Why one record was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The partition's leader answered with this error.
    #[error("{0}")]
    Kafka(KafkaError),
    /// The request failed (connection, timeout, encoding …), described.
    #[error("{0}")]
    Client(String),
}

/// The outcome of one `send`, reported by `flush` in send order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Topic.
    pub topic: String,
    /// Partition the record went to.
    pub partition: i32,
    /// The record's offset (-1 with acks=0), or why it failed.
    pub result: Result<i64, DeliveryError>,
}

/// Builds a [`Producer`].
#[derive(Debug, Clone)]
pub struct ProducerBuilder {
    client: Client,
    config: ProducerConfig,
}

impl ProducerBuilder {
    /// Sets acks (0, 1 or -1).
    pub fn acks(mut self, acks: i16) -> Self {
        self.config.acks = acks;
        self
    }

    /// Sets the batch compression.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.config.compression = compression;
        self
    }

    /// Turns idempotence on or off.
    pub fn idempotent(mut self, on: bool) -> Self {
        self.config.idempotent = on;
        self
    }

    /// Sets the per-partition batch size limit.
    pub fn max_batch_bytes(mut self, bytes: usize) -> Self {
        self.config.max_batch_bytes = bytes;
        self
    }

    /// Makes the producer transactional (`transactional.id`), or not with `None`.
    pub fn transactional_id(mut self, id: Option<String>) -> Self {
        self.config.transactional_id = id;
        self
    }

    /// Sets the number of retries.
    pub fn retries(mut self, retries: u32) -> Self {
        self.config.retries = retries;
        self
    }

    /// Sets all settings at once.
    pub fn config(mut self, config: ProducerConfig) -> Self {
        self.config = config;
        self
    }

    /// Checks the settings and makes the producer.
    pub fn build(self) -> Result<Producer, ClientError> {
        let c = &self.config;
        if !matches!(c.acks, -1..=1) {
            return Err(ClientError::InvalidArgument(format!(
                "acks must be 0, 1 or -1, not {}",
                c.acks
            )));
        }
        let idempotent = c.idempotent || c.transactional_id.is_some();
        if idempotent && c.acks != -1 {
            return Err(ClientError::InvalidArgument(
                "idempotence and transactions require acks=-1".into(),
            ));
        }
        Ok(Producer {
            client: self.client,
            txn: self.config.transactional_id.clone().map(TxnState::new),
            idempotence: idempotent.then(ProducerIdState::default),
            config: self.config,
            buffers: BTreeMap::new(),
            next_index: 0,
            completed: Vec::new(),
            round_robin: BTreeMap::new(),
        })
    }
}

/// Records waiting for one partition, with their send indexes.
#[derive(Default)]
struct PartitionBuffer {
    records: Vec<Record>,
    indexes: Vec<usize>,
    bytes: usize,
}

/// One encoded batch on its way to a partition.
struct Batch {
    topic: String,
    partition: i32,
    records: Bytes,
    indexes: Vec<usize>,
}

/// Idempotence state: the producer id and the next sequence of each partition.
#[derive(Default)]
struct ProducerIdState {
    /// `None` until InitProducerId answered, and again after a failure left sequences unsure.
    id: Option<(i64, i16)>,
    sequences: BTreeMap<(String, i32), i32>,
}

/// A producer: `send` buffers, `flush` delivers and reports.
pub struct Producer {
    client: Client,
    config: ProducerConfig,
    buffers: BTreeMap<(String, i32), PartitionBuffer>,
    next_index: usize,
    completed: Vec<(usize, Delivery)>,
    round_robin: BTreeMap<String, u32>,
    idempotence: Option<ProducerIdState>,
    txn: Option<TxnState>,
}

/// A transactional producer's state.
struct TxnState {
    id: String,
    coordinator: Option<std::sync::Arc<crate::connection::Connection>>,
    /// Between `begin_transaction` and the end of the transaction.
    open: bool,
    /// Partitions added to the open transaction.
    partitions: BTreeSet<(String, i32)>,
    /// Why the open transaction can only be aborted, if something failed in it.
    failed: Option<String>,
}

impl TxnState {
    fn new(id: String) -> Self {
        TxnState {
            id,
            coordinator: None,
            open: false,
            partitions: BTreeSet::new(),
            failed: None,
        }
    }
}

impl Producer {
    /// A builder with default settings (acks=-1, no compression, not idempotent).
    pub fn builder(client: Client) -> ProducerBuilder {
        ProducerBuilder {
            client,
            config: ProducerConfig::default(),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Buffers a record and returns its index in the `Vec` the next `flush` returns.
    /// Without `partition`, a key picks it by murmur2, else round robin. Without
    /// `timestamp`, the current time. May send buffered records if a batch is full.
    pub async fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Bytes>,
        value: Option<Bytes>,
        headers: Vec<(String, Option<Bytes>)>,
        timestamp: Option<i64>,
    ) -> Result<usize, ClientError> {
        let partition = match partition {
            Some(p) if p < 0 => {
                return Err(ClientError::InvalidArgument(format!("partition {p}")));
            }
            Some(p) => p,
            None => {
                let count = self.client.topic_metadata(topic).await?.partitions.len();
                self.choose_partition(topic, key.as_deref(), count)?
            }
        };
        let size = 21
            + key.as_ref().map_or(0, Bytes::len)
            + value.as_ref().map_or(0, Bytes::len)
            + headers
                .iter()
                .map(|(k, v)| 10 + k.len() + v.as_ref().map_or(0, Bytes::len))
                .sum::<usize>();
        let tp = (topic.to_owned(), partition);
        let full = self.buffers.get(&tp).is_some_and(|b| {
            !b.records.is_empty() && BATCH_OVERHEAD + b.bytes + size > self.config.max_batch_bytes
        });
        if full {
            self.send_buffered().await?;
        }
        if self.txn.as_ref().is_some_and(|t| !t.open) {
            return Err(ClientError::InvalidArgument(
                "a transactional producer sends only inside a transaction (begin_transaction)"
                    .into(),
            ));
        }
        let record = Record {
            transactional: self.txn.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: timestamp.unwrap_or_else(strom_common::clock::now_ms),
            key,
            value,
            headers: headers
                .into_iter()
                .map(|(k, v)| (StrBytes::from_string(k), v))
                .collect::<IndexMap<_, _>>(),
        };
        let index = self.next_index;
        self.next_index += 1;
        let buffer = self.buffers.entry(tp).or_default();
        buffer.records.push(record);
        buffer.indexes.push(index);
        buffer.bytes += size;
        Ok(index)
    }

    /// Sends everything buffered and returns the outcome of every `send` since the last
    /// flush, in send order. `Err` only when nothing could be attempted (InitProducerId
    /// failed); per-record failures are in the `Delivery`s.
    pub async fn flush(&mut self) -> Result<Vec<Delivery>, ClientError> {
        self.send_buffered().await?;
        let mut done = std::mem::take(&mut self.completed);
        done.sort_by_key(|(index, _)| *index);
        self.next_index = 0;
        Ok(done.into_iter().map(|(_, d)| d).collect())
    }

    /// The partition for a record without an explicit one.
    fn choose_partition(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        count: usize,
    ) -> Result<i32, ClientError> {
        if count == 0 {
            return Err(ClientError::InvalidArgument(format!(
                "{topic} has no partitions"
            )));
        }
        Ok(match key {
            Some(key) => default_partition(key, count),
            None => {
                let next = self.round_robin.entry(topic.to_owned()).or_insert(0);
                let p = *next as usize % count;
                *next = next.wrapping_add(1);
                p as i32
            }
        })
    }

    /// Encodes each partition's buffer into one batch and delivers them, retrying
    /// retriable failures; outcomes go to `completed`.
    async fn send_buffered(&mut self) -> Result<(), ClientError> {
        if self.buffers.is_empty() {
            return Ok(());
        }
        let producer = self.ensure_producer_id().await?;
        if self.txn.is_some() {
            let new: Vec<(String, i32)> = self
                .buffers
                .keys()
                .filter(|k| {
                    self.txn
                        .as_ref()
                        .is_some_and(|t| !t.partitions.contains(*k))
                })
                .cloned()
                .collect();
            if !new.is_empty() {
                if let Err(e) = self.add_partitions(&new).await {
                    // Nothing of these partitions can go: fail their records, and the
                    // transaction with them.
                    let error = to_delivery_error(e);
                    for batch in self.take_unsent() {
                        self.fail(&batch, error.clone());
                    }
                    return Ok(());
                }
            }
        }
        let mut batches = Vec::new();
        for ((topic, partition), buffer) in std::mem::take(&mut self.buffers) {
            let base_sequence = match (&mut self.idempotence, producer) {
                (Some(state), Some(_)) => {
                    let next = state
                        .sequences
                        .entry((topic.clone(), partition))
                        .or_insert(0);
                    let base = *next;
                    *next = next.wrapping_add(buffer.records.len() as i32);
                    Some(base)
                }
                _ => None,
            };
            match encode_batch(
                buffer.records,
                self.config.compression,
                producer,
                base_sequence,
            ) {
                Ok(records) => batches.push(Batch {
                    topic,
                    partition,
                    records,
                    indexes: buffer.indexes,
                }),
                Err(e) => {
                    let batch = Batch {
                        topic,
                        partition,
                        records: Bytes::new(),
                        indexes: buffer.indexes,
                    };
                    self.fail(&batch, DeliveryError::Client(e.to_string()));
                }
            }
        }
        let mut attempt = 0;
        while !batches.is_empty() {
            let mut by_leader: BTreeMap<i32, Vec<Batch>> = BTreeMap::new();
            let mut no_leader = Vec::new();
            for batch in batches.drain(..) {
                match self.client.leader_for(&batch.topic, batch.partition).await {
                    Ok(leader) => by_leader.entry(leader).or_default().push(batch),
                    // No leader right now (an election): try again next round.
                    Err(e) if attempt < self.config.retries && retriable_client_error(&e) => {
                        self.client.invalidate_topic(&batch.topic);
                        no_leader.push(batch);
                    }
                    Err(e) => self.fail(&batch, to_delivery_error(e)),
                }
            }
            let (client, config) = (&self.client, &self.config);
            let sends = by_leader.into_iter().map(|(leader, batches)| async move {
                let result = produce_to(client, config, leader, &batches).await;
                (batches, result)
            });
            let results = futures::future::join_all(sends).await;
            let last_attempt = attempt >= self.config.retries;
            for (sent, result) in results {
                match result {
                    Ok(None) => {
                        for b in &sent {
                            self.succeed(b, -1);
                        }
                    }
                    Ok(Some(mut answers)) => {
                        for b in sent {
                            let key = (b.topic.clone(), b.partition);
                            let Some(answer) = answers.remove(&key) else {
                                self.fail(
                                    &b,
                                    DeliveryError::Client(
                                        "partition missing in Produce response".into(),
                                    ),
                                );
                                continue;
                            };
                            let error = KafkaError::from_code(
                                answer.error_code,
                                answer.error_message.as_deref(),
                            );
                            match error {
                                None => self.succeed(&b, answer.base_offset),
                                Some(e) if !last_attempt && e.is_retriable() => {
                                    if is_stale_metadata(e.code) {
                                        self.client.invalidate_topic(&b.topic);
                                    }
                                    batches.push(b);
                                }
                                Some(e) => self.fail(&b, DeliveryError::Kafka(e)),
                            }
                        }
                    }
                    Err(e) if !last_attempt && retriable_client_error(&e) => {
                        tracing::debug!(error = %e, "produce failed, retrying");
                        for b in sent {
                            self.client.invalidate_topic(&b.topic);
                            batches.push(b);
                        }
                    }
                    Err(e) => {
                        let error = to_delivery_error(e);
                        for b in &sent {
                            self.fail(b, error.clone());
                        }
                    }
                }
            }
            batches.extend(no_leader);
            attempt += 1;
            if !batches.is_empty() {
                tokio::time::sleep(self.client.config().retry_backoff).await;
            }
        }
        Ok(())
    }

    /// Empties the buffers, as batches with no bytes: records that will not be sent.
    fn take_unsent(&mut self) -> Vec<Batch> {
        std::mem::take(&mut self.buffers)
            .into_iter()
            .map(|((topic, partition), buffer)| Batch {
                topic,
                partition,
                records: Bytes::new(),
                indexes: buffer.indexes,
            })
            .collect()
    }

    fn succeed(&mut self, batch: &Batch, base_offset: i64) {
        for (i, &index) in batch.indexes.iter().enumerate() {
            let offset = if base_offset < 0 {
                -1
            } else {
                base_offset + i as i64
            };
            self.completed.push((index, delivery(batch, Ok(offset))));
        }
    }

    fn fail(&mut self, batch: &Batch, error: DeliveryError) {
        // The broker may or may not hold the batch: sequences are now unsure, so the next
        // flush starts over with a new producer id — or, in a transaction, the
        // transaction must be aborted (which resets the sequences).
        match &mut self.txn {
            Some(t) => {
                t.failed.get_or_insert_with(|| error.to_string());
            }
            None => {
                if let Some(state) = &mut self.idempotence {
                    state.id = None;
                }
            }
        }
        for &index in &batch.indexes {
            self.completed
                .push((index, delivery(batch, Err(error.clone()))));
        }
    }

    /// With idempotence on, gets a producer id now rather than at the first flush.
    pub async fn init_producer_id(&mut self) -> Result<(), ClientError> {
        self.ensure_producer_id().await.map(|_| ())
    }

    /// With idempotence on, the producer id and epoch (asked for if not yet known).
    async fn ensure_producer_id(&mut self) -> Result<Option<(i64, i16)>, ClientError> {
        let Some(state) = &mut self.idempotence else {
            return Ok(None);
        };
        if let Some(id) = state.id {
            return Ok(Some(id));
        }
        if self.txn.is_some() {
            return Err(ClientError::InvalidArgument(
                "a transactional producer needs init_transactions first".into(),
            ));
        }
        let mut attempt = 0;
        let id = loop {
            let conn = self.client.any_connection().await?;
            let version = conn.version_for::<InitProducerIdRequest>(4)?;
            let req = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(i32::MAX);
            let resp = conn.send(req, version).await?;
            match KafkaError::from_code(resp.error_code, None) {
                None => break (resp.producer_id.0, resp.producer_epoch),
                Some(e) if e.is_retriable() && attempt < self.config.retries => {
                    attempt += 1;
                    tokio::time::sleep(self.client.config().retry_backoff).await;
                }
                Some(e) => return Err(e.into()),
            }
        };
        state.id = Some(id);
        state.sequences.clear();
        Ok(Some(id))
    }
}

/// Kafka's error codes a transactional producer retries its coordinator requests on:
/// COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR,
/// CONCURRENT_TRANSACTIONS, and the request timing out.
const TXN_RETRIABLE: [i16; 5] = [14, 15, 16, 51, 7];

/// The transactional side of the producer.
impl Producer {
    /// Gets the producer id and epoch for the transactional id from its coordinator,
    /// which fences any older producer with the same id and aborts what it left open.
    pub async fn init_transactions(&mut self) -> Result<(), ClientError> {
        let (id, timeout) = match &self.txn {
            Some(t) => (t.id.clone(), self.config.transaction_timeout),
            None => {
                return Err(ClientError::InvalidArgument(
                    "init_transactions needs a transactional_id".into(),
                ))
            }
        };
        let resp = self
            .txn_request(|conn| {
                let id = id.clone();
                async move {
                    let version = conn.version_for::<InitProducerIdRequest>(4)?;
                    let req = InitProducerIdRequest::default()
                        .with_transactional_id(Some(TransactionalId(StrBytes::from_string(id))))
                        .with_transaction_timeout_ms(
                            timeout.as_millis().min(i32::MAX as u128) as i32
                        )
                        .with_producer_id(kafka_protocol::messages::ProducerId(-1))
                        .with_producer_epoch(-1);
                    let r = conn.send(req, version).await?;
                    Ok((r.error_code, (r.producer_id.0, r.producer_epoch)))
                }
            })
            .await?;
        if let Some(state) = &mut self.idempotence {
            state.id = Some(resp);
            state.sequences.clear();
        }
        if let Some(t) = &mut self.txn {
            t.open = false;
            t.partitions.clear();
            t.failed = None;
        }
        Ok(())
    }

    /// Opens a transaction (locally: the coordinator hears of it with the first partition).
    pub fn begin_transaction(&mut self) -> Result<(), ClientError> {
        match &mut self.txn {
            Some(t) if t.open => Err(ClientError::InvalidArgument(
                "a transaction is already open".into(),
            )),
            Some(t) => {
                t.open = true;
                t.partitions.clear();
                t.failed = None;
                Ok(())
            }
            None => Err(ClientError::InvalidArgument(
                "begin_transaction needs a transactional_id".into(),
            )),
        }
    }

    /// Flushes and commits the open transaction; the deliveries since the last flush are
    /// returned. If any record of the transaction failed, nothing is committed and the
    /// error says so: abort the transaction then.
    pub async fn commit_transaction(&mut self) -> Result<Vec<Delivery>, ClientError> {
        self.require_open()?;
        let deliveries = self.flush().await?;
        if let Some(why) = self.txn.as_ref().and_then(|t| t.failed.clone()) {
            return Err(ClientError::InvalidArgument(format!(
                "the transaction cannot commit, a record failed ({why}): abort it"
            )));
        }
        self.end_transaction(true).await?;
        Ok(deliveries)
    }

    /// Drops what is buffered (reported as failed) and aborts the open transaction.
    pub async fn abort_transaction(&mut self) -> Result<Vec<Delivery>, ClientError> {
        self.require_open()?;
        // Records never sent: reported as failed, without touching the sequences.
        for batch in self.take_unsent() {
            let aborted = DeliveryError::Client("the transaction was aborted".into());
            for &index in &batch.indexes {
                self.completed
                    .push((index, delivery(&batch, Err(aborted.clone()))));
            }
        }
        let deliveries = self.flush().await?;
        self.end_transaction(false).await?;
        Ok(deliveries)
    }

    fn require_open(&self) -> Result<(), ClientError> {
        match &self.txn {
            Some(t) if t.open => Ok(()),
            Some(_) => Err(ClientError::InvalidArgument(
                "no transaction is open".into(),
            )),
            None => Err(ClientError::InvalidArgument(
                "not a transactional producer".into(),
            )),
        }
    }

    /// EndTxn, unless no partition joined the transaction (then there is nothing at the
    /// coordinator to end, as in Kafka's client).
    async fn end_transaction(&mut self, commit: bool) -> Result<(), ClientError> {
        let (id, started) = match &self.txn {
            Some(t) => (t.id.clone(), !t.partitions.is_empty()),
            None => return Ok(()),
        };
        if started {
            let (pid, epoch) = self.txn_producer()?;
            self.txn_request(|conn| {
                let id = id.clone();
                async move {
                    let version = conn.version_for::<EndTxnRequest>(3)?;
                    let req = EndTxnRequest::default()
                        .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                        .with_producer_id(kafka_protocol::messages::ProducerId(pid))
                        .with_producer_epoch(epoch)
                        .with_committed(commit);
                    let r = conn.send(req, version).await?;
                    Ok((r.error_code, ()))
                }
            })
            .await?;
        }
        let failed = match &mut self.txn {
            Some(t) => {
                t.open = false;
                t.partitions.clear();
                t.failed.take().is_some()
            }
            None => false,
        };
        if failed {
            // A failed batch may or may not be in the log, so its partition's sequence is
            // unknown: a new epoch starts the sequences over.
            self.init_transactions().await?;
        }
        Ok(())
    }

    /// Adds partitions to the open transaction at the coordinator.
    async fn add_partitions(&mut self, partitions: &[(String, i32)]) -> Result<(), ClientError> {
        use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
        use kafka_protocol::messages::AddPartitionsToTxnRequest;
        let id = self.txn.as_ref().map(|t| t.id.clone()).unwrap_or_default();
        let (pid, epoch) = self.txn_producer()?;
        let mut topics: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            topics.entry(t.clone()).or_default().push(*p);
        }
        self.txn_request(|conn| {
            let (id, topics) = (id.clone(), topics.clone());
            async move {
                let version = conn.version_for::<AddPartitionsToTxnRequest>(3)?;
                let req = AddPartitionsToTxnRequest::default()
                    .with_v3_and_below_transactional_id(TransactionalId(StrBytes::from_string(id)))
                    .with_v3_and_below_producer_id(kafka_protocol::messages::ProducerId(pid))
                    .with_v3_and_below_producer_epoch(epoch)
                    .with_v3_and_below_topics(
                        topics
                            .into_iter()
                            .map(|(t, ps)| {
                                AddPartitionsToTxnTopic::default()
                                    .with_name(TopicName(StrBytes::from_string(t)))
                                    .with_partitions(ps)
                            })
                            .collect(),
                    );
                let r = conn.send(req, version).await?;
                // OPERATION_NOT_ATTEMPTED (55) marks partitions held back by another's error.
                let codes: Vec<i16> = r
                    .results_by_topic_v3_and_below
                    .iter()
                    .flat_map(|t| &t.results_by_partition)
                    .map(|p| p.partition_error_code)
                    .filter(|c| *c != 0)
                    .collect();
                let code = codes
                    .iter()
                    .copied()
                    .find(|c| *c != 55)
                    .or(codes.first().copied())
                    .unwrap_or(r.error_code);
                Ok((code, ()))
            }
        })
        .await?;
        if let Some(t) = &mut self.txn {
            t.partitions.extend(partitions.iter().cloned());
        }
        Ok(())
    }

    fn txn_producer(&self) -> Result<(i64, i16), ClientError> {
        self.idempotence.as_ref().and_then(|s| s.id).ok_or_else(|| {
            ClientError::InvalidArgument(
                "a transactional producer needs init_transactions first".into(),
            )
        })
    }

    /// Runs a request against the transaction coordinator until it answers with no
    /// error or one that is not retriable, finding the coordinator again when it moved.
    async fn txn_request<T, F, Fut>(&mut self, call: F) -> Result<T, ClientError>
    where
        F: Fn(std::sync::Arc<crate::connection::Connection>) -> Fut,
        Fut: std::future::Future<Output = Result<(i16, T), ClientError>>,
    {
        let id = self.txn.as_ref().map(|t| t.id.clone()).unwrap_or_default();
        let deadline = tokio::time::Instant::now() + self.config.transaction_timeout;
        let mut last = None;
        while tokio::time::Instant::now() < deadline {
            let conn = match self.txn.as_ref().and_then(|t| t.coordinator.clone()) {
                Some(c) if !c.is_closed() => c,
                _ => {
                    let found = async {
                        let node =
                            crate::group_consumer::find_coordinator(&self.client, &id, 1).await?;
                        self.client.broker_connection(node).await
                    }
                    .await;
                    match found {
                        Ok(c) => {
                            if let Some(t) = &mut self.txn {
                                t.coordinator = Some(c.clone());
                            }
                            c
                        }
                        Err(e) => {
                            last = Some(e);
                            tokio::time::sleep(self.client.config().retry_backoff).await;
                            continue;
                        }
                    }
                }
            };
            match call(conn).await {
                Ok((0, v)) => return Ok(v),
                Ok((code, _)) if TXN_RETRIABLE.contains(&code) => {
                    if matches!(code, 15 | 16) {
                        if let Some(t) = &mut self.txn {
                            t.coordinator = None;
                        }
                    }
                    last = KafkaError::from_code(code, None).map(ClientError::Kafka);
                }
                Ok((code, _)) => {
                    return Err(KafkaError::from_code(code, None)
                        .map(ClientError::Kafka)
                        .unwrap_or_else(|| ClientError::Decode("no error code".into())))
                }
                Err(e) if retriable_client_error(&e) => {
                    if let Some(t) = &mut self.txn {
                        t.coordinator = None;
                    }
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
            tokio::time::sleep(self.client.config().retry_backoff).await;
        }
        Err(last.unwrap_or_else(|| {
            ClientError::InvalidArgument("the transaction coordinator never answered".into())
        }))
    }
}

fn delivery(batch: &Batch, result: Result<i64, DeliveryError>) -> Delivery {
    Delivery {
        topic: batch.topic.clone(),
        partition: batch.partition,
        result,
    }
}

fn to_delivery_error(e: ClientError) -> DeliveryError {
    match e {
        ClientError::Kafka(k) => DeliveryError::Kafka(k),
        other => DeliveryError::Client(other.to_string()),
    }
}

fn retriable_client_error(e: &ClientError) -> bool {
    match e {
        ClientError::Io { .. } | ClientError::ConnectionClosed(_) | ClientError::Timeout { .. } => {
            true
        }
        ClientError::Kafka(k) => is_retriable(k.code),
        _ => false,
    }
}

/// Sends one Produce request with `batches` to `leader`; `None` with acks=0.
async fn produce_to(
    client: &Client,
    config: &ProducerConfig,
    leader: i32,
    batches: &[Batch],
) -> Result<Option<BTreeMap<(String, i32), PartitionProduceResponse>>, ClientError> {
    let conn = client.broker_connection(leader).await?;
    let version = conn.version_for::<ProduceRequest>(PRODUCE_MAX_VERSION)?;
    let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
    for b in batches {
        topics.entry(&b.topic).or_default().push(
            PartitionProduceData::default()
                .with_index(b.partition)
                .with_records(Some(b.records.clone())),
        );
    }
    let topic_data = topics
        .into_iter()
        .map(|(name, partitions)| {
            TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_string(name.to_owned())))
                .with_partition_data(partitions)
        })
        .collect();
    let req = ProduceRequest::default()
        .with_transactional_id(
            config
                .transactional_id
                .as_ref()
                .map(|t| TransactionalId(StrBytes::from_string(t.clone()))),
        )
        .with_acks(config.acks)
        .with_timeout_ms(config.produce_timeout.as_millis().min(i32::MAX as u128) as i32)
        .with_topic_data(topic_data);
    if config.acks == 0 {
        conn.send_no_response(req, version).await?;
        return Ok(None);
    }
    let resp = conn.send(req, version).await?;
    let mut answers = BTreeMap::new();
    for topic in resp.responses {
        for p in topic.partition_responses {
            answers.insert((topic.name.0.to_string(), p.index), p);
        }
    }
    Ok(Some(answers))
}

/// Encodes records as one v2 record batch. Offsets are 0..n; with a producer id the
/// sequences start at `base_sequence`, else the batch carries no producer and sequence -1.
pub fn encode_batch(
    mut records: Vec<Record>,
    compression: Compression,
    producer: Option<(i64, i16)>,
    base_sequence: Option<i32>,
) -> Result<Bytes, ClientError> {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    for (i, r) in records.iter_mut().enumerate() {
        r.offset = i as i64;
        r.producer_id = producer_id;
        r.producer_epoch = producer_epoch;
        // The encoder starts a new batch whenever offset minus sequence changes, and
        // derives the base sequence from the first record: keep the difference constant.
        r.sequence = match base_sequence {
            Some(base) => base.wrapping_add(i as i32),
            None => i as i32 - 1,
        };
    }
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions {
        version: 2,
        compression,
    };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options)
        .map_err(|e| ClientError::Encode(e.to_string()))?;
    Ok(buf.freeze())
}

/// The partition Kafka's default partitioner picks for a key.
pub fn default_partition(key: &[u8], num_partitions: usize) -> i32 {
    ((murmur2(key) & 0x7fff_ffff) as usize % num_partitions) as i32
}

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = SEED ^ len as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// A compression codec by Kafka's `compression.type` name.
pub fn compression_from_name(name: &str) -> Option<Compression> {
    Some(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consumer::decode_records;

    #[test]
    fn murmur2_matches_java() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b""), 275646681);
        assert_eq!(murmur2(b"abc"), 479470107);
        assert_eq!(
            default_partition(b"foobar", 7),
            ((-790332482i32 & 0x7fffffff) % 7)
        );
    }

    fn record(i: i64, key: &str) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(key.to_owned())),
            value: (i % 2 == 0).then(|| Bytes::from(format!("value-{i}"))),
            headers: [(
                StrBytes::from_static_str("h"),
                Some(Bytes::from_static(b"x")),
            )]
            .into_iter()
            .collect(),
        }
    }

    #[test]
    fn batch_round_trip_every_codec() {
        for compression in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let records: Vec<Record> = (0..5).map(|i| record(i, &format!("k{i}"))).collect();
            for (producer, seq) in [(None, None), (Some((42, 3)), Some(10))] {
                let bytes = encode_batch(records.clone(), compression, producer, seq).unwrap();
                let info = kafka_protocol::records::RecordBatchDecoder::decode_batch_info(
                    &mut bytes.clone(),
                )
                .unwrap();
                assert_eq!(info.len(), 1, "one batch");
                assert_eq!(info[0].base_sequence, seq.unwrap_or(-1));
                assert_eq!(info[0].producer_id, producer.map_or(-1, |p| p.0));
                assert_eq!(info[0].compression, compression);
                // Followed by half of another batch: the partial tail is ignored.
                let mut fetched = BytesMut::from(&bytes[..]);
                fetched.extend_from_slice(&bytes[..bytes.len() / 2]);
                let (decoded, next) = decode_records("t", 0, fetched.freeze(), 2).unwrap();
                assert_eq!(next, Some(5));
                assert_eq!(decoded.len(), 3, "records before offset 2 are skipped");
                for d in &decoded {
                    let r = &records[d.offset as usize];
                    assert_eq!(d.key, r.key);
                    assert_eq!(d.value, r.value);
                    assert_eq!(d.timestamp, r.timestamp);
                    assert_eq!(
                        d.headers,
                        vec![("h".to_owned(), Some(Bytes::from_static(b"x")))]
                    );
                }
            }
        }
    }
}
