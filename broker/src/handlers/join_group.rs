//! JoinGroup (classic protocol): answered when the group's join phase completes.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::classic::{JoinRequest, JoinResult};

/// The client host as Kafka shows it ("/127.0.0.1").
pub fn client_host(peer: &str) -> String {
    let host = peer.rsplit_once(':').map_or(peer, |(h, _)| h);
    format!("/{}", host.trim_start_matches('[').trim_end_matches(']'))
}

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: JoinGroupRequest,
) -> Option<JoinGroupResponse> {
    let v = ctx.api_version;
    let j = JoinRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: client_host(&ctx.peer),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout stands in.
        rebalance_timeout_ms: if v >= 1 {
            req.rebalance_timeout_ms
        } else {
            req.session_timeout_ms
        },
        protocol_type: req.protocol_type.to_string(),
        protocols: req
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: v >= 4,
        reason: req.reason.as_ref().map(|r| r.to_string()),
    };
    let r = b.groups.join(&req.group_id.0, j).await;
    Some(respond(v, r))
}

fn respond(v: i16, r: JoinResult) -> JoinGroupResponse {
    let members = r
        .members
        .into_iter()
        .map(
            |(id, instance, metadata): (String, Option<String>, Bytes)| {
                let m = JoinGroupResponseMember::default()
                    .with_member_id(StrBytes::from_string(id))
                    .with_metadata(metadata);
                if v >= 5 {
                    m.with_group_instance_id(instance.map(StrBytes::from_string))
                } else {
                    m
                }
            },
        )
        .collect();
    let mut resp = JoinGroupResponse::default()
        .with_error_code(r.error.map_or(0, |e| e.code()))
        .with_generation_id(r.generation)
        .with_leader(StrBytes::from_string(r.leader))
        .with_member_id(StrBytes::from_string(r.member_id))
        .with_members(members);
    if v >= 7 {
        resp = resp
            .with_protocol_type(r.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(r.protocol_name.map(StrBytes::from_string));
    } else {
        resp = resp.with_protocol_name(Some(StrBytes::from_string(
            r.protocol_name.unwrap_or_default(),
        )));
    }
    if v >= 9 {
        resp = resp.with_skip_assignment(r.skip_assignment);
    }
    resp
}
