//! The one openraft type configuration of the metadata quorum.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::rt::StromRuntime;

/// A Raft log entry's application payload: a prost-encoded `MetadataRecordBatch`.
///
/// Raft messages and stored entries are JSON; the payload is written there as one
/// base64 string (a third larger than the bytes), not serde's default array of numbers
/// (about 3.6 characters a byte and slow to parse): a follower must take an
/// AppendEntries within openraft's heartbeat interval, and a CreateTopics of thousands
/// of partitions is one entry. Reading accepts both forms (data written before).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Payload(pub Vec<u8>);

impl Serialize for Payload {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        s.serialize_newtype_struct(
            "Payload",
            &base64::engine::general_purpose::STANDARD.encode(&self.0),
        )
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Payload, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Payload;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string or an array of bytes")
            }
            fn visit_newtype_struct<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Payload, D::Error> {
                d.deserialize_any(Visit)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Payload, E> {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(v)
                    .map(Payload)
                    .map_err(E::custom)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Payload, A::Error> {
                let mut out = Vec::with_capacity(a.size_hint().unwrap_or(0));
                while let Some(b) = a.next_element::<u8>()? {
                    out.push(b);
                }
                Ok(Payload(out))
            }
        }
        d.deserialize_newtype_struct("Payload", Visit)
    }
}

impl std::fmt::Display for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "metadata batch ({} bytes)", self.0.len())
    }
}

openraft::declare_raft_types!(
    /// strom's metadata quorum.
    pub TypeConfig:
        D = Payload,
        R = (),
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = StromRuntime,
);

pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StoredMembership = openraft::StoredMembership<NodeId, openraft::BasicNode>;
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, openraft::BasicNode>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Raft = openraft::Raft<TypeConfig>;

#[cfg(test)]
mod tests {
    use super::Payload;

    #[test]
    fn payload_is_base64_in_json_and_old_arrays_still_read() {
        let p = Payload(vec![0, 1, 2, 250, 255]);
        let json = serde_json::to_string(&p).unwrap();
        assert_eq!(json, "\"AAEC+v8=\"");
        assert_eq!(serde_json::from_str::<Payload>(&json).unwrap(), p);
        assert_eq!(
            serde_json::from_str::<Payload>("[0,1,2,250,255]").unwrap(),
            p
        );
        assert!(serde_json::from_str::<Payload>("\"not base64!\"").is_err());
        assert!(serde_json::from_str::<Payload>("[256]").is_err());
    }
}
