//! ConsumerGroupHeartbeat (KIP-848): joining, staying, leaving, and receiving server-side
//! assignments. v0: the coordinator makes member ids (the Java client 3.9.1); v1
//! (KIP-1082): clients make them (librdkafka ≥ 2.12). Changes are written to
//! `__consumer_offsets` before the answer.

use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use tokio::time::Instant;

use super::join_group::client_host;
use super::RequestContext;
use crate::broker::Broker;
use crate::group::classic::ClassicState;
use crate::group::consumer::{Assignment, ConsumerGroup, Heartbeat, TopicView};
use crate::group::coordinator::{group_record, kind_change_records};
use crate::group::GroupKind;

fn error(code: i16, msg: Option<&str>) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(code)
        .with_error_message(msg.map(|m| StrBytes::from_string(m.to_string())))
        .with_member_epoch(-1)
}

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> Option<ConsumerGroupHeartbeatResponse> {
    let group_id = req.group_id.0.to_string();
    if group_id.is_empty() {
        return Some(error(
            E::InvalidRequest.code(),
            Some("GroupId can't be empty."),
        ));
    }
    if req.member_epoch == 0
        && req.subscribed_topic_names.is_none()
        && req.subscribed_topic_regex.is_none()
    {
        return Some(error(
            E::InvalidRequest.code(),
            Some("SubscribedTopicNames or SubscribedTopicRegex must be set in first request."),
        ));
    }
    let g = match b.groups.group(&group_id, req.member_epoch == 0) {
        Err(code) => return Some(error(code, None)),
        Ok(None) => return Some(error(E::UnknownMemberId.code(), None)),
        Ok(Some(g)) => g,
    };
    let img = b.cache.image();
    let topics: TopicView = img
        .topics
        .values()
        .map(|t| (t.name.clone(), (t.id, t.partitions.len() as i32)))
        .collect();
    let mut e = g.lock().await;
    let now = Instant::now();
    let mut kind_changed = false;
    if let GroupKind::Classic(c) = &mut e.kind {
        if c.state == ClassicState::Dead {
            return Some(error(
                E::GroupIdNotFound.code(),
                Some(&format!("Group {group_id} is not a consumer group.")),
            ));
        }
        if c.is_empty() {
            e.kind = GroupKind::Consumer(ConsumerGroup::new(&group_id, now));
        } else {
            // KIP-848's online upgrade of a live classic group.
            let refusal = if req.member_epoch != 0 {
                Some(format!("Group {group_id} is not a consumer group."))
            } else if !b.groups.cfg.migration_policy.upgrade() {
                Some(format!(
                    "Cannot upgrade classic group {group_id} to consumer group because the online upgrade is disabled."
                ))
            } else if c.protocol_type.as_deref() != Some("consumer") {
                Some(format!(
                    "Cannot upgrade classic group {group_id} to consumer group because it is not a consumer group (protocol type {:?}).",
                    c.protocol_type.as_deref().unwrap_or("")
                ))
            } else if c.members.len() > b.groups.cfg.consumer.max_size {
                Some(format!(
                    "Cannot upgrade classic group {group_id} to consumer group because its size exceeds the consumer group maximum size."
                ))
            } else {
                None
            };
            if let Some(msg) = refusal {
                return Some(error(E::GroupIdNotFound.code(), Some(&msg)));
            }
            match ConsumerGroup::from_classic(c, &topics, now) {
                Err(why) => {
                    return Some(error(
                        E::GroupIdNotFound.code(),
                        Some(&format!(
                            "Cannot upgrade classic group {group_id} to consumer group: {why}."
                        )),
                    ))
                }
                Ok(g) => {
                    tracing::info!(group = %group_id, members = g.members.len(), generation = g.group_epoch,
                        "a consumer-protocol member joins: the classic group becomes a consumer group (KIP-848 upgrade)");
                    c.fail_waiters(E::RebalanceInProgress.code());
                    e.kind = GroupKind::Consumer(g);
                    kind_changed = true;
                }
            }
        }
    }
    let before = group_record(&e).1;
    let GroupKind::Consumer(cg) = &mut e.kind else {
        unreachable!("consumer just ensured")
    };
    let owned = req.topic_partitions.as_ref().map(|tps| {
        tps.iter()
            .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
            .collect::<Assignment>()
    });
    let hb = Heartbeat {
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|s| s.to_string()),
        rack_id: req.rack_id.as_ref().map(|s| s.to_string()),
        client_id: ctx.client_id.clone().unwrap_or_default(),
        client_host: client_host(&ctx.peer),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|ns| ns.iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.as_ref().map(|s| s.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|s| s.to_string()),
        owned,
        client_makes_member_id: ctx.api_version >= 1,
    };
    let cfg = b.groups.consumer_config(&req.group_id);
    let answer = match cg.heartbeat(hb, &topics, now, &cfg) {
        Ok(a) => a,
        Err(code) => return Some(error(code, None)),
    };
    if b.groups.maybe_downgrade(&mut e, now) {
        kind_changed = true;
    }
    let after = group_record(&e);
    if kind_changed {
        if let Err(code) = b.groups.write(e.partition, kind_change_records(&e)).await {
            return Some(error(code, None));
        }
    } else if Some(&after.1) != Some(&before) {
        if let Err(code) = b.groups.write(e.partition, vec![after]).await {
            return Some(error(code, None));
        }
    }
    let assignment = answer.assignment.map(|a| {
        WireAssignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic_id(t)
                        .with_partitions(ps.into_iter().collect())
                })
                .collect(),
        )
    });
    Some(
        ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(answer.member_id)))
            .with_member_epoch(answer.member_epoch)
            .with_heartbeat_interval_ms(answer.heartbeat_interval_ms)
            .with_assignment(assignment),
    )
}
