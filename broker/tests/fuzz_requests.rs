//! A structured fuzzer over every request the node serves. Random bytes rarely get past
//! a decoder (`bad_input.rs` sends those); here each case starts from a well-formed
//! request of a served API at a served version (every API's default request, and
//! requests that name a real topic, group and record batch so that handlers go deep),
//! mutates its body (bytes set, inserted, deleted, integers replaced by edge values),
//! and sends it through a real socket to one in-process node. The node must answer or
//! close the connection, never panic (a panic hook counts panics on any thread), and
//! keep serving: produce and fetch still round-trip at the end.
//!
//! The test command runs a few thousand cases; for a long run:
//! `PROPTEST_CASES=1000000 cargo test --release -p strom-broker --test fuzz_requests`.
#![cfg(not(madsim))]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use common::{plain_batch, start_node, Raw};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::Compression;
use proptest::prelude::*;

const TOPIC: &str = "fz";

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic() -> TopicName {
    TopicName(s(TOPIC))
}

fn encode<R: Encodable>(req: &R, version: i16) -> Option<Bytes> {
    let mut b = BytesMut::new();
    req.encode(&mut b, version).ok()?;
    Some(b.freeze())
}

/// Requests that reach deep into their handlers: a real topic, group and batch.
fn rich(key: i16, version: i16) -> Option<Bytes> {
    let batch = plain_batch(
        vec![(Some(Bytes::from_static(b"k")), Bytes::from_static(b"value"))],
        1_700_000_000_000,
        Compression::None,
    );
    match key {
        0 => encode(
            &ProduceRequest::default()
                .with_acks(1)
                .with_timeout_ms(1000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(topic())
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch)),
                    ])]),
            version,
        ),
        1 => encode(
            &FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(10)
                .with_max_bytes(1 << 20)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(topic())
                    .with_partitions(vec![fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(0)
                        .with_partition_max_bytes(1 << 20)])]),
            version,
        ),
        2 => encode(
            &ListOffsetsRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(-1),
                    ])]),
            version,
        ),
        3 => encode(
            &MetadataRequest::default().with_topics(Some(vec![
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic())),
            ])),
            version,
        ),
        8 => encode(
            &OffsetCommitRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic())
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(1),
                        ]),
                ]),
            version,
        ),
        11 => encode(
            &JoinGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_session_timeout_ms(10_000)
                .with_rebalance_timeout_ms(10_000)
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(&[0, 1, 0, 0, 0, 1, 0, 2, b'f', b'z']))]),
            version,
        ),
        19 => encode(
            &CreateTopicsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(s("fz-new")))
                    .with_num_partitions(2)
                    .with_replication_factor(1)
                    .with_configs(vec![
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("1000"))),
                    ])]),
            version,
        ),
        21 => encode(
            &DeleteRecordsRequest::default()
                .with_timeout_ms(1000)
                .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_partition_index(0)
                            .with_offset(0),
                    ])]),
            version,
        ),
        32 => encode(
            &DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(TOPIC)),
            ]),
            version,
        ),
        44 => encode(
            &IncrementalAlterConfigsRequest::default().with_resources(vec![
                incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(TOPIC))
                    .with_configs(vec![
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_config_operation(0)
                            .with_value(Some(s("86400000"))),
                    ]),
            ]),
            version,
        ),
        _ => None,
    }
}

/// Every served API's default request.
fn default_of(key: i16, version: i16) -> Option<Bytes> {
    macro_rules! by_key {
        ($($k:literal => $t:ty),* $(,)?) => {
            match key {
                $($k => encode(&<$t>::default(), version),)*
                _ => None,
            }
        };
    }
    by_key! {
        0 => ProduceRequest, 1 => FetchRequest, 2 => ListOffsetsRequest,
        3 => MetadataRequest, 8 => OffsetCommitRequest, 9 => OffsetFetchRequest,
        10 => FindCoordinatorRequest, 11 => JoinGroupRequest, 12 => HeartbeatRequest,
        13 => LeaveGroupRequest, 14 => SyncGroupRequest, 15 => DescribeGroupsRequest,
        16 => ListGroupsRequest, 18 => ApiVersionsRequest, 19 => CreateTopicsRequest,
        20 => DeleteTopicsRequest, 21 => DeleteRecordsRequest, 22 => InitProducerIdRequest,
        23 => OffsetForLeaderEpochRequest, 32 => DescribeConfigsRequest,
        33 => AlterConfigsRequest, 34 => AlterReplicaLogDirsRequest,
        35 => DescribeLogDirsRequest, 37 => CreatePartitionsRequest,
        42 => DeleteGroupsRequest, 43 => ElectLeadersRequest,
        44 => IncrementalAlterConfigsRequest, 45 => AlterPartitionReassignmentsRequest,
        46 => ListPartitionReassignmentsRequest, 47 => OffsetDeleteRequest,
        55 => DescribeQuorumRequest, 60 => DescribeClusterRequest,
        68 => ConsumerGroupHeartbeatRequest, 69 => ConsumerGroupDescribeRequest,
        75 => DescribeTopicPartitionsRequest,
    }
}

struct Fixture {
    rt: tokio::runtime::Runtime,
    addr: std::net::SocketAddr,
    /// (api key, version) of everything the node advertises.
    served: Vec<(i16, i16)>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (addr, served) = rt.block_on(async {
            let n = start_node(&[("auto.create.topics.enable", "true")]).await;
            let addr = n.addr;
            let mut c = Raw::connect(addr).await;
            let versions = c.call(&ApiVersionsRequest::default(), 3).await;
            let mut served = Vec::new();
            for k in &versions.api_keys {
                for v in k.min_version..=k.max_version {
                    // kafka-protocol cannot encode a few old versions (Produce v0-2)
                    // that the node still reads; bad_input.rs covers those.
                    if default_of(k.api_key, v).is_some() {
                        served.push((k.api_key, v));
                    }
                }
            }
            // The topic the rich requests name, with a record in it.
            let r = c
                .call(
                    &MetadataRequest::default()
                        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                        )
                        .with_name(Some(topic()))]))
                        .with_allow_auto_topic_creation(true),
                    4,
                )
                .await;
            assert_eq!(r.topics.len(), 1);
            std::mem::forget(n); // the node lives as long as the test binary
            (addr, served)
        });
        Fixture { rt, addr, served }
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    /// An edge value written over four bytes (lengths, counts, offsets, ids).
    Edge(usize, i32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Mutation::Set(p, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(p, b)| Mutation::Insert(p, b)),
        (any::<usize>(), 1usize..16).prop_map(|(p, n)| Mutation::Delete(p, n)),
        (
            any::<usize>(),
            prop_oneof![
                Just(0),
                Just(-1),
                Just(1),
                Just(i32::MAX),
                Just(i32::MIN),
                Just(0x7fff),
                Just(-2),
                any::<i32>()
            ]
        )
            .prop_map(|(p, v)| Mutation::Edge(p, v)),
    ]
}

fn mutate(mut body: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let len = body.len();
        match m {
            Mutation::Set(p, b) if len > 0 => body[p % len] = *b,
            Mutation::Insert(p, b) => {
                let at = p % (len + 1);
                body.splice(at..at, b.iter().copied());
            }
            Mutation::Delete(p, n) if len > 0 => {
                let at = p % len;
                body.drain(at..(at + n).min(len));
            }
            Mutation::Edge(p, v) if len >= 4 => {
                let at = p % (len - 3);
                body[at..at + 4].copy_from_slice(&v.to_be_bytes());
            }
            _ => {}
        }
    }
    body
}

fn frame(key: i16, version: i16, body: &[u8]) -> Vec<u8> {
    use kafka_protocol::messages::{ApiKey, RequestHeader};
    let header = RequestHeader::default()
        .with_request_api_key(key)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("fuzz")));
    let mut b = BytesMut::new();
    let hv = ApiKey::try_from(key)
        .unwrap()
        .request_header_version(version);
    header.encode(&mut b, hv).unwrap();
    b.extend_from_slice(body);
    b.to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn mutated_requests_of_every_served_api_never_panic_the_node(
        pick in any::<usize>(),
        rich_seed in any::<bool>(),
        mutations in proptest::collection::vec(mutation(), 0..4),
    ) {
        let f = fixture();
        let (key, version) = f.served[pick % f.served.len()];
        let seed = if rich_seed { rich(key, version) } else { None }
            .or_else(|| default_of(key, version))
            .expect("every served API has a seed");
        let body = mutate(seed.to_vec(), &mutations);
        let before = PANICS.load(Ordering::SeqCst);
        f.rt.block_on(async {
            let mut c = Raw::connect(f.addr).await;
            if c.send_frame(&frame(key, version, &body)).await.is_ok() {
                // Some requests may rightly wait (a long poll, a join waiting for its
                // group, a produce waiting for acks): give up after a while; a node that
                // hangs for good fails the final check.
                let _ = tokio::time::timeout(std::time::Duration::from_secs(1), c.read_frame()).await;
            }
        });
        prop_assert_eq!(PANICS.load(Ordering::SeqCst), before, "the node panicked on API {} v{}", key, version);
    }
}

#[test]
fn the_node_serves_after_the_fuzzing() {
    let f = fixture();
    f.rt.block_on(async {
        let mut c = Raw::connect(f.addr).await;
        let batch = plain_batch(
            vec![(None, Bytes::from_static(b"after"))],
            1_700_000_000_000,
            Compression::None,
        );
        let r = c
            .call(
                &ProduceRequest::default()
                    .with_acks(1)
                    .with_timeout_ms(5000)
                    .with_topic_data(vec![produce_request::TopicProduceData::default()
                        .with_name(TopicName(s("fz-after")))
                        .with_partition_data(vec![
                            produce_request::PartitionProduceData::default()
                                .with_index(0)
                                .with_records(Some(batch)),
                        ])]),
                9,
            )
            .await;
        let code = r.responses[0].partition_responses[0].error_code;
        // The topic is auto-created by the produce (UNKNOWN_TOPIC first, as Kafka does).
        assert!(code == 0 || code == 3, "produce error {code}");
    });
    assert_eq!(
        PANICS.load(Ordering::SeqCst),
        0,
        "a panic during the fuzzing"
    );
}
