//! The log of one partition: an ordered set of segments, the offsets that bound what
//! can be read (log start, high watermark, log end), idempotent producer state, the
//! leader-epoch cache, and the operations on them: append (as leader, or as a follower
//! copying the leader's batches), read, truncate, search by timestamp, retention, flush,
//! recovery.
//!
//! Appends, truncations and epoch-cache changes are serialized by `inner`; readers take a
//! snapshot of the segment list and the offsets without waiting for appends. It must not
//! know about Kafka requests, replicas or leadership: callers decide who may append,
//! where to truncate and when the HW moves.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use strom_common::watch;
use tokio::sync::Mutex;
use uuid::Uuid;

use super::batch::{self, BatchHeader, ValidBatch};
use super::config::LogConfig;
use super::epoch_cache::LeaderEpochCache;
use super::marker::{self, Marker};
use super::producer_state::{CompletedTxn, ProducerError, ProducerStateManager, SeqCheck};
use super::segment::{file_name, Segment};
use super::storage::Storage;
use super::txn_index::AbortedTxn;

/// The offsets that bound a log, published to readers and long polls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogOffsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub log_end: i64,
    /// Where the high watermark sits: (segment base offset, byte position).
    pub hw_position: (i64, u64),
    /// The last stable offset (KIP-98): the high watermark, or the first offset of the
    /// earliest transaction below it not yet decided and replicated. read_committed
    /// consumers read up to here.
    pub last_stable: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("offset {offset} is out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error(transparent)]
    Batch(#[from] batch::BatchError),
    #[error(transparent)]
    Producer(#[from] ProducerError),
    /// Records of a producer's batch refused one by one (KIP-467): INVALID_TIMESTAMP when
    /// any timestamp is out of range, else INVALID_RECORD; (index in the batch, why).
    #[error("{message}: {errors:?}")]
    Records {
        invalid_timestamp: bool,
        message: String,
        errors: Vec<(i32, String)>,
    },
    #[error("storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("the log was deleted")]
    Deleted,
    /// A follower append whose offsets or epochs do not continue the log.
    #[error("{0}")]
    UnexpectedAppend(String),
}

/// How a leader's append treats a transactional batch that would start a transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnCheck {
    /// Internal writers (a coordinator's own transactional writes) and tests.
    Trusted,
    /// Client batches (KIP-890): only with the guard of a verification the transaction
    /// coordinator confirmed (`PartitionLog::start_txn_verification`).
    Verified(Option<u64>),
}

/// What an append produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendInfo {
    pub first_offset: i64,
    pub last_offset: i64,
    /// `LogAppendTime` topics: the time stamped on the batches; else -1.
    pub log_append_time: i64,
    pub log_start: i64,
    /// Messages written (0 when every batch was a duplicate).
    pub appended_records: i64,
}

/// The result of a read.
#[derive(Clone, Debug)]
pub struct ReadInfo {
    pub records: Bytes,
    pub offsets: LogOffsets,
}

struct Inner {
    producers: ProducerStateManager,
    epochs: LeaderEpochCache,
    unflushed_messages: i64,
    last_flush: tokio::time::Instant,
    recovery_point: i64,
    /// (next offset after a batch, segment base, end position) of recent batches not yet
    /// below the high watermark, to place the HW in bytes.
    recent_ends: VecDeque<(i64, i64, u64)>,
    deleted: bool,
}

pub struct PartitionLog {
    pub topic: String,
    pub partition: i32,
    pub topic_id: Uuid,
    dir: PathBuf,
    storage: Arc<dyn Storage>,
    config: RwLock<Arc<LogConfig>>,
    segments: RwLock<BTreeMap<i64, Arc<Segment>>>,
    offsets: watch::Sender<LogOffsets>,
    inner: Mutex<Inner>,
    /// Compaction: sealed segments below this offset are clean.
    cleaned_upto: std::sync::atomic::AtomicI64,
    /// One compaction at a time.
    cleaning: Mutex<()>,
    /// A copy of the leader-epoch cache for lookups that must not wait for appends.
    epochs: parking_lot::Mutex<LeaderEpochCache>,
}

/// What a compaction pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionStats {
    pub segments: usize,
    pub kept: usize,
    pub removed: usize,
}

/// How a log is opened.
pub struct OpenOptions {
    /// The broker stopped cleanly last time: trust every index.
    pub clean: bool,
    /// Segments ending at or below this offset were flushed: trust their indexes.
    pub recovery_point: i64,
    /// The log start offset from the checkpoint (DeleteRecords may have moved it).
    pub log_start: i64,
    /// The high watermark from `replication-offset-checkpoint` (0 when unknown); the
    /// log starts with it, bounded by the log start and end.
    pub high_watermark: i64,
    pub now_ms: i64,
}

fn snapshot_name(offset: i64) -> String {
    file_name(offset, "snapshot")
}

/// The leader-epoch cache's file in the partition directory.
pub const EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

impl PartitionLog {
    /// Opens (or creates) the log in `dir`, recovering segments not known to be flushed
    /// and rebuilding producer state from the latest snapshot plus the log after it.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        storage: Arc<dyn Storage>,
        dir: &Path,
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        config: LogConfig,
        opts: OpenOptions,
    ) -> Result<PartitionLog, LogError> {
        storage.create_dir_all(dir).await?;
        for n in storage
            .list_dir(dir)
            .await?
            .iter()
            .filter(|n| n.ends_with(".cleaned"))
        {
            // A compaction that did not finish: the original segment is intact.
            storage.remove_file(&dir.join(n)).await?;
        }
        let names = storage.list_dir(dir).await?;
        let mut bases: Vec<i64> = names
            .iter()
            .filter_map(|n| n.strip_suffix(".log"))
            .filter_map(|b| b.parse().ok())
            .collect();
        bases.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut cut_from: Option<usize> = None;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            let trusted = opts.clean || next_base.is_some_and(|n| n <= opts.recovery_point);
            let (seg, cut) =
                Segment::open(storage.as_ref(), dir, base, trusted, opts.now_ms).await?;
            segments.insert(base, Arc::new(seg));
            if cut && next_base.is_some() {
                cut_from = Some(i + 1);
                break;
            }
        }
        if let Some(from) = cut_from {
            // A corrupt segment in the middle: everything after it is unreachable.
            for &base in &bases[from..] {
                tracing::warn!(
                    topic,
                    partition,
                    base,
                    "deleting a segment after a corrupt one"
                );
                for ext in ["log", "index", "timeindex", "txnindex"] {
                    storage.remove_file(&dir.join(file_name(base, ext))).await?;
                }
            }
        }
        if segments.is_empty() {
            let base = opts.log_start.max(0);
            segments.insert(
                base,
                Arc::new(Segment::create(storage.as_ref(), dir, base, opts.now_ms).await?),
            );
        }
        let mut txn_index_damaged = false;
        for seg in segments.values() {
            if !seg.load_txn_index(storage.as_ref()).await? {
                tracing::warn!(topic, partition, base = seg.base_offset,
                    "damaged aborted-transaction index: rebuilding producer state from the log start");
                txn_index_damaged = true;
            }
        }
        let first_base = *segments.keys().next().expect("one segment");
        let log_end = segments
            .values()
            .next_back()
            .expect("one segment")
            .next_offset();
        let log_start = opts.log_start.clamp(first_base, log_end);

        let mut producers =
            rebuild_producer_state(storage.as_ref(), dir, &segments, log_end, txn_index_damaged)
                .await?;
        let epochs = load_epoch_cache(storage.as_ref(), dir, &segments, log_start, log_end).await?;
        let high_watermark = opts.high_watermark.clamp(log_start, log_end);
        let last_stable = producers.last_stable_offset(high_watermark);
        let (recent_ends, hw_position) = scan_ends_above(&segments, high_watermark).await?;
        // Nothing past the checkpointed recovery point is known to be on disk after an
        // unclean stop: it stays there until the next flush (Kafka's rule).
        let recovery_point = if opts.clean {
            log_end
        } else {
            opts.recovery_point.clamp(first_base.min(log_end), log_end)
        };
        let offsets = LogOffsets {
            log_start,
            high_watermark,
            log_end,
            hw_position,
            last_stable,
        };
        let (tx, _) = watch::channel(offsets);
        Ok(PartitionLog {
            topic: topic.to_string(),
            partition,
            topic_id,
            dir: dir.to_path_buf(),
            storage,
            config: RwLock::new(Arc::new(config)),
            segments: RwLock::new(segments),
            offsets: tx,
            inner: Mutex::new(Inner {
                producers,
                epochs: epochs.clone(),
                unflushed_messages: 0,
                last_flush: tokio::time::Instant::now(),
                recovery_point,
                recent_ends,
                deleted: false,
            }),
            cleaned_upto: std::sync::atomic::AtomicI64::new(0),
            cleaning: Mutex::new(()),
            epochs: parking_lot::Mutex::new(epochs),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn config(&self) -> Arc<LogConfig> {
        self.config.read().clone()
    }

    pub fn set_config(&self, c: LogConfig) {
        *self.config.write() = Arc::new(c);
    }

    pub fn offsets(&self) -> LogOffsets {
        *self.offsets.borrow()
    }

    /// A receiver that changes whenever the offsets do (long polls wait on it).
    pub fn subscribe(&self) -> watch::Receiver<LogOffsets> {
        self.offsets.subscribe()
    }

    fn active(&self) -> Arc<Segment> {
        self.segments
            .read()
            .values()
            .next_back()
            .expect("a log has a segment")
            .clone()
    }

    /// Total bytes of all segments.
    pub fn size(&self) -> u64 {
        self.segments.read().values().map(|s| s.size()).sum()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.read().len()
    }

    /// Appends checked batches as a leader does: assigns offsets from the log end, stamps
    /// each batch's base offset and `leader_epoch`, and applies idempotence (a duplicate
    /// batch is not written again; its original offsets are returned). The batches have
    /// passed [`super::records::check_for_append`] (record-level checks, keys on
    /// compacted topics, timestamps, the topic's codec).
    pub async fn append(
        &self,
        batches: &[ValidBatch],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo, LogError> {
        self.append_checked(batches, leader_epoch, now_ms, TxnCheck::Trusted)
            .await
    }

    /// `append` for a leader, with `txn` saying how a batch that would start a
    /// transaction here is treated (KIP-890 verification for client batches).
    pub async fn append_checked(
        &self,
        batches: &[ValidBatch],
        leader_epoch: i32,
        now_ms: i64,
        txn: TxnCheck,
    ) -> Result<AppendInfo, LogError> {
        let mut inner = self.inner.lock().await;
        self.append_locked(&mut inner, batches, leader_epoch, now_ms, txn)
            .await
    }

    /// Starts verifying a client's transactional batch (KIP-890): `None` when its
    /// producer's transaction is already open here (nothing to verify), else the guard
    /// to append it with once the transaction coordinator confirmed the partition is
    /// in the transaction. A marker for the producer meanwhile voids the guard.
    pub async fn start_txn_verification(&self, h: &batch::BatchHeader) -> Option<u64> {
        if !h.is_transactional() || h.is_control() {
            return None;
        }
        self.start_txn_verification_for(h.producer_id, h.producer_epoch)
            .await
    }

    /// `start_txn_verification` for a producer's transactional write made by a
    /// coordinator on its behalf (TxnOffsetCommit).
    pub async fn start_txn_verification_for(
        &self,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Option<u64> {
        let mut inner = self.inner.lock().await;
        if !inner
            .producers
            .starts_transaction_of(producer_id, producer_epoch)
        {
            return None;
        }
        Some(inner.producers.start_verification(producer_id))
    }

    /// Appends a transaction marker (KIP-98) as the leader: the producer's open
    /// transaction here ends (commit or abort). Refused when the marker's producer epoch
    /// or coordinator epoch is older than the last seen. Returns the marker's offset and
    /// the transaction it ended.
    pub async fn append_marker(
        &self,
        m: &Marker,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<CompletedTxn, LogError> {
        let mut inner = self.inner.lock().await;
        inner
            .producers
            .check_marker(m.producer_id, m.producer_epoch, m.coordinator_epoch)?;
        let bytes = marker::encode(m, now_ms);
        let header = batch::BatchHeader::parse(&bytes).expect("an encoded marker parses");
        let info = self
            .append_locked(
                &mut inner,
                &[ValidBatch { header, bytes }],
                leader_epoch,
                now_ms,
                TxnCheck::Trusted,
            )
            .await?;
        let done = inner.producers.end_txn(
            m.producer_id,
            m.producer_epoch,
            m.coordinator_epoch,
            info.first_offset,
            m.commit,
            now_ms,
        );
        note_aborted(&self.active(), &inner.producers, &done);
        Ok(done)
    }

    /// The segments from the one holding `offset` (the first, if `offset` is below it)
    /// up to those starting before `end`.
    fn segments_from(&self, offset: i64, end: i64) -> Vec<Arc<Segment>> {
        let s = self.segments.read();
        let first = s
            .range(..=offset)
            .next_back()
            .map(|(k, _)| *k)
            .unwrap_or(i64::MIN);
        s.range(first..end).map(|(_, v)| v.clone()).collect()
    }

    /// The aborted transactions overlapping `[from, upper)`, for a read_committed fetch
    /// of that range (Kafka's `collectAbortedTransactions`): from the segment holding
    /// `from` on, until an entry's last stable offset shows nothing later can start
    /// below `upper`.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        let segs = self.segments_from(from, i64::MAX);
        let mut out = Vec::new();
        for seg in segs {
            if seg.collect_aborted(from, upper, &mut out) {
                break;
            }
        }
        out
    }

    async fn append_locked(
        &self,
        inner: &mut Inner,
        batches: &[ValidBatch],
        leader_epoch: i32,
        now_ms: i64,
        txn: TxnCheck,
    ) -> Result<AppendInfo, LogError> {
        let config = self.config();
        if inner.deleted {
            return Err(LogError::Deleted);
        }
        let mut first_offset = -1;
        let mut last_offset = -1;
        let mut appended = 0i64;
        let log_append_time = if config.log_append_time { now_ms } else { -1 };
        if batches.len() > 1 {
            // All or nothing: the producer checks of every batch pass before any is
            // written (a later batch's verdict depends on the earlier ones).
            let mut dry = inner
                .producers
                .subset(batches.iter().map(|b| b.header.producer_id));
            let mut next = self.offsets.borrow().log_end;
            for b in batches {
                if dry.check(&b.header)? == SeqCheck::Append {
                    let mut h = b.header;
                    h.base_offset = next;
                    next = h.last_offset() + 1;
                    dry.record(&h);
                }
            }
        }
        for b in batches {
            match inner.producers.check(&b.header)? {
                SeqCheck::Duplicate(m) => {
                    if first_offset < 0 {
                        first_offset = m.first_offset;
                    }
                    last_offset = m.last_offset;
                    continue;
                }
                SeqCheck::Append => {}
            }
            if let TxnCheck::Verified(guard) = txn {
                if inner.producers.starts_transaction(&b.header) {
                    inner.producers.check_verified(&b.header, guard)?;
                }
            }
            let base = self.offsets.borrow().log_end;
            if inner.epochs.latest_epoch().is_none_or(|e| leader_epoch > e) {
                self.assign_epoch_locked(inner, leader_epoch, base).await?;
            }
            self.maybe_roll(&config, b.bytes.len() as u64, base, now_ms, inner)
                .await?;
            let seg = self.active();
            let prefix = batch::stamped_prefix(&b.bytes, base, leader_epoch);
            let position = if config.log_append_time {
                let mut copy = BytesMut::from(&b.bytes[..]);
                copy[..16].copy_from_slice(&prefix);
                batch::set_log_append_time(&mut copy, now_ms);
                seg.log.append(&[&copy]).await?
            } else {
                seg.log.append(&[&prefix, &b.bytes[16..]]).await?
            };
            let mut h = b.header;
            h.base_offset = base;
            h.partition_leader_epoch = leader_epoch;
            if config.log_append_time {
                h.max_timestamp = now_ms;
            }
            seg.note_batch(
                &h,
                position,
                b.bytes.len() as u32,
                config.index_interval_bytes,
            );
            inner.producers.record(&h);
            let next = h.last_offset() + 1;
            inner
                .recent_ends
                .push_back((next, seg.base_offset, position + b.bytes.len() as u64));
            inner.unflushed_messages += h.records_count as i64;
            appended += h.records_count as i64;
            if first_offset < 0 {
                first_offset = base;
            }
            last_offset = h.last_offset();
            self.offsets.send_modify(|o| o.log_end = next);
        }
        if inner.unflushed_messages >= config.flush_messages {
            self.flush_locked(inner).await?;
        }
        let log_start = self.offsets.borrow().log_start;
        Ok(AppendInfo {
            first_offset,
            last_offset,
            log_append_time,
            log_start,
            appended_records: appended,
        })
    }

    /// Forgets producers whose last batch is older than `max_age_ms`; returns how many.
    /// Their later batches are taken as from a new producer (sequence 0 expected), as
    /// in Kafka after `producer.id.expiration.ms`.
    pub async fn expire_producers(&self, now_ms: i64, max_age_ms: i64) -> usize {
        let mut inner = self.inner.lock().await;
        let before = inner.producers.len();
        inner.producers.expire(now_ms, max_age_ms);
        before - inner.producers.len()
    }

    /// Moves the high watermark up to `offset` (at most the log end). Only offsets that
    /// end a batch are valid positions; a lower one leaves the HW where it is.
    pub async fn advance_high_watermark(&self, offset: i64) {
        let mut inner = self.inner.lock().await;
        let cur = *self.offsets.borrow();
        let target = offset.min(cur.log_end);
        if target <= cur.high_watermark {
            return;
        }
        let mut best = None;
        while let Some(&(next, seg, pos)) = inner.recent_ends.front() {
            if next > target {
                break;
            }
            best = Some((next, seg, pos));
            inner.recent_ends.pop_front();
        }
        if let Some((next, seg, pos)) = best {
            let last_stable = inner.producers.last_stable_offset(next);
            self.offsets.send_modify(|o| {
                o.high_watermark = next;
                o.hw_position = (seg, pos);
                o.last_stable = last_stable;
            });
        }
    }

    /// Moves a follower's high watermark up to the leader's, at most to the local log
    /// end (Kafka: `min(leader HW, LEO)`); it never moves down here.
    pub async fn update_follower_high_watermark(&self, leader_hw: i64) {
        self.advance_high_watermark(leader_hw).await;
    }

    /// Notes that `epoch` starts at `start_offset` (a new leader's epoch starts at its log
    /// end) and writes the epoch checkpoint if that changed the cache.
    pub async fn assign_epoch(&self, epoch: i32, start_offset: i64) -> Result<(), LogError> {
        let mut inner = self.inner.lock().await;
        self.assign_epoch_locked(&mut inner, epoch, start_offset)
            .await
    }

    /// Starts `epoch` at the current log end (a new leader's epoch, KIP-101), after any
    /// append in progress; returns that start offset.
    pub async fn assign_epoch_at_end(&self, epoch: i32) -> Result<i64, LogError> {
        let mut inner = self.inner.lock().await;
        let start = self.offsets.borrow().log_end;
        self.assign_epoch_locked(&mut inner, epoch, start).await?;
        Ok(start)
    }

    async fn assign_epoch_locked(
        &self,
        inner: &mut Inner,
        epoch: i32,
        start_offset: i64,
    ) -> Result<(), LogError> {
        if inner.epochs.assign(epoch, start_offset) {
            self.publish_epochs(inner).await?;
        }
        Ok(())
    }

    async fn publish_epochs(&self, inner: &Inner) -> Result<(), LogError> {
        *self.epochs.lock() = inner.epochs.clone();
        self.storage
            .write_file_atomic(&self.dir.join(EPOCH_CHECKPOINT), &inner.epochs.encode())
            .await?;
        Ok(())
    }

    /// The latest leader epoch written to this log, if any.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.lock().latest_epoch()
    }

    /// The first offset written in `epoch`, if the cache knows it.
    pub fn epoch_start_offset(&self, epoch: i32) -> Option<i64> {
        self.epochs.lock().start_offset_of(epoch)
    }

    /// Kafka's `endOffsetForEpoch`: the largest epoch at or below `epoch` and where it
    /// ended in this log (see `LeaderEpochCache::end_offset_for`).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        let log_end = self.offsets().log_end;
        self.epochs.lock().end_offset_for(epoch, log_end)
    }

    /// The leader-epoch cache (for tests and diagnostics).
    pub fn epoch_cache(&self) -> LeaderEpochCache {
        self.epochs.lock().clone()
    }

    /// Appends batches as a follower: the leader's bytes as they are (offsets, epochs and
    /// CRCs as the leader wrote them). Each batch must be whole, pass its CRC, start at or
    /// after the log end (compaction leaves gaps) and not carry an epoch older than the
    /// latest one written. Returns the offset after the last batch appended.
    pub async fn append_as_follower(&self, records: &Bytes, now_ms: i64) -> Result<i64, LogError> {
        let config = self.config();
        let mut inner = self.inner.lock().await;
        if inner.deleted {
            return Err(LogError::Deleted);
        }
        let mut used = 0usize;
        for (h, range) in batch::walk(records) {
            used = range.end;
            let bytes = records.slice(range);
            if h.magic != 2 {
                return Err(LogError::Batch(batch::BatchError::UnsupportedMagic(
                    h.magic,
                )));
            }
            if !batch::crc_ok(&bytes) {
                return Err(LogError::Batch(batch::BatchError::Corrupt));
            }
            let log_end = self.offsets.borrow().log_end;
            if h.base_offset < log_end || h.last_offset() < h.base_offset {
                return Err(LogError::UnexpectedAppend(format!(
                    "batch at offset {} does not continue the log ending at {log_end}",
                    h.base_offset
                )));
            }
            let latest = inner.epochs.latest_epoch();
            if latest.is_some_and(|e| h.partition_leader_epoch < e) {
                return Err(LogError::UnexpectedAppend(format!(
                    "batch at offset {} has leader epoch {}, older than the log's latest {}",
                    h.base_offset,
                    h.partition_leader_epoch,
                    latest.unwrap_or(-1)
                )));
            }
            if latest.is_none_or(|e| h.partition_leader_epoch > e) {
                self.assign_epoch_locked(&mut inner, h.partition_leader_epoch, h.base_offset)
                    .await?;
            }
            self.maybe_roll(
                &config,
                bytes.len() as u64,
                h.base_offset,
                now_ms,
                &mut inner,
            )
            .await?;
            let seg = self.active();
            let position = seg.log.append(&[&bytes]).await?;
            seg.note_batch(
                &h,
                position,
                bytes.len() as u32,
                config.index_interval_bytes,
            );
            if let Some(done) = record_batch(&mut inner.producers, &h, &bytes) {
                note_aborted(&seg, &inner.producers, &done);
            }
            let next = h.last_offset() + 1;
            inner
                .recent_ends
                .push_back((next, seg.base_offset, position + bytes.len() as u64));
            inner.unflushed_messages += h.records_count as i64;
            self.offsets.send_modify(|o| o.log_end = next);
        }
        if used < records.len() && used == 0 && !records.is_empty() {
            return Err(LogError::Batch(batch::BatchError::Corrupt));
        }
        if inner.unflushed_messages >= config.flush_messages {
            self.flush_locked(&mut inner).await?;
        }
        Ok(self.offsets.borrow().log_end)
    }

    /// Cuts the log back to `offset` (a follower whose tail diverged from the new
    /// leader's): segments, indexes, the HW, the epoch cache and the recovery point follow,
    /// and producer state is rebuilt from a snapshot and the log (never patched). A batch
    /// that straddles `offset` goes whole. Returns the new log end.
    pub async fn truncate_to(&self, offset: i64, now_ms: i64) -> Result<i64, LogError> {
        let mut inner = self.inner.lock().await;
        let cur = self.offsets();
        if offset >= cur.log_end {
            // Nothing to cut, but an epoch entry a leader wrote at its log end before
            // appending anything must go (Kafka truncates the cache either way), or the
            // follower keeps announcing an epoch its leader never had.
            if inner.epochs.truncate_from_end(cur.log_end) {
                self.publish_epochs(&inner).await?;
            }
            return Ok(cur.log_end);
        }
        if offset <= cur.log_start {
            drop(inner);
            self.truncate_fully_and_start_at(offset.max(cur.log_start), now_ms)
                .await?;
            return Ok(self.offsets().log_end);
        }
        // Whole segments above the offset go; the one containing it is cut.
        let (doomed, keep): (Vec<Arc<Segment>>, Arc<Segment>) = {
            let s = self.segments.read();
            let keep_base = *s
                .range(..=offset)
                .next_back()
                .map(|(k, _)| k)
                .expect("offset is above the log start");
            let doomed = s.range(keep_base + 1..).map(|(_, v)| v.clone()).collect();
            (doomed, s[&keep_base].clone())
        };
        {
            let mut s = self.segments.write();
            for d in &doomed {
                s.remove(&d.base_offset);
            }
        }
        for d in &doomed {
            d.delete_files(self.storage.as_ref()).await?;
        }
        let cut_at = match keep.find_position(offset, keep.size()).await? {
            Some(b) => b.position,
            None => keep.size(),
        };
        keep.log.truncate(cut_at).await?;
        for ext in ["index", "timeindex"] {
            self.storage.remove_file(&keep.path(ext)).await?;
        }
        keep.recover().await?;
        let new_end = keep.next_offset();
        // Producer snapshots above the new end describe batches that are gone.
        let segments = self.segments.read().clone();
        inner.producers =
            rebuild_producer_state(self.storage.as_ref(), &self.dir, &segments, new_end, false)
                .await?;
        if inner.epochs.truncate_from_end(new_end) {
            self.publish_epochs(&inner).await?;
        }
        let hw = cur.high_watermark.min(new_end);
        let (ends, hw_position) = scan_ends_above(&segments, hw).await?;
        inner.recent_ends = ends;
        inner.recovery_point = inner.recovery_point.min(new_end);
        self.cleaned_upto
            .fetch_min(new_end, std::sync::atomic::Ordering::AcqRel);
        let last_stable = inner.producers.last_stable_offset(hw);
        self.offsets.send_modify(|o| {
            o.log_end = new_end;
            o.high_watermark = hw;
            o.hw_position = hw_position;
            o.last_stable = last_stable;
        });
        tracing::info!(
            topic = %self.topic,
            partition = self.partition,
            from = cur.log_end,
            to = new_end,
            "truncated the log"
        );
        Ok(new_end)
    }

    /// Empties the log and starts it again at `offset` (a follower whose fetch offset
    /// fell below the leader's log start): every segment, snapshot and epoch goes.
    pub async fn truncate_fully_and_start_at(
        &self,
        offset: i64,
        now_ms: i64,
    ) -> Result<(), LogError> {
        let mut inner = self.inner.lock().await;
        let doomed: Vec<Arc<Segment>> = {
            let mut s = self.segments.write();
            let all = s.values().cloned().collect();
            s.clear();
            all
        };
        for d in &doomed {
            d.delete_files(self.storage.as_ref()).await?;
        }
        for n in self.storage.list_dir(&self.dir).await? {
            if n.ends_with(".snapshot") {
                self.storage.remove_file(&self.dir.join(n)).await?;
            }
        }
        let seg =
            Arc::new(Segment::create(self.storage.as_ref(), &self.dir, offset, now_ms).await?);
        self.segments.write().insert(offset, seg);
        inner.producers = ProducerStateManager::default();
        inner.epochs.clear();
        self.publish_epochs(&inner).await?;
        inner.recent_ends.clear();
        inner.recovery_point = offset;
        inner.unflushed_messages = 0;
        self.cleaned_upto
            .store(offset, std::sync::atomic::Ordering::Release);
        self.offsets.send_modify(|o| {
            o.log_start = offset;
            o.log_end = offset;
            o.high_watermark = offset;
            o.hw_position = (offset, 0);
            o.last_stable = offset;
        });
        tracing::info!(topic = %self.topic, partition = self.partition, offset, "emptied the log; it starts again at the leader's log start");
        Ok(())
    }

    async fn maybe_roll(
        &self,
        config: &LogConfig,
        incoming: u64,
        next_offset: i64,
        now_ms: i64,
        inner: &mut Inner,
    ) -> Result<(), LogError> {
        let seg = self.active();
        let (roll_base, entries) = {
            let m = seg.meta.lock();
            (m.roll_base_ms.unwrap_or(m.created_ms), m.index.len())
        };
        let empty = seg.size() == 0;
        let too_big = seg.size() + incoming > config.segment_bytes;
        let too_old = now_ms.saturating_sub(roll_base)
            > config.segment_ms.saturating_sub(config.segment_jitter_ms);
        let index_full = entries >= config.max_index_entries();
        let overflow = next_offset - seg.base_offset > u32::MAX as i64 / 2;
        if !empty && (too_big || too_old || index_full || overflow) {
            self.roll_locked(next_offset, now_ms, inner).await?;
        }
        Ok(())
    }

    /// Seals the active segment (writes its indexes, syncs it in the background, takes a
    /// producer snapshot) and starts a new one at `base`.
    async fn roll_locked(&self, base: i64, now_ms: i64, inner: &mut Inner) -> Result<(), LogError> {
        let old = self.active();
        old.write_indexes(self.storage.as_ref()).await?;
        let new = Segment::create(self.storage.as_ref(), &self.dir, base, now_ms).await?;
        self.segments.write().insert(base, Arc::new(new));
        self.write_producer_snapshot(base, inner).await?;
        let file = old.log.clone();
        tokio::spawn(async move {
            if let Err(e) = file.sync().await {
                tracing::error!(error = %e, "syncing a sealed segment");
            }
        });
        tracing::debug!(topic = %self.topic, partition = self.partition, base, "rolled a new segment");
        Ok(())
    }

    /// Rolls a new segment now (when the active one holds data).
    pub async fn roll(&self, now_ms: i64) -> Result<(), LogError> {
        let mut inner = self.inner.lock().await;
        if self.active().size() > 0 {
            let base = self.offsets.borrow().log_end;
            self.roll_locked(base, now_ms, &mut inner).await?;
        }
        Ok(())
    }

    async fn write_producer_snapshot(
        &self,
        offset: i64,
        inner: &mut Inner,
    ) -> Result<(), LogError> {
        let raw = inner.producers.encode();
        self.storage
            .write_file_atomic(&self.dir.join(snapshot_name(offset)), &raw)
            .await?;
        // Keep the two newest snapshots.
        let mut snaps: Vec<i64> = self
            .storage
            .list_dir(&self.dir)
            .await?
            .iter()
            .filter_map(|n| n.strip_suffix(".snapshot"))
            .filter_map(|b| b.parse().ok())
            .collect();
        snaps.sort_unstable();
        if snaps.len() > 2 {
            for s in &snaps[..snaps.len() - 2] {
                self.storage
                    .remove_file(&self.dir.join(snapshot_name(*s)))
                    .await?;
            }
        }
        Ok(())
    }

    async fn flush_locked(&self, inner: &mut Inner) -> Result<(), LogError> {
        let segs: Vec<Arc<Segment>> = {
            let s = self.segments.read();
            s.values()
                .filter(|s| s.next_offset() > inner.recovery_point || s.size() > 0)
                .cloned()
                .collect()
        };
        for s in segs
            .iter()
            .filter(|s| s.next_offset() > inner.recovery_point)
        {
            s.log.sync().await?;
        }
        inner.recovery_point = self.offsets.borrow().log_end;
        inner.unflushed_messages = 0;
        inner.last_flush = tokio::time::Instant::now();
        Ok(())
    }

    /// Syncs everything written so far (the flush policy and shutdown call this).
    pub async fn flush(&self) -> Result<(), LogError> {
        let mut inner = self.inner.lock().await;
        self.flush_locked(&mut inner).await
    }

    /// Flushes when `flush.ms` has passed since the last flush and data is waiting.
    pub async fn flush_if_due(&self) -> Result<(), LogError> {
        let config = self.config();
        let mut inner = self.inner.lock().await;
        let due = inner.last_flush.elapsed().as_millis() as i64 >= config.flush_ms;
        if due && inner.unflushed_messages > 0 {
            self.flush_locked(&mut inner).await?;
        }
        Ok(())
    }

    /// The offset up to which the log is known to be on disk.
    pub async fn recovery_point(&self) -> i64 {
        self.inner.lock().await.recovery_point
    }

    /// Reads whole batches starting at the batch that contains `offset`, up to
    /// `max_bytes` and never beyond the high watermark (or the log end when
    /// `include_uncommitted`, as replicas fetch). With `min_one`, the first batch comes
    /// back whole even when larger than `max_bytes` (KIP-74).
    pub async fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        include_uncommitted: bool,
    ) -> Result<ReadInfo, LogError> {
        let offsets = self.offsets();
        if offset < offsets.log_start || offset > offsets.log_end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: offsets.log_start,
                log_end: offsets.log_end,
            });
        }
        let upper = if include_uncommitted {
            offsets.log_end
        } else {
            offsets.high_watermark
        };
        if offset >= upper {
            return Ok(ReadInfo {
                records: Bytes::new(),
                offsets,
            });
        }
        let segs = self.segments_from(offset, i64::MAX);
        for seg in segs {
            let limit = if include_uncommitted {
                seg.size()
            } else {
                self.visible_limit(&seg, &offsets)
            };
            let Some(found) = seg.find_position(offset, limit).await? else {
                continue;
            };
            let records = seg
                .read_batches(found.position, limit, max_bytes, min_one)
                .await?;
            return Ok(ReadInfo { records, offsets });
        }
        Ok(ReadInfo {
            records: Bytes::new(),
            offsets,
        })
    }

    /// A read for read_committed consumers (KIP-98): as `read` below the high watermark,
    /// but only up to the last stable offset, so no batch of a transaction still open
    /// (or whose marker is not replicated) is returned. The LSO is a batch boundary (the
    /// first offset of a transaction's batch, or the HW).
    pub async fn read_committed(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadInfo, LogError> {
        let offsets = self.offsets();
        if offsets.last_stable >= offsets.high_watermark {
            return self.read(offset, max_bytes, min_one, false).await;
        }
        if offset < offsets.log_start || offset > offsets.log_end {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: offsets.log_start,
                log_end: offsets.log_end,
            });
        }
        let upper = offsets.last_stable;
        let empty = ReadInfo {
            records: Bytes::new(),
            offsets,
        };
        if offset >= upper {
            return Ok(empty);
        }
        let segs = self.segments_from(offset, upper);
        for seg in segs {
            // Bytes up to the batch holding the LSO (all of them if it is further on).
            let limit = match seg.find_position(upper, seg.size()).await? {
                Some(b) => b.position,
                None => seg.size(),
            };
            let Some(found) = seg.find_position(offset, limit).await? else {
                continue;
            };
            let records = seg
                .read_batches(found.position, limit, max_bytes, min_one)
                .await?;
            return Ok(ReadInfo { records, offsets });
        }
        Ok(empty)
    }

    /// The first offset whose record timestamp is at least `ts`, with that timestamp;
    /// `None` when every record is older (ListOffsets by time).
    pub async fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>, LogError> {
        let offsets = self.offsets();
        let segs: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        for seg in segs {
            if seg.max_timestamp() < ts {
                continue;
            }
            let rel = seg.meta.lock().time_index.lookup(ts);
            let start = seg.base_offset + rel as i64;
            let limit = self.visible_limit(&seg, &offsets);
            let Some(found) = seg
                .find_position(start.max(offsets.log_start), limit)
                .await?
            else {
                continue;
            };
            for b in seg.scan_headers(found.position, limit).await? {
                if b.header.max_timestamp < ts {
                    continue;
                }
                let bytes = seg.log.read_at(b.position, b.header.size()).await?;
                for (off, rts) in record_timestamps(&bytes, &b.header) {
                    if rts >= ts && off >= offsets.log_start && off < offsets.high_watermark {
                        return Ok(Some((off, rts)));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp (ListOffsets -3).
    pub async fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>, LogError> {
        let offsets = self.offsets();
        let segs: Vec<Arc<Segment>> = self.segments.read().values().cloned().collect();
        let mut best: Option<(i64, i64)> = None;
        for seg in &segs {
            let (ts, off) = {
                let m = seg.meta.lock();
                (m.max_timestamp, m.offset_of_max_timestamp)
            };
            if ts >= 0 && best.is_none_or(|(bts, _)| ts > bts) {
                best = Some((ts, off));
            }
        }
        let Some((ts, batch_base)) = best else {
            return Ok(None);
        };
        let seg = segs
            .iter()
            .rev()
            .find(|s| s.base_offset <= batch_base)
            .cloned();
        let Some(seg) = seg else { return Ok(None) };
        let limit = self.visible_limit(&seg, &offsets);
        if let Some(found) = seg.find_position(batch_base, limit).await? {
            let bytes = seg.log.read_at(found.position, found.header.size()).await?;
            for (off, rts) in record_timestamps(&bytes, &found.header) {
                if rts == ts {
                    return Ok(Some((off, ts)));
                }
            }
            return Ok(Some((found.header.last_offset(), ts)));
        }
        Ok(None)
    }

    fn visible_limit(&self, seg: &Segment, offsets: &LogOffsets) -> u64 {
        if seg.base_offset < offsets.hw_position.0 {
            seg.size()
        } else if seg.base_offset == offsets.hw_position.0 {
            offsets.hw_position.1.min(seg.size())
        } else {
            0
        }
    }

    /// A follower adopts the leader's log start (at most its own high watermark).
    pub async fn follow_log_start(&self, leader_log_start: i64) -> Result<(), LogError> {
        let o = self.offsets();
        let target = leader_log_start.min(o.high_watermark);
        if target > o.log_start {
            self.delete_records_before(target).await?;
        }
        Ok(())
    }

    /// Raises the log start offset (DeleteRecords); `offset` must not pass the HW.
    pub async fn delete_records_before(&self, offset: i64) -> Result<i64, LogError> {
        let _inner = self.inner.lock().await;
        let cur = self.offsets();
        if offset > cur.high_watermark || offset < 0 {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: cur.log_start,
                log_end: cur.high_watermark,
            });
        }
        if offset > cur.log_start {
            self.offsets.send_modify(|o| o.log_start = offset);
        }
        drop(_inner);
        self.delete_segments_below_log_start().await?;
        Ok(self.offsets().log_start)
    }

    async fn delete_segments_below_log_start(&self) -> Result<(), LogError> {
        let log_start = self.offsets().log_start;
        let doomed: Vec<Arc<Segment>> = {
            let s = self.segments.read();
            let bases: Vec<i64> = s.keys().copied().collect();
            bases
                .windows(2)
                .filter(|w| w[1] <= log_start)
                .map(|w| s[&w[0]].clone())
                .collect()
        };
        self.remove_segments(doomed).await
    }

    async fn remove_segments(&self, doomed: Vec<Arc<Segment>>) -> Result<(), LogError> {
        if doomed.is_empty() {
            return Ok(());
        }
        {
            let mut s = self.segments.write();
            for d in &doomed {
                s.remove(&d.base_offset);
            }
            let first = *s.keys().next().expect("the active segment stays");
            self.offsets
                .send_modify(|o| o.log_start = o.log_start.max(first));
        }
        {
            let mut inner = self.inner.lock().await;
            let log_start = self.offsets().log_start;
            if inner.epochs.truncate_from_start(log_start) {
                self.publish_epochs(&inner).await?;
            }
        }
        for d in doomed {
            tracing::info!(topic = %self.topic, partition = self.partition, base = d.base_offset, "deleting segment");
            d.delete_files(self.storage.as_ref()).await?;
        }
        Ok(())
    }

    /// Deletes segments past `retention.ms` or beyond `retention.bytes` (policy
    /// `delete`), oldest first, rolling the active segment when it has expired too.
    pub async fn apply_retention(&self, now_ms: i64) -> Result<usize, LogError> {
        let config = self.config();
        if !config.cleanup_delete {
            return self.delete_segments_below_log_start().await.map(|_| 0);
        }
        if config.retention_ms >= 0 {
            let active = self.active();
            let m = active.max_timestamp();
            if active.size() > 0
                && m >= 0
                && now_ms - m > config.retention_ms
                && self.offsets().high_watermark == self.offsets().log_end
            {
                self.roll(now_ms).await?;
            }
        }
        let doomed: Vec<Arc<Segment>> = {
            let s = self.segments.read();
            let all: Vec<Arc<Segment>> = s.values().cloned().collect();
            let hw = self.offsets().high_watermark;
            let mut total: i64 = all.iter().map(|x| x.size() as i64).sum();
            let mut out = Vec::new();
            for seg in all.iter().take(all.len().saturating_sub(1)) {
                if seg.next_offset() > hw {
                    break;
                }
                let by_time = config.retention_ms >= 0 && {
                    let ts = seg.max_timestamp();
                    ts >= 0 && now_ms - ts > config.retention_ms
                };
                let by_size = config.retention_bytes >= 0
                    && total - seg.size() as i64 >= config.retention_bytes;
                if !(by_time || by_size) {
                    break;
                }
                total -= seg.size() as i64;
                out.push(seg.clone());
            }
            out
        };
        let n = doomed.len();
        self.remove_segments(doomed).await?;
        self.delete_segments_below_log_start().await?;
        Ok(n)
    }

    /// Compacts the sealed segments (`cleanup.policy=compact`) when the share of bytes not
    /// yet cleaned reaches `min.cleanable.dirty.ratio`, leaving alone segments younger
    /// than `min.compaction.lag.ms`.
    pub async fn compact(&self, now_ms: i64) -> Result<CompactionStats, LogError> {
        use std::sync::atomic::Ordering;
        let config = self.config();
        let mut stats = CompactionStats::default();
        if !config.cleanup_compact {
            return Ok(stats);
        }
        let _one = self.cleaning.lock().await;
        let sealed: Vec<Arc<Segment>> = {
            let s = self.segments.read();
            let n = s.len();
            s.values().take(n.saturating_sub(1)).cloned().collect()
        };
        let cutoff = now_ms.saturating_sub(config.min_compaction_lag_ms);
        // Only what every replica has (below the high watermark) and no open transaction
        // may still change (below the last stable offset) is compacted.
        let stable = self.offsets().last_stable;
        let cleanable: Vec<Arc<Segment>> = sealed
            .into_iter()
            .take_while(|s| s.max_timestamp() <= cutoff && s.next_offset() <= stable)
            .collect();
        if cleanable.is_empty() {
            return Ok(stats);
        }
        let upto = self.cleaned_upto.load(Ordering::Acquire);
        let total: u64 = cleanable.iter().map(|s| s.size()).sum();
        let dirty: u64 = cleanable
            .iter()
            .filter(|s| s.next_offset() > upto)
            .map(|s| s.size())
            .sum();
        if total == 0
            || dirty == 0
            || (dirty as f64 / total as f64) < config.min_cleanable_dirty_ratio
        {
            return Ok(stats);
        }
        // A record that a power failure could still take away must not remove an older
        // one with its key: the cleaned copy is synced, so the segments it is cleaned
        // against must be too (rolling syncs them in the background; usually a no-op).
        for seg in &cleanable {
            seg.log.sync().await?;
        }
        // Kafka's cleaner: the key map holds the dirty segments' keys (from the first
        // one not yet cleaned), at most `log.cleaner.dedupe.buffer.size` of them; every
        // cleanable segment up to the last one fully indexed is cleaned with it. Keys
        // only in the clean part are not in the map and stay. A log with more keys than
        // the map holds is cleaned over several rounds.
        let dirty_from = cleanable
            .iter()
            .position(|s| s.next_offset() > upto)
            .unwrap_or(cleanable.len());
        // Aborted transactions' records are dropped and never supersede older ones.
        let first = cleanable[0].base_offset;
        let end = cleanable.last().map_or(first, |s| s.next_offset());
        let aborted = self.aborted_transactions(first, end);
        let mut map = super::cleaner::OffsetMap::default();
        let mut indexed = dirty_from;
        for seg in &cleanable[dirty_from..] {
            if !super::cleaner::index_keys(
                seg,
                &mut map,
                config.cleaner_dedupe_buffer_bytes,
                &aborted,
            )
            .await?
            {
                break; // full part-way through this segment
            }
            indexed += 1;
        }
        if indexed == dirty_from {
            tracing::warn!(topic = %self.topic, partition = self.partition, limit = config.cleaner_dedupe_buffer_bytes, "one segment's keys take more than log.cleaner.dedupe.buffer.size; not compacted");
            return Ok(stats);
        }
        let cleanable = &cleanable[..indexed];
        let tombstone_cutoff = now_ms.saturating_sub(config.delete_retention_ms);
        let discard_markers =
            super::cleaner::discardable_markers(cleanable, &map, tombstone_cutoff, &aborted)
                .await?;
        let txn = super::cleaner::TxnCleaning {
            aborted,
            discard_markers,
        };
        for seg in cleanable {
            if !super::cleaner::removes_any(seg, &map, tombstone_cutoff, &txn).await? {
                continue;
            }
            let tmp = seg.path("cleaned");
            let f = self.storage.open(&tmp, true).await?;
            f.truncate(0).await?;
            let cleaned =
                super::cleaner::clean_segment(seg, &map, tombstone_cutoff, &txn, f.as_ref())
                    .await?;
            stats.kept += cleaned.kept;
            stats.removed += cleaned.removed;
            f.sync().await?;
            drop(f);
            let _inner = self.inner.lock().await;
            if !self.segments.read().contains_key(&seg.base_offset) {
                self.storage.remove_file(&tmp).await?;
                continue; // retention removed it meanwhile
            }
            // The old indexes go first: a crash after the swap must not leave the
            // cleaned log with indexes of the uncleaned one (a segment below the recovery
            // point trusts its index); without them it is walked and indexed again.
            self.storage.remove_file(&seg.path("index")).await?;
            self.storage.remove_file(&seg.path("timeindex")).await?;
            self.storage.rename(&tmp, &seg.path("log")).await?;
            let (fresh, _) = Segment::open(
                self.storage.as_ref(),
                &self.dir,
                seg.base_offset,
                false,
                now_ms,
            )
            .await?;
            // Offsets do not change in compaction: the aborted transactions stay.
            // An aborted transaction whose marker went goes from the index too (as
            // Kafka rebuilds the cleaned segment's index from the markers it keeps): a
            // read_committed consumer would otherwise skip the producer's later batches
            // waiting for an abort marker that is gone.
            fresh.meta.lock().aborted = seg
                .meta
                .lock()
                .aborted
                .iter()
                .filter(|a| !txn.discard_markers.contains(&a.last_offset))
                .copied()
                .collect();
            fresh.write_indexes(self.storage.as_ref()).await?;
            self.segments
                .write()
                .insert(seg.base_offset, Arc::new(fresh));
            stats.segments += 1;
        }
        if let Some(last) = cleanable.last() {
            self.cleaned_upto
                .store(last.next_offset(), Ordering::Release);
        }
        if stats.segments > 0 {
            tracing::info!(
                topic = %self.topic,
                partition = self.partition,
                segments = stats.segments,
                kept = stats.kept,
                removed = stats.removed,
                "compacted"
            );
        }
        Ok(stats)
    }

    /// Clean shutdown: flush, write the active segment's indexes and a producer snapshot.
    pub async fn close(&self) -> Result<(), LogError> {
        let mut inner = self.inner.lock().await;
        self.flush_locked(&mut inner).await?;
        let active = self.active();
        active.write_indexes(self.storage.as_ref()).await?;
        let end = self.offsets().log_end;
        self.write_producer_snapshot(end, &mut inner).await?;
        Ok(())
    }

    /// Marks the log deleted; appends fail from now on. The caller removes the files.
    pub async fn mark_deleted(&self) {
        self.inner.lock().await.deleted = true;
    }

    /// The producer state (for tests and DescribeProducers).
    pub async fn producer_state(&self) -> ProducerStateManager {
        self.inner.lock().await.producers.clone()
    }
}

/// (offset, timestamp) of each record of a stored batch (decompressing if needed).
fn record_timestamps(bytes: &Bytes, h: &BatchHeader) -> Vec<(i64, i64)> {
    use kafka_protocol::records::RecordBatchDecoder;
    let mut buf = bytes.clone();
    match RecordBatchDecoder::decode(&mut buf) {
        Ok(set) => set
            .records
            .iter()
            .map(|r| (r.offset, r.timestamp))
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, base_offset = h.base_offset, "cannot decode a stored batch");
            Vec::new()
        }
    }
}

/// Producer state at `log_end`: the newest snapshot at or below it (newer ones, left by
/// a log that was truncated since, are removed), then every batch after the snapshot.
async fn rebuild_producer_state(
    storage: &dyn Storage,
    dir: &Path,
    segments: &BTreeMap<i64, Arc<Segment>>,
    log_end: i64,
    from_start: bool,
) -> Result<ProducerStateManager, LogError> {
    let mut snaps: Vec<i64> = storage
        .list_dir(dir)
        .await?
        .iter()
        .filter_map(|n| n.strip_suffix(".snapshot"))
        .filter_map(|b| b.parse().ok())
        .collect();
    snaps.sort_unstable();
    let first_base = segments.keys().next().copied().unwrap_or(0);
    let mut producers = ProducerStateManager::default();
    let mut replay_from = first_base;
    for &s in snaps.iter().rev() {
        if s > log_end {
            storage.remove_file(&dir.join(snapshot_name(s))).await?;
            continue;
        }
        if from_start {
            continue;
        }
        if let Some(raw) = storage.read_file(&dir.join(snapshot_name(s))).await? {
            if let Some(p) = ProducerStateManager::decode(&raw) {
                producers = p;
                replay_from = s;
                break;
            }
        }
    }
    // The aborted transactions from the replay's start on are found again by it.
    for seg in segments.values() {
        seg.drop_aborted_from(replay_from);
    }
    for seg in segments.values() {
        if seg.next_offset() <= replay_from {
            continue;
        }
        let pos = match seg.find_position(replay_from, seg.size()).await? {
            Some(b) => b.position,
            None => continue,
        };
        for b in seg.scan_headers(pos, seg.size()).await? {
            if b.header.base_offset >= replay_from && b.header.last_offset() < log_end {
                if b.header.is_control() {
                    // A marker: its type is in the record, so read the (small) batch.
                    let end = b.position + b.header.size() as u64;
                    let bytes = seg
                        .read_batches(b.position, end, b.header.size(), true)
                        .await?;
                    if let Some(done) = record_batch(&mut producers, &b.header, &bytes) {
                        note_aborted(seg, &producers, &done);
                    }
                } else {
                    producers.record(&b.header);
                }
            }
        }
    }
    Ok(producers)
}

/// Notes a stored batch in producer state: a transaction marker ends its producer's
/// transaction (returned), any other batch is recorded.
fn record_batch(
    producers: &mut ProducerStateManager,
    h: &batch::BatchHeader,
    bytes: &Bytes,
) -> Option<CompletedTxn> {
    if !h.is_control() {
        producers.record(h);
        return None;
    }
    match marker::decode(bytes) {
        Some(m) => Some(producers.end_txn(
            m.producer_id,
            m.producer_epoch,
            m.coordinator_epoch,
            h.base_offset,
            m.commit,
            h.max_timestamp,
        )),
        None => {
            tracing::warn!(
                offset = h.base_offset,
                "skipping an unreadable control batch"
            );
            None
        }
    }
}

/// An aborted transaction goes into the index of the segment holding its marker, with
/// the last stable offset right after it (Kafka's `lastStableOffset(completedTxn)`: the
/// earliest other open transaction's first offset, else the marker's offset + 1).
fn note_aborted(seg: &Segment, producers: &ProducerStateManager, done: &CompletedTxn) {
    if !done.aborted {
        return;
    }
    seg.add_aborted(AbortedTxn {
        producer_id: done.producer_id,
        first_offset: done.first_offset,
        last_offset: done.last_offset,
        last_stable_offset: producers
            .first_open_txn_offset()
            .unwrap_or(done.last_offset + 1),
    });
}

/// The leader-epoch cache from its checkpoint, or rebuilt from the batches' epochs when
/// the file is missing or unreadable; entries beyond the log are dropped.
async fn load_epoch_cache(
    storage: &dyn Storage,
    dir: &Path,
    segments: &BTreeMap<i64, Arc<Segment>>,
    log_start: i64,
    log_end: i64,
) -> Result<LeaderEpochCache, LogError> {
    let stored = storage
        .read_file(&dir.join(EPOCH_CHECKPOINT))
        .await?
        .and_then(|raw| LeaderEpochCache::decode(&raw));
    let mut cache = match stored {
        Some(c) => c,
        None => {
            let mut c = LeaderEpochCache::default();
            for seg in segments.values() {
                for b in seg.scan_headers(0, seg.size()).await? {
                    c.assign(b.header.partition_leader_epoch, b.header.base_offset);
                }
            }
            c
        }
    };
    cache.truncate_from_end(log_end);
    cache.truncate_from_start(log_start);
    Ok(cache)
}

/// The ends of the batches above `hw` (to place a rising HW in bytes) and the byte
/// position of `hw` itself: (segment base, position of the first batch at or after it).
async fn scan_ends_above(
    segments: &BTreeMap<i64, Arc<Segment>>,
    hw: i64,
) -> Result<(VecDeque<(i64, i64, u64)>, (i64, u64)), LogError> {
    let mut ends = VecDeque::new();
    let mut hw_position = None;
    let from = segments
        .range(..=hw)
        .next_back()
        .map(|(k, _)| *k)
        .unwrap_or(i64::MIN);
    for seg in segments.range(from..).map(|(_, s)| s) {
        let size = seg.size();
        let start = match seg.find_position(hw, size).await? {
            Some(b) => b.position,
            None => size,
        };
        if hw_position.is_none() {
            hw_position = Some((seg.base_offset, start));
        }
        for b in seg.scan_headers(start, size).await? {
            ends.push_back((
                b.header.last_offset() + 1,
                seg.base_offset,
                b.position + b.header.size() as u64,
            ));
        }
    }
    let hw_position = hw_position.unwrap_or_else(|| {
        let last = segments.values().next_back().expect("one segment");
        (last.base_offset, last.size())
    });
    Ok((ends, hw_position))
}
