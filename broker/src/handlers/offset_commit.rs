//! OffsetCommit: checked against the group's member and generation (classic) or member
//! epoch (KIP-848), or accepted from "simple" consumers when the group has no members
//! (Kafka's rule: a negative generation or member epoch, whatever the member id — a
//! KIP-848 consumer that never subscribed sends its own member id with epoch -1);
//! written to `__consumer_offsets` (acks=all) before the answer.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use prost::Message;
use strom_proto::group::OffsetValue;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::classic::ClassicState;
use crate::group::{store, GroupEntry, GroupKind};

fn check(
    e: &GroupEntry,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), i16> {
    let simple = generation < 0;
    match &e.kind {
        GroupKind::Classic(c) => {
            if c.state == ClassicState::Dead {
                return Err(E::CoordinatorNotAvailable.code());
            }
            if simple && c.is_empty() {
                return Ok(());
            }
            if let Some(i) = instance_id {
                if c.static_members.get(i).is_some_and(|m| m != member_id) {
                    return Err(E::FencedInstanceId.code());
                }
            }
            if !c.members.contains_key(member_id) {
                return Err(E::UnknownMemberId.code());
            }
            if generation != c.generation {
                return Err(E::IllegalGeneration.code());
            }
            if c.state == ClassicState::CompletingRebalance {
                return Err(E::RebalanceInProgress.code());
            }
            Ok(())
        }
        GroupKind::Consumer(c) => {
            if simple && c.members.is_empty() {
                return Ok(());
            }
            c.check_commit(member_id, generation)
        }
    }
}

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: OffsetCommitRequest,
) -> Option<OffsetCommitResponse> {
    let group_id = req.group_id.0.to_string();
    let simple = req.generation_id_or_member_epoch < 0;
    let mut codes: Vec<Vec<i16>> = req
        .topics
        .iter()
        .map(|t| vec![0; t.partitions.len()])
        .collect();
    let all = |codes: &mut Vec<Vec<i16>>, c: i16| {
        codes
            .iter_mut()
            .for_each(|t| t.iter_mut().for_each(|x| *x = c))
    };
    if group_id.is_empty() {
        all(&mut codes, E::InvalidGroupId.code());
    } else {
        match b.groups.group(&group_id, simple) {
            Err(code) => all(&mut codes, code),
            Ok(None) => all(&mut codes, E::IllegalGeneration.code()),
            Ok(Some(g)) => {
                let mut e = g.lock().await;
                match check(
                    &e,
                    &req.member_id,
                    req.group_instance_id.as_deref(),
                    req.generation_id_or_member_epoch,
                ) {
                    Err(code) => all(&mut codes, code),
                    Ok(()) => {
                        let img = b.cache.image();
                        let now = strom_common::clock::now_ms();
                        let mut records = Vec::new();
                        let mut accepted = Vec::new();
                        for (ti, t) in req.topics.iter().enumerate() {
                            let topic = img.topic_by_name(&t.name.0);
                            for (pi, p) in t.partitions.iter().enumerate() {
                                let metadata = p.committed_metadata.as_deref().unwrap_or("");
                                if metadata.len() > b.groups.cfg.offset_metadata_max_bytes {
                                    codes[ti][pi] = E::OffsetMetadataTooLarge.code();
                                    continue;
                                }
                                if !topic
                                    .is_some_and(|x| x.partitions.contains_key(&p.partition_index))
                                {
                                    codes[ti][pi] = E::UnknownTopicOrPartition.code();
                                    continue;
                                }
                                let v = OffsetValue {
                                    offset: p.committed_offset,
                                    leader_epoch: p.committed_leader_epoch,
                                    metadata: metadata.to_string(),
                                    commit_timestamp: now,
                                };
                                records.push((
                                    store::offset_key(&group_id, &t.name.0, p.partition_index),
                                    Some(Bytes::from(v.encode_to_vec())),
                                ));
                                accepted.push((ti, pi, t.name.0.to_string(), p.partition_index, v));
                            }
                        }
                        match b.groups.write(e.partition, records).await {
                            Ok(()) => {
                                for (_, _, topic, p, v) in accepted {
                                    e.offsets.insert((topic, p), v);
                                }
                            }
                            Err(code) => {
                                for (ti, pi, ..) in accepted {
                                    codes[ti][pi] = code;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    let topics = req
        .topics
        .iter()
        .zip(codes)
        .map(|(t, cs)| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .zip(cs)
                        .map(|(p, c)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    Some(OffsetCommitResponse::default().with_topics(topics))
}
