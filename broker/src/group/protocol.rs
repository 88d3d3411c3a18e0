//! The embedded consumer protocol of classic groups (Kafka's `ConsumerProtocol`): the
//! subscription a member sends in JoinGroup and the assignment SyncGroup hands back,
//! each prefixed by a 2-byte version. The coordinator reads them itself when a classic
//! group becomes a KIP-848 group, when classic members join a KIP-848 group, and when
//! such a group goes back to the classic protocol.

use bytes::{Buf, Bytes, BytesMut};
use kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The newest embedded protocol version strom reads and writes (Kafka's, too).
const MAX_VERSION: i16 = 3;

/// A decoded subscription.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Subscription {
    pub version: i16,
    pub topics: Vec<String>,
    /// v1+: what the member owns now (cooperative clients); empty for eager ones.
    pub owned: Vec<(String, Vec<i32>)>,
    pub rack: Option<String>,
}

/// The version prefix of embedded protocol bytes, clamped to what strom reads.
pub fn version_of(bytes: &[u8]) -> i16 {
    if bytes.len() < 2 {
        return 0;
    }
    i16::from_be_bytes([bytes[0], bytes[1]]).clamp(0, MAX_VERSION)
}

/// Reads a subscription; None when the bytes are malformed.
pub fn decode_subscription(bytes: &Bytes) -> Option<Subscription> {
    let mut b = bytes.clone();
    if b.remaining() < 2 {
        return None;
    }
    let version = b.get_i16();
    if version < 0 {
        return None;
    }
    let version = version.min(MAX_VERSION);
    let s = ConsumerProtocolSubscription::decode(&mut b, version).ok()?;
    Some(Subscription {
        version,
        topics: s.topics.iter().map(|t| t.to_string()).collect(),
        owned: s
            .owned_partitions
            .iter()
            .map(|tp| (tp.topic.0.to_string(), tp.partitions.clone()))
            .collect(),
        rack: s.rack_id.map(|r| r.to_string()),
    })
}

/// A decoded assignment: partitions by topic name. Err when the bytes are malformed or
/// carry user data (a custom client-side assignor the coordinator cannot reproduce).
pub fn decode_assignment(bytes: &Bytes) -> Result<Vec<(String, Vec<i32>)>, &'static str> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let mut b = bytes.clone();
    if b.remaining() < 2 {
        return Err("the embedded consumer protocol is malformed");
    }
    let version = b.get_i16();
    if version < 0 {
        return Err("the embedded consumer protocol is malformed");
    }
    let a = ConsumerProtocolAssignment::decode(&mut b, version.min(MAX_VERSION))
        .map_err(|_| "the embedded consumer protocol is malformed")?;
    if a.user_data.as_ref().is_some_and(|u| !u.is_empty()) {
        return Err("the assignment carries user data of an unsupported custom assignor");
    }
    Ok(a.assigned_partitions
        .iter()
        .map(|tp| (tp.topic.0.to_string(), tp.partitions.clone()))
        .collect())
}

/// Writes an assignment at `version` (the version of the member's subscription).
pub fn encode_assignment(version: i16, partitions: &[(String, Vec<i32>)]) -> Bytes {
    let version = version.clamp(0, MAX_VERSION);
    let topics = partitions
        .iter()
        .map(|(t, ps)| {
            AssignedTopic::default()
                .with_topic(TopicName(StrBytes::from_string(t.clone())))
                .with_partitions(ps.clone())
        })
        .collect();
    let mut b = BytesMut::new();
    b.extend_from_slice(&version.to_be_bytes());
    // Encoding a message the codec built itself cannot fail.
    let _ = ConsumerProtocolAssignment::default()
        .with_assigned_partitions(topics)
        .encode(&mut b, version);
    b.freeze()
}

/// Writes a subscription (v0 layout): how KIP-848 members look to classic tools.
pub fn encode_subscription(topics: &[String]) -> Bytes {
    let mut b = BytesMut::new();
    b.extend_from_slice(&0i16.to_be_bytes());
    let _ = ConsumerProtocolSubscription::default()
        .with_topics(
            topics
                .iter()
                .map(|t| StrBytes::from_string(t.clone()))
                .collect(),
        )
        .encode(&mut b, 0);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition as OwnedTopic;

    fn subscription(version: i16, topics: &[&str], owned: &[(&str, &[i32])]) -> Bytes {
        let mut b = BytesMut::new();
        b.extend_from_slice(&version.to_be_bytes());
        ConsumerProtocolSubscription::default()
            .with_topics(
                topics
                    .iter()
                    .map(|t| StrBytes::from_string(t.to_string()))
                    .collect(),
            )
            .with_owned_partitions(
                owned
                    .iter()
                    .map(|(t, ps)| {
                        OwnedTopic::default()
                            .with_topic(TopicName(StrBytes::from_string(t.to_string())))
                            .with_partitions(ps.to_vec())
                    })
                    .collect(),
            )
            .with_rack_id(Some(StrBytes::from_static_str("r1")))
            .encode(&mut b, version)
            .unwrap();
        b.freeze()
    }

    #[test]
    fn subscriptions_of_every_version_are_read() {
        for v in 0..=3 {
            let s = decode_subscription(&subscription(v, &["a", "b"], &[("a", &[0, 2])])).unwrap();
            assert_eq!(s.version, v);
            assert_eq!(s.topics, ["a", "b"]);
            assert_eq!(s.owned.is_empty(), v == 0, "owned partitions exist from v1");
            assert_eq!(s.rack.as_deref(), (v >= 3).then_some("r1"));
        }
        assert!(decode_subscription(&Bytes::from_static(&[0])).is_none());
        assert!(decode_subscription(&Bytes::from_static(&[0xff, 0xff, 0, 0, 0, 1])).is_none());
    }

    #[test]
    fn assignments_round_trip_and_user_data_is_refused() {
        let parts = vec![("a".to_string(), vec![0, 1]), ("b".to_string(), vec![3])];
        for v in 0..=3 {
            let b = encode_assignment(v, &parts);
            assert_eq!(version_of(&b), v);
            assert_eq!(decode_assignment(&b).unwrap(), parts);
        }
        assert_eq!(decode_assignment(&Bytes::new()).unwrap(), vec![]);
        let mut b = BytesMut::new();
        b.extend_from_slice(&0i16.to_be_bytes());
        ConsumerProtocolAssignment::default()
            .with_user_data(Some(Bytes::from_static(b"sticky")))
            .encode(&mut b, 0)
            .unwrap();
        assert!(decode_assignment(&b.freeze()).is_err());
    }
}
