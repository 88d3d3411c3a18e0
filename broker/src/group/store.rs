//! The records of `__consumer_offsets`: keys and values (protobuf, `proto/group.proto`),
//! encoding a group's state and offsets into record batches, and reading a partition
//! back into groups when this broker becomes its leader.

use std::collections::BTreeMap;

use bytes::Bytes;

pub use crate::coordinator::{encode_batch, partition_for};
use kafka_protocol::records::RecordBatchDecoder;
use prost::Message;
use strom_proto::group::{
    ClassicGroupValue, ConsumerGroupValue, GroupRecordKey, KeyKind, OffsetValue,
};

/// What a record says, decoded.
#[derive(Clone, Debug, PartialEq)]
pub enum GroupRecord {
    Offset {
        group: String,
        topic: String,
        partition: i32,
        value: Option<OffsetValue>,
    },
    Classic {
        group: String,
        value: Option<ClassicGroupValue>,
    },
    Consumer {
        group: String,
        value: Option<ConsumerGroupValue>,
    },
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Bytes {
    GroupRecordKey {
        kind: KeyKind::KeyOffset as i32,
        group: group.into(),
        topic: topic.into(),
        partition,
    }
    .encode_to_vec()
    .into()
}

pub fn classic_key(group: &str) -> Bytes {
    GroupRecordKey {
        kind: KeyKind::KeyClassicGroup as i32,
        group: group.into(),
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

pub fn consumer_key(group: &str) -> Bytes {
    GroupRecordKey {
        kind: KeyKind::KeyConsumerGroup as i32,
        group: group.into(),
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

/// Decodes one record; `None` for records this version does not understand (skipped,
/// so a newer record kind cannot stop a partition from loading).
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<GroupRecord> {
    let k = GroupRecordKey::decode(key).ok()?;
    match KeyKind::try_from(k.kind).ok()? {
        KeyKind::KeyOffset => Some(GroupRecord::Offset {
            group: k.group,
            topic: k.topic,
            partition: k.partition,
            value: match value {
                Some(v) => Some(OffsetValue::decode(v).ok()?),
                None => None,
            },
        }),
        KeyKind::KeyClassicGroup => Some(GroupRecord::Classic {
            group: k.group,
            value: match value {
                Some(v) => Some(ClassicGroupValue::decode(v).ok()?),
                None => None,
            },
        }),
        KeyKind::KeyConsumerGroup => Some(GroupRecord::Consumer {
            group: k.group,
            value: match value {
                Some(v) => Some(ConsumerGroupValue::decode(v).ok()?),
                None => None,
            },
        }),
        KeyKind::KeyUnknown => None,
    }
}

/// Offsets by partition (topic, index).
pub type PartitionOffsets = BTreeMap<(String, i32), OffsetValue>;

/// Offsets by group, then partition.
pub type GroupOffsets = BTreeMap<String, PartitionOffsets>;

/// Everything a partition holds, latest value per key: offsets and group states, and the
/// offsets of transactions not ended yet (TxnOffsetCommit), by producer id.
#[derive(Default, Debug)]
pub struct Loaded {
    pub offsets: GroupOffsets,
    pub classic: BTreeMap<String, ClassicGroupValue>,
    pub consumer: BTreeMap<String, ConsumerGroupValue>,
    pub pending_txn: BTreeMap<i64, GroupOffsets>,
}

/// What a transaction's end does to the offsets it committed: on commit they become the
/// group's committed offsets, on abort they are dropped.
pub fn end_txn_offsets(
    offsets: &mut BTreeMap<(String, i32), OffsetValue>,
    pending: BTreeMap<(String, i32), OffsetValue>,
    commit: bool,
) {
    if commit {
        offsets.extend(pending);
    }
}

impl Loaded {
    /// Applies the records of stored batches, in order.
    pub fn apply_batches(&mut self, mut bytes: Bytes) {
        while !bytes.is_empty() {
            let set = match RecordBatchDecoder::decode(&mut bytes) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "skipping an unreadable __consumer_offsets batch");
                    return;
                }
            };
            let Some(first) = set.records.first() else {
                continue;
            };
            if first.control {
                // A transaction marker: the producer's pending offsets end.
                let commit = match first.key.as_deref() {
                    Some([_, _, t0, t1, ..]) => {
                        i16::from_be_bytes([*t0, *t1]) == crate::log::marker::COMMIT
                    }
                    _ => continue,
                };
                if let Some(groups) = self.pending_txn.remove(&first.producer_id) {
                    for (g, pending) in groups {
                        let offsets = self.offsets.entry(g.clone()).or_default();
                        end_txn_offsets(offsets, pending, commit);
                        if offsets.is_empty() {
                            self.offsets.remove(&g);
                        }
                    }
                }
                continue;
            }
            let txn_producer = first.transactional.then_some(first.producer_id);
            for r in set.records {
                let Some(k) = &r.key else { continue };
                match decode(k, r.value.as_deref()) {
                    Some(GroupRecord::Offset {
                        group,
                        topic,
                        partition,
                        value,
                    }) => {
                        if let (Some(pid), Some(v)) = (txn_producer, &value) {
                            self.pending_txn
                                .entry(pid)
                                .or_default()
                                .entry(group)
                                .or_default()
                                .insert((topic, partition), v.clone());
                            continue;
                        }
                        let g = self.offsets.entry(group.clone()).or_default();
                        match value {
                            Some(v) => {
                                g.insert((topic, partition), v);
                            }
                            None => {
                                g.remove(&(topic, partition));
                                if g.is_empty() {
                                    self.offsets.remove(&group);
                                }
                            }
                        }
                    }
                    Some(GroupRecord::Classic { group, value }) => match value {
                        Some(v) => {
                            self.classic.insert(group, v);
                        }
                        None => {
                            self.classic.remove(&group);
                        }
                    },
                    Some(GroupRecord::Consumer { group, value }) => match value {
                        Some(v) => {
                            self.consumer.insert(group, v);
                        }
                        None => {
                            self.consumer.remove(&group);
                        }
                    },
                    None => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn batches_round_trip_with_tombstones() {
        let v = OffsetValue {
            offset: 42,
            leader_epoch: 3,
            metadata: "m".into(),
            commit_timestamp: 9,
        };
        let b1 = encode_batch(
            vec![
                (offset_key("g", "t", 0), Some(v.encode_to_vec().into())),
                (offset_key("g", "t", 1), Some(v.encode_to_vec().into())),
            ],
            1,
        );
        let b2 = encode_batch(vec![(offset_key("g", "t", 1), None)], 2);
        let mut all = BytesMut::new();
        all.extend_from_slice(&b1);
        all.extend_from_slice(&b2);
        let mut l = Loaded::default();
        l.apply_batches(all.freeze());
        assert_eq!(l.offsets["g"].len(), 1);
        assert_eq!(l.offsets["g"][&("t".to_string(), 0)].offset, 42);
    }

    #[test]
    fn transactional_offsets_count_only_after_a_commit_marker() {
        use crate::coordinator::encode_batch_as;
        use crate::log::marker::{encode, Marker};
        let v = |o: i64| OffsetValue {
            offset: o,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: 1,
        };
        let rec = |o: i64, p: i32| {
            (
                offset_key("g", "t", p),
                Some(Bytes::from(v(o).encode_to_vec())),
            )
        };
        let marker = |pid: i64, commit: bool| {
            encode(
                &Marker {
                    producer_id: pid,
                    producer_epoch: 0,
                    coordinator_epoch: 0,
                    commit,
                },
                1,
            )
        };
        let mut all = BytesMut::new();
        all.extend_from_slice(&encode_batch(vec![rec(5, 0)], 1));
        // Producer 7 commits offset 10 for partition 0, producer 8 aborts 20 for 1 and 0,
        // producer 9's transaction is still open at the end.
        all.extend_from_slice(&encode_batch_as(vec![rec(10, 0)], 1, Some((7, 0))));
        all.extend_from_slice(&encode_batch_as(
            vec![rec(20, 1), rec(20, 0)],
            1,
            Some((8, 0)),
        ));
        all.extend_from_slice(&encode_batch_as(vec![rec(30, 1)], 1, Some((9, 0))));
        let mut l = Loaded::default();
        l.apply_batches(all.clone().freeze());
        assert_eq!(l.offsets["g"][&("t".to_string(), 0)].offset, 5);
        assert_eq!(l.pending_txn.len(), 3);
        all.extend_from_slice(&marker(7, true));
        all.extend_from_slice(&marker(8, false));
        let mut l = Loaded::default();
        l.apply_batches(all.freeze());
        assert_eq!(l.offsets["g"][&("t".to_string(), 0)].offset, 10);
        assert!(!l.offsets["g"].contains_key(&("t".to_string(), 1)));
        assert_eq!(l.pending_txn.keys().copied().collect::<Vec<_>>(), vec![9]);
        assert_eq!(l.pending_txn[&9]["g"][&("t".to_string(), 1)].offset, 30);
    }
}
