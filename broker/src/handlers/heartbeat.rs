//! Heartbeat (classic protocol).

use std::sync::Arc;

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: HeartbeatRequest,
) -> Option<HeartbeatResponse> {
    let r = b
        .groups
        .heartbeat(
            &req.group_id.0,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        )
        .await;
    Some(HeartbeatResponse::default().with_error_code(super::code(r)))
}
