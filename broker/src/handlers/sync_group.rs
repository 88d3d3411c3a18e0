//! SyncGroup (classic protocol): the leader's assignments are written to
//! `__consumer_offsets` before any member gets its own.

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::api::SyncRequest;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: SyncGroupRequest,
) -> Option<SyncGroupResponse> {
    let v = ctx.api_version;
    let s = SyncRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        generation: req.generation_id,
        // v5+ only: the protocol the member expects.
        protocol_type: req
            .protocol_type
            .as_ref()
            .filter(|_| v >= 5)
            .map(|s| s.to_string()),
        protocol_name: req
            .protocol_name
            .as_ref()
            .filter(|_| v >= 5)
            .map(|s| s.to_string()),
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let r = b.groups.sync(&req.group_id.0, s).await;
    let resp = SyncGroupResponse::default()
        .with_error_code(r.error.map_or(0, |e| e.code()))
        .with_assignment(r.assignment);
    Some(if v >= 5 {
        resp.with_protocol_type(r.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(r.protocol_name.map(StrBytes::from_string))
    } else {
        resp
    })
}
