//! ConsumerGroupHeartbeat (KIP-848): joining, staying, leaving, and receiving server-side
//! assignments. v0: the coordinator makes member ids (the Java client 3.9.1); v1
//! (KIP-1082): clients make them (librdkafka ≥ 2.12). Changes are written to
//! `__consumer_offsets` before the answer.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment as WireAssignment, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;

use super::join_group::client_host;
use super::RequestContext;
use crate::broker::Broker;
use crate::group::consumer::{Assignment, Heartbeat};

pub async fn handle(
    b: Arc<Broker>,
    ctx: RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> Option<ConsumerGroupHeartbeatResponse> {
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
        owned: req.topic_partitions.as_ref().map(|tps| {
            tps.iter()
                .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
                .collect::<Assignment>()
        }),
        client_makes_member_id: ctx.api_version >= 1,
    };
    let answer = match b.groups.consumer_heartbeat(&req.group_id.0, hb).await {
        Ok(a) => a,
        Err((e, msg)) => {
            return Some(
                ConsumerGroupHeartbeatResponse::default()
                    .with_error_code(e.code())
                    .with_error_message(msg.map(StrBytes::from_string))
                    .with_member_epoch(-1),
            )
        }
    };
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
