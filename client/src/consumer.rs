//! A simple consumer without a group: partitions are assigned by the caller with a start
//! position, `poll` fetches from each partition's leader (sessionless Fetch by topic name,
//! read_uncommitted, or read_committed: up to the last stable offset, aborted
//! transactions' records skipped as Kafka's consumer does) and decodes record batches
//! into [`ConsumerRecord`]s, and ListOffsets
//! resolves earliest, latest, max-timestamp and by-timestamp positions.
//!
//! Positions live only in memory: committing offsets belongs to group code, not here.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{RecordBatchDecoder, TimestampType};

use crate::client::Client;
use crate::error::{codes, is_stale_metadata, ClientError, KafkaError};

/// Highest Fetch version used (v13 names topics by id).
const FETCH_MAX_VERSION: i16 = 12;
/// Highest ListOffsets version used.
const LIST_OFFSETS_MAX_VERSION: i16 = 8;
/// Size of a v2 record batch header.
const BATCH_HEADER_BYTES: usize = 61;

/// Which offset ListOffsets should find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset (-2).
    Earliest,
    /// The log end offset (-1).
    Latest,
    /// The offset of the record with the largest timestamp (-3, ListOffsets v7+).
    MaxTimestamp,
    /// The first offset whose timestamp is at or after this (ms since the epoch).
    Timestamp(i64),
}

impl OffsetSpec {
    fn wire(self) -> i64 {
        match self {
            OffsetSpec::Earliest => -2,
            OffsetSpec::Latest => -1,
            OffsetSpec::MaxTimestamp => -3,
            OffsetSpec::Timestamp(ts) => ts,
        }
    }
}

/// An offset ListOffsets found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset; -1 if no record matches a timestamp.
    pub offset: i64,
    /// The matching record's timestamp, -1 if none.
    pub timestamp: i64,
}

/// Where consumption of an assigned partition starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start.
    Earliest,
    /// The log end (only records produced from now on).
    Latest,
    /// An exact offset.
    Offset(i64),
    /// The first record at or after a timestamp (the log end if none).
    Timestamp(i64),
}

/// What to do when the position falls outside the log (OFFSET_OUT_OF_RANGE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetReset {
    /// Move to the log start.
    Earliest,
    /// Move to the log end.
    Latest,
    /// Fail the poll.
    None,
}

/// Consumer settings (defaults are Kafka's).
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Most bytes per Fetch response (`fetch.max.bytes`, 50 MiB).
    pub max_bytes: i32,
    /// Most bytes per partition (`max.partition.fetch.bytes`, 1 MiB).
    pub partition_max_bytes: i32,
    /// Bytes the broker waits for before answering (`fetch.min.bytes`, 1).
    pub min_bytes: i32,
    /// Policy on OFFSET_OUT_OF_RANGE (`auto.offset.reset`, latest).
    pub auto_offset_reset: OffsetReset,
    /// `isolation.level=read_committed` (default read_uncommitted).
    pub read_committed: bool,
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            max_bytes: 50 * 1024 * 1024,
            partition_max_bytes: 1024 * 1024,
            min_bytes: 1,
            auto_offset_reset: OffsetReset::Latest,
            read_committed: false,
        }
    }
}

/// A consumed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsumerRecord {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Timestamp (create time, or log append time if the topic uses it).
    pub timestamp: i64,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<(String, Option<Bytes>)>,
}

/// Where an assigned partition stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionPosition {
    /// Next offset to fetch.
    pub position: i64,
    /// High watermark from the last fetch (-1 before any).
    pub high_watermark: i64,
    /// Log start offset from the last fetch (-1 before any).
    pub log_start_offset: i64,
}

/// A group-less consumer of assigned partitions.
pub struct Consumer {
    client: Client,
    config: ConsumerConfig,
    assignments: BTreeMap<(String, i32), PartitionPosition>,
    /// Rotates which partition comes first in a fetch, so that every partition in turn
    /// gets the broker's "at least one batch" allowance.
    rotation: usize,
}

impl Consumer {
    /// A consumer with nothing assigned.
    pub fn new(client: Client, config: ConsumerConfig) -> Self {
        Consumer {
            client,
            config,
            assignments: BTreeMap::new(),
            rotation: 0,
        }
    }

    /// Assigns a partition, positioned at `start`.
    pub async fn assign(
        &mut self,
        topic: &str,
        partition: i32,
        start: StartOffset,
    ) -> Result<(), ClientError> {
        let position = self.resolve(topic, partition, start).await?;
        self.assignments.insert(
            (topic.to_owned(), partition),
            PartitionPosition {
                position,
                high_watermark: -1,
                log_start_offset: -1,
            },
        );
        Ok(())
    }

    /// Assigns every partition of a topic; returns how many.
    pub async fn assign_topic(
        &mut self,
        topic: &str,
        start: StartOffset,
    ) -> Result<usize, ClientError> {
        let meta = self.client.topic_metadata(topic).await?;
        for p in &meta.partitions {
            self.assign(topic, p.partition, start).await?;
        }
        Ok(meta.partitions.len())
    }

    /// Stops consuming a partition.
    pub fn unassign(&mut self, topic: &str, partition: i32) {
        self.assignments.remove(&(topic.to_owned(), partition));
    }

    /// Assigned partitions and where they stand.
    pub fn assignments(&self) -> &BTreeMap<(String, i32), PartitionPosition> {
        &self.assignments
    }

    /// Moves an assigned partition's position.
    pub async fn seek(
        &mut self,
        topic: &str,
        partition: i32,
        start: StartOffset,
    ) -> Result<(), ClientError> {
        if !self
            .assignments
            .contains_key(&(topic.to_owned(), partition))
        {
            return Err(ClientError::InvalidArgument(format!(
                "{topic}-{partition} is not assigned"
            )));
        }
        self.assign(topic, partition, start).await
    }

    async fn resolve(
        &self,
        topic: &str,
        partition: i32,
        start: StartOffset,
    ) -> Result<i64, ClientError> {
        Ok(match start {
            StartOffset::Offset(o) => o,
            StartOffset::Earliest => {
                self.list_offsets(topic, partition, OffsetSpec::Earliest)
                    .await?
                    .offset
            }
            StartOffset::Latest => {
                self.list_offsets(topic, partition, OffsetSpec::Latest)
                    .await?
                    .offset
            }
            StartOffset::Timestamp(ts) => {
                match self
                    .list_offsets(topic, partition, OffsetSpec::Timestamp(ts))
                    .await?
                    .offset
                {
                    -1 => {
                        self.list_offsets(topic, partition, OffsetSpec::Latest)
                            .await?
                            .offset
                    }
                    o => o,
                }
            }
        })
    }

    /// Asks the partition's leader for an offset (one retry after refreshing metadata
    /// when the leader moved).
    pub async fn list_offsets(
        &self,
        topic: &str,
        partition: i32,
        spec: OffsetSpec,
    ) -> Result<ListedOffset, ClientError> {
        let mut attempt = 0;
        loop {
            let (_, epoch) = self.client.leader_and_epoch_for(topic, partition).await?;
            let (_, conn) = self.client.leader_connection(topic, partition).await?;
            let min = if spec == OffsetSpec::MaxTimestamp {
                7
            } else {
                1
            };
            let version = conn.version_for::<ListOffsetsRequest>(LIST_OFFSETS_MAX_VERSION)?;
            if version < min {
                return Err(ClientError::UnsupportedVersion {
                    addr: conn.addr().to_owned(),
                    api: "ListOffsets".into(),
                    min,
                    max: LIST_OFFSETS_MAX_VERSION,
                });
            }
            let req = ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_current_leader_epoch(epoch)
                        .with_timestamp(spec.wire())])]);
            let resp = conn.send(req, version).await?;
            let answer = resp
                .topics
                .into_iter()
                .flat_map(|t| t.partitions)
                .find(|p| p.partition_index == partition)
                .ok_or_else(|| {
                    ClientError::Decode("ListOffsets answered without the partition".into())
                })?;
            match KafkaError::from_code(answer.error_code, None) {
                None => {
                    return Ok(ListedOffset {
                        offset: answer.offset,
                        timestamp: answer.timestamp,
                    })
                }
                Some(e) if attempt == 0 && is_stale_metadata(e.code) => {
                    self.client.invalidate_topic(topic);
                    attempt += 1;
                }
                Some(e) => return Err(e.into()),
            }
        }
    }

    /// Fetches from every assigned partition's leader, waiting up to `max_wait` for data,
    /// and returns the records in partition order. A poll that got records returns them
    /// even if another partition failed; a poll that got none returns the first error.
    pub async fn poll(&mut self, max_wait: Duration) -> Result<Vec<ConsumerRecord>, ClientError> {
        if self.assignments.is_empty() {
            tokio::time::sleep(max_wait).await;
            return Ok(Vec::new());
        }
        // The broker may hold the fetch for max_wait: keep well inside the request timeout.
        let max_wait = max_wait.min(self.client.config().connection.request_timeout / 2);
        let mut errors = Vec::new();
        let mut by_leader: BTreeMap<i32, Vec<(String, i32, i64, i32)>> = BTreeMap::new();
        let mut order: Vec<_> = self.assignments.iter().collect();
        let len = order.len();
        order.rotate_left(self.rotation % len);
        self.rotation = self.rotation.wrapping_add(1);
        for ((topic, partition), pos) in order {
            match self.client.leader_and_epoch_for(topic, *partition).await {
                Ok((leader, epoch)) => by_leader.entry(leader).or_default().push((
                    topic.clone(),
                    *partition,
                    pos.position,
                    epoch,
                )),
                Err(e) => errors.push(e),
            }
        }
        if by_leader.is_empty() {
            tokio::time::sleep(self.client.config().retry_backoff).await;
        }
        let (client, config) = (&self.client, &self.config);
        let asked: Vec<BTreeSet<String>> = by_leader
            .values()
            .map(|ps| ps.iter().map(|(t, ..)| t.clone()).collect())
            .collect();
        let fetches = by_leader
            .into_iter()
            .map(|(leader, partitions)| fetch_from(client, config, leader, partitions, max_wait));
        let results = futures::future::join_all(fetches).await;
        let mut records = Vec::new();
        for (result, topics) in results.into_iter().zip(asked) {
            match result {
                Ok(resp) => self.absorb(resp, &mut records, &mut errors).await,
                Err(e) => {
                    // The leader may be gone (a dead broker refuses the connection): ask
                    // for its partitions' leaders again before the next fetch.
                    for t in &topics {
                        self.client.invalidate_topic(t);
                    }
                    errors.push(e)
                }
            }
        }
        match errors.into_iter().next() {
            Some(e) if records.is_empty() => Err(e),
            _ => Ok(records),
        }
    }

    /// Takes one Fetch response: records, new positions, resets and errors.
    async fn absorb(
        &mut self,
        resp: FetchResponse,
        records: &mut Vec<ConsumerRecord>,
        errors: &mut Vec<ClientError>,
    ) {
        if let Some(e) = KafkaError::from_code(resp.error_code, None) {
            errors.push(e.into());
            return;
        }
        for topic in resp.responses {
            let name = topic.topic.0.to_string();
            for p in topic.partitions {
                let key = (name.clone(), p.partition_index);
                let Some(pos) = self.assignments.get(&key).copied() else {
                    continue;
                };
                match p.error_code {
                    codes::NONE => {}
                    codes::OFFSET_OUT_OF_RANGE => {
                        if let Err(e) = self.reset(&name, p.partition_index, pos.position).await {
                            errors.push(e);
                        }
                        continue;
                    }
                    code => {
                        if is_stale_metadata(code) {
                            self.client.invalidate_topic(&name);
                        } else {
                            errors.push(KafkaError::new(code).into());
                        }
                        continue;
                    }
                }
                let bytes = p.records.unwrap_or_default();
                let aborted: Vec<(i64, i64)> = p
                    .aborted_transactions
                    .unwrap_or_default()
                    .iter()
                    .map(|a| (a.producer_id.0, a.first_offset))
                    .collect();
                let (mut got, next) = match decode_records_skipping(
                    &name,
                    p.partition_index,
                    bytes,
                    pos.position,
                    &aborted,
                ) {
                    Ok(decoded) => decoded,
                    Err(e) => {
                        errors.push(e);
                        continue;
                    }
                };
                records.append(&mut got);
                if let Some(state) = self.assignments.get_mut(&key) {
                    state.high_watermark = p.high_watermark;
                    state.log_start_offset = p.log_start_offset;
                    if let Some(next) = next {
                        state.position = state.position.max(next);
                    }
                }
            }
        }
    }

    /// Applies `auto_offset_reset` to a partition whose position is out of range.
    async fn reset(
        &mut self,
        topic: &str,
        partition: i32,
        position: i64,
    ) -> Result<(), ClientError> {
        let spec = match self.config.auto_offset_reset {
            OffsetReset::Earliest => OffsetSpec::Earliest,
            OffsetReset::Latest => OffsetSpec::Latest,
            OffsetReset::None => {
                return Err(KafkaError {
                    code: codes::OFFSET_OUT_OF_RANGE,
                    message: Some(format!("{topic}-{partition} at offset {position}")),
                }
                .into())
            }
        };
        let offset = self.list_offsets(topic, partition, spec).await?.offset;
        tracing::info!(
            topic,
            partition,
            position,
            offset,
            "offset out of range, reset"
        );
        if let Some(state) = self.assignments.get_mut(&(topic.to_owned(), partition)) {
            state.position = offset;
        }
        Ok(())
    }
}

/// One sessionless Fetch to `leader` for `partitions` (topic, partition, position).
async fn fetch_from(
    client: &Client,
    config: &ConsumerConfig,
    leader: i32,
    partitions: Vec<(String, i32, i64, i32)>,
    max_wait: Duration,
) -> Result<FetchResponse, ClientError> {
    let conn = client.broker_connection(leader).await?;
    let version = conn.version_for::<FetchRequest>(FETCH_MAX_VERSION)?;
    let mut topics: Vec<FetchTopic> = Vec::new();
    for (topic, partition, position, epoch) in partitions {
        let fetch = FetchPartition::default()
            .with_partition(partition)
            .with_current_leader_epoch(epoch)
            .with_fetch_offset(position)
            .with_partition_max_bytes(config.partition_max_bytes);
        // Keep the rotated order: consecutive partitions of a topic share an entry.
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == topic => t.partitions.push(fetch),
            _ => topics.push(
                FetchTopic::default()
                    .with_topic(topic_name(&topic))
                    .with_partitions(vec![fetch]),
            ),
        }
    }
    let req = FetchRequest::default()
        .with_replica_id((-1).into())
        .with_max_wait_ms(max_wait.as_millis().min(i32::MAX as u128) as i32)
        .with_min_bytes(config.min_bytes)
        .with_max_bytes(config.max_bytes)
        .with_isolation_level(i8::from(config.read_committed))
        .with_session_id(0)
        .with_session_epoch(-1)
        .with_topics(topics);
    conn.send(req, version).await
}

/// Decodes the record batches of one partition's fetched bytes, dropping records before
/// `position`, control batches, and a partial batch at the end (the broker cuts at its
/// byte limit). Returns the records and the offset after the last complete batch.
pub fn decode_records(
    topic: &str,
    partition: i32,
    bytes: Bytes,
    position: i64,
) -> Result<(Vec<ConsumerRecord>, Option<i64>), ClientError> {
    decode_records_skipping(topic, partition, bytes, position, &[])
}

/// `decode_records` for read_committed: `aborted` lists the aborted transactions a
/// Fetch answer names, (producer id, first offset). As Kafka's consumer does, a producer
/// is skipped from its aborted transaction's first offset until its abort marker.
pub fn decode_records_skipping(
    topic: &str,
    partition: i32,
    mut bytes: Bytes,
    position: i64,
    aborted: &[(i64, i64)],
) -> Result<(Vec<ConsumerRecord>, Option<i64>), ClientError> {
    let mut pending: Vec<(i64, i64)> = aborted.to_vec();
    pending.sort_by_key(|a| a.1);
    let mut pending = pending.into_iter().peekable();
    let mut skipping: std::collections::BTreeSet<i64> = std::collections::BTreeSet::new();
    let mut records = Vec::new();
    let mut next = None;
    while bytes.len() >= 12 {
        let base_offset = (&bytes[0..8]).get_i64();
        let length = (&bytes[8..12]).get_i32();
        let total = 12 + usize::try_from(length).map_err(|_| bad_batch("negative length"))?;
        if bytes.len() < total {
            break;
        }
        let batch = bytes.split_to(total);
        if total < BATCH_HEADER_BYTES {
            return Err(bad_batch("batch shorter than its header"));
        }
        let magic = batch[16] as i8;
        if magic != 2 {
            return Err(ClientError::Decode(format!(
                "message format v{magic} is not supported"
            )));
        }
        let attributes = (&batch[21..23]).get_i16();
        let last_offset = base_offset + (&batch[23..27]).get_i32() as i64;
        let max_timestamp = (&batch[35..43]).get_i64();
        let producer_id = (&batch[43..51]).get_i64();
        next = Some(last_offset + 1);
        let control = attributes & 0x20 != 0;
        let transactional = attributes & 0x10 != 0;
        while let Some(&(pid, first)) = pending.peek() {
            if first > last_offset {
                break;
            }
            skipping.insert(pid);
            pending.next();
        }
        if control {
            // A marker ends the producer's transaction: an abort marker stops skipping
            // (a commit marker cannot follow an aborted transaction's records).
            skipping.remove(&producer_id);
            continue;
        }
        if last_offset < position || (transactional && skipping.contains(&producer_id)) {
            continue;
        }
        let set = RecordBatchDecoder::decode(&mut batch.clone()).map_err(|e| {
            ClientError::Decode(format!("{topic}-{partition} at {base_offset}: {e}"))
        })?;
        for r in set.records {
            if r.offset < position {
                continue;
            }
            records.push(ConsumerRecord {
                topic: topic.to_owned(),
                partition,
                offset: r.offset,
                timestamp: match r.timestamp_type {
                    TimestampType::LogAppend => max_timestamp,
                    TimestampType::Creation => r.timestamp,
                },
                key: r.key,
                value: r.value,
                headers: r
                    .headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
            });
        }
    }
    Ok((records, next))
}

fn bad_batch(what: &str) -> ClientError {
    ClientError::Decode(format!("bad record batch: {what}"))
}

/// The offsets `spec` names for many partitions at once, with one ListOffsets request
/// per leader (as Kafka's admin `listOffsets` does). Partitions whose leader is not
/// known or that answer an error are left out.
pub async fn list_offsets_many(
    client: &Client,
    partitions: &[(String, i32)],
    spec: OffsetSpec,
) -> BTreeMap<(String, i32), i64> {
    list_offsets_detail(client, partitions, spec)
        .await
        .into_iter()
        .map(|(k, v)| (k, v.offset))
        .collect()
}

/// [`list_offsets_many`] with each answer's timestamp too (the record's timestamp for
/// [`OffsetSpec::MaxTimestamp`] and [`OffsetSpec::Timestamp`], -1 otherwise).
pub async fn list_offsets_detail(
    client: &Client,
    partitions: &[(String, i32)],
    spec: OffsetSpec,
) -> BTreeMap<(String, i32), ListedOffset> {
    let mut by_leader: BTreeMap<i32, BTreeMap<&str, Vec<i32>>> = BTreeMap::new();
    for (topic, p) in partitions {
        if let Ok(leader) = client.leader_for(topic, *p).await {
            by_leader
                .entry(leader)
                .or_default()
                .entry(topic.as_str())
                .or_default()
                .push(*p);
        }
    }
    let asks = by_leader.into_iter().map(|(leader, topics)| async move {
        let conn = client.broker_connection(leader).await.ok()?;
        let version = conn
            .version_for::<ListOffsetsRequest>(LIST_OFFSETS_MAX_VERSION)
            .ok()?;
        let req = ListOffsetsRequest::default()
            .with_replica_id((-1).into())
            .with_topics(
                topics
                    .iter()
                    .map(|(t, ps)| {
                        ListOffsetsTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(
                                ps.iter()
                                    .map(|&p| {
                                        ListOffsetsPartition::default()
                                            .with_partition_index(p)
                                            .with_current_leader_epoch(-1)
                                            .with_timestamp(spec.wire())
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            );
        let resp = conn.send(req, version).await.ok()?;
        Some(
            resp.topics
                .into_iter()
                .flat_map(|t| {
                    let name = t.name.0.to_string();
                    t.partitions
                        .into_iter()
                        .filter(|p| p.error_code == 0)
                        .map(move |p| {
                            let listed = ListedOffset {
                                offset: p.offset,
                                timestamp: p.timestamp,
                            };
                            ((name.clone(), p.partition_index), listed)
                        })
                })
                .collect::<Vec<_>>(),
        )
    });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .collect()
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
