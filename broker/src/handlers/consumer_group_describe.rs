//! ConsumerGroupDescribe (KIP-848): epochs, assignor, members with their subscriptions,
//! current and target assignments.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as WireAssignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use strom_controller::metadata::MetadataImage;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::consumer::Assignment;
use crate::group::GroupKind;

fn wire(img: &MetadataImage, a: &Assignment) -> WireAssignment {
    WireAssignment::default().with_topic_partitions(
        a.iter()
            .map(|(id, ps)| {
                let name = img
                    .topics
                    .get(id)
                    .map(|t| t.name.clone())
                    .unwrap_or_default();
                TopicPartitions::default()
                    .with_topic_id(*id)
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> Option<ConsumerGroupDescribeResponse> {
    let img = b.cache.image();
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
        let not_found = |d: DescribedGroup| {
            d.with_error_code(E::GroupIdNotFound.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Group {} not found.",
                    id.0
                ))))
        };
        let d = match b.groups.group(&id.0, false) {
            Err(code) => base.with_error_code(code),
            Ok(None) => not_found(base),
            Ok(Some(g)) => {
                let e = g.lock().await;
                match &e.kind {
                    GroupKind::Classic(_) => base
                        .with_error_code(E::GroupIdNotFound.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "Group {} is not a consumer group.",
                            id.0
                        )))),
                    GroupKind::Consumer(c) => {
                        let assignor = c
                            .members
                            .values()
                            .find_map(|m| m.server_assignor.clone())
                            .unwrap_or_else(|| "uniform".into());
                        let members = c
                            .members
                            .values()
                            .map(|m| {
                                Member::default()
                                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                                    .with_instance_id(
                                        m.instance_id.clone().map(StrBytes::from_string),
                                    )
                                    .with_rack_id(m.rack_id.clone().map(StrBytes::from_string))
                                    .with_member_epoch(m.member_epoch)
                                    // KIP-1099 (v1): 0 = classic protocol, 1 = consumer.
                                    .with_member_type(if m.classic.is_some() { 0 } else { 1 })
                                    .with_client_id(StrBytes::from_string(m.client_id.clone()))
                                    .with_client_host(StrBytes::from_string(m.client_host.clone()))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .iter()
                                            .map(|t| TopicName(StrBytes::from_string(t.clone())))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(
                                        m.subscribed_topic_regex.clone().map(StrBytes::from_string),
                                    )
                                    .with_assignment(wire(&img, &m.assigned))
                                    .with_target_assignment(wire(
                                        &img,
                                        c.target.get(&m.member_id).unwrap_or(&Assignment::new()),
                                    ))
                            })
                            .collect();
                        base.with_group_state(StrBytes::from_static_str(c.state_name()))
                            .with_group_epoch(c.group_epoch)
                            .with_assignment_epoch(c.assignment_epoch)
                            .with_assignor_name(StrBytes::from_string(assignor))
                            .with_members(members)
                    }
                }
            }
        };
        out.push(d);
    }
    Some(ConsumerGroupDescribeResponse::default().with_groups(out))
}
