//! DescribeGroups: state, protocol, and members (with their subscriptions and
//! assignments once the group is stable). KIP-848 groups are described too, their
//! members' subscriptions and assignments encoded as the classic consumer protocol so
//! classic tools can read them.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;
use strom_controller::metadata::MetadataImage;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::classic::ClassicState;
use crate::group::consumer::Assignment;
use crate::group::protocol;
use crate::group::GroupKind;

/// A KIP-848 assignment as a classic ConsumerProtocolAssignment (v0).
pub fn classic_assignment(img: &MetadataImage, a: &Assignment) -> Bytes {
    protocol::encode_assignment(0, &by_name(img, a))
}

/// An assignment by topic id as partitions by topic name (topics gone are left out).
pub fn by_name(img: &MetadataImage, a: &Assignment) -> Vec<(String, Vec<i32>)> {
    a.iter()
        .filter_map(|(id, ps)| {
            let name = img.topics.get(id)?.name.clone();
            Some((name, ps.iter().copied().collect()))
        })
        .collect()
}

/// Every group operation allowed (no ACLs): READ, DELETE, DESCRIBE.
pub const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: DescribeGroupsRequest,
) -> Option<DescribeGroupsResponse> {
    let v = ctx.api_version;
    let img = b.cache.image();
    let mut out = Vec::new();
    for id in &req.groups {
        let base = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(if v >= 3 && req.include_authorized_operations {
                GROUP_AUTHORIZED_OPERATIONS
            } else {
                i32::MIN
            });
        let d = match b.groups.group(&id.0, false) {
            Err(code) => base.with_error_code(code),
            Ok(None) => {
                if v >= 6 {
                    base.with_error_code(E::GroupIdNotFound.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "Group {} not found.",
                            id.0
                        ))))
                        .with_group_state(StrBytes::from_static_str("Dead"))
                } else {
                    base.with_group_state(StrBytes::from_static_str("Dead"))
                }
            }
            Ok(Some(g)) => {
                let e = g.lock().await;
                match &e.kind {
                    GroupKind::Classic(c) => {
                        let stable = c.state == ClassicState::Stable;
                        let protocol = c.protocol_name.clone().unwrap_or_default();
                        let members = c
                            .members
                            .values()
                            .map(|m| {
                                let d = DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                                    .with_client_id(StrBytes::from_string(m.client_id.clone()))
                                    .with_client_host(StrBytes::from_string(m.client_host.clone()))
                                    .with_member_metadata(if stable {
                                        m.metadata(&protocol)
                                    } else {
                                        Bytes::new()
                                    })
                                    .with_member_assignment(if stable {
                                        m.assignment.clone()
                                    } else {
                                        Bytes::new()
                                    });
                                if v >= 4 {
                                    d.with_group_instance_id(
                                        m.group_instance_id.clone().map(StrBytes::from_string),
                                    )
                                } else {
                                    d
                                }
                            })
                            .collect();
                        base.with_group_state(StrBytes::from_static_str(c.state.name()))
                            .with_protocol_type(StrBytes::from_string(
                                c.protocol_type.clone().unwrap_or_default(),
                            ))
                            .with_protocol_data(StrBytes::from_string(if stable {
                                protocol
                            } else {
                                String::new()
                            }))
                            .with_members(members)
                    }
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
                                let d = DescribedGroupMember::default()
                                    .with_member_id(StrBytes::from_string(m.member_id.clone()))
                                    .with_client_id(StrBytes::from_string(m.client_id.clone()))
                                    .with_client_host(StrBytes::from_string(m.client_host.clone()))
                                    .with_member_metadata(protocol::encode_subscription(
                                        &m.subscribed_topic_names,
                                    ))
                                    .with_member_assignment(classic_assignment(&img, &m.assigned));
                                if v >= 4 {
                                    d.with_group_instance_id(
                                        m.instance_id.clone().map(StrBytes::from_string),
                                    )
                                } else {
                                    d
                                }
                            })
                            .collect();
                        base.with_group_state(StrBytes::from_static_str(c.state_name()))
                            .with_protocol_type(StrBytes::from_static_str("consumer"))
                            .with_protocol_data(StrBytes::from_string(assignor))
                            .with_members(members)
                    }
                }
            }
        };
        out.push(d);
    }
    Some(DescribeGroupsResponse::default().with_groups(out))
}
