//! LeaveGroup (classic protocol), one member (v0–v2) or a batch (v3+).

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use tokio::time::Instant;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::classic::ClassicState;
use crate::group::coordinator::{group_record, kind_change_records};
use crate::group::GroupKind;

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
    let (top, per_member) = match b.groups.group(&req.group_id.0, false) {
        Err(code) => (code, vec![]),
        Ok(None) => (ResponseError::UnknownMemberId.code(), vec![]),
        Ok(Some(g)) => {
            let mut e = g.lock().await;
            let partition = e.partition;
            let now = Instant::now();
            if let GroupKind::Consumer(c) = &mut e.kind {
                // Members of a KIP-848 group (either protocol, as Kafka 4.x allows).
                let codes: Vec<i16> = leaving
                    .iter()
                    .map(|(m, i)| c.leave_member(m, i.as_deref(), now))
                    .collect();
                if codes.contains(&0) {
                    let recs = if b.groups.maybe_downgrade(&mut e, now) {
                        kind_change_records(&e)
                    } else {
                        vec![group_record(&e)]
                    };
                    let _ = b.groups.write(partition, recs).await;
                }
                let top = if v < 3 {
                    codes.first().copied().unwrap_or(0)
                } else {
                    0
                };
                return Some(leave_response(v, top, leaving, codes));
            }
            let GroupKind::Classic(c) = &mut e.kind else {
                unreachable!("a group is classic or consumer")
            };
            let codes: Vec<i16> = leaving
                .iter()
                .map(|(m, i)| c.leave(m, i.as_deref(), now, &b.groups.cfg.classic))
                .collect();
            if c.state == ClassicState::Empty {
                let rec = group_record(&e);
                let _ = b.groups.write(partition, vec![rec]).await;
            }
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
