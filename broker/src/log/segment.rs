//! One segment: `<base offset>.log` of record batches exactly as stored, with its sparse
//! offset and time indexes and its aborted-transaction index. A segment knows how to find
//! the byte position of an offset, scan its batches, and recover (cut a torn or corrupt
//! tail, rebuild its offset and time indexes; the partition rebuilds the aborted
//! transactions, which need producer state).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::batch::{self, BatchHeader, HEADER_LEN};
use super::index::{OffsetIndex, TimeIndex};
use super::storage::{Storage, StorageFile};
use super::txn_index::{self, AbortedTxn};

/// File name of a segment's log (and, with other extensions, its indexes).
pub fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}

/// What a segment knows about its content, updated on append.
#[derive(Clone, Debug)]
pub struct SegmentMeta {
    pub index: OffsetIndex,
    pub time_index: TimeIndex,
    pub bytes_since_index: u32,
    /// The offset after the last batch in this segment.
    pub next_offset: i64,
    /// The largest batch max timestamp seen, and the base offset of that batch.
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// The max timestamp of the first batch (Kafka rolls on `segment.ms` from it), or
    /// the creation time when the segment is empty.
    pub roll_base_ms: Option<i64>,
    pub created_ms: i64,
    /// Transactions aborted by a marker in this segment (`.txnindex`), in log order.
    pub aborted: Vec<AbortedTxn>,
}

pub struct Segment {
    pub base_offset: i64,
    pub log: Arc<dyn StorageFile>,
    dir: PathBuf,
    pub meta: Mutex<SegmentMeta>,
}

/// A batch found by a scan: its header (with its stored base offset) and byte range.
#[derive(Clone, Copy, Debug)]
pub struct ScannedBatch {
    pub header: BatchHeader,
    pub position: u64,
}

impl Segment {
    fn new(base_offset: i64, log: Arc<dyn StorageFile>, dir: &Path, now_ms: i64) -> Segment {
        Segment {
            base_offset,
            log,
            dir: dir.to_path_buf(),
            meta: Mutex::new(SegmentMeta {
                index: OffsetIndex::default(),
                time_index: TimeIndex::default(),
                bytes_since_index: 0,
                next_offset: base_offset,
                max_timestamp: -1,
                offset_of_max_timestamp: base_offset,
                roll_base_ms: None,
                created_ms: now_ms,
                aborted: Vec::new(),
            }),
        }
    }

    pub fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(file_name(self.base_offset, ext))
    }

    /// Creates an empty segment.
    pub async fn create(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
        now_ms: i64,
    ) -> std::io::Result<Segment> {
        let log = storage
            .open(&dir.join(file_name(base_offset, "log")), true)
            .await?;
        if !log.is_empty() {
            log.truncate(0).await?;
        }
        Ok(Segment::new(base_offset, log, dir, now_ms))
    }

    /// Opens an existing segment. With `trusted` indexes (clean shutdown, or below the
    /// recovery point) only the bytes after the last index entry are walked; otherwise
    /// every batch is checked (CRC) and a bad tail is cut off. Returns the segment and
    /// whether it had to cut bytes.
    pub async fn open(
        storage: &dyn Storage,
        dir: &Path,
        base_offset: i64,
        trusted: bool,
        now_ms: i64,
    ) -> std::io::Result<(Segment, bool)> {
        let log = storage
            .open(&dir.join(file_name(base_offset, "log")), false)
            .await?;
        let seg = Segment::new(base_offset, log, dir, now_ms);
        if trusted {
            let idx = storage.read_file(&seg.path("index")).await?;
            let tidx = storage.read_file(&seg.path("timeindex")).await?;
            let parsed = match (idx, tidx) {
                (Some(i), Some(t)) => {
                    OffsetIndex::decode(&i, seg.log.len()).zip(TimeIndex::decode(&t))
                }
                _ => None,
            };
            if let Some((index, time_index)) = parsed {
                let (rel, pos) = index.lookup(u32::MAX);
                let ok = {
                    let mut m = seg.meta.lock();
                    m.index = index;
                    m.time_index = time_index;
                    if let Some((ts, rel_off)) = m.time_index.last() {
                        m.max_timestamp = ts;
                        m.offset_of_max_timestamp = base_offset + rel_off as i64;
                    }
                    m.next_offset = base_offset + rel as i64;
                    true
                };
                if ok {
                    let end = seg.walk_from(pos as u64, false).await?;
                    if end == seg.log.len() {
                        return Ok((seg, false));
                    }
                }
                tracing::warn!(segment = %seg.path("log").display(), "index does not match the log; recovering");
            }
        }
        let cut = seg.recover().await?;
        Ok((seg, cut))
    }

    /// Rebuilds the indexes from a full scan with CRC checks and cuts the file after the
    /// last whole, valid batch. Returns true when bytes were cut.
    pub async fn recover(&self) -> std::io::Result<bool> {
        {
            let mut m = self.meta.lock();
            m.index = OffsetIndex::default();
            m.time_index = TimeIndex::default();
            m.bytes_since_index = 0;
            m.next_offset = self.base_offset;
            m.max_timestamp = -1;
            m.offset_of_max_timestamp = self.base_offset;
            m.roll_base_ms = None;
        }
        let end = self.walk_from(0, true).await?;
        let len = self.log.len();
        if end < len {
            tracing::warn!(
                segment = %self.path("log").display(),
                valid_bytes = end,
                cut_bytes = len - end,
                "cutting a torn or corrupt tail"
            );
            self.log.truncate(end).await?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Walks batches from `pos`, noting each in the indexes and meta; with `check_crc`
    /// each batch's CRC is verified. Returns the position after the last good batch.
    async fn walk_from(&self, mut pos: u64, check_crc: bool) -> std::io::Result<u64> {
        const CHUNK: usize = 1 << 20;
        let len = self.log.len();
        let mut expected_next: Option<i64> = None;
        while pos < len {
            let want = CHUNK.min((len - pos) as usize);
            let buf = self.log.read_at(pos, want).await?;
            let mut used = 0usize;
            for (h, r) in batch::walk(&buf) {
                if h.magic != 2 || (check_crc && !batch::crc_ok(&buf[r.clone()])) {
                    return Ok(pos + used as u64);
                }
                if h.base_offset < self.base_offset
                    || expected_next.is_some_and(|n| h.base_offset < n)
                {
                    return Ok(pos + used as u64);
                }
                expected_next = Some(h.last_offset() + 1);
                self.note_batch(&h, pos + r.start as u64, h.size() as u32, 4096);
                used = r.end;
            }
            if used == 0 {
                // One batch bigger than the chunk: read exactly it.
                let head = self.log.read_at(pos, HEADER_LEN).await?;
                let Some(h) = BatchHeader::parse(&head) else {
                    return Ok(pos);
                };
                if h.batch_length < (HEADER_LEN - batch::LOG_OVERHEAD) as i32
                    || pos + h.size() as u64 > len
                {
                    return Ok(pos);
                }
                let whole = self.log.read_at(pos, h.size()).await?;
                if whole.len() < h.size() || h.magic != 2 || (check_crc && !batch::crc_ok(&whole)) {
                    return Ok(pos);
                }
                if h.base_offset < self.base_offset
                    || expected_next.is_some_and(|n| h.base_offset < n)
                {
                    return Ok(pos);
                }
                expected_next = Some(h.last_offset() + 1);
                self.note_batch(&h, pos, h.size() as u32, 4096);
                used = h.size();
            }
            pos += used as u64;
        }
        Ok(pos)
    }

    /// Updates indexes and meta for a batch stored at `position`.
    pub fn note_batch(&self, h: &BatchHeader, position: u64, size: u32, index_interval: u32) {
        let mut m = self.meta.lock();
        let rel = (h.base_offset - self.base_offset) as u32;
        if m.index.is_empty() || m.bytes_since_index >= index_interval {
            m.index.append(rel, position as u32);
            if h.max_timestamp > m.max_timestamp || m.time_index.last().is_none() {
                let ts = h.max_timestamp.max(m.max_timestamp);
                m.time_index.append(ts, rel);
            }
            m.bytes_since_index = 0;
        }
        m.bytes_since_index = m.bytes_since_index.saturating_add(size);
        if h.max_timestamp > m.max_timestamp {
            m.max_timestamp = h.max_timestamp;
            m.offset_of_max_timestamp = h.base_offset;
        }
        if m.roll_base_ms.is_none() {
            m.roll_base_ms = Some(h.max_timestamp);
        }
        m.next_offset = h.last_offset() + 1;
    }

    /// The position of the batch containing `offset`, scanning from the index entry at
    /// or below it; `None` when the offset is at or beyond `limit` (a byte position).
    pub async fn find_position(
        &self,
        offset: i64,
        limit: u64,
    ) -> std::io::Result<Option<ScannedBatch>> {
        let rel = offset
            .saturating_sub(self.base_offset)
            .clamp(0, u32::MAX as i64) as u32;
        let (_, pos) = self.meta.lock().index.lookup(rel);
        let mut pos = pos as u64;
        while pos < limit {
            let head = self.log.read_at(pos, HEADER_LEN).await?;
            let Some(h) = BatchHeader::parse(&head) else {
                return Ok(None);
            };
            if h.last_offset() >= offset {
                return Ok(Some(ScannedBatch {
                    header: h,
                    position: pos,
                }));
            }
            pos += h.size() as u64;
        }
        Ok(None)
    }

    /// Reads whole batches from `position` up to `limit`, at most `max_bytes` of them;
    /// with `min_one`, the first batch is returned whole even when larger.
    pub async fn read_batches(
        &self,
        position: u64,
        limit: u64,
        max_bytes: usize,
        min_one: bool,
    ) -> std::io::Result<Bytes> {
        if position >= limit {
            return Ok(Bytes::new());
        }
        let want = max_bytes.min((limit - position) as usize);
        let buf = self.log.read_at(position, want).await?;
        let end = batch::walk(&buf).last().map_or(0, |(_, r)| r.end);
        if end > 0 {
            return Ok(buf.slice(..end));
        }
        if !min_one {
            return Ok(Bytes::new());
        }
        let head = if buf.len() >= HEADER_LEN {
            buf.slice(..HEADER_LEN)
        } else {
            self.log.read_at(position, HEADER_LEN).await?
        };
        let Some(h) = BatchHeader::parse(&head) else {
            return Ok(Bytes::new());
        };
        let size = (h.size() as u64).min(limit - position) as usize;
        let whole = self.log.read_at(position, size).await?;
        Ok(if whole.len() == h.size() {
            whole
        } else {
            Bytes::new()
        })
    }

    /// All batches from `position` to `limit` (headers only), for scans.
    pub async fn scan_headers(
        &self,
        mut position: u64,
        limit: u64,
    ) -> std::io::Result<Vec<ScannedBatch>> {
        let mut out = Vec::new();
        while position < limit {
            let head = self.log.read_at(position, HEADER_LEN).await?;
            let Some(h) = BatchHeader::parse(&head) else {
                break;
            };
            out.push(ScannedBatch {
                header: h,
                position,
            });
            position += h.size() as u64;
        }
        Ok(out)
    }

    /// Writes the index files (done when the segment is sealed and on clean shutdown).
    pub async fn write_indexes(&self, storage: &dyn Storage) -> std::io::Result<()> {
        let (idx, tidx, aborted) = {
            let m = self.meta.lock();
            let mut t = m.time_index.clone();
            // Record the final max timestamp so a reopened segment knows it.
            t.append(
                m.max_timestamp,
                (m.offset_of_max_timestamp - self.base_offset).max(0) as u32,
            );
            (m.index.encode(), t.encode(), m.aborted.clone())
        };
        storage.write_file_atomic(&self.path("index"), &idx).await?;
        storage
            .write_file_atomic(&self.path("timeindex"), &tidx)
            .await?;
        if aborted.is_empty() {
            storage.remove_file(&self.path("txnindex")).await
        } else {
            storage
                .write_file_atomic(&self.path("txnindex"), &txn_index::encode(&aborted))
                .await
        }
    }

    /// Loads `.txnindex` (none: no aborted transactions), dropping entries at or past the
    /// segment's end (a recovered tail). Returns false when the file is damaged.
    pub async fn load_txn_index(&self, storage: &dyn Storage) -> std::io::Result<bool> {
        let Some(raw) = storage.read_file(&self.path("txnindex")).await? else {
            return Ok(true);
        };
        let Some(entries) = txn_index::decode(&raw) else {
            return Ok(false);
        };
        let mut m = self.meta.lock();
        let end = m.next_offset;
        m.aborted = entries
            .into_iter()
            .filter(|e| e.last_offset < end)
            .collect();
        Ok(true)
    }

    /// Notes a transaction aborted by a marker in this segment.
    pub fn add_aborted(&self, e: AbortedTxn) {
        self.meta.lock().aborted.push(e);
    }

    /// Forgets aborted transactions whose marker is at or after `offset`.
    pub fn drop_aborted_from(&self, offset: i64) {
        self.meta.lock().aborted.retain(|e| e.last_offset < offset);
    }

    /// This segment's aborted transactions overlapping `[from, upper)`; true when the
    /// search needs no later segment (see `txn_index::collect`).
    pub fn collect_aborted(&self, from: i64, upper: i64, out: &mut Vec<AbortedTxn>) -> bool {
        txn_index::collect(&self.meta.lock().aborted, from, upper, out)
    }

    pub fn size(&self) -> u64 {
        self.log.len()
    }

    pub fn next_offset(&self) -> i64 {
        self.meta.lock().next_offset
    }

    pub fn max_timestamp(&self) -> i64 {
        self.meta.lock().max_timestamp
    }

    /// Removes the segment's files.
    pub async fn delete_files(&self, storage: &dyn Storage) -> std::io::Result<()> {
        for ext in ["log", "index", "timeindex", "txnindex"] {
            storage.remove_file(&self.path(ext)).await?;
        }
        Ok(())
    }
}
