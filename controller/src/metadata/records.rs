//! Helpers to build metadata records and to move them between bytes and messages.

use prost::Message;
use strom_proto::metadata::{metadata_record::Record, MetadataRecord, MetadataRecordBatch};
use uuid::Uuid;

/// Wraps one record kind into a `MetadataRecord`.
pub fn record(r: Record) -> MetadataRecord {
    MetadataRecord { record: Some(r) }
}

/// Encodes a batch as it is stored in the Raft log.
pub fn encode_batch(records: Vec<MetadataRecord>) -> Vec<u8> {
    MetadataRecordBatch { records }.encode_to_vec()
}

/// Decodes a stored batch.
pub fn decode_batch(bytes: &[u8]) -> Result<MetadataRecordBatch, prost::DecodeError> {
    MetadataRecordBatch::decode(bytes)
}

/// A topic id from its 16 wire bytes; anything else is the nil id.
pub fn uuid_from_bytes(b: &[u8]) -> Uuid {
    Uuid::from_slice(b).unwrap_or(Uuid::nil())
}

/// The 16 wire bytes of a topic id.
pub fn uuid_bytes(id: &Uuid) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(id.as_bytes())
}
