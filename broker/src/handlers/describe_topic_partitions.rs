//! DescribeTopicPartitions (KIP-966): topics' partitions with leaders, ISR and eligible
//! leader replicas, paged by partitions (`response_partition_limit`, at most 2000) with
//! a cursor, as Kafka's handler pages them. An empty topic list means every topic.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::admin::is_internal;
use crate::broker::Broker;

const MAX_PARTITIONS: i32 = 2000;

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().map(|&x| BrokerId(x)).collect()
}

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: DescribeTopicPartitionsRequest,
) -> Option<DescribeTopicPartitionsResponse> {
    let img = b.cache.image();
    let limit = req.response_partition_limit.clamp(1, MAX_PARTITIONS) as usize;
    let mut names: Vec<String> = if req.topics.is_empty() {
        img.topic_ids.keys().cloned().collect()
    } else {
        req.topics.iter().map(|t| t.name.0.to_string()).collect()
    };
    names.sort();
    names.dedup();
    let (cursor_topic, cursor_partition) = match &req.cursor {
        Some(c) => (Some(c.topic_name.0.to_string()), c.partition_index),
        None => (None, 0),
    };
    if let Some(ct) = &cursor_topic {
        if cursor_partition < 0 || (!req.topics.is_empty() && !names.contains(ct)) {
            let topics = names
                .iter()
                .map(|n| {
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                        .with_error_code(E::InvalidRequest.code())
                })
                .collect();
            return Some(DescribeTopicPartitionsResponse::default().with_topics(topics));
        }
        names.retain(|n| n >= ct);
    }
    let mut remaining = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for (i, name) in names.iter().enumerate() {
        let Some(t) = img.topic_by_name(name) else {
            if !req.topics.is_empty() {
                topics.push(
                    DescribeTopicPartitionsResponseTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                        .with_error_code(E::UnknownTopicOrPartition.code()),
                );
            }
            continue;
        };
        if remaining == 0 {
            next_cursor = Some(
                Cursor::default()
                    .with_topic_name(TopicName(StrBytes::from_string(name.clone())))
                    .with_partition_index(0),
            );
            break;
        }
        let start = if cursor_topic.as_deref() == Some(name.as_str()) {
            cursor_partition
        } else {
            0
        };
        let mut parts = Vec::new();
        for (&idx, p) in t.partitions.range(start..) {
            if remaining == 0 {
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(TopicName(StrBytes::from_string(name.clone())))
                        .with_partition_index(idx),
                );
                break;
            }
            remaining -= 1;
            let alive = |r: &i32| img.brokers.get(r).is_some_and(|x| !x.fenced);
            let leader = if p.leader >= 0 && alive(&p.leader) {
                p.leader
            } else {
                -1
            };
            parts.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(idx)
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(ids(&p.replicas))
                    .with_isr_nodes(ids(&p.isr))
                    .with_eligible_leader_replicas(Some(ids(&p.elr)))
                    .with_last_known_elr(Some(ids(&p.last_known_elr)))
                    .with_offline_replicas(ids(&p
                        .replicas
                        .iter()
                        .copied()
                        .filter(|r| !alive(r))
                        .collect::<Vec<_>>())),
            );
        }
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                .with_topic_id(t.id)
                .with_is_internal(is_internal(name))
                .with_partitions(parts),
        );
        if next_cursor.is_some() {
            break;
        }
        let _ = i;
    }
    Some(
        DescribeTopicPartitionsResponse::default()
            .with_topics(topics)
            .with_next_cursor(next_cursor),
    )
}
