//! Bad group requests on the wire get Kafka's error codes and the node keeps serving:
//! unknown member ids, stale and illegal generations, inconsistent protocols, invalid
//! session timeouts, oversized offset metadata, fenced KIP-848 member epochs.
#![cfg(not(madsim))]

mod common;

use bytes::Bytes;
use common::{start_node, Raw};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ApiVersionsRequest, ConsumerGroupHeartbeatRequest, FindCoordinatorRequest, GroupId,
    HeartbeatRequest, JoinGroupRequest, JoinGroupResponse, OffsetCommitRequest, SyncGroupRequest,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn join(group: &str, member: &str, protocol_type: &str, protocol: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_protocol_type(s(protocol_type))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s(protocol))
            .with_metadata(Bytes::from_static(b"subscription"))])
}

fn heartbeat(group: &str, member: &str, generation: i32) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_generation_id(generation)
}

fn commit(
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    metadata: &str,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(0)
                .with_committed_leader_epoch(-1)
                .with_committed_metadata(Some(s(metadata)))])])
}

/// FindCoordinator until the coordinator has created and loaded `__consumer_offsets`.
async fn wait_for_coordinator(c: &mut Raw, group: &str) {
    for _ in 0..200 {
        let r = c
            .call(
                &FindCoordinatorRequest::default()
                    .with_key(s(group))
                    .with_key_type(0),
                3,
            )
            .await;
        if r.error_code == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no coordinator for {group}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_group_requests_get_kafka_error_codes() {
    let n = start_node(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let mut c = Raw::connect(n.addr).await;
    let g = "bad-input-group";
    wait_for_coordinator(&mut c, g).await;

    // A session timeout outside group.{min,max}.session.timeout.ms.
    let r = c
        .call(
            &join(g, "", "consumer", "range").with_session_timeout_ms(1),
            9,
        )
        .await;
    assert_eq!(r.error_code, E::InvalidSessionTimeout.code());

    // KIP-394: MEMBER_ID_REQUIRED with a member id, then the join completes.
    let r = c.call(&join(g, "", "consumer", "range"), 9).await;
    assert_eq!(r.error_code, E::MemberIdRequired.code());
    let me = r.member_id.to_string();
    let r: JoinGroupResponse = c.call(&join(g, &me, "consumer", "range"), 9).await;
    assert_eq!((r.error_code, r.generation_id), (0, 1));
    assert_eq!(r.leader.as_str(), me);

    // Joining with a member id the group never gave out.
    let r = c.call(&join(g, "ghost", "consumer", "range"), 9).await;
    assert_eq!(r.error_code, E::UnknownMemberId.code());
    // Another member with a protocol type or protocols the group cannot share.
    let r = c.call(&join(g, "", "connect", "range"), 5).await;
    assert_eq!(r.error_code, E::InconsistentGroupProtocol.code());
    let r = c
        .call(&join(g, "", "consumer", "no-such-assignor"), 5)
        .await;
    assert_eq!(r.error_code, E::InconsistentGroupProtocol.code());

    // SyncGroup of a generation that is not the current one, then the right one.
    let sync = |generation: i32| {
        SyncGroupRequest::default()
            .with_group_id(GroupId(s(g)))
            .with_member_id(s(&me))
            .with_generation_id(generation)
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s(&me))
                .with_assignment(Bytes::from_static(b"assignment"))])
    };
    let r = c.call(&sync(7), 5).await;
    assert_eq!(r.error_code, E::IllegalGeneration.code());
    let r = c.call(&sync(1), 5).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(&r.assignment[..], b"assignment");

    // Heartbeats: stale generation, unknown member, then a good one.
    let r = c.call(&heartbeat(g, &me, 0), 4).await;
    assert_eq!(r.error_code, E::IllegalGeneration.code());
    let r = c.call(&heartbeat(g, "nobody", 1), 4).await;
    assert_eq!(r.error_code, E::UnknownMemberId.code());
    let r = c.call(&heartbeat(g, &me, 1), 4).await;
    assert_eq!(r.error_code, 0);

    // OffsetCommit: metadata beyond offset.metadata.max.bytes (4096), a stale
    // generation, an unknown member; a good commit still works.
    let topic = "bad-input-topic";
    let _ = c
        .call(
            &kafka_protocol::messages::MetadataRequest::default()
                .with_topics(Some(vec![
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(TopicName(s(topic)))),
                ]))
                .with_allow_auto_topic_creation(true),
            9,
        )
        .await;
    let big = "m".repeat(5000);
    let partition_error =
        |r: &kafka_protocol::messages::OffsetCommitResponse| r.topics[0].partitions[0].error_code;
    let mut committed = false;
    for _ in 0..100 {
        let r = c.call(&commit(g, &me, 1, topic, "ok"), 8).await;
        if partition_error(&r) == 0 {
            committed = true;
            break;
        }
        // The auto-created topic may take a moment to appear.
        assert_eq!(partition_error(&r), E::UnknownTopicOrPartition.code());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(committed, "a good commit never succeeded");
    let r = c.call(&commit(g, &me, 1, topic, &big), 8).await;
    assert_eq!(partition_error(&r), E::OffsetMetadataTooLarge.code());
    let r = c.call(&commit(g, &me, 0, topic, "stale"), 8).await;
    assert_eq!(partition_error(&r), E::IllegalGeneration.code());
    let r = c.call(&commit(g, "nobody", 1, topic, "who"), 8).await;
    assert_eq!(partition_error(&r), E::UnknownMemberId.code());

    // KIP-848: a member joins, then heartbeats with an epoch it never had; and a
    // classic group's id cannot be used by the consumer protocol while it has members.
    let g2 = "bad-input-848";
    wait_for_coordinator(&mut c, g2).await;
    let hb = |member: &str, epoch: i32| {
        ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(s(g2)))
            .with_member_id(s(member))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(10_000)
            .with_subscribed_topic_names(Some(vec![TopicName(s(topic))]))
            .with_topic_partitions(Some(Vec::<TopicPartitions>::new()))
    };
    let r = c.call(&hb("", 0), 0).await;
    assert_eq!(r.error_code, 0, "{r:?}");
    let member = r
        .member_id
        .clone()
        .expect("v0: the coordinator names the member");
    assert!(r.member_epoch > 0);
    let r = c.call(&hb(member.as_str(), r.member_epoch + 10), 0).await;
    assert_eq!(r.error_code, E::FencedMemberEpoch.code());
    let r = c.call(&hb("not-a-member", 3), 0).await;
    assert_eq!(r.error_code, E::UnknownMemberId.code());
    let r = c.call(&hb("", 0).with_group_id(GroupId(s(g))), 0).await;
    assert_ne!(
        r.error_code, 0,
        "a classic group with members taken over: {r:?}"
    );

    // Still serving.
    let r = c.call(&ApiVersionsRequest::default(), 3).await;
    assert_eq!(r.error_code, 0);
    n.node.shutdown().await;
}
