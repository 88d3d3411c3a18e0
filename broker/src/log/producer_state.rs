//! Idempotent producer state of one partition: for each producer id, its epoch and the
//! last five batches it wrote (sequence range and offsets), as Kafka keeps it. `check`
//! decides whether a batch is new, a duplicate (answered with its original offsets), or
//! out of order; `record` notes an appended batch. Snapshots (`<offset>.snapshot`) let a
//! restart rebuild the state from the snapshot plus the log tail after it.

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

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
    pub last_timestamp: i64,
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
}

fn next_seq(s: i32) -> i32 {
    if s == i32::MAX {
        0
    } else {
        s + 1
    }
}

/// Producer state of one partition.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: BTreeMap<i64, ProducerEntry>,
}

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

    /// Notes a batch appended at its (assigned) base offset.
    pub fn record(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() {
            return;
        }
        let e = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != e.epoch {
            e.batches.clear();
            e.epoch = h.producer_epoch;
        }
        e.last_timestamp = h.max_timestamp;
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

    /// Forgets producers whose last write is older than `max_age_ms` before `now_ms`.
    pub fn expire(&mut self, now_ms: i64, max_age_ms: i64) {
        self.producers
            .retain(|_, e| now_ms.saturating_sub(e.last_timestamp) <= max_age_ms);
    }

    /// Forgets batches at or beyond `offset` (the log was truncated there).
    pub fn truncate_from(&mut self, offset: i64) {
        for e in self.producers.values_mut() {
            e.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
    }

    /// The snapshot file content: version, entries, CRC-32C of everything before it.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = BytesMut::new();
        b.put_u16(1);
        b.put_u32(self.producers.len() as u32);
        for (pid, e) in &self.producers {
            b.put_i64(*pid);
            b.put_i16(e.epoch);
            b.put_i64(e.last_timestamp);
            b.put_u8(e.batches.len() as u8);
            for m in &e.batches {
                b.put_i32(m.first_seq);
                b.put_i32(m.last_seq);
                b.put_i64(m.first_offset);
                b.put_i64(m.last_offset);
                b.put_i64(m.timestamp);
            }
        }
        let crc = crc32c::crc32c(&b);
        b.put_u32(crc);
        b.to_vec()
    }

    /// Reads a snapshot; `None` when it is damaged (the caller rebuilds from the log).
    pub fn decode(raw: &[u8]) -> Option<ProducerStateManager> {
        if raw.len() < 10 {
            return None;
        }
        let (body, crc) = raw.split_at(raw.len() - 4);
        if crc32c::crc32c(body) != u32::from_be_bytes(crc.try_into().ok()?) {
            return None;
        }
        let mut c = body;
        if c.get_u16() != 1 {
            return None;
        }
        let n = c.get_u32() as usize;
        let mut producers = BTreeMap::new();
        for _ in 0..n {
            if c.remaining() < 19 {
                return None;
            }
            let pid = c.get_i64();
            let epoch = c.get_i16();
            let last_timestamp = c.get_i64();
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
                },
            );
        }
        Some(ProducerStateManager { producers })
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
