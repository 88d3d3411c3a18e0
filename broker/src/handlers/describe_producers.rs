//! DescribeProducers (KIP-664): the producers a partition's leader keeps state for — id,
//! epoch, last sequence and timestamp, the epoch of the coordinator whose marker it last
//! saw and the first offset of its open transaction (-1: none) — as
//! `kafka-transactions.sh describe-producers` shows them. Answered by the leader only
//! (NOT_LEADER_OR_FOLLOWER elsewhere).

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: DescribeProducersRequest,
) -> Option<DescribeProducersResponse> {
    let img = b.cache.image();
    let mut topics = Vec::new();
    for t in &req.topics {
        let mut parts = Vec::new();
        for &index in &t.partition_indexes {
            let r = PartitionResponse::default().with_partition_index(index);
            let r = match b.replicas.leader_partition(&img, &t.name.0, index) {
                Err(code) => r.with_error_code(code),
                Ok(p) => {
                    let state = p.log.producer_state().await;
                    let active = state
                        .iter()
                        .map(|(id, e)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(id))
                                .with_producer_epoch(e.epoch as i32)
                                .with_last_sequence(
                                    e.batches.back().map(|m| m.last_seq).unwrap_or(-1),
                                )
                                .with_last_timestamp(e.last_timestamp)
                                .with_coordinator_epoch(e.coordinator_epoch)
                                .with_current_txn_start_offset(e.txn_first_offset.unwrap_or(-1))
                        })
                        .collect();
                    r.with_active_producers(active)
                }
            };
            parts.push(r);
        }
        topics.push(
            TopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(parts),
        );
    }
    Some(DescribeProducersResponse::default().with_topics(topics))
}
