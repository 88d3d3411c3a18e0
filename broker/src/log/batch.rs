//! Record batch (magic v2) headers: reading them, checking a batch as Kafka does before
//! appending it (length, magic, CRC-32C, record count), and stamping the two fields the
//! broker owns (base offset and partition leader epoch), which the CRC does not cover.
//! No per-record decoding happens here.

use bytes::{Buf, Bytes};

/// Bytes before the records: the fixed part of a v2 batch.
pub const HEADER_LEN: usize = 61;
/// `base_offset` (8) + `batch_length` (4): enough to walk batches.
pub const LOG_OVERHEAD: usize = 12;

const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;

/// Attribute bits.
pub const COMPRESSION_MASK: i16 = 0x07;
pub const TIMESTAMP_TYPE_LOG_APPEND: i16 = 0x08;
pub const TRANSACTIONAL: i16 = 0x10;
pub const CONTROL: i16 = 0x20;

/// The fixed header of a v2 record batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header at the start of `b` (at least `HEADER_LEN` bytes).
    pub fn parse(b: &[u8]) -> Option<BatchHeader> {
        if b.len() < HEADER_LEN {
            return None;
        }
        let mut c = &b[..HEADER_LEN];
        Some(BatchHeader {
            base_offset: c.get_i64(),
            batch_length: c.get_i32(),
            partition_leader_epoch: c.get_i32(),
            magic: c.get_i8(),
            crc: c.get_u32(),
            attributes: c.get_i16(),
            last_offset_delta: c.get_i32(),
            base_timestamp: c.get_i64(),
            max_timestamp: c.get_i64(),
            producer_id: c.get_i64(),
            producer_epoch: c.get_i16(),
            base_sequence: c.get_i32(),
            records_count: c.get_i32(),
        })
    }

    /// Total bytes of the batch on disk.
    pub fn size(&self) -> usize {
        self.batch_length as usize + LOG_OVERHEAD
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }

    pub fn compression(&self) -> i16 {
        self.attributes & COMPRESSION_MASK
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL != 0
    }

    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }

    /// The sequence number of the last record (sequences wrap at `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Why a batch was refused; `error::kafka_code` maps these to Kafka's codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch is truncated or its length field is wrong")]
    Corrupt,
    #[error("record batch CRC mismatch (stored {stored:#x}, computed {computed:#x})")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("record batch magic {0} is not supported (only v2)")]
    UnsupportedMagic(i8),
    #[error("record batch is invalid: {0}")]
    InvalidRecord(&'static str),
    #[error("record batch of {0} bytes is larger than max.message.bytes")]
    TooLarge(usize),
    #[error("compression codec {0} is unknown")]
    UnsupportedCompression(i16),
    /// A record-level check failed (see `records::inspect`).
    #[error("record batch is invalid: {0}")]
    InvalidRecords(String),
    #[error("record batch cannot be decompressed: {0}")]
    Decompression(String),
}

/// A checked batch within a produce request's records, as a zero-copy slice.
#[derive(Clone, Debug)]
pub struct ValidBatch {
    pub header: BatchHeader,
    pub bytes: Bytes,
}

/// Splits `records` (a produce request's partition data) into batches and checks each:
/// length, magic 2, CRC-32C over attributes..end, record count consistent with the last
/// offset delta, a known codec, and size within `max_message_bytes`.
pub fn validate_batches(
    records: &Bytes,
    max_message_bytes: usize,
) -> Result<Vec<ValidBatch>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    if records.is_empty() {
        return Err(BatchError::InvalidRecord("empty records"));
    }
    while pos < records.len() {
        let rest = &records[pos..];
        if rest.len() < LOG_OVERHEAD + 5 {
            return Err(BatchError::Corrupt);
        }
        let magic = rest[MAGIC_OFFSET.min(rest.len() - 1)] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let header = BatchHeader::parse(rest).ok_or(BatchError::Corrupt)?;
        if header.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Corrupt);
        }
        let size = header.size();
        if size > rest.len() {
            return Err(BatchError::Corrupt);
        }
        if size > max_message_bytes {
            return Err(BatchError::TooLarge(size));
        }
        let computed = crc32c::crc32c(&rest[ATTRIBUTES_OFFSET..size]);
        if computed != header.crc {
            return Err(BatchError::CrcMismatch {
                stored: header.crc,
                computed,
            });
        }
        if header.records_count <= 0 {
            return Err(BatchError::InvalidRecord("batch has no records"));
        }
        if header.last_offset_delta != header.records_count - 1 {
            return Err(BatchError::InvalidRecord(
                "last offset delta does not match the record count",
            ));
        }
        if header.compression() > 4 {
            return Err(BatchError::UnsupportedCompression(header.compression()));
        }
        if header.is_control() {
            return Err(BatchError::InvalidRecord(
                "clients cannot write control batches",
            ));
        }
        out.push(ValidBatch {
            header,
            bytes: records.slice(pos..pos + size),
        });
        pos += size;
    }
    Ok(out)
}

/// The first 16 bytes of a batch with the broker's base offset and leader epoch:
/// written in place of the producer's.
pub fn stamped_prefix(batch: &[u8], base_offset: i64, leader_epoch: i32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0..8].copy_from_slice(&base_offset.to_be_bytes());
    p[8..12].copy_from_slice(&batch[8..12]);
    p[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    p
}

/// Walks whole batches in `buf` (as read from a segment): yields each header and its
/// byte range. Stops at the first incomplete or malformed batch.
pub fn walk(buf: &[u8]) -> impl Iterator<Item = (BatchHeader, std::ops::Range<usize>)> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let h = BatchHeader::parse(&buf[pos..])?;
        if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return None;
        }
        let end = pos.checked_add(h.size())?;
        if end > buf.len() {
            return None;
        }
        let r = pos..end;
        pos = end;
        Some((h, r))
    })
}

/// True when the stored CRC of a whole batch matches its content.
pub fn crc_ok(batch: &[u8]) -> bool {
    match BatchHeader::parse(batch) {
        Some(h) if batch.len() >= h.size() && h.magic == 2 => {
            crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..h.size()]) == h.crc
        }
        _ => false,
    }
}

/// Rewrites `max_timestamp` and the timestamp-type bit for `LogAppendTime` topics, and
/// recomputes the CRC (both fields are covered by it).
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attrs = i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]])
        | TIMESTAMP_TYPE_LOG_APPEND;
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Rewrites a batch's `max_timestamp` (keeping its timestamp type) and recomputes the CRC.
pub fn set_max_timestamp(batch: &mut [u8], ts: i64) {
    batch[35..43].copy_from_slice(&ts.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// The codec a topic's `compression.type` asks for; `None` for `producer` (keep what
/// the producer sent).
pub fn topic_codec(compression_type: &str) -> Option<kafka_protocol::records::Compression> {
    use kafka_protocol::records::Compression;
    match compression_type {
        "uncompressed" => Some(Compression::None),
        "gzip" => Some(Compression::Gzip),
        "snappy" => Some(Compression::Snappy),
        "lz4" => Some(Compression::Lz4),
        "zstd" => Some(Compression::Zstd),
        _ => None,
    }
}

/// Re-encodes a batch with another codec, as Kafka does when a topic's
/// `compression.type` differs from the producer's: same records, offsets deltas,
/// timestamps, producer id, epoch and sequences.
pub fn recompress(
    batch: &Bytes,
    codec: kafka_protocol::records::Compression,
) -> Result<ValidBatch, BatchError> {
    use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};
    let mut buf = batch.clone();
    let set = RecordBatchDecoder::decode(&mut buf)
        .map_err(|_| BatchError::InvalidRecord("cannot decode the batch's records"))?;
    let mut out = bytes::BytesMut::with_capacity(batch.len());
    RecordBatchEncoder::encode(
        &mut out,
        &set.records,
        &RecordEncodeOptions {
            version: 2,
            compression: codec,
        },
    )
    .map_err(|_| BatchError::InvalidRecord("cannot re-encode the batch"))?;
    let bytes = out.freeze();
    let header = BatchHeader::parse(&bytes).ok_or(BatchError::Corrupt)?;
    if header.size() != bytes.len() {
        // The encoder split the records into several batches; keep the producer's.
        return Err(BatchError::InvalidRecord("re-encoding split the batch"));
    }
    Ok(ValidBatch { header, bytes })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// An uncompressed batch of plain (non-idempotent) records: (key, value, timestamp)
    /// each, sequences running with the offsets so the encoder keeps them in one batch.
    pub fn plain_records(records: Vec<(Option<Bytes>, Bytes, i64)>) -> Bytes {
        let records: Vec<Record> = records
            .into_iter()
            .enumerate()
            .map(|(i, (key, value, timestamp))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32 - 1,
                timestamp,
                key,
                value: Some(value),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        buf.freeze()
    }

    /// A batch of `n` records as a producer would send it.
    pub fn make_batch(
        n: usize,
        compression: Compression,
        producer: Option<(i64, i16, i32)>,
    ) -> Bytes {
        build_batch(n, compression, producer, false)
    }

    /// A transactional producer's batch of `n` records.
    pub fn make_txn_batch(n: usize, producer: (i64, i16, i32)) -> Bytes {
        build_batch(n, Compression::None, Some(producer), true)
    }

    fn build_batch(
        n: usize,
        compression: Compression,
        producer: Option<(i64, i16, i32)>,
        transactional: bool,
    ) -> Bytes {
        let (pid, epoch, seq) = producer.unwrap_or((-1, -1, -1));
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: if seq < 0 {
                    i as i32 - 1
                } else {
                    seq.wrapping_add(i as i32)
                },
                timestamp: 1_700_000_000_000 + i as i64,
                key: Some(Bytes::from(format!("k{i}"))),
                value: Some(Bytes::from(format!("value-{i}"))),
                headers: Default::default(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        buf.freeze()
    }

    #[test]
    fn accepts_good_batches_of_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = make_batch(5, c, None);
            let v = validate_batches(&b, 1 << 20).unwrap();
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].header.records_count, 5);
            assert_eq!(v[0].header.last_offset_delta, 4);
            assert_eq!(v[0].bytes.len(), b.len());
        }
    }

    #[test]
    fn refuses_bad_crc_magic_length_and_size() {
        let b = make_batch(3, Compression::None, None);
        let mut bad = BytesMut::from(&b[..]);
        let last = bad.len() - 1;
        bad[last] ^= 0xff;
        assert!(matches!(
            validate_batches(&bad.freeze(), 1 << 20),
            Err(BatchError::CrcMismatch { .. })
        ));
        let mut m = BytesMut::from(&b[..]);
        m[16] = 1;
        assert_eq!(
            validate_batches(&m.freeze(), 1 << 20).unwrap_err(),
            BatchError::UnsupportedMagic(1)
        );
        assert_eq!(
            validate_batches(&b.slice(..b.len() - 1), 1 << 20).unwrap_err(),
            BatchError::Corrupt
        );
        assert_eq!(
            validate_batches(&b, 10).unwrap_err(),
            BatchError::TooLarge(b.len())
        );
        assert!(validate_batches(&Bytes::from_static(&[0u8; 3]), 1 << 20).is_err());
    }

    #[test]
    fn two_batches_in_one_request_and_walk() {
        let mut both = BytesMut::new();
        both.extend_from_slice(&make_batch(2, Compression::None, None));
        both.extend_from_slice(&make_batch(3, Compression::Lz4, None));
        let both = both.freeze();
        let v = validate_batches(&both, 1 << 20).unwrap();
        assert_eq!(v.len(), 2);
        let walked: Vec<_> = walk(&both).collect();
        assert_eq!(walked.len(), 2);
        assert_eq!(walked[1].1.end, both.len());
        // A torn tail is not yielded.
        assert_eq!(walk(&both[..both.len() - 4]).count(), 1);
    }

    #[test]
    fn stamping_keeps_crc_valid_and_log_append_time_recomputes_it() {
        let b = make_batch(2, Compression::None, None);
        let p = stamped_prefix(&b, 1234, 7);
        let mut s = BytesMut::from(&b[..]);
        s[..16].copy_from_slice(&p);
        assert!(crc_ok(&s));
        let h = BatchHeader::parse(&s).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch), (1234, 7));
        set_log_append_time(&mut s, 99);
        assert!(crc_ok(&s));
        let h = BatchHeader::parse(&s).unwrap();
        assert_eq!(h.max_timestamp, 99);
        assert_ne!(h.attributes & TIMESTAMP_TYPE_LOG_APPEND, 0);
    }

    #[test]
    fn recompression_keeps_records_and_producer_fields() {
        use kafka_protocol::records::RecordBatchDecoder;
        let b = make_batch(4, Compression::Snappy, Some((9, 2, 40)));
        let r = recompress(&b, Compression::Gzip).unwrap();
        assert_eq!(r.header.compression(), Compression::Gzip as i16);
        assert_eq!(
            (
                r.header.producer_id,
                r.header.producer_epoch,
                r.header.base_sequence
            ),
            (9, 2, 40)
        );
        assert_eq!(r.header.records_count, 4);
        assert!(crc_ok(&r.bytes));
        let mut a = b.clone();
        let mut c = r.bytes.clone();
        let before = RecordBatchDecoder::decode(&mut a).unwrap();
        let after = RecordBatchDecoder::decode(&mut c).unwrap();
        let kv = |s: &kafka_protocol::records::RecordSet| {
            s.records
                .iter()
                .map(|x| (x.offset, x.timestamp, x.key.clone(), x.value.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(kv(&before), kv(&after));
    }

    #[test]
    fn last_sequence_wraps() {
        let mut h = BatchHeader::parse(&make_batch(
            3,
            Compression::None,
            Some((1, 0, i32::MAX - 1)),
        ))
        .unwrap();
        assert_eq!(h.last_sequence(), 0);
        h.base_sequence = 5;
        assert_eq!(h.last_sequence(), 7);
    }
}

#[cfg(test)]
mod proptests {
    use super::tests::make_batch;
    use super::*;
    use kafka_protocol::records::Compression;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Arbitrary bytes never panic the batch checks or the batch walker.
        #[test]
        fn arbitrary_bytes_are_refused_or_accepted_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let b = Bytes::from(data);
            let _ = validate_batches(&b, 1 << 20);
            let _ = walk(&b).count();
            let _ = crc_ok(&b);
            let _ = BatchHeader::parse(&b);
        }

        /// Any single-byte change to a valid batch outside the broker-owned fields (base
        /// offset, leader epoch) is caught: refused, never silently accepted.
        #[test]
        fn corrupted_batches_are_refused(n in 1usize..20, pos in any::<usize>(), flip in 1u8..=255, codec in 0usize..5) {
            let c = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd][codec];
            let good = make_batch(n, c, None);
            let mut bad = good.to_vec();
            let i = 16 + pos % (bad.len() - 16);
            bad[i] ^= flip;
            prop_assert!(validate_batches(&Bytes::from(bad), 1 << 20).is_err());
        }

        /// Valid batches of any size and codec are accepted with the right header.
        #[test]
        fn valid_batches_are_accepted(n in 1usize..50, codec in 0usize..5) {
            let c = [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd][codec];
            let good = make_batch(n, c, Some((7, 1, 100)));
            let v = validate_batches(&good, 1 << 20).unwrap();
            prop_assert_eq!(v.len(), 1);
            prop_assert_eq!(v[0].header.records_count as usize, n);
            prop_assert_eq!(v[0].header.base_sequence, 100);
        }
    }
}
