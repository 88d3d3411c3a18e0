//! Transaction markers (KIP-98): the control batch a partition leader appends when a
//! transaction commits or aborts. One record; its key is `[version: i16 = 0, type: i16]`
//! (0 abort, 1 commit) and its value Kafka's `EndTransactionMarker`,
//! `[version: i16 = 0, coordinator_epoch: i32]`. The batch carries the producer's id and
//! epoch, no sequence, and the transactional and control attribute bits.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::batch::BatchHeader;

/// Control record types (Kafka's `ControlRecordType`).
pub const ABORT: i16 = 0;
pub const COMMIT: i16 = 1;

/// A marker as written or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub coordinator_epoch: i32,
    pub commit: bool,
}

/// The control batch for `m` (base offset 0: the log stamps the real one).
pub fn encode(m: &Marker, now_ms: i64) -> Bytes {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(if m.commit { COMMIT } else { ABORT });
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(m.coordinator_epoch);
    let rec = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: m.producer_id,
        producer_epoch: m.producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: Some(key.freeze()),
        value: Some(value.freeze()),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[rec],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding a marker cannot fail");
    buf.freeze()
}

/// The marker a stored control batch holds; `None` for other batches, or a control
/// record this version does not know (Kafka skips those too).
pub fn decode(batch: &Bytes) -> Option<Marker> {
    let h = BatchHeader::parse(batch)?;
    if !h.is_control() {
        return None;
    }
    let mut b = batch.clone();
    let set = RecordBatchDecoder::decode(&mut b).ok()?;
    let r = set.records.first()?;
    let mut key = r.key.clone()?;
    if key.remaining() < 4 {
        return None;
    }
    let _version = key.get_i16();
    let commit = match key.get_i16() {
        ABORT => false,
        COMMIT => true,
        _ => return None,
    };
    let mut value = r.value.clone()?;
    if value.remaining() < 6 {
        return None;
    }
    let _version = value.get_i16();
    Some(Marker {
        producer_id: h.producer_id,
        producer_epoch: h.producer_epoch,
        coordinator_epoch: value.get_i32(),
        commit,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip_as_control_batches() {
        for commit in [true, false] {
            let m = Marker {
                producer_id: 42,
                producer_epoch: 3,
                coordinator_epoch: 7,
                commit,
            };
            let b = encode(&m, 1_000);
            let h = BatchHeader::parse(&b).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.records_count, h.base_sequence), (1, -1));
            assert_eq!(decode(&b), Some(m));
        }
    }

    #[test]
    fn plain_batches_are_not_markers() {
        let b = crate::log::batch::tests::plain_records(vec![(None, Bytes::from("v"), 1)]);
        assert_eq!(decode(&b), None);
    }
}
