//! DeleteGroups: only groups without members; their offsets and state are deleted
//! (tombstones in `__consumer_offsets`).

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: DeleteGroupsRequest,
) -> Option<DeleteGroupsResponse> {
    let mut results = Vec::new();
    for id in &req.groups_names {
        let r = b.groups.delete_group(&id.0).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(id.clone())
                .with_error_code(super::code(r)),
        );
    }
    Some(DeleteGroupsResponse::default().with_results(results))
}
