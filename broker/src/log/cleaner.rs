//! Log compaction for `cleanup.policy=compact`: in the sealed segments, only the latest
//! record of each key survives; tombstones (null values) survive `delete.retention.ms`
//! and then go too. Offsets never change and are never reused: a cleaned batch keeps
//! its records' offsets (with gaps), its producer fields and its codec.
//!
//! Transactions (KIP-98, as Kafka's cleaner): only what is below the last stable offset
//! is cleaned; the records of aborted transactions are removed and never count as the
//! latest value of their key; a marker (control batch) goes once its transaction keeps
//! no record and it is older than `delete.retention.ms` (a consumer that read the
//! transaction's records may need it until then).
//!
//! A segment is cleaned into `<base>.cleaned` (streamed: one batch of it in memory at a
//! time), synced, then renamed over the original; a crash in between leaves the
//! original (the `.cleaned` file is removed at start). A segment that would lose no
//! record is left as it is.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
};

use super::batch::{self, BatchHeader};
use super::segment::Segment;
use super::storage::StorageFile;
use super::txn_index::AbortedTxn;

/// Whether a batch belongs to an aborted transaction (its producer's transaction that
/// an abort marker at or after it ended).
pub fn in_aborted_txn(h: &BatchHeader, aborted: &[AbortedTxn]) -> bool {
    h.is_transactional()
        && !h.is_control()
        && aborted.iter().any(|a| {
            a.producer_id == h.producer_id
                && a.first_offset <= h.base_offset
                && h.base_offset < a.last_offset
        })
}

/// The latest offset of every key in some segments, and roughly the memory it takes.
#[derive(Default)]
pub struct OffsetMap {
    latest: HashMap<Bytes, i64>,
    bytes: usize,
}

/// Bytes an entry costs besides its key: the offset, the `Bytes` handle, the table.
const ENTRY_OVERHEAD: usize = 64;

impl OffsetMap {
    pub fn get(&self, key: &[u8]) -> Option<&i64> {
        self.latest.get(key)
    }

    fn insert(&mut self, key: &[u8], offset: i64) {
        match self.latest.get_mut(key) {
            Some(o) => *o = offset,
            None => {
                self.bytes += key.len() + ENTRY_OVERHEAD;
                self.latest.insert(Bytes::copy_from_slice(key), offset);
            }
        }
    }
}

/// Adds the keys of a segment's batches to `map` (later offsets win), stopping once the
/// map takes more than `limit` bytes. True when the whole segment was indexed. Keys of
/// a part-indexed segment stay in the map: they are newer than every earlier segment's
/// records, so cleaning those with them is still right.
pub async fn index_keys(
    seg: &Segment,
    map: &mut OffsetMap,
    limit: usize,
    aborted: &[AbortedTxn],
) -> std::io::Result<bool> {
    // One batch in memory at a time.
    for b in seg.scan_headers(0, seg.size()).await? {
        if b.header.is_control() || in_aborted_txn(&b.header, aborted) {
            continue;
        }
        let mut bytes = seg.log.read_at(b.position, b.header.size()).await?;
        if bytes.len() != b.header.size() {
            continue;
        }
        if let Ok(set) = RecordBatchDecoder::decode(&mut bytes) {
            for r in set.records {
                if let Some(k) = r.key {
                    map.insert(&k, r.offset);
                    if map.bytes > limit {
                        return Ok(false);
                    }
                }
            }
        }
    }
    Ok(true)
}

/// What the cleaner removes for transactions besides superseded records.
#[derive(Default)]
pub struct TxnCleaning {
    /// Aborted transactions (their records go).
    pub aborted: Vec<AbortedTxn>,
    /// Offsets of the markers that go.
    pub discard_markers: BTreeSet<i64>,
}

/// The markers of `segs` (in log order, from the log start) that may go: their
/// transaction keeps no record once cleaned (aborted, or every record superseded) and
/// they are older than `tombstone_cutoff_ms`.
pub async fn discardable_markers(
    segs: &[Arc<Segment>],
    map: &OffsetMap,
    tombstone_cutoff_ms: i64,
    aborted: &[AbortedTxn],
) -> std::io::Result<BTreeSet<i64>> {
    // Producers whose transaction, not ended yet in the scan, keeps a record.
    let mut live: BTreeSet<i64> = BTreeSet::new();
    let mut out = BTreeSet::new();
    for seg in segs {
        for b in seg.scan_headers(0, seg.size()).await? {
            let h = &b.header;
            if !h.is_transactional() {
                continue;
            }
            if h.is_control() {
                if !live.remove(&h.producer_id) && h.max_timestamp < tombstone_cutoff_ms {
                    out.insert(h.base_offset);
                }
                continue;
            }
            if live.contains(&h.producer_id) || in_aborted_txn(h, aborted) {
                continue;
            }
            let mut bytes = seg.log.read_at(b.position, h.size()).await?;
            let keeps = bytes.len() != h.size()
                || match RecordBatchDecoder::decode(&mut bytes) {
                    Ok(set) => set
                        .records
                        .iter()
                        .any(|r| survives(h, r, map, tombstone_cutoff_ms)),
                    Err(_) => true,
                };
            if keeps {
                live.insert(h.producer_id);
            }
        }
    }
    Ok(out)
}

/// What cleaning one segment did.
#[derive(Default)]
pub struct Cleaned {
    pub kept: usize,
    pub removed: usize,
}

/// Bytes of cleaned batches gathered before each write to the cleaned file.
const WRITE_CHUNK: usize = 1 << 20;

/// Whether cleaning the segment would remove any record (reads one batch at a time).
pub async fn removes_any(
    seg: &Segment,
    map: &OffsetMap,
    tombstone_cutoff_ms: i64,
    txn: &TxnCleaning,
) -> std::io::Result<bool> {
    for b in seg.scan_headers(0, seg.size()).await? {
        if in_aborted_txn(&b.header, &txn.aborted)
            || (b.header.is_control() && txn.discard_markers.contains(&b.header.base_offset))
        {
            return Ok(true);
        }
        let bytes = seg.log.read_at(b.position, b.header.size()).await?;
        if bytes.len() != b.header.size() || b.header.is_control() {
            continue;
        }
        let mut dec = bytes.clone();
        if let Ok(set) = RecordBatchDecoder::decode(&mut dec) {
            let h = &b.header;
            if set
                .records
                .iter()
                .any(|r| !survives(h, r, map, tombstone_cutoff_ms))
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn survives(
    h: &BatchHeader,
    r: &kafka_protocol::records::Record,
    map: &OffsetMap,
    tombstone_cutoff_ms: i64,
) -> bool {
    let latest = r
        .key
        .as_ref()
        .is_none_or(|k| map.get(k).is_none_or(|o| *o == r.offset));
    let live_tombstone = r.value.is_some() || h.max_timestamp >= tombstone_cutoff_ms;
    latest && live_tombstone
}

/// Writes the segment's batches to `out` with only the records `map` names as latest
/// for their key; tombstones only while younger than `tombstone_cutoff_ms`. One batch
/// of the segment is in memory at a time, and at most about a megabyte of output.
pub async fn clean_segment(
    seg: &Segment,
    map: &OffsetMap,
    tombstone_cutoff_ms: i64,
    txn: &TxnCleaning,
    out: &dyn StorageFile,
) -> std::io::Result<Cleaned> {
    let mut buf = BytesMut::new();
    let mut done = Cleaned::default();
    for b in seg.scan_headers(0, seg.size()).await? {
        let bytes = seg.log.read_at(b.position, b.header.size()).await?;
        if bytes.len() != b.header.size() {
            continue;
        }
        if in_aborted_txn(&b.header, &txn.aborted)
            || (b.header.is_control() && txn.discard_markers.contains(&b.header.base_offset))
        {
            done.removed += b.header.records_count.max(0) as usize;
            continue;
        }
        clean_batch(
            &b.header,
            bytes,
            map,
            tombstone_cutoff_ms,
            &mut buf,
            &mut done,
        )?;
        if buf.len() >= WRITE_CHUNK {
            out.append(&[&buf]).await?;
            buf.clear();
        }
    }
    if !buf.is_empty() {
        out.append(&[&buf]).await?;
    }
    Ok(done)
}

/// Appends to `out` what remains of one batch.
fn clean_batch(
    h: &BatchHeader,
    bytes: Bytes,
    map: &OffsetMap,
    tombstone_cutoff_ms: i64,
    out: &mut BytesMut,
    done: &mut Cleaned,
) -> std::io::Result<()> {
    if h.is_control() {
        out.extend_from_slice(&bytes);
        return Ok(());
    }
    let mut b = bytes.clone();
    let Ok(set) = RecordBatchDecoder::decode(&mut b) else {
        out.extend_from_slice(&bytes);
        return Ok(());
    };
    let total = set.records.len();
    let retained: Vec<_> = set
        .records
        .into_iter()
        .filter(|r| survives(h, r, map, tombstone_cutoff_ms))
        .collect();
    done.removed += total - retained.len();
    done.kept += retained.len();
    if retained.is_empty() {
        return Ok(());
    }
    if retained.len() == total {
        out.extend_from_slice(&bytes);
        return Ok(());
    }
    let mut records = retained;
    for r in records.iter_mut() {
        // Keep offset minus sequence constant so the encoder writes one batch.
        r.sequence = if h.base_sequence < 0 {
            (r.offset - h.base_offset) as i32 - 1
        } else {
            h.base_sequence
                .wrapping_add((r.offset - h.base_offset) as i32)
        };
        r.partition_leader_epoch = h.partition_leader_epoch;
    }
    let compression = match h.compression() {
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        _ => Compression::None,
    };
    let mut enc = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut enc,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    // The encoder starts at the first retained offset; the broker fields follow the
    // original batch.
    let first = records[0].offset;
    let prefix = batch::stamped_prefix(&enc, first, h.partition_leader_epoch);
    enc[..16].copy_from_slice(&prefix);
    if h.attributes & batch::TIMESTAMP_TYPE_LOG_APPEND != 0 {
        // The encoder drops the timestamp-type bit; LogAppendTime batches keep it.
        batch::set_log_append_time(&mut enc, h.max_timestamp);
    }
    out.extend_from_slice(&enc);
    Ok(())
}
