//! DescribeGroups: state, protocol, and members (with their subscriptions and
//! assignments once the group is stable). KIP-848 groups are described too, their
//! members' subscriptions and assignments encoded as the classic consumer protocol so
//! classic tools can read them.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;

/// Every group operation allowed (no ACLs): READ, DELETE, DESCRIBE.
pub const GROUP_AUTHORIZED_OPERATIONS: i32 = (1 << 3) | (1 << 6) | (1 << 8);

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: DescribeGroupsRequest,
) -> Option<DescribeGroupsResponse> {
    let v = ctx.api_version;
    let mut out = Vec::new();
    for id in &req.groups {
        let base = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(if v >= 3 && req.include_authorized_operations {
                GROUP_AUTHORIZED_OPERATIONS
            } else {
                i32::MIN
            });
        let d = match b.groups.describe(&id.0).await {
            Err(e) => base.with_error_code(e.code()),
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
                let members = g
                    .members
                    .into_iter()
                    .map(|m| {
                        let d = DescribedGroupMember::default()
                            .with_member_id(StrBytes::from_string(m.member_id))
                            .with_client_id(StrBytes::from_string(m.client_id))
                            .with_client_host(StrBytes::from_string(m.client_host))
                            .with_member_metadata(m.metadata)
                            .with_member_assignment(m.assignment);
                        if v >= 4 {
                            d.with_group_instance_id(m.instance_id.map(StrBytes::from_string))
                        } else {
                            d
                        }
                    })
                    .collect();
                base.with_group_state(StrBytes::from_static_str(g.state))
                    .with_protocol_type(StrBytes::from_string(g.protocol_type))
                    .with_protocol_data(StrBytes::from_string(g.protocol_data))
                    .with_members(members)
            }
        };
        out.push(d);
    }
    Some(DescribeGroupsResponse::default().with_groups(out))
}
