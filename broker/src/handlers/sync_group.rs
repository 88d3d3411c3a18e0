//! SyncGroup (classic protocol): the leader's assignments are written to
//! `__consumer_offsets` before any member gets its own.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::describe_groups::by_name;
use super::RequestContext;
use crate::broker::Broker;
use crate::group::classic::{Reply, SyncResult};
use crate::group::coordinator::group_record;
use crate::group::protocol;
use crate::group::GroupKind;

fn error(code: i16) -> SyncResult {
    SyncResult {
        error: code,
        ..Default::default()
    }
}

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: SyncGroupRequest,
) -> Option<SyncGroupResponse> {
    let v = ctx.api_version;
    let group_id = req.group_id.0.to_string();
    let result = match b.groups.group(&group_id, false) {
        Err(code) => error(code),
        Ok(None) => error(ResponseError::UnknownMemberId.code()),
        Ok(Some(g)) => {
            let reply = {
                let mut e = g.lock().await;
                let partition = e.partition;
                if let GroupKind::Consumer(c) = &mut e.kind {
                    // A classic member of a KIP-848 group: its assignment is the
                    // coordinator's, written in the member's embedded protocol version.
                    let r = match c.classic_sync(
                        &req.member_id,
                        req.group_instance_id.as_deref(),
                        req.generation_id,
                        if v >= 5 {
                            req.protocol_type.as_deref()
                        } else {
                            None
                        },
                        if v >= 5 {
                            req.protocol_name.as_deref()
                        } else {
                            None
                        },
                        Instant::now(),
                    ) {
                        Err(code) => error(code),
                        Ok((assigned, version, name)) => {
                            let img = b.cache.image();
                            SyncResult {
                                error: 0,
                                protocol_type: req
                                    .protocol_type
                                    .as_ref()
                                    .map(|_| "consumer".to_string()),
                                protocol_name: req.protocol_name.as_ref().map(|_| name),
                                assignment: protocol::encode_assignment(
                                    version,
                                    &by_name(&img, &assigned),
                                ),
                            }
                        }
                    };
                    return Some(respond(v, r));
                }
                let GroupKind::Classic(c) = &mut e.kind else {
                    unreachable!("a group is classic or consumer")
                };
                let (reply, effects) = c.sync(
                    &req.member_id,
                    req.group_instance_id.as_deref(),
                    req.generation_id,
                    if v >= 5 {
                        req.protocol_type.as_deref()
                    } else {
                        None
                    },
                    if v >= 5 {
                        req.protocol_name.as_deref()
                    } else {
                        None
                    },
                    req.assignments
                        .iter()
                        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
                        .collect(),
                    Instant::now(),
                );
                if effects.persist {
                    let generation = c.generation;
                    let rec = group_record(&e);
                    let ok = b.groups.write(partition, vec![rec]).await.is_ok();
                    if let GroupKind::Classic(c) = &mut e.kind {
                        c.persisted(generation, ok, Instant::now());
                    }
                }
                reply
            };
            match reply {
                Reply::Now(r) => r,
                Reply::Later(rx) => rx
                    .await
                    .unwrap_or_else(|_| error(ResponseError::CoordinatorNotAvailable.code())),
            }
        }
    };
    Some(respond(v, result))
}

fn respond(v: i16, r: SyncResult) -> SyncGroupResponse {
    let resp = SyncGroupResponse::default()
        .with_error_code(r.error)
        .with_assignment(r.assignment);
    if v >= 5 {
        resp.with_protocol_type(r.protocol_type.map(StrBytes::from_string))
            .with_protocol_name(r.protocol_name.map(StrBytes::from_string))
    } else {
        resp
    }
}
