//! Replication on the wire, against two real nodes in-process (node 1 controller and
//! broker, node 2 broker only): follower fetches from brokers that are not replicas or
//! come with a stale broker epoch get Kafka's error codes; OffsetForLeaderEpoch answers
//! from the leader's epoch cache; NOT_LEADER_OR_FOLLOWER answers carry the leader
//! (KIP-951); fetch sessions (KIP-227) answer only what changed and refuse bad epochs.
#![cfg(not(madsim))]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{start_in, Raw, TestNode};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    BrokerId, CreateTopicsRequest, FetchRequest, MetadataRequest, OffsetForLeaderEpochRequest,
    ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

fn batch(n: usize) -> Bytes {
    let records = (0..n)
        .map(|i| (None, Bytes::from(format!("v{i}"))))
        .collect();
    common::plain_batch(records, 1_700_000_000_000, Compression::None)
}

/// Node 1 (controller and broker) and node 2 (broker only).
async fn two_nodes() -> (TestNode, TestNode) {
    let n1 = start_in(
        tempfile::tempdir().unwrap(),
        &[("replica.fetch.wait.max.ms", "100")],
    )
    .await;
    let voters = format!("1@{}", n1.node.internal_addr.unwrap());
    let mut m = vec![
        ("node.id", "2"),
        ("process.roles", "broker"),
        ("controller.quorum.voters", voters.as_str()),
        ("replica.fetch.wait.max.ms", "100"),
    ];
    m.retain(|_| true);
    let n2 = start_in(tempfile::tempdir().unwrap(), &m).await;
    (n1, n2)
}

/// Creates an RF 2 topic and returns (leader node id, follower node id) of partition 0,
/// and the topic id.
async fn rf2_topic(c: &mut Raw, topic: &str, partitions: i32) -> (i32, i32, uuid::Uuid) {
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(2)])
        .with_timeout_ms(10_000);
    let r = c.call(&req, 7).await;
    assert_eq!(r.topics[0].error_code, 0, "{:?}", r.topics[0]);
    for _ in 0..100 {
        let md = c
            .call(
                &MetadataRequest::default().with_topics(Some(vec![
                    kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                        .with_name(Some(name(topic))),
                ])),
                12,
            )
            .await;
        let p = &md.topics[0].partitions;
        if p.len() == partitions as usize && p.iter().all(|x| x.isr_nodes.len() == 2) {
            let leader = p[0].leader_id.0;
            let follower = p[0]
                .replica_nodes
                .iter()
                .map(|b| b.0)
                .find(|&b| b != leader)
                .unwrap();
            return (leader, follower, md.topics[0].topic_id);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{topic} never had two in-sync replicas");
}

fn addr_of<'a>(id: i32, n1: &'a TestNode, n2: &'a TestNode) -> std::net::SocketAddr {
    if id == 1 {
        n1.addr
    } else {
        n2.addr
    }
}

fn replica_fetch(topic: uuid::Uuid, replica: i32, epoch: i64, leader_epoch: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(replica))
                .with_replica_epoch(epoch),
        )
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic_id(topic)
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(leader_epoch)
                .with_fetch_offset(0)
                .with_last_fetched_epoch(-1)
                .with_partition_max_bytes(1 << 20)])])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follower_fetches_from_strangers_and_old_incarnations_are_refused() {
    let (n1, n2) = two_nodes().await;
    let mut c = Raw::connect(n1.addr).await;
    let (leader, follower, id) = rf2_topic(&mut c, "wire-follow", 1).await;
    let mut l = Raw::connect(addr_of(leader, &n1, &n2)).await;
    let code =
        |r: &kafka_protocol::messages::FetchResponse| r.responses[0].partitions[0].error_code;
    // A broker that is not a replica: UNKNOWN_LEADER_EPOCH with an epoch, else
    // NOT_LEADER_OR_FOLLOWER (Kafka's followerReplicaOrThrow).
    let r = l.call(&replica_fetch(id, 7, -1, 0), 15).await;
    assert_eq!(code(&r), E::UnknownLeaderEpoch.code());
    let r = l.call(&replica_fetch(id, 7, -1, -1), 15).await;
    assert_eq!(code(&r), E::NotLeaderOrFollower.code());
    // The real follower at its current epoch is served ...
    let epoch = if follower == 1 {
        n1.node.broker.as_ref().unwrap().broker_epoch()
    } else {
        n2.node.broker.as_ref().unwrap().broker_epoch()
    };
    let r = l.call(&replica_fetch(id, follower, epoch, 0), 15).await;
    assert_eq!(code(&r), 0);
    // ... an older incarnation of it is not (KIP-903).
    let r = l.call(&replica_fetch(id, follower, epoch - 1, 0), 15).await;
    assert_eq!(code(&r), E::NotLeaderOrFollower.code());
    // A newer leader epoch than the leader's: UNKNOWN_LEADER_EPOCH.
    let r = l.call(&replica_fetch(id, follower, epoch, 9), 15).await;
    assert_eq!(code(&r), E::UnknownLeaderEpoch.code());
    drop((n1, n2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_for_leader_epochs_and_leader_hints() {
    let (n1, n2) = two_nodes().await;
    let mut c = Raw::connect(n1.addr).await;
    let (leader, follower, _) = rf2_topic(&mut c, "wire-epochs", 1).await;
    let mut l = Raw::connect(addr_of(leader, &n1, &n2)).await;
    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("wire-epochs"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(batch(5)))])]);
    let r = l.call(&produce, 11).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    // OffsetForLeaderEpoch: the current epoch ends at the log end.
    let ofle = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![OffsetForLeaderTopic::default()
            .with_topic(name("wire-epochs"))
            .with_partitions(vec![OffsetForLeaderPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(0)
                .with_leader_epoch(0)])]);
    let r = l.call(&ofle, 4).await;
    let p = &r.topics[0].partitions[0];
    assert_eq!((p.error_code, p.leader_epoch, p.end_offset), (0, 0, 5));
    // The follower answers NOT_LEADER_OR_FOLLOWER, naming the leader (KIP-951).
    let mut f = Raw::connect(addr_of(follower, &n1, &n2)).await;
    let r = f.call(&ofle, 4).await;
    assert_eq!(
        r.topics[0].partitions[0].error_code,
        E::NotLeaderOrFollower.code()
    );
    let r = f.call(&produce, 11).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, E::NotLeaderOrFollower.code());
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (leader, 0)
    );
    assert!(r
        .node_endpoints
        .iter()
        .any(|e| e.node_id.0 == leader && e.port == addr_of(leader, &n1, &n2).port() as i32));
    let consumer_fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(name("wire-epochs"))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(0)
                .with_partition_max_bytes(1 << 20)])]);
    let r = f.call(&consumer_fetch, 12).await;
    assert_eq!(
        r.responses[0].partitions[0].error_code,
        E::NotLeaderOrFollower.code()
    );
    drop((n1, n2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sessions_answer_only_what_changed() {
    let (n1, n2) = two_nodes().await;
    let mut c = Raw::connect(n1.addr).await;
    // Two partitions with the same leader (RF 1 on node 1).
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(name("wire-session"))
            .with_num_partitions(-1)
            .with_replication_factor(-1)
            .with_assignments(
                (0..2)
                    .map(|i| {
                        kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment::default()
                            .with_partition_index(i)
                            .with_broker_ids(vec![BrokerId(1)])
                    })
                    .collect(),
            )])
        .with_timeout_ms(10_000);
    assert_eq!(c.call(&req, 7).await.topics[0].error_code, 0);
    let fetch = |session_id: i32, session_epoch: i32, partitions: Vec<i32>| {
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_session_id(session_id)
            .with_session_epoch(session_epoch)
            .with_topics(if partitions.is_empty() {
                vec![]
            } else {
                vec![FetchTopic::default()
                    .with_topic(name("wire-session"))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|p| {
                                FetchPartition::default()
                                    .with_partition(p)
                                    .with_current_leader_epoch(-1)
                                    .with_partition_max_bytes(1 << 20)
                            })
                            .collect(),
                    )]
            })
    };
    let mut r = fetch(0, 0, vec![0, 1]);
    // Wait until both partitions answer without error (leadership applied).
    let mut full = c.call(&r, 12).await;
    for _ in 0..50 {
        if full.responses[0]
            .partitions
            .iter()
            .all(|p| p.error_code == 0)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        full = c.call(&r, 12).await;
    }
    let id = full.session_id;
    assert!(id > 0, "a session for a full fetch asking for one");
    assert_eq!(full.responses[0].partitions.len(), 2);
    // Nothing changed: nothing answered.
    let quiet = c.call(&fetch(id, 1, vec![]), 12).await;
    assert_eq!(quiet.error_code, 0);
    assert_eq!(quiet.session_id, id);
    assert!(quiet.responses.is_empty(), "{:?}", quiet.responses);
    // A write to partition 1: only it is answered (its high watermark moved).
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(name("wire-session"))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(1)
                .with_records(Some(batch(3)))])]);
    assert_eq!(
        c.call(&produce, 11).await.responses[0].partition_responses[0].error_code,
        0
    );
    let news = c.call(&fetch(id, 2, vec![]), 12).await;
    assert_eq!(news.responses.len(), 1);
    let parts = &news.responses[0].partitions;
    assert_eq!(parts.len(), 1);
    assert_eq!((parts[0].partition_index, parts[0].high_watermark), (1, 3));
    assert!(parts[0].records.as_ref().is_some_and(|r| !r.is_empty()));
    // The same epoch again, and an unknown session.
    let again = c.call(&fetch(id, 2, vec![]), 12).await;
    assert_eq!(again.error_code, E::InvalidFetchSessionEpoch.code());
    let unknown = c.call(&fetch(id + 1000, 1, vec![]), 12).await;
    assert_eq!(unknown.error_code, E::FetchSessionIdNotFound.code());
    // Closing it: a full answer without a session.
    r = fetch(id, -1, vec![0]);
    let closed = c.call(&r, 12).await;
    assert_eq!(closed.session_id, 0);
    drop((n1, n2));
}
