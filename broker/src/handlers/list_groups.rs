//! ListGroups: the groups this broker coordinates (admin clients ask every broker),
//! filtered by state (v4+) and type (v5+).

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: ListGroupsRequest,
) -> Option<ListGroupsResponse> {
    let v = ctx.api_version;
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    let mut groups = Vec::new();
    for g in b.groups.list().await {
        if v >= 4 && !states.is_empty() && !states.contains(&g.state.to_lowercase()) {
            continue;
        }
        if v >= 5 && !types.is_empty() && !types.contains(&g.kind.to_string()) {
            continue;
        }
        let mut l = ListedGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(g.id)))
            .with_protocol_type(StrBytes::from_string(g.protocol_type));
        if v >= 4 {
            l = l.with_group_state(StrBytes::from_static_str(g.state));
        }
        if v >= 5 {
            l = l.with_group_type(StrBytes::from_static_str(g.kind));
        }
        groups.push(l);
    }
    Some(ListGroupsResponse::default().with_groups(groups))
}
