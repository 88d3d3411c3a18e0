//! Record-level checks of a v2 batch from a producer, where Kafka's LogValidator makes
//! them: the header's record count is the number of records really in the batch, each
//! record's length field matches its fields, offset deltas run 0, 1, 2, …, nothing
//! trails the last record, header keys are present. The walk also reports what the log
//! needs to decide the rest (every record keyed, for compacted topics; the smallest and
//! largest record timestamp, for `message.timestamp.*` bounds).
//!
//! Compressed payloads are inflated through [`super::inflate`], bounded, so a batch that
//! claims or inflates to more than the limit is refused before any memory is spent on it.

use bytes::BytesMut;

use super::batch::{self, BatchError, BatchHeader, ValidBatch, HEADER_LEN};
use super::inflate::{inflate, InflateError};
use super::partition::LogError;
use super::LogConfig;

/// The most a batch's records may inflate to: 16 times `max.message.bytes`, at least
/// 64 MiB. Kafka limits only the compressed size; a bound on the inflated size keeps a
/// compression bomb from taking the broker's memory.
pub fn inflate_limit(max_message_bytes: usize) -> usize {
    max_message_bytes.saturating_mul(16).max(64 << 20)
}

/// The record-level checks of a producer's batches before they are appended, as Kafka's
/// LogValidator makes them: every record walked ([`inspect`]); compacted topics refuse
/// records without a key; `CreateTime` topics refuse record timestamps outside
/// `message.timestamp.before.max.ms` / `after.max.ms` and get a header whose
/// `max_timestamp` is the records' real maximum; a topic `compression.type` other than
/// `producer` re-encodes batches in another codec. CPU-bound and lock-free: callers run
/// it before taking the partition lock, on a blocking thread for compressed batches.
pub fn check_for_append(
    batches: &[ValidBatch],
    config: &LogConfig,
    now_ms: i64,
) -> Result<Vec<ValidBatch>, LogError> {
    let limit = inflate_limit(config.max_message_bytes);
    let codec = batch::topic_codec(&config.compression_type);
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let summary = inspect(&b.header, &b.bytes, limit).map_err(|e| match e {
            RecordError::Invalid(m) => BatchError::InvalidRecords(m),
            RecordError::Inflate(InflateError::TooLarge(n)) => BatchError::InvalidRecords(format!(
                "the batch's records inflate to more than {n} bytes"
            )),
            RecordError::Inflate(e) => BatchError::Decompression(e.to_string()),
        })?;
        // Kafka's LogValidator (KIP-467): every offending record is named by its index in
        // the batch; a timestamp error makes the whole answer INVALID_TIMESTAMP.
        let mut errors: Vec<(i32, String)> = Vec::new();
        let mut bad_timestamp = false;
        if config.cleanup_compact {
            for &i in &summary.unkeyed {
                errors.push((
                    i,
                    "Compacted topic cannot accept message without key".into(),
                ));
            }
        }
        if !config.log_append_time {
            for (i, &ts) in summary.timestamps.iter().enumerate() {
                if !timestamp_allowed(ts, config, now_ms) {
                    bad_timestamp = true;
                    errors.push((
                        i as i32,
                        format!(
                            "Timestamp {ts} of the record at index {i} is out of range: it may be at most {} ms before and {} ms after the broker's time {now_ms}",
                            config.timestamp_before_max_ms, config.timestamp_after_max_ms
                        ),
                    ));
                }
            }
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.0);
            return Err(LogError::Records {
                invalid_timestamp: bad_timestamp,
                message: if bad_timestamp {
                    "One or more records have been rejected due to invalid timestamp".into()
                } else {
                    "One or more records have been rejected".into()
                },
                errors,
            });
        }
        let mut b = b.clone();
        if !config.log_append_time && b.header.max_timestamp != summary.max_timestamp {
            b = with_max_timestamp(&b, summary.max_timestamp);
        }
        if let Some(c) = codec {
            if c as i16 != b.header.compression() {
                b = batch::recompress(&b.bytes, c)?;
            }
        }
        out.push(b);
    }
    Ok(out)
}

/// `message.timestamp.before.max.ms` / `after.max.ms` (KIP-937). A negative timestamp
/// (-1: none given) is not checked, as in Kafka.
fn timestamp_allowed(ts: i64, c: &LogConfig, now_ms: i64) -> bool {
    if ts < 0 {
        return true;
    }
    let before = now_ms.saturating_sub(ts);
    let after = ts.saturating_sub(now_ms);
    !(c.timestamp_before_max_ms < i64::MAX && before > c.timestamp_before_max_ms
        || c.timestamp_after_max_ms < i64::MAX && after > c.timestamp_after_max_ms)
}

/// A copy of `b` whose header's `max_timestamp` is `ts`, CRC recomputed (Kafka sets a
/// `CreateTime` batch's max timestamp from its records the same way).
fn with_max_timestamp(b: &ValidBatch, ts: i64) -> ValidBatch {
    let mut copy = BytesMut::from(&b.bytes[..]);
    batch::set_max_timestamp(&mut copy, ts);
    let mut header = b.header;
    header.max_timestamp = ts;
    header.crc = BatchHeader::parse(&copy)
        .map(|h| h.crc)
        .unwrap_or(header.crc);
    ValidBatch {
        header,
        bytes: copy.freeze(),
    }
}

/// Why a batch's records were refused (Kafka: `InvalidRecordException`, INVALID_RECORD,
/// except a payload that cannot be decompressed: CORRUPT_MESSAGE).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Inflate(#[from] InflateError),
}

/// What the walk learnt about a valid batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordsSummary {
    pub count: i32,
    pub all_keyed: bool,
    /// Indexes (offset deltas) of the records without a key.
    pub unkeyed: Vec<i32>,
    /// Each record's timestamp (base timestamp + delta), in order.
    pub timestamps: Vec<i64>,
    /// Smallest and largest record timestamp (base timestamp + delta).
    pub min_timestamp: i64,
    pub max_timestamp: i64,
}

/// Walks every record of `batch` (a whole v2 batch whose header was already checked),
/// inflating a compressed payload into at most `inflate_limit` bytes.
pub fn inspect(
    header: &BatchHeader,
    batch: &[u8],
    inflate_limit: usize,
) -> Result<RecordsSummary, RecordError> {
    let payload = &batch[HEADER_LEN..header.size().min(batch.len())];
    let codec = header.compression();
    // Every record takes at least 7 bytes uncompressed (length, attributes, three
    // deltas/lengths and a header count, one byte each at their smallest).
    let claimed = header.records_count as i64;
    if claimed <= 0 || claimed.saturating_mul(7) > inflate_limit as i64 {
        return Err(invalid(format!(
            "the batch claims {claimed} records, more than it can hold"
        )));
    }
    let inflated;
    let records: &[u8] = if codec == 0 {
        payload
    } else {
        inflated = inflate(codec, payload, inflate_limit)?;
        &inflated
    };
    let mut r = Reader {
        buf: records,
        pos: 0,
    };
    let mut summary = RecordsSummary {
        count: 0,
        all_keyed: true,
        unkeyed: Vec::new(),
        timestamps: Vec::with_capacity(header.records_count.clamp(0, 1 << 16) as usize),
        min_timestamp: i64::MAX,
        max_timestamp: i64::MIN,
    };
    for expected_delta in 0..header.records_count {
        if r.pos >= records.len() {
            return Err(invalid(format!(
                "the batch header claims {} records but holds {expected_delta}",
                header.records_count
            )));
        }
        let length = r.varint()?;
        if length < 0 {
            return Err(invalid(format!(
                "record {expected_delta} has length {length}"
            )));
        }
        let start = r.pos;
        let end = start
            .checked_add(length as usize)
            .filter(|&e| e <= records.len())
            .ok_or_else(|| invalid(format!("record {expected_delta} runs past the batch")))?;
        let mut body = Reader {
            buf: &records[..end],
            pos: start,
        };
        body.byte()?; // attributes: unused in v2
        let ts_delta = body.varlong()?;
        let offset_delta = body.varint()?;
        if offset_delta != expected_delta {
            return Err(invalid(format!(
                "record {expected_delta} has offset delta {offset_delta}"
            )));
        }
        let key_len = nullable_len(body.varint()?, expected_delta, "key")?;
        if key_len < 0 {
            summary.all_keyed = false;
            summary.unkeyed.push(expected_delta);
        } else {
            body.skip(key_len as usize)?;
        }
        let value_len = nullable_len(body.varint()?, expected_delta, "value")?;
        if value_len >= 0 {
            body.skip(value_len as usize)?;
        }
        let headers = body.varint()?;
        if headers < 0 {
            return Err(invalid(format!(
                "record {expected_delta} has {headers} headers"
            )));
        }
        for _ in 0..headers {
            let k = body.varint()?;
            if k < 0 {
                return Err(invalid(format!(
                    "record {expected_delta} has a header with a null key"
                )));
            }
            body.skip(k as usize)?;
            let v = nullable_len(body.varint()?, expected_delta, "header value")?;
            if v >= 0 {
                body.skip(v as usize)?;
            }
        }
        if body.pos != end {
            return Err(invalid(format!(
                "record {expected_delta}: its length says {length} bytes but its fields take {}",
                body.pos - start
            )));
        }
        r.pos = end;
        let ts = header.base_timestamp.saturating_add(ts_delta);
        summary.timestamps.push(ts);
        summary.min_timestamp = summary.min_timestamp.min(ts);
        summary.max_timestamp = summary.max_timestamp.max(ts);
        summary.count += 1;
    }
    if r.pos != records.len() {
        return Err(invalid(format!(
            "{} bytes follow the last of the batch's {} records",
            records.len() - r.pos,
            header.records_count
        )));
    }
    Ok(summary)
}

fn invalid(msg: String) -> RecordError {
    RecordError::Invalid(msg)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn byte(&mut self) -> Result<u8, RecordError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| invalid("a record is cut off".into()))?;
        self.pos += 1;
        Ok(b)
    }

    fn skip(&mut self, n: usize) -> Result<(), RecordError> {
        match self.pos.checked_add(n) {
            Some(e) if e <= self.buf.len() => {
                self.pos = e;
                Ok(())
            }
            _ => Err(invalid("a record field runs past the record".into())),
        }
    }

    /// Zigzag varint of at most 5 bytes.
    fn varint(&mut self) -> Result<i32, RecordError> {
        let raw = self.unsigned(5)?;
        if raw > u32::MAX as u64 {
            return Err(invalid("a varint does not fit 32 bits".into()));
        }
        let raw = raw as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    /// Zigzag varlong of at most 10 bytes.
    fn varlong(&mut self) -> Result<i64, RecordError> {
        let raw = self.unsigned(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    fn unsigned(&mut self, max_bytes: u32) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(invalid("a varint is too long".into()))
    }
}

/// A nullable field's length: -1 is null; a lower one is corrupt (Kafka's Java reader
/// would take it as null, but librdkafka and other clients refuse the whole batch, so
/// it must never be stored).
fn nullable_len(len: i32, record: i32, field: &str) -> Result<i32, RecordError> {
    if len < -1 {
        return Err(invalid(format!(
            "record {record} has a {field} of length {len}"
        )));
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::tests::make_batch;
    use crate::log::batch::BatchHeader;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::records::Compression;

    const LIMIT: usize = 1 << 20;

    fn header(b: &[u8]) -> BatchHeader {
        BatchHeader::parse(b).unwrap()
    }

    #[test]
    fn counts_keys_and_timestamps_of_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let b = make_batch(5, c, None);
            let s = inspect(&header(&b), &b, LIMIT).unwrap();
            assert_eq!(s.count, 5, "{c:?}");
            assert!(s.all_keyed);
            assert!(s.min_timestamp <= s.max_timestamp);
        }
    }

    /// An uncompressed batch re-framed around hand-made record bytes, CRC not
    /// recomputed (inspect does not look at it).
    fn framed(records: &[u8], count: i32) -> Vec<u8> {
        let base = make_batch(1, Compression::None, None);
        let mut out = BytesMut::from(&base[..HEADER_LEN]);
        out.extend_from_slice(records);
        let len = (out.len() - 12) as i32;
        out[8..12].copy_from_slice(&len.to_be_bytes());
        out[23..27].copy_from_slice(&(count - 1).to_be_bytes());
        out[57..61].copy_from_slice(&count.to_be_bytes());
        out.to_vec()
    }

    fn zigzag(v: i64, out: &mut BytesMut) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            out.put_u8((z as u8) | 0x80);
            z >>= 7;
        }
        out.put_u8(z as u8);
    }

    /// One record: attributes 0, timestamp delta 0, the given offset delta, key "k",
    /// value "v", no headers.
    fn record(offset_delta: i64, out: &mut BytesMut) {
        let mut body = BytesMut::new();
        body.put_u8(0);
        zigzag(0, &mut body);
        zigzag(offset_delta, &mut body);
        zigzag(1, &mut body);
        body.put_u8(b'k');
        zigzag(1, &mut body);
        body.put_u8(b'v');
        zigzag(0, &mut body);
        zigzag(body.len() as i64, out);
        out.extend_from_slice(&body);
    }

    #[test]
    fn a_header_claiming_more_records_than_it_holds_is_refused() {
        let mut recs = BytesMut::new();
        record(0, &mut recs);
        record(1, &mut recs);
        assert_eq!(
            inspect(&header(&framed(&recs, 2)), &framed(&recs, 2), LIMIT)
                .unwrap()
                .count,
            2
        );
        for claimed in [3, 1000, i32::MAX] {
            let b = framed(&recs, claimed);
            assert!(
                matches!(
                    inspect(&header(&b), &b, LIMIT),
                    Err(RecordError::Invalid(_))
                ),
                "claimed {claimed}"
            );
        }
        // Fewer claimed than present: the rest trails the batch.
        let b = framed(&recs, 1);
        assert!(matches!(
            inspect(&header(&b), &b, LIMIT),
            Err(RecordError::Invalid(_))
        ));
    }

    #[test]
    fn offset_deltas_must_count_from_zero() {
        let mut recs = BytesMut::new();
        record(0, &mut recs);
        record(5, &mut recs);
        let b = framed(&recs, 2);
        let e = inspect(&header(&b), &b, LIMIT).unwrap_err();
        assert!(e.to_string().contains("offset delta 5"), "{e}");
    }

    #[test]
    fn a_record_length_that_disagrees_with_its_fields_is_refused() {
        let mut recs = BytesMut::new();
        record(0, &mut recs);
        recs[0] += 2; // length says 2 more bytes than the fields take
        recs.put_u8(0);
        recs.put_u8(0);
        let b = framed(&recs, 1);
        let e = inspect(&header(&b), &b, LIMIT).unwrap_err();
        assert!(e.to_string().contains("its fields take"), "{e}");
    }

    #[test]
    fn unkeyed_records_are_reported() {
        let mut body = BytesMut::new();
        body.put_u8(0);
        zigzag(0, &mut body);
        zigzag(0, &mut body);
        zigzag(-1, &mut body); // null key
        zigzag(-1, &mut body); // null value
        zigzag(0, &mut body);
        let mut recs = BytesMut::new();
        zigzag(body.len() as i64, &mut recs);
        recs.extend_from_slice(&body);
        let b = framed(&recs, 1);
        assert!(!inspect(&header(&b), &b, LIMIT).unwrap().all_keyed);
    }

    #[test]
    fn a_compressed_batch_that_inflates_past_the_limit_is_refused() {
        let b = make_batch(50, Compression::Zstd, None);
        let h = header(&b);
        assert!(inspect(&h, &b, LIMIT).is_ok());
        assert!(matches!(
            inspect(&h, &b, 64),
            Err(RecordError::Inflate(InflateError::TooLarge(64))) | Err(RecordError::Invalid(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_record_bytes_never_panic(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512), count in 1i32..40) {
            let b = framed(&data, count);
            let _ = inspect(&header(&b), &b, LIMIT);
        }
    }
}
