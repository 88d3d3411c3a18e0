//! Heartbeat (classic protocol).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use tokio::time::Instant;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::GroupKind;

pub async fn handle(
    b: Arc<Broker>,
    _ctx: RequestContext,
    req: HeartbeatRequest,
) -> Option<HeartbeatResponse> {
    let code = match b.groups.group(&req.group_id.0, false) {
        Err(code) => code,
        Ok(None) => ResponseError::UnknownMemberId.code(),
        Ok(Some(g)) => {
            let mut e = g.lock().await;
            match &mut e.kind {
                GroupKind::Classic(c) => c.heartbeat(
                    &req.member_id,
                    req.group_instance_id.as_deref(),
                    req.generation_id,
                    Instant::now(),
                ),
                // A classic member of a KIP-848 group.
                GroupKind::Consumer(c) => c.classic_heartbeat(
                    &req.member_id,
                    req.group_instance_id.as_deref(),
                    req.generation_id,
                    Instant::now(),
                ),
            }
        }
    };
    Some(HeartbeatResponse::default().with_error_code(code))
}
