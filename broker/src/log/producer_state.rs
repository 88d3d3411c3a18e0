//! Producer state of one partition: for each producer id, its epoch, the last five
//! batches it wrote (sequence range and offsets), and its open transaction, as Kafka
//! keeps it. `check` decides whether a batch is new, a duplicate (answered with its
//! original offsets), or out of order; `record` notes an appended batch; `check_marker`
//! and `end_txn` do the same for a transaction marker (KIP-98). The first offset of the
//! earliest open transaction bounds what read_committed consumers may see (the last
//! stable offset). Snapshots (`<offset>.snapshot`) let a restart rebuild the state from
//! the snapshot plus the log tail after it.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Buf, BufMut, BytesMut};

use super::batch::BatchHeader;

/// How many recent batches per producer are remembered for duplicate detection.
pub const MAX_CACHED_BATCHES: usize = 5;

/// One appended batch of a producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub timestamp: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    pub last_timestamp: i64,
    /// The offset of the first batch of the producer's open transaction (None: none).
    pub txn_first_offset: Option<i64>,
    /// The epoch of the transaction coordinator that wrote its last marker (-1: none).
    pub coordinator_epoch: i32,
}

impl Default for ProducerEntry {
    fn default() -> Self {
        ProducerEntry {
            epoch: 0,
            batches: VecDeque::new(),
            last_timestamp: 0,
            txn_first_offset: None,
            coordinator_epoch: -1,
        }
    }
}

/// A transaction ended by a marker (Kafka's `CompletedTxn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompletedTxn {
    pub producer_id: i64,
    /// Its first batch's offset (the marker's own when it had no batch here).
    pub first_offset: i64,
    /// The marker's offset.
    pub last_offset: i64,
    pub aborted: bool,
}

/// The verdict on an incoming batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqCheck {
    Append,
    Duplicate(BatchMeta),
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("producer epoch {got} is older than the current epoch {current}")]
    InvalidEpoch { got: i16, current: i16 },
    #[error("out of order sequence number: expected {expected}, got {got}")]
    OutOfOrder { expected: i32, got: i32 },
    /// A non-transactional batch from a producer with an open transaction.
    #[error("expected a transactional write from producer {0}: its transaction is open")]
    NotTransactional(i64),
    /// A marker from a transaction coordinator older than the last one seen.
    #[error("coordinator epoch {got} is older than {current}")]
    CoordinatorFenced { got: i32, current: i32 },
    /// A transactional batch that would start a transaction here without the
    /// transaction coordinator having confirmed the partition is in it (KIP-890).
    #[error("producer {0} has no verified transaction including this partition")]
    NotVerified(i64),
}

fn next_seq(s: i32) -> i32 {
    if s == i32::MAX {
        0
    } else {
        s + 1
    }
}

/// Producer state of one partition.
#[derive(Clone, Debug, Default)]
pub struct ProducerStateManager {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Open transactions: first offset -> producer id.
    open_txns: BTreeMap<i64, i64>,
    /// Ended transactions whose marker is not below the high watermark yet: first offset
    /// -> marker offset (Kafka's `unreplicatedTxns`). They stay unstable until it is:
    /// a new leader without the marker would see the transaction open again. Kept in
    /// snapshots too (a restart's HW drops those it made stable).
    unreplicated: BTreeMap<i64, i64>,
    /// KIP-890 verification guards: a producer whose transactional batch is being
    /// checked with the transaction coordinator -> the guard handed out. A marker for
    /// the producer clears it, so a batch verified before an abort that raced it cannot
    /// start a transaction after that abort. Not persisted (a restart fails pending
    /// verifications, which the producer retries).
    verifying: BTreeMap<i64, u64>,
    next_guard: u64,
}

/// Producer state compares by what it persists (the unreplicated transactions follow
/// the high watermark of whoever holds it).
impl PartialEq for ProducerStateManager {
    fn eq(&self, other: &Self) -> bool {
        self.producers == other.producers && self.open_txns == other.open_txns
    }
}

impl Eq for ProducerStateManager {}

impl ProducerStateManager {
    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Every producer with state, by id.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(id, e)| (*id, e))
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// A copy holding only the given producers: enough to check a run of batches
    /// from them without touching the real state.
    pub fn subset(&self, ids: impl IntoIterator<Item = i64>) -> ProducerStateManager {
        let mut out = ProducerStateManager::default();
        for id in ids {
            if let Some(e) = self.producers.get(&id) {
                if let Some(first) = e.txn_first_offset {
                    out.open_txns.insert(first, id);
                }
                out.producers.insert(id, e.clone());
            }
        }
        out
    }

    /// Decides what to do with a batch from a producer (no-op for batches without one).
    pub fn check(&self, h: &BatchHeader) -> Result<SeqCheck, ProducerError> {
        if !h.has_producer_id() {
            return Ok(SeqCheck::Append);
        }
        let Some(e) = self.producers.get(&h.producer_id) else {
            if h.base_sequence != 0 && h.base_sequence != -1 {
                return Err(ProducerError::OutOfOrder {
                    expected: 0,
                    got: h.base_sequence,
                });
            }
            return Ok(SeqCheck::Append);
        };
        if h.producer_epoch < e.epoch {
            return Err(ProducerError::InvalidEpoch {
                got: h.producer_epoch,
                current: e.epoch,
            });
        }
        if !h.is_transactional() && e.txn_first_offset.is_some() {
            return Err(ProducerError::NotTransactional(h.producer_id));
        }
        if h.producer_epoch > e.epoch {
            if h.base_sequence != 0 && h.base_sequence != -1 {
                return Err(ProducerError::OutOfOrder {
                    expected: 0,
                    got: h.base_sequence,
                });
            }
            return Ok(SeqCheck::Append);
        }
        if h.base_sequence < 0 {
            return Ok(SeqCheck::Append);
        }
        let last_seq = h.last_sequence();
        if let Some(b) = e
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
        {
            return Ok(SeqCheck::Duplicate(*b));
        }
        if let Some(last) = e.batches.back() {
            let expected = next_seq(last.last_seq);
            if h.base_sequence != expected {
                return Err(ProducerError::OutOfOrder {
                    expected,
                    got: h.base_sequence,
                });
            }
        }
        Ok(SeqCheck::Append)
    }

    /// Whether a transactional batch would start a transaction at this partition (and so
    /// needs the coordinator's confirmation first, KIP-890).
    pub fn starts_transaction(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.starts_transaction_of(h.producer_id, h.producer_epoch)
    }

    /// Whether a transactional write of this producer and epoch would start a
    /// transaction here.
    pub fn starts_transaction_of(&self, producer_id: i64, producer_epoch: i16) -> bool {
        self.producers
            .get(&producer_id)
            .is_none_or(|e| e.txn_first_offset.is_none() || e.epoch != producer_epoch)
    }

    /// Starts verifying a transactional batch of `producer_id` with the coordinator;
    /// returns the guard to append with once the coordinator confirmed.
    pub fn start_verification(&mut self, producer_id: i64) -> u64 {
        self.next_guard += 1;
        self.verifying.insert(producer_id, self.next_guard);
        self.next_guard
    }

    /// Checks that a transaction-starting batch holds the producer's current guard, and
    /// uses the guard up.
    pub fn check_verified(
        &mut self,
        h: &BatchHeader,
        guard: Option<u64>,
    ) -> Result<(), ProducerError> {
        match (self.verifying.get(&h.producer_id), guard) {
            (Some(g), Some(given)) if *g == given => {
                self.verifying.remove(&h.producer_id);
                Ok(())
            }
            _ => Err(ProducerError::NotVerified(h.producer_id)),
        }
    }

    /// Notes a batch appended at its (assigned) base offset. Markers (control batches)
    /// are noted with `end_txn` instead.
    pub fn record(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() || h.is_control() {
            return;
        }
        let e = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != e.epoch {
            e.batches.clear();
            e.epoch = h.producer_epoch;
        }
        e.last_timestamp = h.max_timestamp;
        if h.is_transactional() && e.txn_first_offset.is_none() {
            e.txn_first_offset = Some(h.base_offset);
            self.open_txns.insert(h.base_offset, h.producer_id);
        }
        if h.base_sequence >= 0 {
            e.batches.push_back(BatchMeta {
                first_seq: h.base_sequence,
                last_seq: h.last_sequence(),
                first_offset: h.base_offset,
                last_offset: h.last_offset(),
                timestamp: h.max_timestamp,
            });
            while e.batches.len() > MAX_CACHED_BATCHES {
                e.batches.pop_front();
            }
        }
    }

    /// Whether a transaction marker may be written for `producer_id`: its epoch is not
    /// older than the producer's, and its coordinator not older than the last marker's.
    pub fn check_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
    ) -> Result<(), ProducerError> {
        let Some(e) = self.producers.get(&producer_id) else {
            return Ok(());
        };
        if producer_epoch < e.epoch {
            return Err(ProducerError::InvalidEpoch {
                got: producer_epoch,
                current: e.epoch,
            });
        }
        if coordinator_epoch < e.coordinator_epoch {
            return Err(ProducerError::CoordinatorFenced {
                got: coordinator_epoch,
                current: e.coordinator_epoch,
            });
        }
        Ok(())
    }

    /// Notes a marker appended at `offset`: the producer's open transaction (if any)
    /// ends; the marker's epoch becomes the producer's (a bumped epoch fences it here).
    pub fn end_txn(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        offset: i64,
        commit: bool,
        timestamp: i64,
    ) -> CompletedTxn {
        self.verifying.remove(&producer_id);
        let e = self.producers.entry(producer_id).or_default();
        if producer_epoch != e.epoch {
            e.batches.clear();
            e.epoch = producer_epoch;
        }
        e.coordinator_epoch = coordinator_epoch;
        e.last_timestamp = timestamp;
        let first_offset = match e.txn_first_offset.take() {
            Some(first) => {
                self.open_txns.remove(&first);
                first
            }
            None => offset,
        };
        self.unreplicated.insert(first_offset, offset);
        CompletedTxn {
            producer_id,
            first_offset,
            last_offset: offset,
            aborted: !commit,
        }
    }

    /// The first offset of the earliest open transaction.
    pub fn first_open_txn_offset(&self) -> Option<i64> {
        self.open_txns.keys().next().copied()
    }

    /// The high watermark moved to `hw`: ended transactions whose marker is below it are
    /// stable.
    pub fn on_high_watermark(&mut self, hw: i64) {
        self.unreplicated.retain(|_, marker| *marker >= hw);
    }

    /// The first offset of the earliest transaction still open or whose marker is not
    /// replicated (Kafka's `firstUnstableOffset`): read_committed consumers see nothing
    /// from here on.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let open = self.open_txns.keys().next().copied();
        let unreplicated = self.unreplicated.keys().next().copied();
        match (open, unreplicated) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The last stable offset for a high watermark `hw` (the smaller of `hw` and the
    /// first unstable offset), after forgetting transactions `hw` made stable.
    pub fn last_stable_offset(&mut self, hw: i64) -> i64 {
        self.on_high_watermark(hw);
        self.first_unstable_offset().map_or(hw, |f| f.min(hw))
    }

    /// Open transactions other than `producer_id`'s, earliest first offset (for an
    /// aborted transaction's last stable offset in the transaction index).
    pub fn first_open_txn_offset_except(&self, producer_id: i64) -> Option<i64> {
        self.open_txns
            .iter()
            .find(|(_, pid)| **pid != producer_id)
            .map(|(first, _)| *first)
    }

    /// Forgets producers whose last write is older than `max_age_ms` before `now_ms`;
    /// never one with an open transaction (as Kafka).
    pub fn expire(&mut self, now_ms: i64, max_age_ms: i64) {
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) <= max_age_ms
        });
    }

    /// Forgets batches at or beyond `offset` (the log was truncated there).
    pub fn truncate_from(&mut self, offset: i64) {
        for e in self.producers.values_mut() {
            e.batches.retain(|b| b.last_offset < offset);
            if e.txn_first_offset.is_some_and(|f| f >= offset) {
                e.txn_first_offset = None;
            }
        }
        self.producers
            .retain(|_, e| !e.batches.is_empty() || e.txn_first_offset.is_some());
        self.open_txns.retain(|first, _| *first < offset);
        self.unreplicated.retain(|_, marker| *marker < offset);
    }

    /// The snapshot file content: version, entries, CRC-32C of everything before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_u16(2);
        b.put_u32(self.producers.len() as u32);
        for (pid, e) in &self.producers {
            b.put_i64(*pid);
            b.put_i16(e.epoch);
            b.put_i64(e.last_timestamp);
            b.put_i64(e.txn_first_offset.unwrap_or(-1));
            b.put_i32(e.coordinator_epoch);
            b.put_u8(e.batches.len() as u8);
            for m in &e.batches {
                b.put_i32(m.first_seq);
                b.put_i32(m.last_seq);
                b.put_i64(m.first_offset);
                b.put_i64(m.last_offset);
                b.put_i64(m.timestamp);
            }
        }
        // Version 2: ended transactions whose marker was not yet below the HW.
        b.put_u32(self.unreplicated.len() as u32);
        for (first, marker) in &self.unreplicated {
            b.put_i64(*first);
            b.put_i64(*marker);
        }
        let crc = crc32c::crc32c(&b);
        b.put_u32(crc);
        b.to_vec()
    }

    /// Reads a snapshot (version 1, before transactions, or 2); `None` when it is damaged
    /// (the caller rebuilds from the log).
    pub fn decode(raw: &[u8]) -> Option<ProducerStateManager> {
        if raw.len() < 10 {
            return None;
        }
        let (body, crc) = raw.split_at(raw.len() - 4);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut c = body;
        let version = c.get_u16();
        if version != 1 && version != 2 {
            return None;
        }
        let n = c.get_u32() as usize;
        let mut producers = BTreeMap::new();
        let mut open_txns = BTreeMap::new();
        for _ in 0..n {
            if c.remaining() < if version == 1 { 19 } else { 31 } {
                return None;
            }
            let pid = c.get_i64();
            let epoch = c.get_i16();
            let last_timestamp = c.get_i64();
            let (txn_first_offset, coordinator_epoch) = if version == 1 {
                (None, -1)
            } else {
                let first = c.get_i64();
                (if first >= 0 { Some(first) } else { None }, c.get_i32())
            };
            if let Some(first) = txn_first_offset {
                open_txns.insert(first, pid);
            }
            let nb = c.get_u8() as usize;
            if c.remaining() < nb * 32 {
                return None;
            }
            let mut batches = VecDeque::with_capacity(nb);
            for _ in 0..nb {
                batches.push_back(BatchMeta {
                    first_seq: c.get_i32(),
                    last_seq: c.get_i32(),
                    first_offset: c.get_i64(),
                    last_offset: c.get_i64(),
                    timestamp: c.get_i64(),
                });
            }
            producers.insert(
                pid,
                ProducerEntry {
                    epoch,
                    batches,
                    last_timestamp,
                    txn_first_offset,
                    coordinator_epoch,
                },
            );
        }
        let mut unreplicated = BTreeMap::new();
        if version >= 2 {
            if c.remaining() < 4 {
                return None;
            }
            let n = c.get_u32() as usize;
            if c.remaining() < n * 16 {
                return None;
            }
            for _ in 0..n {
                unreplicated.insert(c.get_i64(), c.get_i64());
            }
        }
        Some(ProducerStateManager {
            producers,
            open_txns,
            unreplicated,
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pid: i64, epoch: i16, seq: i32, n: i32, base: i64) -> BatchHeader {
        BatchHeader {
            base_offset: base,
            batch_length: 100,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: n - 1,
            base_timestamp: 1,
            max_timestamp: 1000 + base,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            records_count: n,
        }
    }

    #[test]
    fn sequences_duplicates_and_gaps() {
        let mut s = ProducerStateManager::default();
        assert_eq!(s.check(&h(7, 0, 0, 3, 0)), Ok(SeqCheck::Append));
        s.record(&h(7, 0, 0, 3, 0));
        assert_eq!(s.check(&h(7, 0, 3, 2, 3)), Ok(SeqCheck::Append));
        s.record(&h(7, 0, 3, 2, 3));
        // The first batch again: a duplicate answered with its original offsets.
        match s.check(&h(7, 0, 0, 3, 99)).unwrap() {
            SeqCheck::Duplicate(m) => assert_eq!((m.first_offset, m.last_offset), (0, 2)),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            s.check(&h(7, 0, 6, 1, 5)),
            Err(ProducerError::OutOfOrder {
                expected: 5,
                got: 6
            })
        );
        assert_eq!(
            s.check(&h(8, 0, 4, 1, 5)),
            Err(ProducerError::OutOfOrder {
                expected: 0,
                got: 4
            })
        );
        // A new epoch starts at sequence 0; an old epoch is fenced.
        assert_eq!(s.check(&h(7, 1, 0, 1, 5)), Ok(SeqCheck::Append));
        s.record(&h(7, 1, 0, 1, 5));
        assert!(matches!(
            s.check(&h(7, 0, 5, 1, 6)),
            Err(ProducerError::InvalidEpoch { .. })
        ));
        // Non-idempotent batches are never checked.
        assert_eq!(s.check(&h(-1, -1, -1, 1, 6)), Ok(SeqCheck::Append));
    }

    #[test]
    fn only_five_batches_are_remembered() {
        let mut s = ProducerStateManager::default();
        for i in 0..7 {
            s.record(&h(1, 0, i, 1, i as i64));
        }
        assert_eq!(s.get(1).unwrap().batches.len(), 5);
        assert!(matches!(
            s.check(&h(1, 0, 6, 1, 9)),
            Ok(SeqCheck::Duplicate(_))
        ));
        assert!(matches!(
            s.check(&h(1, 0, 0, 1, 9)),
            Err(ProducerError::OutOfOrder { .. })
        ));
    }

    fn txn(pid: i64, epoch: i16, seq: i32, n: i32, base: i64) -> BatchHeader {
        let mut b = h(pid, epoch, seq, n, base);
        b.attributes |= super::super::batch::TRANSACTIONAL;
        b
    }

    /// Open transactions bound the stable offset; a marker ends one and reports its
    /// range; the next open one then bounds it.
    #[test]
    fn markers_end_open_transactions() {
        let mut s = ProducerStateManager::default();
        s.record(&txn(1, 0, 0, 2, 10));
        s.record(&txn(2, 0, 0, 1, 12));
        s.record(&txn(1, 0, 2, 1, 13));
        s.record(&h(3, 0, 0, 1, 14)); // idempotent only: no transaction
        assert_eq!(s.first_open_txn_offset(), Some(10));
        assert_eq!(s.first_open_txn_offset_except(1), Some(12));
        assert_eq!(s.check_marker(1, 0, 0), Ok(()));
        let done = s.end_txn(1, 0, 0, 15, false, 99);
        assert_eq!(
            done,
            CompletedTxn {
                producer_id: 1,
                first_offset: 10,
                last_offset: 15,
                aborted: true
            }
        );
        assert_eq!(s.first_open_txn_offset(), Some(12));
        let done = s.end_txn(2, 0, 0, 16, true, 99);
        assert_eq!((done.first_offset, done.aborted), (12, false));
        assert_eq!(s.first_open_txn_offset(), None);
        // Both ended, but until their markers (15, 16) are below the high watermark
        // the earliest stays unstable.
        assert_eq!(s.last_stable_offset(14), 10);
        assert_eq!(s.last_stable_offset(16), 12);
        assert_eq!(s.last_stable_offset(17), 17);
        // A marker for a producer with nothing open spans just itself.
        assert_eq!(s.end_txn(4, 0, 0, 17, false, 99).first_offset, 17);
    }

    /// Inside a transaction a producer must keep writing transactionally; markers from
    /// an older producer epoch or an older coordinator are refused; a marker with a
    /// bumped epoch (the coordinator aborting after a timeout) fences the producer here.
    #[test]
    fn markers_and_batches_are_checked_against_the_producer() {
        let mut s = ProducerStateManager::default();
        s.record(&txn(1, 3, 0, 1, 0));
        assert_eq!(
            s.check(&h(1, 3, 1, 1, 1)),
            Err(ProducerError::NotTransactional(1))
        );
        assert!(matches!(
            s.check_marker(1, 2, 0),
            Err(ProducerError::InvalidEpoch { .. })
        ));
        s.end_txn(1, 4, 5, 1, false, 1);
        assert!(matches!(
            s.check_marker(1, 4, 4),
            Err(ProducerError::CoordinatorFenced { got: 4, current: 5 })
        ));
        assert!(matches!(
            s.check(&txn(1, 3, 1, 1, 2)),
            Err(ProducerError::InvalidEpoch { got: 3, current: 4 })
        ));
        // After the marker the producer may write outside a transaction again.
        assert_eq!(s.check(&h(1, 4, 0, 1, 2)), Ok(SeqCheck::Append));
    }

    #[test]
    fn open_transactions_survive_snapshots_and_go_with_truncation() {
        let mut s = ProducerStateManager::default();
        s.record(&txn(1, 0, 0, 1, 10));
        s.record(&txn(2, 0, 0, 1, 11));
        s.end_txn(2, 0, 7, 12, true, 5);
        s.record(&txn(3, 0, 0, 1, 13));
        let back = ProducerStateManager::decode(&s.encode()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.unreplicated, BTreeMap::from([(11, 12)]));
        assert_eq!(back.first_open_txn_offset(), Some(10));
        assert_eq!(back.get(2).unwrap().coordinator_epoch, 7);
        let mut t = back.clone();
        t.truncate_from(13);
        assert_eq!(t.first_open_txn_offset(), Some(10));
        assert!(t.get(3).is_none());
        t.truncate_from(10);
        assert_eq!(t.first_open_txn_offset(), None);
        // Producers with an open transaction never expire.
        let mut e = back;
        e.expire(1_000_000, 10);
        assert!(e.get(1).is_some() && e.get(3).is_some() && e.get(2).is_none());
    }

    #[test]
    fn a_transaction_starts_only_with_a_guard_no_marker_voided() {
        let mut s = ProducerStateManager::default();
        let first = txn(1, 0, 0, 1, 10);
        assert!(s.starts_transaction(&first));
        // No verification: refused.
        assert_eq!(
            s.check_verified(&first, None),
            Err(ProducerError::NotVerified(1))
        );
        let g = s.start_verification(1);
        assert_eq!(
            s.check_verified(&first, Some(g + 1)),
            Err(ProducerError::NotVerified(1))
        );
        assert_eq!(s.check_verified(&first, Some(g)), Ok(()));
        // A guard is used once.
        assert_eq!(
            s.check_verified(&first, Some(g)),
            Err(ProducerError::NotVerified(1))
        );
        s.record(&first);
        // Inside the open transaction nothing needs verifying.
        assert!(!s.starts_transaction(&txn(1, 0, 1, 1, 11)));
        // A marker (here the abort of a timed-out transaction) voids a guard handed out
        // before it: the batch verified earlier cannot open a transaction after it.
        let g = s.start_verification(1);
        s.end_txn(1, 0, 0, 12, false, 5);
        let late = txn(1, 0, 2, 1, 13);
        assert!(s.starts_transaction(&late));
        assert_eq!(
            s.check_verified(&late, Some(g)),
            Err(ProducerError::NotVerified(1))
        );
        // Non-transactional batches never start one.
        assert!(!s.starts_transaction(&h(2, 0, 0, 1, 20)));
    }

    #[test]
    fn version_1_snapshots_still_load() {
        let mut s = ProducerStateManager::default();
        s.record(&h(1, 2, 0, 4, 10));
        // Version 1: no transaction fields.
        let mut b = BytesMut::new();
        b.put_u16(1);
        b.put_u32(1);
        b.put_i64(1);
        b.put_i16(2);
        b.put_i64(1010);
        b.put_u8(1);
        for v in [0i32, 3] {
            b.put_i32(v);
        }
        b.put_i64(10);
        b.put_i64(13);
        b.put_i64(1010);
        let crc = crc32c::crc32c(&b);
        b.put_u32(crc);
        assert_eq!(ProducerStateManager::decode(&b).unwrap(), s);
    }

    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut s = ProducerStateManager::default();
        s.record(&h(1, 2, 0, 4, 10));
        s.record(&h(9, 0, 0, 1, 14));
        let raw = s.encode();
        assert_eq!(ProducerStateManager::decode(&raw).unwrap(), s);
        let mut bad = raw.clone();
        bad[6] ^= 1;
        assert!(ProducerStateManager::decode(&bad).is_none());
        s.truncate_from(14);
        assert!(s.get(9).is_none());
        assert!(s.get(1).is_some());
    }
}
