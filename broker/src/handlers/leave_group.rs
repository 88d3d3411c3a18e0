//! LeaveGroup (classic protocol), one member (v0–v2) or a batch (v3+).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::RequestContext;
use crate::broker::Broker;

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: LeaveGroupRequest,
) -> Option<LeaveGroupResponse> {
    let v = ctx.api_version;
    let leaving: Vec<(String, Option<String>)> = if v >= 3 {
        req.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|s| s.to_string()),
                )
            })
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let (top, per_member) = match b.groups.leave(&req.group_id.0, &leaving).await {
        Err(e) => (e.code(), vec![]),
        Ok(results) => {
            let codes: Vec<i16> = results.into_iter().map(super::code).collect();
            // v0–v2 leave one member and answer with its code.
            let top = if v < 3 {
                codes.first().copied().unwrap_or(0)
            } else {
                0
            };
            (top, codes)
        }
    };
    Some(leave_response(v, top, leaving, per_member))
}

fn leave_response(
    v: i16,
    top: i16,
    leaving: Vec<(String, Option<String>)>,
    per_member: Vec<i16>,
) -> LeaveGroupResponse {
    let mut resp = LeaveGroupResponse::default().with_error_code(top);
    if v >= 3 {
        let members = leaving
            .into_iter()
            .enumerate()
            .map(|(i, (m, inst))| {
                MemberResponse::default()
                    .with_member_id(m.into())
                    .with_group_instance_id(inst.map(Into::into))
                    .with_error_code(per_member.get(i).copied().unwrap_or(top))
            })
            .collect();
        resp = resp.with_members(members);
    }
    resp
}
