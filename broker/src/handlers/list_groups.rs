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
    for g in b.groups.all_groups() {
        let e = g.lock().await;
        let state = e.state_name();
        if v >= 4 && !states.is_empty() && !states.contains(&state.to_lowercase()) {
            continue;
        }
        if v >= 5 && !types.is_empty() && !types.contains(&e.type_name().to_string()) {
            continue;
        }
        let mut l = ListedGroup::default()
            .with_group_id(GroupId(StrBytes::from_string(e.id.clone())))
            .with_protocol_type(StrBytes::from_string(e.protocol_type()));
        if v >= 4 {
            l = l.with_group_state(StrBytes::from_static_str(state));
        }
        if v >= 5 {
            l = l.with_group_type(StrBytes::from_static_str(e.type_name()));
        }
        groups.push(l);
    }
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    Some(ListGroupsResponse::default().with_groups(groups))
}
