//! OffsetForLeaderEpoch (KIP-101/320): where a leader epoch ended in the leader's log.
//! Clients (the Java client, librdkafka, kafka-python) ask it after a leader change to
//! check that their position was not truncated away. The leader answers from its
//! leader-epoch cache: the largest epoch at or below the one asked for, and the offset it
//! ended at (the log end for the current epoch). Only the leader answers; clients and
//! followers are treated alike, as in Kafka.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> Option<OffsetForLeaderEpochResponse> {
    let img = b.cache.image();
    let mut topics = Vec::with_capacity(req.topics.len());
    for t in &req.topics {
        let mut parts = Vec::with_capacity(t.partitions.len());
        for op in &t.partitions {
            let r = EpochEndOffset::default()
                .with_partition(op.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            let p = match b.replicas.leader_partition(&img, &t.topic.0, op.partition) {
                Ok(p) => p,
                Err(code) => {
                    parts.push(r.with_error_code(code));
                    continue;
                }
            };
            match p.answer_epoch_end(op.current_leader_epoch, op.leader_epoch) {
                Ok((epoch, end)) => parts.push(r.with_leader_epoch(epoch).with_end_offset(end)),
                Err((code, _)) => parts.push(r.with_error_code(code)),
            }
        }
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(parts),
        );
    }
    Some(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
