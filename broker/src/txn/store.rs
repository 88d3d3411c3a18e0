//! The records of `__transaction_state` (protobuf, `proto/txn.proto`): one per
//! transactional id, its whole state; and rebuilding a partition's ids from them when
//! this broker becomes the partition's leader.

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;
use prost::Message;
use strom_proto::txn::{TxnRecordKey, TxnRecordValue, TxnTopicPartitions};
use tokio::time::Instant;

use super::metadata::{TxnMetadata, TxnRecord, TxnState, NO_PRODUCER_ID};
use crate::coordinator::{partition_for, Loader};

pub const TXN_TOPIC: &str = "__transaction_state";

pub fn key(transactional_id: &str) -> Bytes {
    TxnRecordKey {
        transactional_id: transactional_id.into(),
    }
    .encode_to_vec()
    .into()
}

pub fn value(r: &TxnRecord) -> Bytes {
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in &r.partitions {
        by_topic.entry(t).or_default().push(*p);
    }
    TxnRecordValue {
        producer_id: r.producer_id,
        prev_producer_id: r.prev_producer_id,
        producer_epoch: r.producer_epoch as i32,
        last_producer_epoch: r.last_producer_epoch as i32,
        timeout_ms: r.timeout_ms,
        state: r.state.id() as i32,
        partitions: by_topic
            .into_iter()
            .map(|(t, ps)| TxnTopicPartitions {
                topic: t.to_string(),
                partitions: ps,
            })
            .collect(),
        start_ms: r.start_ms,
        last_update_ms: r.last_update_ms,
        client_transaction_version: if r.tv2 { 2 } else { 0 },
        next_producer_id: (r.next_producer_id >= 0).then_some(r.next_producer_id),
    }
    .encode_to_vec()
    .into()
}

/// Decodes a value; `None` if it is unreadable or names a state this version does not
/// know (skipped with a log line by the loader).
pub fn decode_value(v: &[u8]) -> Option<TxnRecord> {
    let v = TxnRecordValue::decode(v).ok()?;
    Some(TxnRecord {
        producer_id: v.producer_id,
        prev_producer_id: v.prev_producer_id,
        producer_epoch: i16::try_from(v.producer_epoch).ok()?,
        last_producer_epoch: i16::try_from(v.last_producer_epoch).ok()?,
        timeout_ms: v.timeout_ms,
        state: TxnState::from_id(i8::try_from(v.state).ok()?)?,
        partitions: v
            .partitions
            .into_iter()
            .flat_map(|tp| {
                let topic = tp.topic;
                tp.partitions.into_iter().map(move |p| (topic.clone(), p))
            })
            .collect(),
        start_ms: v.start_ms,
        last_update_ms: v.last_update_ms,
        tv2: v.client_transaction_version >= 2,
        next_producer_id: v.next_producer_id.unwrap_or(NO_PRODUCER_ID),
    })
}

/// Rebuilds the transactional ids of one `__transaction_state` partition: the latest
/// record per id, tombstones deleting.
pub struct TxnLoader {
    pub partitions: i32,
    latest: BTreeMap<String, TxnRecord>,
}

impl TxnLoader {
    pub fn new(partitions: i32) -> Self {
        TxnLoader {
            partitions,
            latest: BTreeMap::new(),
        }
    }
}

impl Loader for TxnLoader {
    type Entry = TxnMetadata;

    fn replay(&mut self, mut bytes: Bytes) {
        while !bytes.is_empty() {
            let set = match RecordBatchDecoder::decode(&mut bytes) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unreadable __transaction_state batch");
                    return;
                }
            };
            for r in set.records {
                if r.control {
                    continue;
                }
                let Some(k) = r.key.as_deref().and_then(|k| TxnRecordKey::decode(k).ok()) else {
                    continue;
                };
                match r.value.as_deref() {
                    None => {
                        self.latest.remove(&k.transactional_id);
                    }
                    Some(v) => match decode_value(v) {
                        Some(rec) => {
                            self.latest.insert(k.transactional_id, rec);
                        }
                        None => tracing::warn!(transactional_id = %k.transactional_id,
                            "skipping an unreadable __transaction_state record"),
                    },
                }
            }
        }
    }

    fn finish(self, partition: i32, _now: Instant) -> Vec<(String, TxnMetadata)> {
        self.latest
            .into_iter()
            .filter(|(id, _)| partition_for(id, self.partitions) == partition)
            .map(|(id, rec)| {
                let m = TxnMetadata::restored(&id, rec);
                (id, m)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use bytes::BytesMut;

    use super::*;
    use crate::coordinator::encode_batch;

    fn rec(state: TxnState, epoch: i16, parts: &[(&str, i32)]) -> TxnRecord {
        TxnRecord {
            producer_id: 42,
            prev_producer_id: -1,
            producer_epoch: epoch,
            last_producer_epoch: -1,
            timeout_ms: 60_000,
            state,
            partitions: parts
                .iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect::<BTreeSet<_>>(),
            start_ms: 5,
            last_update_ms: 6,
            tv2: epoch % 2 == 1,
            next_producer_id: if epoch > 3 { 43 } else { NO_PRODUCER_ID },
        }
    }

    #[test]
    fn values_round_trip() {
        let r = rec(TxnState::Ongoing, 3, &[("a", 0), ("a", 2), ("b", 1)]);
        assert_eq!(decode_value(&value(&r)), Some(r));
        // Transaction version 2, with a producer id to rotate to.
        let r = rec(TxnState::PrepareCommit, 5, &[("a", 0)]);
        assert_eq!(decode_value(&value(&r)), Some(r));
        let mut bad = TxnRecordValue::decode(&value(&rec(TxnState::Empty, 0, &[]))[..]).unwrap();
        bad.state = 99;
        assert_eq!(decode_value(&bad.encode_to_vec()), None);
    }

    /// The latest record per id wins, a tombstone deletes, and only ids of the loaded
    /// partition are kept (a partition can hold another's records after a change of
    /// `transaction.state.log.num.partitions`, which Kafka forbids; be safe anyway).
    #[test]
    fn a_partition_loads_the_latest_state_of_its_ids() {
        let n = 50;
        let ids: Vec<String> = (0..200).map(|i| format!("txn-{i}")).collect();
        let p = partition_for(&ids[0], n);
        let mine: Vec<&String> = ids.iter().filter(|i| partition_for(i, n) == p).collect();
        let other = ids.iter().find(|i| partition_for(i, n) != p).unwrap();
        assert!(mine.len() >= 2);
        let b1 = encode_batch(
            vec![
                (
                    key(mine[0]),
                    Some(value(&rec(TxnState::Ongoing, 1, &[("a", 0)]))),
                ),
                (key(mine[1]), Some(value(&rec(TxnState::Empty, 0, &[])))),
                (key(other), Some(value(&rec(TxnState::Empty, 0, &[])))),
            ],
            1,
        );
        let b2 = encode_batch(
            vec![
                (
                    key(mine[0]),
                    Some(value(&rec(TxnState::PrepareCommit, 1, &[("a", 0)]))),
                ),
                (key(mine[1]), None),
            ],
            2,
        );
        let mut all = BytesMut::new();
        all.extend_from_slice(&b1);
        all.extend_from_slice(&b2);
        let mut l = TxnLoader::new(n);
        l.replay(all.freeze());
        let got = l.finish(p, Instant::now());
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].0, mine[0]);
        assert_eq!(got[0].1.state(), TxnState::PrepareCommit);
        assert!(got[0].1.pending.is_none());
    }
}
