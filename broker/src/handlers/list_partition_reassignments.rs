//! ListPartitionReassignments (KIP-455): the partitions being moved, with their full
//! replica list and the replicas being added and removed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_proto::controller::{ListReassignmentsRequest, TopicPartitions, TopicPartitionsList};

use super::RequestContext;
use crate::broker::Broker;
use crate::error::controller_status_code;

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().map(|&x| BrokerId(x)).collect()
}

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: ListPartitionReassignmentsRequest,
) -> Option<ListPartitionReassignmentsResponse> {
    let greq = ListReassignmentsRequest {
        partitions: req.topics.as_ref().map(|ts| TopicPartitionsList {
            topics: ts
                .iter()
                .map(|t| TopicPartitions {
                    topic: t.name.0.to_string(),
                    partitions: t.partition_indexes.clone(),
                })
                .collect(),
        }),
    };
    let timeout = Duration::from_millis(req.timeout_ms.clamp(1000, 60_000) as u64);
    let res = b
        .controller
        .call(timeout, |mut c| {
            let r = greq.clone();
            async move { c.list_partition_reassignments(r).await }
        })
        .await;
    let r = match res {
        Ok(r) => r,
        Err(status) => {
            return Some(
                ListPartitionReassignmentsResponse::default()
                    .with_error_code(controller_status_code(&status))
                    .with_error_message(Some(StrBytes::from_string(status.message().to_string()))),
            )
        }
    };
    let mut by_topic: BTreeMap<String, Vec<OngoingPartitionReassignment>> = BTreeMap::new();
    for o in r.reassignments {
        by_topic.entry(o.topic).or_default().push(
            OngoingPartitionReassignment::default()
                .with_partition_index(o.partition)
                .with_replicas(ids(&o.replicas))
                .with_adding_replicas(ids(&o.adding_replicas))
                .with_removing_replicas(ids(&o.removing_replicas)),
        );
    }
    Some(
        ListPartitionReassignmentsResponse::default()
            .with_error_code(r.error_code as i16)
            .with_topics(
                by_topic
                    .into_iter()
                    .map(|(t, parts)| {
                        OngoingTopicReassignment::default()
                            .with_name(TopicName(StrBytes::from_string(t)))
                            .with_partitions(parts)
                    })
                    .collect(),
            ),
    )
}
