//! OffsetDelete: removes committed offsets of partitions whose topic the group is not
//! subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::Decodable;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::{store, GroupEntry, GroupKind};

/// Topics some member of the group subscribes to.
fn subscribed(e: &GroupEntry) -> BTreeSet<String> {
    match &e.kind {
        GroupKind::Classic(c) if c.protocol_type.as_deref() == Some("consumer") => {
            let protocol = c.protocol_name.clone().unwrap_or_default();
            c.members
                .values()
                .flat_map(|m| {
                    let mut meta = m.metadata(&protocol);
                    if meta.len() < 2 {
                        return Vec::new();
                    }
                    let version = i16::from_be_bytes([meta[0], meta[1]]);
                    let _ = bytes::Buf::get_i16(&mut meta);
                    ConsumerProtocolSubscription::decode(&mut meta, version.clamp(0, 3))
                        .map(|s| s.topics.iter().map(|t| t.to_string()).collect())
                        .unwrap_or_default()
                })
                .collect()
        }
        GroupKind::Classic(_) => BTreeSet::new(),
        GroupKind::Consumer(c) => c
            .members
            .values()
            .flat_map(|m| m.subscribed_topic_names.clone())
            .collect(),
    }
}

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: OffsetDeleteRequest,
) -> Option<OffsetDeleteResponse> {
    let g = match b.groups.group(&req.group_id.0, false) {
        Err(code) => return Some(OffsetDeleteResponse::default().with_error_code(code)),
        Ok(None) => {
            return Some(OffsetDeleteResponse::default().with_error_code(E::GroupIdNotFound.code()))
        }
        Ok(Some(g)) => g,
    };
    let mut e = g.lock().await;
    let subs = subscribed(&e);
    let mut records = Vec::new();
    let mut doomed = Vec::new();
    let mut codes: Vec<Vec<i16>> = Vec::new();
    for t in &req.topics {
        let mut cs = Vec::new();
        for p in &t.partitions {
            if subs.contains(t.name.0.as_str()) {
                cs.push(E::GroupSubscribedToTopic.code());
            } else {
                let key = (t.name.0.to_string(), p.partition_index);
                if e.offsets.contains_key(&key) {
                    records.push((store::offset_key(&e.id, &key.0, key.1), None::<Bytes>));
                    doomed.push(key);
                }
                cs.push(0);
            }
        }
        codes.push(cs);
    }
    if let Err(code) = b.groups.write(e.partition, records).await {
        return Some(OffsetDeleteResponse::default().with_error_code(code));
    }
    for k in doomed {
        e.offsets.remove(&k);
    }
    let topics = req
        .topics
        .iter()
        .zip(codes)
        .map(|(t, cs)| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .zip(cs)
                        .map(|(p, c)| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(OffsetDeleteResponse::default().with_topics(topics))
}
