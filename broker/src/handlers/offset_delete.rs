//! OffsetDelete: removes committed offsets of partitions whose topic the group is not
//! subscribed to (GROUP_SUBSCRIBED_TO_TOPIC otherwise).

use std::sync::Arc;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: OffsetDeleteRequest,
) -> Option<OffsetDeleteResponse> {
    let partitions: Vec<(String, i32)> = req
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let mut results = match b.groups.delete_offsets(&req.group_id.0, &partitions).await {
        Err(e) => return Some(OffsetDeleteResponse::default().with_error_code(e.code())),
        Ok(r) => r.into_iter(),
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(super::code(results.next().unwrap_or(Ok(()))))
                        })
                        .collect(),
                )
        })
        .collect();
    Some(OffsetDeleteResponse::default().with_topics(topics))
}
