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

/// Everything a partition holds, latest value per key: offsets and group states.
#[derive(Default, Debug)]
pub struct Loaded {
    pub offsets: BTreeMap<String, BTreeMap<(String, i32), OffsetValue>>,
    pub classic: BTreeMap<String, ClassicGroupValue>,
    pub consumer: BTreeMap<String, ConsumerGroupValue>,
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
            if set.records.first().is_some_and(|r| r.control) {
                continue;
            }
            for r in set.records {
                let Some(k) = &r.key else { continue };
                match decode(k, r.value.as_deref()) {
                    Some(GroupRecord::Offset {
                        group,
                        topic,
                        partition,
                        value,
                    }) => {
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
}
