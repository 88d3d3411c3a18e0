//! JoinGroup (classic protocol): answered when the group's join phase completes.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::RequestContext;
use crate::broker::Broker;
use crate::group::classic::{ClassicGroup, JoinRequest, JoinResult, Reply};
use crate::group::consumer::{ClassicJoin, TopicView};
use crate::group::coordinator::group_record;
use crate::group::store;
use crate::group::GroupEntry;
use crate::group::GroupKind;

/// The client host as Kafka shows it ("/127.0.0.1").
pub fn client_host(peer: &str) -> String {
    let host = peer.rsplit_once(':').map_or(peer, |(h, _)| h);
    format!("/{}", host.trim_start_matches('[').trim_end_matches(']'))
}

fn error(code: i16, member_id: &str) -> JoinResult {
    JoinResult {
        error: code,
        generation: -1,
        member_id: member_id.to_string(),
        ..Default::default()
    }
}

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: JoinGroupRequest,
) -> Option<JoinGroupResponse> {
    let v = ctx.api_version;
    let group_id = req.group_id.0.to_string();
    let member_id = req.member_id.to_string();
    let result = if group_id.is_empty() {
        error(ResponseError::InvalidGroupId.code(), &member_id)
    } else {
        match b.groups.group(&group_id, true) {
            Err(code) => error(code, &member_id),
            Ok(None) => error(ResponseError::CoordinatorNotAvailable.code(), &member_id),
            Ok(Some(g)) => {
                let reply = {
                    let mut e = g.lock().await;
                    let mut kind_changed = false;
                    if let GroupKind::Consumer(c) = &e.kind {
                        if !c.members.is_empty() {
                            // A classic member joins a KIP-848 group (online migration).
                            let r = join_consumer_group(&b, &ctx, &req, &mut e).await;
                            return Some(respond(v, r));
                        }
                        e.kind = GroupKind::Classic(ClassicGroup::new(&group_id, Instant::now()));
                        kind_changed = true;
                    }
                    let GroupKind::Classic(c) = &mut e.kind else {
                        unreachable!("classic just ensured")
                    };
                    let jr = JoinRequest {
                        member_id: member_id.clone(),
                        group_instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
                        client_id: ctx.client_id.clone().unwrap_or_default(),
                        client_host: client_host(&ctx.peer),
                        session_timeout_ms: req.session_timeout_ms,
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
                    let reply = c.join(jr, Instant::now(), &b.groups.cfg.classic);
                    if c.take_dirty() || kind_changed {
                        // A static member was replaced in place: store the new member id
                        // before answering, as Kafka does. A group that was an empty
                        // consumer group drops its consumer-group state (the classic
                        // state is written once the rebalance completes).
                        let partition = e.partition;
                        let recs = if kind_changed {
                            vec![(store::consumer_key(&group_id), None)]
                        } else {
                            vec![group_record(&e)]
                        };
                        if let Err(err) = b.groups.write(partition, recs).await {
                            tracing::warn!(group = %group_id, error = %err,
                                "could not store the group after a static member rejoined");
                        }
                    }
                    reply
                };
                match reply {
                    Reply::Now(r) => r,
                    Reply::Later(rx) => rx.await.unwrap_or_else(|_| {
                        error(ResponseError::CoordinatorNotAvailable.code(), &member_id)
                    }),
                }
            }
        }
    };
    Some(respond(v, result))
}

/// JoinGroup of a classic-protocol member into a KIP-848 group: the coordinator assigns
/// (no leader, no member list); the answer waits only for the group's write.
async fn join_consumer_group(
    b: &Broker,
    ctx: &RequestContext,
    req: &JoinGroupRequest,
    e: &mut GroupEntry,
) -> JoinResult {
    let v = ctx.api_version;
    let member_id = req.member_id.to_string();
    let cfg = &b.groups.cfg.classic;
    if req.session_timeout_ms < cfg.min_session_timeout_ms
        || req.session_timeout_ms > cfg.max_session_timeout_ms
    {
        return error(ResponseError::InvalidSessionTimeout.code(), &member_id);
    }
    let img = b.cache.image();
    let topics: TopicView = img
        .topics
        .values()
        .map(|t| (t.name.clone(), (t.id, t.partitions.len() as i32)))
        .collect();
    let consumer_cfg = b.groups.consumer_config(&e.id);
    let before = group_record(e).1;
    let GroupKind::Consumer(c) = &mut e.kind else {
        return error(ResponseError::InconsistentGroupProtocol.code(), &member_id);
    };
    let j = ClassicJoin {
        member_id: member_id.clone(),
        instance_id: req.group_instance_id.as_ref().map(|s| s.to_string()),
        require_known_member_id: v >= 4,
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: client_host(&ctx.peer),
        session_timeout_ms: req.session_timeout_ms,
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
    };
    let answer = match c.classic_join(j, &topics, Instant::now(), &consumer_cfg) {
        Ok(a) => a,
        Err((code, id)) => return error(code, &id),
    };
    let after = group_record(e);
    if after.1 != before {
        if let Err(code) = b.groups.write(e.partition, vec![after]).await {
            return error(code, &member_id);
        }
    }
    JoinResult {
        error: 0,
        generation: answer.generation,
        protocol_type: Some("consumer".into()),
        protocol_name: Some(answer.protocol_name),
        leader: String::new(),
        member_id: answer.member_id,
        members: vec![],
        skip_assignment: false,
    }
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
        .with_error_code(r.error)
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
