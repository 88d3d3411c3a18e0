//! Tests of the partition log on the simulated disk (and one on the real one).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{Compression, RecordBatchDecoder};
use uuid::Uuid;

use super::batch::tests::make_batch;
use super::batch::validate_batches;
use super::*;

const NOW: i64 = 1_700_000_100_000;

fn config(pairs: &[(&str, &str)]) -> LogConfig {
    let t: BTreeMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    LogConfig::resolve(&t, &BTreeMap::new())
}

async fn open(storage: &Arc<dyn Storage>, clean: bool, cfg: LogConfig) -> PartitionLog {
    PartitionLog::open(
        storage.clone(),
        Path::new("/data/t-0"),
        "t",
        0,
        Uuid::from_u128(1),
        cfg,
        OpenOptions {
            clean,
            recovery_point: 0,
            log_start: 0,
            high_watermark: i64::MAX,
            now_ms: NOW,
        },
    )
    .await
    .unwrap()
}

async fn append(log: &PartitionLog, n: usize, producer: Option<(i64, i16, i32)>) -> AppendInfo {
    let b = make_batch(n, Compression::None, producer);
    let v = validate_batches(&b, 1 << 20).unwrap();
    let info = log.append(&v, 3, NOW).await.unwrap();
    log.advance_high_watermark(info.last_offset + 1).await;
    info
}

fn offsets_in(records: &Bytes) -> Vec<i64> {
    let mut buf = records.clone();
    let mut out = Vec::new();
    while !buf.is_empty() {
        let set = RecordBatchDecoder::decode(&mut buf).unwrap();
        out.extend(set.records.iter().map(|r| r.offset));
    }
    out
}

async fn read_all(log: &PartitionLog) -> Vec<i64> {
    let mut out = Vec::new();
    let mut next = log.offsets().log_start;
    loop {
        let r = log.read(next, 1 << 20, true, false).await.unwrap();
        if r.records.is_empty() {
            return out;
        }
        let offs = offsets_in(&r.records);
        next = offs.last().unwrap() + 1;
        out.extend(offs);
    }
}

#[tokio::test]
async fn append_assigns_offsets_and_reads_back() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(&s, false, LogConfig::default()).await;
    assert_eq!(append(&log, 3, None).await.first_offset, 0);
    let info = append(&log, 2, None).await;
    assert_eq!((info.first_offset, info.last_offset), (3, 4));
    let o = log.offsets();
    assert_eq!((o.log_start, o.high_watermark, o.log_end), (0, 5, 5));
    // Reading from the middle of a batch returns the whole batch that holds it.
    let r = log.read(4, 1 << 20, true, false).await.unwrap();
    assert_eq!(offsets_in(&r.records), vec![3, 4]);
    let h = batch::BatchHeader::parse(&r.records).unwrap();
    assert_eq!(h.partition_leader_epoch, 3);
    assert!(batch::crc_ok(&r.records));
    // At the end: empty; beyond it: out of range.
    assert!(log
        .read(5, 1 << 20, true, false)
        .await
        .unwrap()
        .records
        .is_empty());
    assert!(matches!(
        log.read(6, 100, true, false).await,
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[tokio::test]
async fn reads_stop_at_the_high_watermark_and_respect_max_bytes() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(&s, false, LogConfig::default()).await;
    append(&log, 1, None).await;
    let b = make_batch(2, Compression::None, None);
    let v = validate_batches(&b, 1 << 20).unwrap();
    log.append(&v, 0, NOW).await.unwrap(); // not yet committed
    assert_eq!(read_all(&log).await, vec![0]);
    assert_eq!(
        offsets_in(&log.read(0, 1 << 20, true, true).await.unwrap().records),
        vec![0, 1, 2]
    );
    log.advance_high_watermark(3).await;
    // max_bytes smaller than one batch: min_one returns it whole, otherwise nothing.
    assert_eq!(
        offsets_in(&log.read(0, 10, true, false).await.unwrap().records),
        vec![0]
    );
    assert!(log
        .read(0, 10, false, false)
        .await
        .unwrap()
        .records
        .is_empty());
}

#[tokio::test]
async fn segments_roll_by_size_and_reads_cross_them() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(
        &s,
        false,
        config(&[("segment.bytes", "300"), ("index.interval.bytes", "100")]),
    )
    .await;
    for _ in 0..20 {
        append(&log, 2, None).await;
    }
    assert!(log.segment_count() > 5, "{} segments", log.segment_count());
    assert_eq!(read_all(&log).await, (0..40).collect::<Vec<_>>());
    for o in [0, 7, 21, 39] {
        let r = log.read(o, 1 << 20, true, false).await.unwrap();
        assert!(offsets_in(&r.records).contains(&o), "offset {o}");
    }
}

#[tokio::test]
async fn clean_and_unclean_restarts_keep_every_batch() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let cfg = config(&[("segment.bytes", "400")]);
    let log = open(&s, false, cfg.clone()).await;
    for _ in 0..10 {
        append(&log, 3, None).await;
    }
    log.close().await.unwrap();
    drop(log);
    let log = open(&s, true, cfg.clone()).await;
    assert_eq!(log.offsets().log_end, 30);
    assert_eq!(read_all(&log).await, (0..30).collect::<Vec<_>>());
    append(&log, 1, None).await;
    drop(log); // no close: an unclean stop
    let log = open(&s, false, cfg).await;
    assert_eq!(read_all(&log).await, (0..31).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_torn_tail_is_cut_at_the_last_whole_batch() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(&s, false, LogConfig::default()).await;
    append(&log, 2, None).await;
    append(&log, 2, None).await;
    drop(log);
    let f = s
        .open(Path::new("/data/t-0/00000000000000000000.log"), false)
        .await
        .unwrap();
    let whole = f.len();
    // Half a batch, then a batch with a broken CRC.
    let b = make_batch(2, Compression::None, None);
    f.append(&[&b[..b.len() / 2]]).await.unwrap();
    let log = open(&s, false, LogConfig::default()).await;
    assert_eq!(f.len(), whole);
    assert_eq!(log.offsets().log_end, 4);
    let mut bad = BytesMut::from(&b[..]);
    bad[0..8].copy_from_slice(&4i64.to_be_bytes());
    let n = bad.len();
    bad[n - 1] ^= 0x55;
    f.append(&[&bad]).await.unwrap();
    drop(log);
    let log = open(&s, false, LogConfig::default()).await;
    assert_eq!(log.offsets().log_end, 4);
    assert_eq!(read_all(&log).await, vec![0, 1, 2, 3]);
    // Appends continue after the cut.
    assert_eq!(append(&log, 1, None).await.first_offset, 4);
}

#[tokio::test]
async fn power_failure_keeps_flushed_batches_only() {
    let sim = SimStorage::new();
    let s: Arc<dyn Storage> = Arc::new(sim.clone());
    let log = open(&s, false, LogConfig::default()).await;
    append(&log, 2, None).await;
    log.flush().await.unwrap();
    append(&log, 2, None).await;
    drop(log);
    sim.power_fail();
    let log = open(&s, false, LogConfig::default()).await;
    assert_eq!(read_all(&log).await, vec![0, 1]);
    // flush.messages=1 syncs before every acknowledgement.
    let log2 = open(&s, false, config(&[("flush.messages", "1")])).await;
    drop(log);
    append(&log2, 3, None).await;
    drop(log2);
    sim.power_fail();
    let log = open(&s, false, LogConfig::default()).await;
    assert_eq!(read_all(&log).await, vec![0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn duplicates_are_answered_with_original_offsets_across_restarts() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let cfg = config(&[("segment.bytes", "300")]);
    let log = open(&s, false, cfg.clone()).await;
    for i in 0..6 {
        append(&log, 2, Some((42, 0, i * 2))).await;
    }
    let again = append(&log, 2, Some((42, 0, 10))).await;
    assert_eq!(
        (
            again.first_offset,
            again.last_offset,
            again.appended_records
        ),
        (10, 11, 0)
    );
    drop(log); // unclean: state comes from the last roll snapshot plus the tail
    let log = open(&s, false, cfg).await;
    let again = append(&log, 2, Some((42, 0, 10))).await;
    assert_eq!((again.first_offset, again.appended_records), (10, 0));
    let b = make_batch(1, Compression::None, Some((42, 0, 14)));
    let err = log
        .append(&validate_batches(&b, 1 << 20).unwrap(), 0, NOW)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        LogError::Producer(producer_state::ProducerError::OutOfOrder {
            expected: 12,
            got: 14
        })
    ));
    assert_eq!(append(&log, 1, Some((42, 0, 12))).await.first_offset, 12);
}

#[tokio::test]
async fn several_batches_to_one_partition_are_all_or_nothing() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(&s, false, config(&[])).await;
    append(&log, 2, Some((7, 0, 0))).await;
    // Two batches in one request: the first continues the producer's sequence, the
    // second skips ahead. Neither is written.
    let mut two = BytesMut::from(&make_batch(2, Compression::None, Some((7, 0, 2)))[..]);
    two.extend_from_slice(&make_batch(1, Compression::None, Some((7, 0, 9))));
    let err = log
        .append(&validate_batches(&two.freeze(), 1 << 20).unwrap(), 0, NOW)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Producer(producer_state::ProducerError::OutOfOrder {
                expected: 4,
                got: 9
            })
        ),
        "{err:?}"
    );
    assert_eq!(
        log.offsets().log_end,
        2,
        "nothing of the refused request was written"
    );
    // Both in order: both written, one after the other.
    let mut ok = BytesMut::from(&make_batch(2, Compression::None, Some((7, 0, 2)))[..]);
    ok.extend_from_slice(&make_batch(1, Compression::None, Some((7, 0, 4))));
    let info = log
        .append(&validate_batches(&ok.freeze(), 1 << 20).unwrap(), 0, NOW)
        .await
        .unwrap();
    assert_eq!(
        (info.first_offset, info.last_offset, info.appended_records),
        (2, 4, 3)
    );
}

#[tokio::test]
async fn a_compacted_topic_names_each_record_without_a_key() {
    let batch = super::batch::tests::plain_records(
        (0..4)
            .map(|i| {
                (
                    (i % 2 == 0).then(|| Bytes::from(format!("k{i}"))),
                    Bytes::from_static(b"v"),
                    NOW,
                )
            })
            .collect(),
    );
    let cfg = config(&[("cleanup.policy", "compact")]);
    let err =
        super::records::check_for_append(&validate_batches(&batch, 1 << 20).unwrap(), &cfg, NOW)
            .unwrap_err();
    match &err {
        LogError::Records {
            invalid_timestamp: false,
            errors,
            ..
        } => assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [1, 3]),
        other => panic!("{other:?}"),
    }
    assert_eq!(crate::error::log_error_code(&err), 87);
}

#[tokio::test]
async fn idle_producers_expire() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(&s, false, config(&[])).await;
    // make_batch stamps 1_700_000_000_000 + i.
    append(&log, 2, Some((7, 0, 0))).await;
    append(&log, 2, Some((8, 0, 0))).await;
    assert_eq!(log.producer_state().await.len(), 2);
    let day = 86_400_000;
    assert_eq!(log.expire_producers(1_700_000_000_001 + day, day).await, 0);
    assert_eq!(log.expire_producers(1_700_000_000_002 + day, day).await, 2);
    assert!(log.producer_state().await.is_empty());
    // A forgotten producer starts again from sequence 0.
    assert_eq!(append(&log, 1, Some((7, 0, 0))).await.appended_records, 1);
}

#[tokio::test]
async fn record_timestamps_are_checked_and_the_header_takes_their_maximum() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    // make_batch stamps records 1_700_000_000_000 + i: 100 s before NOW.
    let log = open(
        &s,
        false,
        config(&[("message.timestamp.before.max.ms", "50000")]),
    )
    .await;
    let b = make_batch(3, Compression::Lz4, None);
    let err = super::records::check_for_append(
        &validate_batches(&b, 1 << 20).unwrap(),
        &log.config(),
        NOW,
    )
    .unwrap_err();
    // KIP-467: each record named, INVALID_TIMESTAMP for the whole answer.
    match &err {
        LogError::Records {
            invalid_timestamp: true,
            errors,
            ..
        } => assert_eq!(errors.iter().map(|e| e.0).collect::<Vec<_>>(), [0, 1, 2]),
        other => panic!("{other:?}"),
    }
    assert_eq!(crate::error::log_error_code(&err), 32);
    // A header whose max timestamp lies is corrected (CRC recomputed).
    let log = open(&s, false, config(&[])).await;
    let mut lying = BytesMut::from(&make_batch(3, Compression::None, None)[..]);
    batch::set_max_timestamp(&mut lying, 5);
    let checked = super::records::check_for_append(
        &validate_batches(&lying.freeze(), 1 << 20).unwrap(),
        &log.config(),
        NOW,
    )
    .unwrap();
    assert_eq!(checked[0].header.max_timestamp, 1_700_000_000_002);
    assert!(batch::crc_ok(&checked[0].bytes));
}

#[tokio::test]
async fn retention_by_bytes_time_and_delete_records() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(
        &s,
        false,
        config(&[("segment.bytes", "300"), ("retention.bytes", "600")]),
    )
    .await;
    for _ in 0..20 {
        append(&log, 2, None).await;
    }
    let before = log.segment_count();
    assert!(log.apply_retention(NOW).await.unwrap() > 0);
    assert!(log.segment_count() < before);
    assert!(log.size() <= 600 + 300);
    let start = log.offsets().log_start;
    assert!(start > 0);
    assert!(matches!(
        log.read(0, 100, true, false).await,
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert_eq!(read_all(&log).await, (start..40).collect::<Vec<_>>());
    assert_eq!(log.delete_records_before(37).await.unwrap(), 37);
    assert_eq!(
        read_all(&log).await.first(),
        Some(&36),
        "the batch holding 37 starts at 36"
    );
    assert!(log.delete_records_before(41).await.is_err());
    // Time: records from 1_700_000_000_000 are 100 s old at NOW.
    log.set_config(config(&[("retention.ms", "1000")]));
    log.apply_retention(NOW).await.unwrap();
    assert_eq!(log.offsets().log_start, 40);
    assert_eq!(log.offsets().log_end, 40);
    assert_eq!(append(&log, 1, None).await.first_offset, 40);
}

#[tokio::test]
async fn offsets_for_timestamps() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(&s, false, config(&[("segment.bytes", "300")])).await;
    for _ in 0..5 {
        append(&log, 4, None).await; // record i of each batch has timestamp base + i
    }
    let base = 1_700_000_000_000;
    assert_eq!(
        log.offset_for_timestamp(base).await.unwrap(),
        Some((0, base))
    );
    assert_eq!(
        log.offset_for_timestamp(base + 2).await.unwrap(),
        Some((2, base + 2))
    );
    assert_eq!(log.offset_for_timestamp(base + 4).await.unwrap(), None);
    assert_eq!(
        log.max_timestamp_offset().await.unwrap(),
        Some((3, base + 3))
    );
}

#[tokio::test]
async fn log_append_time_restamps_batches() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(
        &s,
        false,
        config(&[("message.timestamp.type", "LogAppendTime")]),
    )
    .await;
    let info = append(&log, 2, None).await;
    assert_eq!(info.log_append_time, NOW);
    let r = log.read(0, 1 << 20, true, false).await.unwrap();
    assert!(batch::crc_ok(&r.records));
    let mut buf = r.records.clone();
    let set = RecordBatchDecoder::decode(&mut buf).unwrap();
    // Clients read LogAppendTime from the batch: the type bit and max timestamp.
    assert!(set
        .records
        .iter()
        .all(|rec| rec.timestamp_type == kafka_protocol::records::TimestampType::LogAppend));
    assert_eq!(
        batch::BatchHeader::parse(&r.records).unwrap().max_timestamp,
        NOW
    );
}

#[tokio::test]
async fn topic_compression_type_rewrites_batches() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open(&s, false, config(&[("compression.type", "zstd")])).await;
    let b = make_batch(3, Compression::None, Some((5, 0, 0)));
    let checked = |b: &Bytes| {
        super::records::check_for_append(&validate_batches(b, 1 << 20).unwrap(), &log.config(), NOW)
            .unwrap()
    };
    let info = log.append(&checked(&b), 0, NOW).await.unwrap();
    log.advance_high_watermark(info.last_offset + 1).await;
    let r = log.read(0, 1 << 20, true, false).await.unwrap();
    let h = batch::BatchHeader::parse(&r.records).unwrap();
    assert_eq!(h.compression(), Compression::Zstd as i16);
    assert_eq!(offsets_in(&r.records), vec![0, 1, 2]);
    // Idempotence still sees the producer's sequence.
    let again = log.append(&checked(&b), 0, NOW).await.unwrap();
    assert_eq!(again.appended_records, 0);
}

#[cfg(not(madsim))]
#[tokio::test]
async fn real_files_survive_reopen() {
    let d = tempfile::tempdir().unwrap();
    let s: Arc<dyn Storage> = Arc::new(FsStorage);
    let dir = d.path().join("t-0");
    let mk = |clean| {
        let s = s.clone();
        let dir = dir.clone();
        async move {
            PartitionLog::open(
                s,
                &dir,
                "t",
                0,
                Uuid::from_u128(1),
                config(&[("segment.bytes", "500")]),
                OpenOptions {
                    clean,
                    recovery_point: 0,
                    log_start: 0,
                    high_watermark: i64::MAX,
                    now_ms: NOW,
                },
            )
            .await
            .unwrap()
        }
    };
    let log = mk(false).await;
    for _ in 0..10 {
        append(&log, 3, None).await;
    }
    log.close().await.unwrap();
    drop(log);
    let log = mk(true).await;
    assert_eq!(read_all(&log).await, (0..30).collect::<Vec<_>>());
    drop(log);
    let log = mk(false).await;
    assert_eq!(read_all(&log).await, (0..30).collect::<Vec<_>>());
}

#[cfg(not(madsim))]
mod proptests {
    use super::*;
    use crate::log::storage::PowerLoss;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        /// A batch of `n` records whose keys are `k{first_key}..`.
        Append {
            n: usize,
            first_key: usize,
        },
        Flush,
        Roll,
        Compact,
        Retention,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (1usize..5, 0usize..6).prop_map(|(n, first_key)| Op::Append { n, first_key }),
            2 => Just(Op::Flush),
            1 => Just(Op::Roll),
            1 => Just(Op::Compact),
            1 => Just(Op::Retention),
        ]
    }

    /// key and value of each record read back, by offset.
    async fn contents(log: &PartitionLog) -> BTreeMap<i64, (Bytes, Bytes)> {
        let mut out = BTreeMap::new();
        let mut next = log.offsets().log_start;
        loop {
            let r = log.read(next, 1 << 20, true, true).await.unwrap();
            if r.records.is_empty() {
                return out;
            }
            let mut buf = r.records.clone();
            while !buf.is_empty() {
                let set = RecordBatchDecoder::decode(&mut buf).unwrap();
                for rec in set.records {
                    next = rec.offset + 1;
                    out.insert(rec.offset, (rec.key.unwrap(), rec.value.unwrap()));
                }
            }
        }
    }

    /// Decodes everything the log serves as a client would, segment after segment; the
    /// number of records.
    async fn decode_all(log: &PartitionLog) -> usize {
        let mut next = log.offsets().log_start;
        let mut n = 0;
        loop {
            let r = log.read(next, 1 << 20, true, true).await.unwrap();
            if r.records.is_empty() {
                return n;
            }
            let mut buf = r.records.clone();
            while !buf.is_empty() {
                // The batch header's last offset (an emptied batch still moves us on).
                let base = i64::from_be_bytes(buf[0..8].try_into().unwrap());
                let last_delta = i32::from_be_bytes(buf[23..27].try_into().unwrap());
                next = next.max(base + last_delta as i64 + 1);
                let set = RecordBatchDecoder::decode(&mut buf)
                    .expect("a client decodes what the log serves");
                n += set.records.len();
            }
        }
    }

    fn keyed_batch(n: usize, first_key: usize, tag: usize) -> Bytes {
        super::super::batch::tests::plain_records(
            (0..n)
                .map(|i| {
                    (
                        Some(Bytes::from(format!("k{}", first_key + i))),
                        Bytes::from(format!("v{tag}-{i}")),
                        NOW - 10_000,
                    )
                })
                .collect(),
        )
    }

    /// Runs `ops` on a log over an unkind simulated disk, cuts the last one short after
    /// `steps` storage calls (a crash in the middle of a roll, a compaction swap, a
    /// checkpoint), loses power as `seed` draws it, and reopens after an unclean stop
    /// with the recovery point the last flush reached. Whatever the disk kept:
    /// - the log opens, and every record it serves is the one appended at its offset;
    /// - every record flushed before the crash is still there, or (compacted topic)
    ///   its key has a record at that offset or later;
    /// - appends continue after the last record.
    async fn crash_and_recover(compacted: bool, ops: Vec<Op>, steps: usize, seed: u64) {
        let sim = SimStorage::new();
        let s: Arc<dyn Storage> = Arc::new(sim.clone());
        let mut pairs = vec![("segment.bytes", "300"), ("retention.bytes", "1200")];
        if compacted {
            pairs.push(("cleanup.policy", "compact,delete"));
            pairs.push(("min.cleanable.dirty.ratio", "0.01"));
            pairs.push(("delete.retention.ms", "0"));
        }
        let cfg = config(&pairs);
        let log = open(&s, false, cfg.clone()).await;
        let mut written: BTreeMap<i64, (Bytes, Bytes)> = BTreeMap::new();
        let mut flushed_end = 0i64;
        let mut flushed: BTreeMap<i64, (Bytes, Bytes)> = BTreeMap::new();
        let (last, before) = ops.split_last().expect("one op");
        for (tag, op) in before.iter().enumerate() {
            run(&log, op, tag, &mut written).await;
            if matches!(op, Op::Flush) {
                flushed_end = log.offsets().log_end;
                flushed = written.clone();
            }
        }
        // What an unfinished append of the last operation may leave behind.
        let mut maybe = written.clone();
        if let Op::Append { n, first_key } = last {
            let end = log.offsets().log_end;
            for i in 0..*n {
                maybe.insert(
                    end + i as i64,
                    (
                        Bytes::from(format!("k{}", first_key + i)),
                        Bytes::from(format!("v{}-{i}", before.len())),
                    ),
                );
            }
        }
        // The last operation stops after `steps` polls: the node died there.
        {
            let mut w = written.clone();
            let mut done = false;
            {
                let fut = run(&log, last, before.len(), &mut w);
                let mut fut = std::pin::pin!(fut);
                for _ in 0..steps {
                    if futures::poll!(fut.as_mut()).is_ready() {
                        done = true;
                        break;
                    }
                }
            }
            if done {
                written = w;
                if matches!(last, Op::Flush) {
                    flushed_end = log.offsets().log_end;
                    flushed = written.clone();
                }
            }
        }
        drop(log);
        sim.power_fail_with(PowerLoss::Random(seed));
        let reopened = PartitionLog::open(
            s.clone(),
            Path::new("/data/t-0"),
            "t",
            0,
            Uuid::from_u128(1),
            cfg,
            OpenOptions {
                clean: false,
                recovery_point: flushed_end,
                log_start: 0,
                high_watermark: i64::MAX,
                now_ms: NOW,
            },
        )
        .await;
        let log = match reopened {
            Ok(l) => l,
            Err(e) => panic!("the log does not open after the crash: {e}"),
        };
        let got = contents(&log).await;
        let start = log.offsets().log_start;
        for (off, rec) in &got {
            // Records of a crashed, unfinished append may survive; they are still the
            // ones that append wrote.
            assert_eq!(
                Some(rec),
                maybe.get(off),
                "offset {off} serves a record never written there"
            );
        }
        for (off, (key, _)) in flushed.iter().filter(|(o, _)| **o < flushed_end) {
            if *off < start {
                continue; // removed by retention or a log start move
            }
            if compacted {
                let newer = got.iter().any(|(o, (k, _))| o >= off && k == key);
                assert!(newer, "key {key:?} flushed at {off} is gone");
            } else {
                assert!(
                    got.contains_key(off),
                    "offset {off} was flushed and is gone (start {start})"
                );
            }
        }
        let end = log.offsets().log_end;
        assert!(got.keys().all(|o| *o < end));
        let info = log
            .append(
                &validate_batches(&keyed_batch(1, 0, 999), 1 << 20).unwrap(),
                3,
                NOW,
            )
            .await
            .unwrap();
        assert_eq!(info.first_offset, end);
    }

    async fn run(
        log: &PartitionLog,
        op: &Op,
        tag: usize,
        written: &mut BTreeMap<i64, (Bytes, Bytes)>,
    ) {
        match op {
            Op::Append { n, first_key } => {
                let b = keyed_batch(*n, *first_key, tag);
                let v = validate_batches(&b, 1 << 20).unwrap();
                let info = log.append(&v, 3, NOW).await.unwrap();
                log.advance_high_watermark(info.last_offset + 1).await;
                for i in 0..*n {
                    written.insert(
                        info.first_offset + i as i64,
                        (
                            Bytes::from(format!("k{}", first_key + i)),
                            Bytes::from(format!("v{tag}-{i}")),
                        ),
                    );
                }
            }
            Op::Flush => log.flush().await.unwrap(),
            Op::Roll => log.roll(NOW).await.unwrap(),
            Op::Compact => {
                log.compact(NOW).await.unwrap();
            }
            Op::Retention => {
                log.apply_retention(NOW).await.unwrap();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever garbage follows the last whole batch of a segment (a torn write, a
        /// disk returning junk), recovery keeps every whole batch before it and cuts the
        /// rest; appends then continue at the right offset.
        #[test]
        fn recovery_cuts_any_garbage_tail(batches in 1usize..6, garbage in proptest::collection::vec(any::<u8>(), 1..300)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
                let log = open(&s, false, LogConfig::default()).await;
                for _ in 0..batches {
                    append(&log, 2, None).await;
                }
                drop(log);
                let f = s.open(Path::new("/data/t-0/00000000000000000000.log"), false).await.unwrap();
                f.append(&[&garbage]).await.unwrap();
                let log = open(&s, false, LogConfig::default()).await;
                let n = (batches * 2) as i64;
                assert_eq!(read_all(&log).await, (0..n).collect::<Vec<_>>());
                assert_eq!(append(&log, 1, None).await.first_offset, n);
            });
        }

    }

    /// Batches with bytes changed, inserted or deleted anywhere (with the CRC and
    /// length fixed up when `fix_crc`, so that the change reaches the record checks)
    /// go through the checks a producer's batch meets. Whatever the log accepts, a
    /// client can decode after reading it back, after compaction, and after an
    /// unclean restart; whatever it refuses moves no offset.
    async fn mutate_and_check(codec: usize, n: usize, edits: Vec<(usize, u8, u8)>, fix_crc: bool) {
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        let mut b = keyed_batch(n, 0, 1).to_vec();
        if codec > 0 {
            b = make_batch(n, codecs[codec], None).to_vec();
        }
        for (pos, byte, kind) in &edits {
            let len = b.len();
            match kind {
                1 => {
                    let at = pos % (len + 1);
                    b.insert(at, *byte);
                }
                _ => {
                    b.remove(pos % len);
                }
            }
        }
        if fix_crc && b.len() >= 61 {
            let len = (b.len() - 12) as i32;
            b[8..12].copy_from_slice(&len.to_be_bytes());
            let crc = crc32c::crc32c(&b[21..]);
            b[17..21].copy_from_slice(&crc.to_be_bytes());
        }
        let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
        let cfg = config(&[
            ("cleanup.policy", "compact"),
            ("segment.bytes", "200"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", "0"),
            ("message.timestamp.before.max.ms", "9223372036854775807"),
            ("message.timestamp.after.max.ms", "9223372036854775807"),
        ]);
        let log = open(&s, false, cfg.clone()).await;
        append(&log, 1, None).await;
        let accepted = match validate_batches(&Bytes::from(b), 1 << 20) {
            Ok(v) => match super::super::records::check_for_append(&v, &cfg, NOW) {
                Ok(v) => {
                    let info = log.append(&v, 3, NOW).await;
                    if let Ok(info) = &info {
                        log.advance_high_watermark(info.last_offset + 1).await;
                    }
                    info.is_ok()
                }
                Err(_) => false,
            },
            Err(_) => false,
        };
        let end = log.offsets().log_end;
        if !accepted {
            assert_eq!(end, 1, "a refused batch moved the log end");
        }
        let before = decode_all(&log).await;
        append(&log, 1, None).await;
        log.roll(NOW).await.unwrap();
        log.compact(NOW + 1).await.unwrap();
        decode_all(&log).await;
        drop(log);
        let log = open(&s, false, cfg).await;
        let after = decode_all(&log).await;
        assert!(after >= 1 && before >= 1);
        assert_eq!(log.offsets().log_end, end + 1);
    }

    /// A case the proptest found in CI: a snappy batch whose CRC was fixed up after
    /// a byte edit.
    #[tokio::test]
    async fn a_mutated_snappy_batch_found_in_ci() {
        mutate_and_check(2, 4, vec![(1649804954454099115, 18, 0)], true).await;
    }

    proptest! {
        // Cheap cases (milliseconds each): enough of them to reach rare interleavings.
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// See `mutate_and_check`; the CRC and length are fixed up half the time.
        #[test]
        fn mutated_batches_are_refused_or_stay_readable_through_compaction_and_recovery(
            codec in 0usize..5,
            n in 1usize..6,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..4),
            fix_crc in any::<bool>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(mutate_and_check(codec, n, edits, fix_crc));
        }

        /// See `crash_and_recover`.
        #[test]
        fn a_crash_anywhere_on_an_unkind_disk_loses_no_flushed_record(
            compacted in any::<bool>(),
            ops in proptest::collection::vec(op(), 1..40),
            steps in 0usize..60,
            seed in any::<u64>(),
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(crash_and_recover(compacted, ops, steps, seed));
        }
    }
}

#[tokio::test]
async fn compaction_keeps_the_latest_record_per_key_and_offsets() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let cfg = config(&[
        ("cleanup.policy", "compact"),
        ("segment.bytes", "400"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "0"),
    ]);
    let log = open(&s, false, cfg.clone()).await;
    for _ in 0..10 {
        append(&log, 5, None).await; // keys k0..k4 every time
    }
    log.roll(NOW).await.unwrap();
    let before = log.size();
    let stats = log.compact(NOW).await.unwrap();
    assert!(stats.removed >= 40, "{stats:?}");
    assert!(log.size() < before);
    // Only the last batch's five records remain, at their original offsets.
    assert_eq!(read_all(&log).await, (45..50).collect::<Vec<_>>());
    // Offsets are never reused.
    assert_eq!(append(&log, 1, None).await.first_offset, 50);
    // A restart finds the cleaned segments and their rebuilt indexes.
    drop(log);
    let log = open(&s, false, cfg).await;
    assert_eq!(read_all(&log).await, vec![45, 46, 47, 48, 49, 50]);
    // Compacted topics refuse records without a key.
    let unkeyed = {
        use kafka_protocol::records::{
            Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let r = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: NOW,
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let mut b = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut b,
            &[r],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        b.freeze()
    };
    let err = super::records::check_for_append(
        &validate_batches(&unkeyed, 1 << 20).unwrap(),
        &log.config(),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        LogError::Records {
            invalid_timestamp: false,
            ..
        }
    ));
}

#[tokio::test]
async fn compaction_with_a_small_key_map_cleans_in_rounds_and_loses_nothing() {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let one = |key: String| {
        let r = Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: NOW - 1000,
            key: Some(Bytes::from(key)),
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        };
        let mut b = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut b,
            &[r],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        b.freeze()
    };
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let mut cfg = config(&[
        ("cleanup.policy", "compact"),
        ("segment.bytes", "300"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ]);
    // Room for about eight keys (key bytes plus 64 per entry): more than a segment
    // holds (four one-record batches), far fewer than the log's 24 keys.
    cfg.cleaner_dedupe_buffer_bytes = 560;
    let log = open(&s, false, cfg).await;
    // 72 records over 24 keys, each key written three times, spread out.
    let mut latest = BTreeMap::new();
    for i in 0..72i64 {
        let key = format!("key-{:02}", (i * 7) % 24);
        let info = log
            .append(
                &validate_batches(&one(key.clone()), 1 << 20).unwrap(),
                0,
                NOW,
            )
            .await
            .unwrap();
        log.advance_high_watermark(info.last_offset + 1).await;
        latest.insert(key, info.first_offset);
    }
    log.roll(NOW).await.unwrap();
    let mut expected: Vec<i64> = latest.into_values().collect();
    expected.sort();
    let mut rounds = 0;
    loop {
        let stats = log.compact(NOW).await.unwrap();
        rounds += 1;
        let now = read_all(&log).await;
        assert!(
            expected.iter().all(|o| now.contains(o)),
            "round {rounds} lost a latest record: {now:?}"
        );
        if now == expected || rounds > 40 {
            break;
        }
        assert!(
            stats.segments > 0 || rounds == 1 || now.len() > expected.len(),
            "{stats:?}"
        );
    }
    assert!(
        rounds > 1,
        "a map this small needs several rounds, took {rounds}"
    );
    assert_eq!(read_all(&log).await, expected, "after {rounds} rounds");
}

#[tokio::test]
async fn compaction_drops_old_tombstones_and_respects_the_lag() {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let rec = |k: &str, v: Option<&str>, ts: i64| Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: ts,
        key: Some(Bytes::from(k.to_string())),
        value: v.map(|v| Bytes::from(v.to_string())),
        headers: Default::default(),
    };
    let one = |r: Record| {
        let mut b = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut b,
            &[r],
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .unwrap();
        b.freeze()
    };
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let cfg = config(&[
        ("cleanup.policy", "compact"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "1000"),
    ]);
    let log = open(&s, false, cfg).await;
    let put = |b: Bytes| {
        let log = &log;
        async move {
            let i = log
                .append(&validate_batches(&b, 1 << 20).unwrap(), 0, NOW)
                .await
                .unwrap();
            log.advance_high_watermark(i.last_offset + 1).await;
        }
    };
    put(one(rec("a", Some("1"), NOW - 10_000))).await;
    put(one(rec("b", Some("1"), NOW - 10_000))).await;
    put(one(rec("a", None, NOW - 10_000))).await; // old tombstone for a
    put(one(rec("b", None, NOW - 10))).await; // fresh tombstone for b
    log.roll(NOW).await.unwrap();
    log.compact(NOW).await.unwrap();
    // a's tombstone is past delete.retention.ms: gone with its value; b's stays.
    assert_eq!(read_all(&log).await, vec![3]);
    // With a compaction lag, young segments are left alone.
    let log2 = {
        let s2: Arc<dyn Storage> = Arc::new(SimStorage::new());
        open(
            &s2,
            false,
            config(&[
                ("cleanup.policy", "compact"),
                ("min.compaction.lag.ms", "60000"),
            ]),
        )
        .await
    };
    for _ in 0..3 {
        let b = make_batch(2, Compression::None, None);
        let i = log2
            .append(&validate_batches(&b, 1 << 20).unwrap(), 0, NOW)
            .await
            .unwrap();
        log2.advance_high_watermark(i.last_offset + 1).await;
    }
    log2.roll(NOW).await.unwrap();
    // 30 s after the records were written they are younger than the lag: untouched.
    assert_eq!(
        log2.compact(1_700_000_000_000 + 30_000)
            .await
            .unwrap()
            .removed,
        0
    );
    // make_batch's timestamps are 100 s before NOW: older than the lag, so cleaned.
    assert!(log2.compact(NOW).await.unwrap().removed > 0);
}

// --- replication: follower append, truncation, epochs, checkpoints ------------------

async fn open_at(
    storage: &Arc<dyn Storage>,
    dir: &str,
    clean: bool,
    cfg: LogConfig,
    recovery_point: i64,
    high_watermark: i64,
) -> PartitionLog {
    PartitionLog::open(
        storage.clone(),
        Path::new(dir),
        "t",
        0,
        Uuid::from_u128(1),
        cfg,
        OpenOptions {
            clean,
            recovery_point,
            log_start: 0,
            high_watermark,
            now_ms: NOW,
        },
    )
    .await
    .unwrap()
}

/// Appends `n` records as leader in `epoch` (the HW left alone).
async fn append_in(
    log: &PartitionLog,
    n: usize,
    producer: Option<(i64, i16, i32)>,
    epoch: i32,
) -> AppendInfo {
    let b = make_batch(n, Compression::None, producer);
    let v = validate_batches(&b, 1 << 20).unwrap();
    log.append(&v, epoch, NOW).await.unwrap()
}

/// Every stored batch's bytes, from the log start to the log end.
async fn stored(log: &PartitionLog) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut next = log.offsets().log_start;
    while next < log.offsets().log_end {
        let r = log.read(next, 1 << 20, true, true).await.unwrap();
        if r.records.is_empty() {
            break;
        }
        for (h, range) in batch::walk(&r.records) {
            out.push(r.records.slice(range));
            next = h.last_offset() + 1;
        }
    }
    out
}

#[tokio::test]
async fn a_follower_copies_the_leaders_batches_byte_for_byte_with_their_epochs() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let leader = open_at(&s, "/data/l", true, LogConfig::default(), 0, 0).await;
    let follower = open_at(&s, "/data/f", true, LogConfig::default(), 0, 0).await;
    append_in(&leader, 3, Some((7, 0, 0)), 1).await;
    append_in(&leader, 2, Some((7, 0, 3)), 4).await;
    let bytes = leader.read(0, 1 << 20, true, true).await.unwrap().records;
    assert_eq!(follower.append_as_follower(&bytes, NOW).await.unwrap(), 5);
    assert_eq!(stored(&follower).await, stored(&leader).await);
    assert_eq!(
        follower.epoch_cache().entries(),
        leader.epoch_cache().entries()
    );
    assert_eq!(follower.end_offset_for_epoch(1), (1, 3));
    // The follower knows the producer: as the next leader it answers a retry with the
    // original offsets instead of writing it again.
    let retry = append_in(&follower, 2, Some((7, 0, 3)), 5).await;
    assert_eq!(
        (retry.first_offset, retry.appended_records),
        (3, 0),
        "deduplicated"
    );
    // The HW follows the leader's, up to the follower's own log end.
    follower.update_follower_high_watermark(99).await;
    assert_eq!(follower.offsets().high_watermark, 5);
}

#[tokio::test]
async fn a_follower_append_that_does_not_continue_the_log_is_refused() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let leader = open_at(&s, "/data/l", true, LogConfig::default(), 0, 0).await;
    let follower = open_at(&s, "/data/f", true, LogConfig::default(), 0, 0).await;
    append_in(&leader, 2, None, 5).await;
    let first = leader.read(0, 1 << 20, true, true).await.unwrap().records;
    follower.append_as_follower(&first, NOW).await.unwrap();
    // The same batches again: offsets that go back.
    assert!(matches!(
        follower.append_as_follower(&first, NOW).await,
        Err(LogError::UnexpectedAppend(_))
    ));
    // A batch of an older epoch after a newer one.
    let old = open_at(&s, "/data/o", true, LogConfig::default(), 0, 0).await;
    append_in(&old, 2, None, 5).await;
    append_in(&old, 1, None, 2).await;
    let tail = old.read(2, 1 << 20, true, true).await.unwrap().records;
    assert!(matches!(
        follower.append_as_follower(&tail, NOW).await,
        Err(LogError::UnexpectedAppend(_))
    ));
    // A corrupted batch.
    append_in(&leader, 1, None, 5).await;
    let mut bad = BytesMut::from(&leader.read(2, 1 << 20, true, true).await.unwrap().records[..]);
    let n = bad.len();
    bad[n - 1] ^= 0xff;
    assert!(follower
        .append_as_follower(&bad.freeze(), NOW)
        .await
        .is_err());
    assert_eq!(follower.offsets().log_end, 2, "nothing was written");
}

#[tokio::test]
async fn truncation_cuts_segments_indexes_epochs_and_rebuilds_producer_state() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let cfg = config(&[("segment.bytes", "300")]);
    let log = open_at(&s, "/data/t", true, cfg.clone(), 0, 0).await;
    for i in 0..4 {
        append_in(&log, 2, Some((9, 0, i * 2)), 1).await; // offsets 0..8, epoch 1
    }
    for i in 4..8 {
        append_in(&log, 2, Some((9, 0, i * 2)), 2).await; // offsets 8..16, epoch 2
    }
    assert!(log.segment_count() > 2);
    log.advance_high_watermark(6).await;
    // 9 is inside the batch 8..9: the whole batch goes.
    assert_eq!(log.truncate_to(9, NOW).await.unwrap(), 8);
    let o = log.offsets();
    assert_eq!((o.log_end, o.high_watermark), (8, 6));
    assert_eq!(log.latest_epoch(), Some(1), "epoch 2 started at 8: gone");
    assert_eq!(read_all(&log).await, (0..6).collect::<Vec<_>>());
    // Producer state is as of offset 8: the batch with sequence 6 is the last one.
    let dup = append_in(&log, 2, Some((9, 0, 6)), 3).await;
    assert_eq!((dup.first_offset, dup.appended_records), (6, 0));
    let next = append_in(&log, 2, Some((9, 0, 8)), 3).await;
    assert_eq!((next.first_offset, next.appended_records), (8, 2));
    assert_eq!(log.end_offset_for_epoch(1), (1, 8));
    // Reopened after a crash, the truncated log is what comes back.
    let before = stored(&log).await;
    drop(log);
    let log = open_at(&s, "/data/t", false, cfg, 0, 6).await;
    assert_eq!(stored(&log).await, before);
    assert_eq!(log.latest_epoch(), Some(3));
}

#[tokio::test]
async fn a_dangling_epoch_at_the_log_end_goes_with_any_truncation() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open_at(&s, "/data/t", true, LogConfig::default(), 0, 0).await;
    append_in(&log, 3, None, 2).await;
    // Led epoch 5 without appending anything.
    assert_eq!(log.assign_epoch_at_end(5).await.unwrap(), 3);
    assert_eq!(log.latest_epoch(), Some(5));
    log.truncate_to(3, NOW).await.unwrap();
    assert_eq!(log.latest_epoch(), Some(2), "the empty epoch 5 is gone");
}

#[tokio::test]
async fn an_emptied_follower_log_starts_again_at_the_leaders_log_start() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open_at(&s, "/data/t", true, LogConfig::default(), 0, 0).await;
    append_in(&log, 5, Some((1, 0, 0)), 1).await;
    log.truncate_fully_and_start_at(100, NOW).await.unwrap();
    let o = log.offsets();
    assert_eq!((o.log_start, o.high_watermark, o.log_end), (100, 100, 100));
    assert_eq!(log.latest_epoch(), None);
    assert_eq!(append_in(&log, 1, None, 2).await.first_offset, 100);
}

#[tokio::test]
async fn open_takes_the_checkpointed_high_watermark_and_keeps_the_recovery_point() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open_at(&s, "/data/t", true, LogConfig::default(), 0, 0).await;
    for _ in 0..5 {
        append_in(&log, 2, None, 1).await;
    }
    drop(log);
    // Unclean: the HW from the checkpoint (reads stop there), the recovery point stays
    // at its checkpoint (nothing after it is known to be on disk).
    let log = open_at(&s, "/data/t", false, LogConfig::default(), 4, 6).await;
    assert_eq!(log.offsets().high_watermark, 6);
    assert_eq!(log.recovery_point().await, 4);
    assert_eq!(read_all(&log).await, (0..6).collect::<Vec<_>>());
    log.advance_high_watermark(10).await;
    assert_eq!(read_all(&log).await.len(), 10);
    log.flush().await.unwrap();
    assert_eq!(log.recovery_point().await, 10, "a flush moves it");
    drop(log);
    let log = open_at(&s, "/data/t", true, LogConfig::default(), 4, 99).await;
    assert_eq!(log.recovery_point().await, 10, "clean: the log end");
    assert_eq!(log.offsets().high_watermark, 10, "clamped to the log end");
}

#[tokio::test]
async fn the_epoch_cache_is_rebuilt_from_the_batches_without_its_file() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open_at(&s, "/data/t", true, LogConfig::default(), 0, 0).await;
    append_in(&log, 2, None, 1).await;
    append_in(&log, 2, None, 3).await;
    append_in(&log, 2, None, 3).await;
    append_in(&log, 1, None, 7).await;
    let want = log.epoch_cache();
    drop(log);
    s.remove_file(Path::new("/data/t/leader-epoch-checkpoint"))
        .await
        .unwrap();
    let log = open_at(&s, "/data/t", false, LogConfig::default(), 0, 0).await;
    assert_eq!(log.epoch_cache(), want);
    assert_eq!(log.end_offset_for_epoch(3), (3, 6));
}

/// A disk that notes the largest single write to a `.cleaned` file.
struct WriteSizes {
    inner: Arc<dyn Storage>,
    largest_cleaned_write: Arc<parking_lot::Mutex<(usize, usize)>>,
}

struct NotedFile {
    inner: Arc<dyn StorageFile>,
    noted: Arc<parking_lot::Mutex<(usize, usize)>>,
}

#[async_trait::async_trait]
impl StorageFile for NotedFile {
    async fn append(&self, parts: &[&[u8]]) -> std::io::Result<u64> {
        let n = parts.iter().map(|p| p.len()).sum::<usize>();
        {
            let mut g = self.noted.lock();
            g.0 = g.0.max(n);
            g.1 += 1;
        }
        self.inner.append(parts).await
    }
    async fn read_at(&self, pos: u64, len: usize) -> std::io::Result<Bytes> {
        self.inner.read_at(pos, len).await
    }
    async fn sync(&self) -> std::io::Result<()> {
        self.inner.sync().await
    }
    async fn truncate(&self, len: u64) -> std::io::Result<()> {
        self.inner.truncate(len).await
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
}

#[async_trait::async_trait]
impl Storage for WriteSizes {
    async fn open(&self, path: &Path, create: bool) -> std::io::Result<Arc<dyn StorageFile>> {
        let f = self.inner.open(path, create).await?;
        if path.extension().is_some_and(|e| e == "cleaned") {
            return Ok(Arc::new(NotedFile {
                inner: f,
                noted: self.largest_cleaned_write.clone(),
            }));
        }
        Ok(f)
    }
    async fn read_file(&self, path: &Path) -> std::io::Result<Option<Bytes>> {
        self.inner.read_file(path).await
    }
    async fn write_file_atomic(&self, path: &Path, data: &[u8]) -> std::io::Result<()> {
        self.inner.write_file_atomic(path, data).await
    }
    async fn list_dir(&self, dir: &Path) -> std::io::Result<Vec<String>> {
        self.inner.list_dir(dir).await
    }
    async fn create_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.create_dir_all(dir).await
    }
    async fn rename(&self, from: &Path, to: &Path) -> std::io::Result<()> {
        self.inner.rename(from, to).await
    }
    async fn remove_file(&self, path: &Path) -> std::io::Result<()> {
        self.inner.remove_file(path).await
    }
    async fn remove_dir_all(&self, dir: &Path) -> std::io::Result<()> {
        self.inner.remove_dir_all(dir).await
    }
    async fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path).await
    }
}

/// The cleaner streams a cleaned segment to its file instead of building it in memory:
/// a segment of about 6 MiB whose cleaned copy is about 3 MiB is written in pieces of
/// about a megabyte, and every latest value survives.
#[tokio::test]
async fn compaction_streams_the_cleaned_segment_to_disk() {
    let noted = Arc::new(parking_lot::Mutex::new((0usize, 0usize)));
    let s: Arc<dyn Storage> = Arc::new(WriteSizes {
        inner: Arc::new(SimStorage::new()),
        largest_cleaned_write: noted.clone(),
    });
    let cfg = config(&[
        ("cleanup.policy", "compact"),
        ("segment.bytes", "67108864"),
        ("min.cleanable.dirty.ratio", "0.01"),
    ]);
    let log = open(&s, false, cfg).await;
    let value = Bytes::from(vec![b'v'; 1000]);
    // 3,000 keys written twice, 100 records (about 100 KiB) per batch.
    for round in 0..2 {
        for chunk in 0..30 {
            let records = (0..100)
                .map(|i| {
                    let key = Bytes::from(format!("key-{}", chunk * 100 + i));
                    (Some(key), value.clone(), NOW - 1000 + round)
                })
                .collect();
            let b = super::batch::tests::plain_records(records);
            let v = validate_batches(&b, 1 << 20).unwrap();
            let info = log.append(&v, 3, NOW).await.unwrap();
            log.advance_high_watermark(info.last_offset + 1).await;
        }
    }
    log.roll(NOW).await.unwrap();
    let before = log.size();
    let stats = log.compact(NOW).await.unwrap();
    assert_eq!((stats.removed, stats.kept), (3000, 3000), "{stats:?}");
    let after = log.size();
    assert!(after < before * 6 / 10, "{before} -> {after}");
    let (largest, writes) = *noted.lock();
    assert!(writes >= 3, "{writes} writes");
    assert!(largest < (1 << 20) + 200_000, "largest write {largest}");
    // The second round's offsets, in order.
    assert_eq!(read_all(&log).await, (3000..6000).collect::<Vec<i64>>());
}

// --- transactions: markers and producer state ----------------------------------------

async fn append_txn(log: &PartitionLog, n: usize, producer: (i64, i16, i32)) -> AppendInfo {
    let b = super::batch::tests::make_txn_batch(n, producer);
    let v = validate_batches(&b, 1 << 20).unwrap();
    log.append(&v, 3, NOW).await.unwrap()
}

fn marker(pid: i64, epoch: i16, coordinator_epoch: i32, commit: bool) -> marker::Marker {
    marker::Marker {
        producer_id: pid,
        producer_epoch: epoch,
        coordinator_epoch,
        commit,
    }
}

/// Two producers' transactions interleave; a marker ends each; the open ones are
/// known again after clean and unclean restarts (snapshot, then the log's markers
/// replayed), and to a follower that copied the bytes.
#[tokio::test]
async fn markers_end_transactions_and_open_ones_survive_restarts_and_replication() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open_at(&s, "/data/t-0", true, LogConfig::default(), 0, 0).await;
    append_txn(&log, 2, (1, 0, 0)).await; // offsets 0-1
    append_txn(&log, 1, (2, 0, 0)).await; // 2
    append(&log, 1, Some((3, 0, 0))).await; // 3: idempotent, no transaction
    let done = log
        .append_marker(&marker(1, 0, 5, false), 3, NOW)
        .await
        .unwrap();
    assert_eq!(
        (done.first_offset, done.last_offset, done.aborted),
        (0, 4, true)
    );
    append_txn(&log, 1, (1, 0, 2)).await; // 5: producer 1's next transaction
    let state = log.producer_state().await;
    assert_eq!(state.first_open_txn_offset(), Some(2));
    assert_eq!(state.get(1).unwrap().txn_first_offset, Some(5));
    let follower = open_at(&s, "/data/f-0", true, LogConfig::default(), 0, 0).await;
    let bytes = log.read(0, 1 << 20, true, true).await.unwrap().records;
    follower.append_as_follower(&bytes, NOW).await.unwrap();
    assert_eq!(follower.producer_state().await, log.producer_state().await);
    log.close().await.unwrap();
    let end = log.offsets().log_end;
    for clean in [true, false] {
        if !clean {
            // Without snapshots the state comes from replaying the log, markers too.
            for name in s.list_dir(Path::new("/data/t-0")).await.unwrap() {
                if name.ends_with(".snapshot") {
                    s.remove_file(&Path::new("/data/t-0").join(name))
                        .await
                        .unwrap();
                }
            }
        }
        let again = open_at(&s, "/data/t-0", clean, LogConfig::default(), 0, end).await;
        assert_eq!(
            again.producer_state().await,
            log.producer_state().await,
            "clean={clean}"
        );
        again.close().await.unwrap();
    }
}

#[tokio::test]
async fn markers_from_older_producers_or_coordinators_are_refused() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open_at(&s, "/data/t-0", true, LogConfig::default(), 0, 0).await;
    append_txn(&log, 1, (1, 2, 0)).await;
    log.append_marker(&marker(1, 2, 5, true), 3, NOW)
        .await
        .unwrap();
    let end = log.offsets().log_end;
    assert!(matches!(
        log.append_marker(&marker(1, 2, 4, true), 3, NOW).await,
        Err(LogError::Producer(
            producer_state::ProducerError::CoordinatorFenced { got: 4, current: 5 }
        ))
    ));
    assert!(matches!(
        log.append_marker(&marker(1, 1, 5, true), 3, NOW).await,
        Err(LogError::Producer(
            producer_state::ProducerError::InvalidEpoch { .. }
        ))
    ));
    assert_eq!(log.offsets().log_end, end, "nothing written");
    // Inside a transaction a plain batch from the producer is INVALID_TXN_STATE.
    append_txn(&log, 1, (1, 2, 1)).await;
    let b = make_batch(1, Compression::None, Some((1, 2, 2)));
    let v = validate_batches(&b, 1 << 20).unwrap();
    assert!(matches!(
        log.append(&v, 3, NOW).await,
        Err(LogError::Producer(
            producer_state::ProducerError::NotTransactional(1)
        ))
    ));
}

/// The last stable offset stays at an open transaction's first offset while the high
/// watermark passes it, until the marker is appended and below the high watermark; a
/// restart computes it again.
#[tokio::test]
async fn the_last_stable_offset_waits_for_open_and_unreplicated_transactions() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open_at(&s, "/data/t-0", true, LogConfig::default(), 0, 0).await;
    append(&log, 2, None).await; // 0-1, HW 2
    append_txn(&log, 2, (1, 0, 0)).await; // 2-3
    append(&log, 1, None).await; // 4, HW 5
    let o = log.offsets();
    assert_eq!((o.high_watermark, o.last_stable), (5, 2));
    log.append_marker(&marker(1, 0, 0, true), 3, NOW)
        .await
        .unwrap(); // 5
    assert_eq!(
        log.offsets().last_stable,
        2,
        "the marker is not replicated yet"
    );
    log.close().await.unwrap();
    // Reopened with the marker still above the HW: still unstable.
    let again = open_at(&s, "/data/t-0", false, LogConfig::default(), 0, 5).await;
    assert_eq!(again.offsets().last_stable, 2);
    again.advance_high_watermark(6).await;
    let o = again.offsets();
    assert_eq!((o.high_watermark, o.last_stable), (6, 6));
    // Without transactions the LSO is the HW.
    append(&again, 1, None).await;
    assert_eq!(again.offsets().last_stable, again.offsets().high_watermark);
}

/// read_committed reads stop at the last stable offset: before a transaction's first
/// batch while it is open, everything once its marker is below the high watermark. A
/// read at or past the LSO is empty, not an error.
#[tokio::test]
async fn read_committed_stops_at_the_last_stable_offset() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let log = open_at(&s, "/data/t-0", true, LogConfig::default(), 0, 0).await;
    append(&log, 2, None).await; // 0-1
    append_txn(&log, 2, (1, 0, 0)).await; // 2-3, open
    append(&log, 1, None).await; // 4, HW 5
    let committed = |r: ReadInfo| offsets_in(&r.records);
    assert_eq!(
        committed(log.read_committed(0, 1 << 20, true).await.unwrap()),
        vec![0, 1]
    );
    assert!(log
        .read_committed(2, 1 << 20, true)
        .await
        .unwrap()
        .records
        .is_empty());
    // read_uncommitted sees everything below the HW.
    assert_eq!(read_all(&log).await, vec![0, 1, 2, 3, 4]);
    log.append_marker(&marker(1, 0, 0, true), 3, NOW)
        .await
        .unwrap(); // 5
    log.advance_high_watermark(6).await;
    let all = committed(log.read_committed(0, 1 << 20, true).await.unwrap());
    assert_eq!(all, vec![0, 1, 2, 3, 4, 5]);
    assert!(matches!(
        log.read_committed(99, 1 << 20, true).await,
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

/// Aborted transactions are indexed in the segment of their marker with Kafka's last
/// stable offset, found by range, copied by followers, and kept across a clean restart
/// (the `.txnindex` file), an unclean one without snapshots (the replay), and a damaged
/// index file (a replay from the log start).
#[tokio::test]
async fn aborted_transactions_are_indexed_kept_and_rebuilt() {
    use super::txn_index::AbortedTxn;
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let dir = "/data/t-0";
    let log = open_at(&s, dir, true, LogConfig::default(), 0, 0).await;
    append_txn(&log, 2, (1, 0, 0)).await; // 0-1
    append_txn(&log, 1, (2, 0, 0)).await; // 2
    log.append_marker(&marker(1, 0, 0, false), 3, NOW)
        .await
        .unwrap(); // 3: abort
    log.append_marker(&marker(2, 0, 0, true), 3, NOW)
        .await
        .unwrap(); // 4: commit
    append_txn(&log, 1, (1, 0, 2)).await; // 5
    log.append_marker(&marker(1, 0, 0, false), 3, NOW)
        .await
        .unwrap(); // 6: abort
    let aborted = |first, last, lso| AbortedTxn {
        producer_id: 1,
        first_offset: first,
        last_offset: last,
        last_stable_offset: lso,
    };
    // The first abort's LSO is producer 2's open transaction (2); the second's is 7.
    let want = vec![aborted(0, 3, 2), aborted(5, 6, 7)];
    assert_eq!(log.aborted_transactions(0, 7), want);
    assert_eq!(log.aborted_transactions(4, 5), vec![]);
    assert_eq!(log.aborted_transactions(5, 7), vec![want[1]]);
    let follower = open_at(&s, "/data/f-0", true, LogConfig::default(), 0, 0).await;
    let bytes = log.read(0, 1 << 20, true, true).await.unwrap().records;
    follower.append_as_follower(&bytes, NOW).await.unwrap();
    assert_eq!(follower.aborted_transactions(0, 7), want);
    log.close().await.unwrap();
    let end = log.offsets().log_end;
    let again = open_at(&s, dir, true, LogConfig::default(), 0, end).await;
    assert_eq!(
        again.aborted_transactions(0, 7),
        want,
        "from the index file"
    );
    again.close().await.unwrap();
    for name in s.list_dir(Path::new(dir)).await.unwrap() {
        if name.ends_with(".snapshot") {
            s.remove_file(&Path::new(dir).join(name)).await.unwrap();
        }
    }
    let again = open_at(&s, dir, false, LogConfig::default(), 0, end).await;
    assert_eq!(again.aborted_transactions(0, 7), want, "from the replay");
    again.close().await.unwrap();
    let index = Path::new(dir).join(segment::file_name(0, "txnindex"));
    assert!(s.exists(&index).await);
    s.write_file_atomic(&index, b"damaged").await.unwrap();
    let again = open_at(&s, dir, true, LogConfig::default(), 0, end).await;
    assert_eq!(
        again.aborted_transactions(0, 7),
        want,
        "a damaged file is rebuilt"
    );
}

/// Compaction and transactions (Kafka's cleaner): an aborted transaction's records go
/// and never count as the latest value of their key, markers stay, and nothing at or
/// above the last stable offset is cleaned (an open transaction may still abort).
/// Without either rule a committed record would be lost here.
#[tokio::test]
async fn compaction_drops_aborted_transactions_and_stops_at_the_last_stable_offset() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let cfg = config(&[
        ("cleanup.policy", "compact"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "0"),
    ]);
    let log = open(&s, false, cfg).await;
    append(&log, 3, None).await; // 0-2: k0 k1 k2
    append_txn(&log, 3, (1, 0, 0)).await; // 3-5: k0 k1 k2, aborted
    log.append_marker(&marker(1, 0, 0, false), 3, NOW)
        .await
        .unwrap(); // 6
    append_txn(&log, 2, (2, 0, 0)).await; // 7-8: k0 k1, committed
    log.append_marker(&marker(2, 0, 0, true), 3, NOW)
        .await
        .unwrap(); // 9
    log.advance_high_watermark(10).await;
    log.roll(NOW).await.unwrap();
    append_txn(&log, 1, (3, 0, 0)).await; // 10: k0, still open
    log.advance_high_watermark(11).await;
    log.roll(NOW).await.unwrap();
    assert_eq!(log.offsets().last_stable, 10);
    let stats = log.compact(NOW).await.unwrap();
    assert!(stats.removed >= 5, "{stats:?}");
    // k2's latest committed record is 2 (the aborted 5 does not count); k0 and k1 are
    // 7 and 8; the markers stay (cleaned at their own timestamp, they are not older
    // than delete.retention.ms yet); 10 is above the last stable offset.
    assert_eq!(read_all(&log).await, vec![2, 6, 7, 8, 9, 10]);
}

/// A marker goes once its transaction keeps no record and it is older than
/// delete.retention.ms; before that, or while a record of its transaction stays, it
/// stays.
#[tokio::test]
async fn compaction_drops_a_marker_once_its_transaction_is_gone() {
    for (retention, want) in [("0", vec![3, 4, 5]), ("86400000", vec![1, 3, 4, 5])] {
        let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
        let cfg = config(&[
            ("cleanup.policy", "compact"),
            ("min.cleanable.dirty.ratio", "0.01"),
            ("delete.retention.ms", retention),
        ]);
        let log = open(&s, false, cfg).await;
        append_txn(&log, 1, (1, 0, 0)).await; // 0: k0, committed
        log.append_marker(&marker(1, 0, 0, true), 3, NOW)
            .await
            .unwrap(); // 1
        append(&log, 1, None).await; // 2: k0 supersedes 0
        append_txn(&log, 2, (2, 0, 0)).await; // 3-4: k0 k1, committed
        log.append_marker(&marker(2, 0, 0, true), 3, NOW)
            .await
            .unwrap(); // 5
        log.advance_high_watermark(6).await;
        log.roll(NOW).await.unwrap();
        append(&log, 1, None).await; // 6 (active segment)
        log.compact(NOW + 10).await.unwrap();
        // Transaction 1 keeps nothing (0 superseded by 2, then 2 by 3): its marker goes
        // once older than delete.retention.ms. Transaction 2 keeps 3 and 4: its marker
        // stays.
        let mut got = read_all(&log).await;
        got.retain(|o| *o < 6);
        assert_eq!(got, want, "delete.retention.ms={retention}");
    }
}

/// An aborted transaction whose records and marker are cleaned away leaves the
/// aborted-transaction index too: otherwise a read_committed consumer, told of it, would
/// skip the producer's next (committed) transaction waiting for the gone abort marker.
#[tokio::test]
async fn a_dropped_abort_marker_leaves_the_transaction_index() {
    let s: Arc<dyn Storage> = Arc::new(SimStorage::new());
    let cfg = config(&[
        ("cleanup.policy", "compact"),
        ("min.cleanable.dirty.ratio", "0.01"),
        ("delete.retention.ms", "0"),
    ]);
    let log = open(&s, false, cfg.clone()).await;
    append_txn(&log, 1, (1, 0, 0)).await; // 0: aborted
    log.append_marker(&marker(1, 0, 0, false), 3, NOW)
        .await
        .unwrap(); // 1
    append_txn(&log, 1, (1, 0, 1)).await; // 2: committed
    log.append_marker(&marker(1, 0, 0, true), 3, NOW)
        .await
        .unwrap(); // 3
    log.advance_high_watermark(4).await;
    log.roll(NOW).await.unwrap();
    append(&log, 1, None).await; // 4 (active)
    assert_eq!(log.aborted_transactions(0, 4).len(), 1);
    log.compact(NOW + 10).await.unwrap();
    let mut got = read_all(&log).await;
    got.retain(|o| *o < 4);
    assert_eq!(got, vec![2, 3], "the aborted record and its marker went");
    assert!(log.aborted_transactions(0, 4).is_empty());
    // And after a restart (the index file was rewritten).
    drop(log);
    let log = open(&s, false, cfg).await;
    assert!(log.aborted_transactions(0, 4).is_empty());
}
