//! Bad transaction requests on the wire get Kafka's error codes and nothing is applied:
//! unknown transactional ids, invalid timeouts, EndTxn without a transaction, wrong
//! producer ids and epochs, partitions that do not exist, transactional batches from a
//! producer that never called InitProducerId, and the broker-only requests
//! (WriteTxnMarkers, batched AddPartitionsToTxn) sent by a client.
#![cfg(not(madsim))]

mod common;

use bytes::{Bytes, BytesMut};
use common::{start_node, Raw};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, FindCoordinatorRequest, InitProducerIdRequest,
    ListOffsetsRequest, MetadataRequest, ProduceRequest, ProducerId, TopicName, TransactionalId,
    WriteTxnMarkersRequest,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn tid(v: &str) -> TransactionalId {
    TransactionalId(s(v))
}

async fn wait_for_txn_coordinator(c: &mut Raw, id: &str) {
    for _ in 0..200 {
        let r = c
            .call(
                &FindCoordinatorRequest::default()
                    .with_key(s(id))
                    .with_key_type(1),
                3,
            )
            .await;
        if r.error_code == 0 {
            // Found: wait until its partition is loaded (InitProducerId answers).
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("no transaction coordinator for {id}");
}

async fn create_topic(c: &mut Raw, name: &str) {
    let md = MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(s(name)))),
        ]))
        .with_allow_auto_topic_creation(true);
    for _ in 0..100 {
        if c.call(&md, 12).await.topics[0].error_code == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("topic {name} never appeared");
}

async fn init(c: &mut Raw, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    for _ in 0..200 {
        let r = c
            .call(
                &InitProducerIdRequest::default()
                    .with_transactional_id(Some(tid(id)))
                    .with_transaction_timeout_ms(timeout_ms)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
                4,
            )
            .await;
        if r.error_code != E::CoordinatorLoadInProgress.code()
            && r.error_code != E::NotCoordinator.code()
            && r.error_code != E::CoordinatorNotAvailable.code()
        {
            return (r.error_code, r.producer_id.0, r.producer_epoch);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("InitProducerId never answered");
}

fn add(id: &str, pid: i64, epoch: i16, topic: &str, p: i32) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid(id))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![p])])
}

fn add_code(r: &kafka_protocol::messages::AddPartitionsToTxnResponse) -> i16 {
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

fn end(id: &str, pid: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(tid(id))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

fn txn_batch(pid: i64, epoch: i16, seq: i32) -> Bytes {
    let records: Vec<Record> = (0..2)
        .map(|i| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: pid,
            producer_epoch: epoch,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: seq + i as i32,
            timestamp: strom_common::clock::now_ms(),
            key: None,
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        })
        .collect();
    let mut b = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut b,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .unwrap();
    b.freeze()
}

async fn produce(c: &mut Raw, id: &str, topic: &str, batch: Bytes) -> (i16, i64) {
    let r = c
        .call(
            &ProduceRequest::default()
                .with_transactional_id(Some(tid(id)))
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch))])]),
            9,
        )
        .await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

/// ListOffsets(latest) of partition 0 with read_committed (1) or read_uncommitted (0).
async fn latest(c: &mut Raw, topic: &str, isolation: i8) -> i64 {
    let r = c
        .call(
            &ListOffsetsRequest::default()
                .with_replica_id((-1).into())
                .with_isolation_level(isolation)
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(-1)])]),
            5,
        )
        .await;
    let p = &r.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    p.offset
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transaction_requests_get_kafka_error_codes_and_change_nothing() {
    let n = start_node(&[]).await;
    let mut c = Raw::connect(n.addr).await;
    let topic = "txn-bad-input";
    create_topic(&mut c, topic).await;
    let id = "bad-input-txn";
    wait_for_txn_coordinator(&mut c, id).await;

    // Unknown transactional ids.
    let r = c.call(&end("never-initialised", 1, 0, true), 3).await;
    assert!(
        r.error_code == E::InvalidProducerIdMapping.code()
            || r.error_code == E::CoordinatorLoadInProgress.code()
            || r.error_code == E::NotCoordinator.code(),
        "{r:?}"
    );
    // Timeouts outside (0, transaction.max.timeout.ms].
    assert_eq!(
        init(&mut c, id, 0).await.0,
        E::InvalidTransactionTimeout.code()
    );
    assert_eq!(
        init(&mut c, id, 900_001).await.0,
        E::InvalidTransactionTimeout.code()
    );
    let (code, pid, epoch) = init(&mut c, id, 60_000).await;
    assert_eq!((code, epoch), (0, 0));
    let r = c.call(&end("never-initialised", pid, 0, true), 3).await;
    assert_eq!(r.error_code, E::InvalidProducerIdMapping.code());

    // EndTxn without AddPartitionsToTxn: no transaction to end.
    let r = c.call(&end(id, pid, epoch, true), 3).await;
    assert_eq!(r.error_code, E::InvalidTxnState.code());
    // Wrong producer id, wrong epoch (PRODUCER_FENCED from v2, INVALID_PRODUCER_EPOCH
    // before), a partition that does not exist.
    let r = c.call(&add(id, pid + 1, epoch, topic, 0), 3).await;
    assert_eq!(add_code(&r), E::InvalidProducerIdMapping.code());
    let r = c.call(&add(id, pid, epoch + 1, topic, 0), 3).await;
    assert_eq!(add_code(&r), E::ProducerFenced.code());
    let r = c.call(&add(id, pid, epoch + 1, topic, 0), 1).await;
    assert_eq!(add_code(&r), E::InvalidProducerEpoch.code());
    let r = c.call(&add(id, pid, epoch, topic, 99), 3).await;
    assert_eq!(add_code(&r), E::UnknownTopicOrPartition.code());
    let r = c.call(&end(id, pid, epoch + 1, false), 3).await;
    assert_eq!(r.error_code, E::ProducerFenced.code());

    // A transactional batch from a producer id the coordinator never gave this id, and
    // one before AddPartitionsToTxn: refused, nothing appended.
    let (code, _) = produce(&mut c, id, topic, txn_batch(pid + 7, 0, 0)).await;
    assert_eq!(code, E::InvalidProducerIdMapping.code());
    let (code, _) = produce(&mut c, id, topic, txn_batch(pid, epoch, 0)).await;
    assert_eq!(code, E::InvalidTxnState.code());
    assert_eq!(latest(&mut c, topic, 0).await, 0);

    // A real transaction, left open.
    let r = c.call(&add(id, pid, epoch, topic, 0), 3).await;
    assert_eq!(add_code(&r), 0);
    assert_eq!(
        produce(&mut c, id, topic, txn_batch(pid, epoch, 0)).await,
        (0, 0)
    );
    assert_eq!(
        latest(&mut c, topic, 1).await,
        0,
        "open: the LSO stays at its start"
    );

    // Markers and batched verification from a client: refused, nothing applied.
    let marker = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_transaction_result(true)
        .with_coordinator_epoch(0)
        .with_topics(vec![WritableTxnMarkerTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(vec![0])])]);
    let r = c.call(&marker, 1).await;
    assert_eq!(
        r.markers[0].topics[0].partitions[0].error_code,
        E::ClusterAuthorizationFailed.code()
    );
    let verify = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(tid(id))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch)
            .with_verify_only(false)
            .with_topics(vec![AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![0])]),
    ]);
    let r = c.call(&verify, 5).await;
    assert_eq!(r.error_code, E::ClusterAuthorizationFailed.code());
    assert_eq!(
        latest(&mut c, topic, 1).await,
        0,
        "the client's marker changed nothing"
    );
    assert_eq!(latest(&mut c, topic, 0).await, 2);

    // The producer aborts: the marker goes in and the LSO moves past it.
    let r = c.call(&end(id, pid, epoch, false), 3).await;
    assert_eq!(r.error_code, 0);
    for _ in 0..100 {
        if latest(&mut c, topic, 1).await == 3 {
            n.node.shutdown().await;
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the abort marker never made the transaction stable");
}
