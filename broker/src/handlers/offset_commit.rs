//! OffsetCommit: checked against the group's member and generation (classic) or member
//! epoch (KIP-848), or accepted from "simple" consumers when the group has no members
//! (Kafka's rule: a negative generation or member epoch, whatever the member id — a
//! KIP-848 consumer that never subscribed sends its own member id with epoch -1);
//! written to `__consumer_offsets` (acks=all) before the answer.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use super::RequestContext;
use crate::broker::Broker;
use crate::group::api::OffsetCommit;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: OffsetCommitRequest,
) -> Option<OffsetCommitResponse> {
    let offsets: Vec<OffsetCommit> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| OffsetCommit {
                topic: t.name.0.to_string(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: p.committed_leader_epoch,
                metadata: p.committed_metadata.as_deref().unwrap_or("").to_string(),
            })
        })
        .collect();
    let mut results = b
        .groups
        .commit_offsets(
            &req.group_id.0,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id_or_member_epoch,
            offsets,
        )
        .await
        .into_iter();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(super::code(results.next().unwrap_or(Ok(()))))
                        })
                        .collect(),
                )
        })
        .collect();
    Some(OffsetCommitResponse::default().with_topics(topics))
}
