//! ConsumerGroupDescribe (KIP-848): epochs, assignor, members with their subscriptions,
//! current and target assignments.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;

fn wire(a: Vec<(uuid::Uuid, String, Vec<i32>)>) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        a.into_iter()
            .map(|(id, name, ps)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(ps)
            })
            .collect(),
    )
}

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> Option<ConsumerGroupDescribeResponse> {
    let mut out = Vec::new();
    for id in &req.group_ids {
        let ops = if req.include_authorized_operations {
            super::describe_groups::GROUP_AUTHORIZED_OPERATIONS
        } else {
            i32::MIN
        };
        let base = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(ops);
        let d = match b.groups.describe_consumer(&id.0).await {
            Err((e, msg)) => base
                .with_error_code(e.code())
                .with_error_message(msg.map(StrBytes::from_string)),
            Ok(g) => {
                let members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        Member::default()
                            .with_member_id(StrBytes::from_string(m.member_id))
                            .with_instance_id(m.instance_id.map(StrBytes::from_string))
                            .with_rack_id(m.rack_id.map(StrBytes::from_string))
                            .with_member_epoch(m.member_epoch)
                            // KIP-1099 (v1): 0 = classic protocol, 1 = consumer.
                            .with_member_type(if m.classic { 0 } else { 1 })
                            .with_client_id(StrBytes::from_string(m.client_id))
                            .with_client_host(StrBytes::from_string(m.client_host))
                            .with_subscribed_topic_names(
                                m.subscribed_topic_names
                                    .into_iter()
                                    .map(|t| TopicName(StrBytes::from_string(t)))
                                    .collect(),
                            )
                            .with_subscribed_topic_regex(
                                m.subscribed_topic_regex.map(StrBytes::from_string),
                            )
                            .with_assignment(wire(m.assigned))
                            .with_target_assignment(wire(m.target))
                    })
                    .collect();
                base.with_group_state(StrBytes::from_static_str(g.state))
                    .with_group_epoch(g.group_epoch)
                    .with_assignment_epoch(g.assignment_epoch)
                    .with_assignor_name(StrBytes::from_string(g.assignor))
                    .with_members(members)
            }
        };
        out.push(d);
    }
    Some(ConsumerGroupDescribeResponse::default().with_groups(out))
}
