//! The coordinator runtime: state owned by the partitions of an internal topic, shared by
//! the group coordinator (`__consumer_offsets`) and the transaction coordinator
//! (`__transaction_state`), as Kafka 4.x shares its `CoordinatorRuntime` (KIP-848).
//!
//! A key (group id, transactional id) lives in the partition `partition_for(key)`; the
//! broker leading that partition owns it. When this broker becomes leader it reads the
//! partition to its end and rebuilds the entries (answering COORDINATOR_LOAD_IN_PROGRESS
//! meanwhile); every change is appended as records and counts only once every in-sync
//! replica has it (acks=all), so callers apply a change after `write` succeeds; when
//! leadership moves the entries are forgotten (NOT_COORDINATOR), so state follows the
//! partition.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use parking_lot::Mutex;
use strom_controller::metadata::MetadataImage;
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;

use crate::replication::{Partition, ReplicaManager};

/// Why a coordinator cannot serve a key here and now. Kafka's codes for these live in
/// `crate::error` (the one edge where internal errors become codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoordinatorError {
    /// Another broker leads the key's partition (NOT_COORDINATOR).
    NotCoordinator,
    /// This broker leads it but is still reading it (COORDINATOR_LOAD_IN_PROGRESS).
    LoadInProgress,
    /// A write did not reach the in-sync replicas in time (COORDINATOR_NOT_AVAILABLE).
    NotAvailable,
}

impl fmt::Display for CoordinatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CoordinatorError::NotCoordinator => "not the coordinator",
            CoordinatorError::LoadInProgress => "coordinator still loading",
            CoordinatorError::NotAvailable => "coordinator not available",
        })
    }
}

impl std::error::Error for CoordinatorError {}

/// Rebuilds a partition's entries from its records. One loader reads one partition, from
/// its log start to its end, batch by batch.
pub trait Loader: Send + 'static {
    type Entry;
    /// Applies stored record batches, in log order.
    fn replay(&mut self, batches: Bytes);
    /// The entries of `partition` once every batch is replayed.
    fn finish(self, partition: i32, now: Instant) -> Vec<(String, Self::Entry)>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Loading,
    Loaded,
}

pub type Handle<T> = Arc<AsyncMutex<T>>;

pub struct CoordinatorRuntime<T> {
    topic: &'static str,
    node_id: i32,
    partition_count: i32,
    replicas: Arc<ReplicaManager>,
    /// Partitions of `topic` this broker leads, by load state.
    partitions: Mutex<BTreeMap<i32, Load>>,
    entries: Mutex<BTreeMap<String, Handle<T>>>,
}

impl<T: Send + 'static> CoordinatorRuntime<T> {
    pub fn new(
        topic: &'static str,
        node_id: i32,
        partition_count: i32,
        replicas: Arc<ReplicaManager>,
    ) -> Arc<Self> {
        Arc::new(CoordinatorRuntime {
            topic,
            node_id,
            partition_count,
            replicas,
            partitions: Mutex::new(BTreeMap::new()),
            entries: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn topic(&self) -> &'static str {
        self.topic
    }

    pub fn partition_count(&self) -> i32 {
        self.partition_count
    }

    pub fn partition_for(&self, key: &str) -> i32 {
        partition_for(key, self.partition_count)
    }

    /// The entry of `key` if this broker owns it. A missing entry is made with `create`
    /// when given (it receives the key's partition), else `Ok(None)`.
    pub fn entry(
        &self,
        key: &str,
        create: Option<&dyn Fn(i32) -> T>,
    ) -> Result<Option<Handle<T>>, CoordinatorError> {
        let p = self.partition_for(key);
        match self.partitions.lock().get(&p) {
            Some(Load::Loaded) => {}
            Some(Load::Loading) => return Err(CoordinatorError::LoadInProgress),
            None => return Err(CoordinatorError::NotCoordinator),
        }
        let mut entries = self.entries.lock();
        if let Some(e) = entries.get(key) {
            return Ok(Some(e.clone()));
        }
        let Some(create) = create else {
            return Ok(None);
        };
        let e = Arc::new(AsyncMutex::new(create(p)));
        entries.insert(key.to_string(), e.clone());
        Ok(Some(e))
    }

    /// Every entry this broker owns.
    pub fn all(&self) -> Vec<Handle<T>> {
        self.entries.lock().values().cloned().collect()
    }

    /// The entries of the keys living in `partition`.
    pub fn entries_of(&self, partition: i32) -> Vec<Handle<T>> {
        let n = self.partition_count;
        self.entries
            .lock()
            .iter()
            .filter(|(k, _)| partition_for(k, n) == partition)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn remove(&self, key: &str) {
        self.entries.lock().remove(key);
    }

    /// The leader epoch of `partition` while this broker leads it.
    pub fn leader_epoch(&self, partition: i32) -> Option<i32> {
        self.replicas
            .get(self.topic, partition)
            .and_then(|p| p.leader_epoch_if_leader())
    }

    fn leader_partition(&self, p: i32) -> Option<Arc<Partition>> {
        self.replicas.get(self.topic, p).filter(|x| x.is_leader())
    }

    /// Appends records (key, value or tombstone) to `partition` as one batch and waits
    /// until every in-sync replica has them. If leadership moves meanwhile the write fails
    /// and the caller must not apply the change.
    pub async fn write(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), CoordinatorError> {
        self.write_as(partition, records, None, None)
            .await
            .map_err(|e| match e {
                WriteError::Coordinator(c) => c,
                WriteError::Producer(_) => CoordinatorError::NotAvailable,
            })
    }

    /// `write`, as part of a producer's transaction when `producer` (id, epoch) is
    /// given: the batch is transactional and counts only once a commit marker follows
    /// (TxnOffsetCommit), and may start the producer's transaction at the partition only
    /// with `guard`, the partition's KIP-890 verification guard the caller got before
    /// asking the transaction coordinator. A fenced producer's write is refused with
    /// its Kafka error.
    pub async fn write_as(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
        producer: Option<(i64, i16)>,
        guard: Option<u64>,
    ) -> Result<(), WriteError> {
        if records.is_empty() {
            return Ok(());
        }
        let Some(p) = self.leader_partition(partition) else {
            return Err(CoordinatorError::NotCoordinator.into());
        };
        let now = strom_common::clock::now_ms();
        let batch = encode_batch_as(records, now, producer);
        match p
            .append_and_wait(
                &batch,
                Duration::from_secs(30),
                now,
                if producer.is_some() {
                    crate::log::TxnCheck::Verified(guard)
                } else {
                    crate::log::TxnCheck::Trusted
                },
            )
            .await
        {
            Ok(_) => Ok(()),
            Err((c, _)) if c == E::NotLeaderOrFollower.code() => {
                Err(CoordinatorError::NotCoordinator.into())
            }
            Err((c, _))
                if producer.is_some()
                    && (c == E::InvalidProducerEpoch.code()
                        || c == E::InvalidTxnState.code()
                        || c == E::ProducerFenced.code()) =>
            {
                Err(WriteError::Producer(
                    E::try_from_code(c).unwrap_or(E::InvalidTxnState),
                ))
            }
            Err((c, msg)) => {
                // Timeouts and a shrunk ISR are expected under failures; anything else is
                // worth a line.
                if c != E::RequestTimedOut.code()
                    && c != E::NotEnoughReplicas.code()
                    && c != E::NotEnoughReplicasAfterAppend.code()
                {
                    tracing::warn!(topic = self.topic, code = c, %msg, "coordinator write failed");
                }
                Err(CoordinatorError::NotAvailable.into())
            }
        }
    }

    /// Acts on a new metadata image: loads the partitions of the topic this broker now
    /// leads (one `new_loader()` each) and forgets the entries of those it no longer does.
    pub fn on_metadata<L>(self: &Arc<Self>, img: &MetadataImage, new_loader: impl Fn() -> L)
    where
        L: Loader<Entry = T>,
    {
        let led: BTreeSet<i32> = img
            .topic_by_name(self.topic)
            .map(|t| {
                t.partitions
                    .iter()
                    .filter(|(_, p)| p.leader == self.node_id)
                    .map(|(i, _)| *i)
                    .collect()
            })
            .unwrap_or_default();
        let (to_load, to_drop) = {
            let mut parts = self.partitions.lock();
            let to_drop: Vec<i32> = parts.keys().filter(|p| !led.contains(p)).copied().collect();
            for p in &to_drop {
                parts.remove(p);
            }
            let to_load: Vec<i32> = led
                .iter()
                .filter(|p| !parts.contains_key(p))
                .copied()
                .collect();
            for p in &to_load {
                parts.insert(*p, Load::Loading);
            }
            (to_load, to_drop)
        };
        if !to_drop.is_empty() {
            let n = self.partition_count;
            self.entries
                .lock()
                .retain(|k, _| !to_drop.contains(&partition_for(k, n)));
            tracing::info!(topic = self.topic, partitions = ?to_drop, "no longer coordinating these partitions");
        }
        for p in to_load {
            let me = self.clone();
            let loader = new_loader();
            tokio::spawn(async move { me.load(p, loader).await });
        }
    }

    async fn load<L: Loader<Entry = T>>(self: Arc<Self>, p: i32, mut loader: L) {
        let t0 = Instant::now();
        let mut tries = 0;
        // The replica may be created a moment after the metadata names this broker.
        let part = loop {
            match self.leader_partition(p) {
                Some(x) => break x,
                None if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                None => {
                    self.partitions.lock().remove(&p);
                    return;
                }
            }
        };
        let mut next = part.log.offsets().log_start;
        loop {
            // To the log end, not the high watermark: a new leader's log is the truth its
            // followers will converge on, and its HW may lag until they fetch.
            match part.log.read(next, 4 << 20, true, true).await {
                Ok(r) if r.records.is_empty() => break,
                Ok(r) => {
                    let last = crate::log::batch::walk(&r.records)
                        .map(|(h, _)| h.last_offset())
                        .last();
                    loader.replay(r.records.clone());
                    match last {
                        Some(l) => next = l + 1,
                        None => break,
                    }
                }
                Err(crate::log::LogError::OffsetOutOfRange { log_start, .. })
                    if log_start > next =>
                {
                    next = log_start
                }
                Err(e) => {
                    tracing::error!(topic = self.topic, partition = p, error = %e, "loading a coordinator partition");
                    self.partitions.lock().remove(&p);
                    return;
                }
            }
        }
        let entries = loader.finish(p, Instant::now());
        let n = entries.len();
        {
            let mut parts = self.partitions.lock();
            if parts.get(&p) != Some(&Load::Loading) {
                return; // leadership moved on meanwhile
            }
            let mut all = self.entries.lock();
            for (k, e) in entries {
                all.insert(k, Arc::new(AsyncMutex::new(e)));
            }
            parts.insert(p, Load::Loaded);
        }
        tracing::info!(
            topic = self.topic,
            partition = p,
            entries = n,
            elapsed_ms = t0.elapsed().as_millis() as u64,
            "loaded coordinator partition"
        );
    }
}

/// Kafka's `String.hashCode()` of a key (over UTF-16 code units).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// The partition of a key, as Kafka places group ids and transactional ids:
/// `Utils.abs(key.hashCode()) % partitions` (`Utils.abs` maps MIN_VALUE to 0).
pub fn partition_for(key: &str, partitions: i32) -> i32 {
    let h = java_string_hash(key);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

/// Why a coordinator write failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    Coordinator(CoordinatorError),
    /// The producer of a transactional write is fenced or outside a transaction.
    Producer(E),
}

impl From<CoordinatorError> for WriteError {
    fn from(e: CoordinatorError) -> Self {
        WriteError::Coordinator(e)
    }
}

impl From<WriteError> for E {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Coordinator(c) => c.into(),
            WriteError::Producer(e) => e,
        }
    }
}

/// One record batch holding `records` (key, value or tombstone), as coordinators write
/// them: no producer id, magic 2, uncompressed.
pub fn encode_batch(records: Vec<(Bytes, Option<Bytes>)>, now_ms: i64) -> Bytes {
    encode_batch_as(records, now_ms, None)
}

/// `encode_batch`, transactional for `producer` (id, epoch) when given (no sequence:
/// coordinators' writes are not checked for duplicates, as in Kafka).
pub fn encode_batch_as(
    records: Vec<(Bytes, Option<Bytes>)>,
    now_ms: i64,
    producer: Option<(i64, i16)>,
) -> Bytes {
    let (producer_id, producer_epoch) = producer.unwrap_or((-1, -1));
    let recs: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (k, v))| Record {
            transactional: producer.is_some(),
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // Sequences must run with the offsets for the encoder to keep one batch
            // (the batch's base sequence stays -1: no producer).
            sequence: i as i32 - 1,
            timestamp: now_ms,
            key: Some(k),
            value: v,
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &recs,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding coordinator records cannot fail");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_kafka() {
        // Java String.hashCode values.
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("abc"), 96354);
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(partition_for("abc", 50), 96354 % 50);
        // The famous string whose hashCode is Integer.MIN_VALUE: Utils.abs maps it to 0.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        // Non-ASCII goes by UTF-16 code units ("é" is 233).
        assert_eq!(java_string_hash("é"), 233);
    }
}
