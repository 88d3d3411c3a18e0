//! Hostile clients on the wire, with a real socket: writes to internal topics, batches
//! whose headers lie about their records, several batches for one partition, and
//! compression bombs each get Kafka's error, nothing of them is stored, and the node
//! keeps serving.
#![cfg(not(madsim))]

mod common;

use std::io::Read;

use bytes::{Bytes, BytesMut};
use common::{start_node, Raw};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsTopic,
};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest,
    FetchRequest, FindCoordinatorRequest, IncrementalAlterConfigsRequest, MetadataRequest,
    ProduceRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

const OFFSETS: &str = "__consumer_offsets";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn batch(n: usize, compression: Compression) -> Bytes {
    let records = (0..n)
        .map(|i| {
            (
                Some(Bytes::from(format!("k{i}"))),
                Bytes::from(vec![b'x'; 10]),
            )
        })
        .collect();
    common::plain_batch(records, strom_common::clock::now_ms(), compression)
}

/// Sets the batch's CRC-32C right after a test changed its bytes: the lies below are
/// told by a client that computes a valid CRC over them.
fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn produce(topic: &str, partition: i32, records: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(s(topic)))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(records))])])
}

async fn produce_code(c: &mut Raw, topic: &str, records: Bytes) -> (i16, i64) {
    let r = c.call(&produce(topic, 0, records), 9).await;
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

async fn create_topic(c: &mut Raw, name: &str) {
    let md = MetadataRequest::default()
        .with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(s(name)))),
        ]))
        .with_allow_auto_topic_creation(true);
    // LEADER_NOT_AVAILABLE from the call that creates it, then the topic.
    for _ in 0..100 {
        let r = c.call(&md, 12).await;
        if r.topics[0].error_code == 0 {
            return;
        }
        assert_eq!(r.topics[0].error_code, E::LeaderNotAvailable.code());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("topic {name} never appeared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_topics_refuse_client_writes_deletes_and_config_changes() {
    let n = start_node(&[]).await;
    let mut c = Raw::connect(n.addr).await;
    // The offsets topic exists once a group coordinator is asked for.
    for _ in 0..100 {
        let r = c
            .call(&FindCoordinatorRequest::default().with_key(s("g")), 3)
            .await;
        if r.error_code == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let invalid_topic = E::InvalidTopicException.code();
    assert_eq!(
        produce_code(&mut c, OFFSETS, batch(1, Compression::None))
            .await
            .0,
        invalid_topic,
        "produce to {OFFSETS}"
    );
    let r = c
        .call(
            &DeleteRecordsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![DeleteRecordsTopic::default()
                    .with_name(TopicName(s(OFFSETS)))
                    .with_partitions(vec![DeleteRecordsPartition::default()
                        .with_partition_index(0)
                        .with_offset(-1)])]),
            2,
        )
        .await;
    assert_eq!(
        r.topics[0].partitions[0].error_code, invalid_topic,
        "DeleteRecords"
    );
    let r = c
        .call(
            &DeleteTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![
                    DeleteTopicState::default().with_name(Some(TopicName(s(OFFSETS))))
                ]),
            6,
        )
        .await;
    assert_eq!(r.responses[0].error_code, invalid_topic, "DeleteTopics");
    let r = c
        .call(
            &CreatePartitionsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![CreatePartitionsTopic::default()
                    .with_name(TopicName(s(OFFSETS)))
                    .with_count(100)]),
            3,
        )
        .await;
    assert_eq!(r.results[0].error_code, invalid_topic, "CreatePartitions");
    let r = c
        .call(
            &IncrementalAlterConfigsRequest::default().with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s(OFFSETS))
                    .with_configs(vec![AlterableConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_config_operation(0)
                        .with_value(Some(s("delete")))]),
            ]),
            1,
        )
        .await;
    assert_eq!(
        r.responses[0].error_code, invalid_topic,
        "IncrementalAlterConfigs"
    );
    let r = c
        .call(
            &CreateTopicsRequest::default()
                .with_timeout_ms(5000)
                .with_topics(vec![CreatableTopic::default()
                    .with_name(TopicName(s("__transaction_state")))
                    .with_num_partitions(1)
                    .with_replication_factor(1)]),
            7,
        )
        .await;
    assert_eq!(
        r.topics[0].error_code, invalid_topic,
        "CreateTopics of an internal name"
    );
    // The topic is untouched: still there with its partitions and config.
    let md = c
        .call(
            &MetadataRequest::default().with_topics(Some(vec![
                kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                    .with_name(Some(TopicName(s(OFFSETS)))),
            ])),
            12,
        )
        .await;
    assert_eq!(md.topics[0].error_code, 0);
    assert_eq!(md.topics[0].partitions.len(), 50);
    n.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_whose_headers_lie_are_refused_and_move_no_offsets() {
    let n = start_node(&[]).await;
    let mut c = Raw::connect(n.addr).await;
    create_topic(&mut c, "lies").await;
    let good = batch(3, Compression::None);
    // 2^31-1 records claimed (last offset delta to match), three present.
    let mut huge = BytesMut::from(&good[..]);
    huge[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    huge[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    fix_crc(&mut huge);
    // Five claimed, three present.
    let mut five = BytesMut::from(&good[..]);
    five[23..27].copy_from_slice(&4i32.to_be_bytes());
    five[57..61].copy_from_slice(&5i32.to_be_bytes());
    fix_crc(&mut five);
    // Two claimed: the third record trails the batch.
    let mut two = BytesMut::from(&good[..]);
    two[23..27].copy_from_slice(&1i32.to_be_bytes());
    two[57..61].copy_from_slice(&2i32.to_be_bytes());
    fix_crc(&mut two);
    // The same lie inside a compressed batch.
    let mut zhuge = BytesMut::from(&batch(3, Compression::Zstd)[..]);
    zhuge[23..27].copy_from_slice(&(i32::MAX - 1).to_be_bytes());
    zhuge[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    fix_crc(&mut zhuge);
    for (what, b) in [
        ("2^31-1", huge),
        ("5", five),
        ("2", two),
        ("zstd 2^31-1", zhuge),
    ] {
        assert_eq!(
            produce_code(&mut c, "lies", b.freeze()).await.0,
            E::InvalidRecord.code(),
            "a header claiming {what} records"
        );
    }
    // Two whole batches for one partition (Kafka: exactly one per partition).
    let mut pair = BytesMut::from(&good[..]);
    pair.extend_from_slice(&good);
    assert_eq!(
        produce_code(&mut c, "lies", pair.freeze()).await.0,
        E::InvalidRecord.code()
    );
    // Nothing was stored: the next good batch starts at offset 0, the one after at 3.
    assert_eq!(produce_code(&mut c, "lies", good.clone()).await, (0, 0));
    assert_eq!(produce_code(&mut c, "lies", good).await, (0, 3));
    n.node.shutdown().await;
}

/// A one-record batch shell around `payload` compressed with `codec`, CRC valid.
fn bomb_batch(codec: Compression, payload: &[u8]) -> Bytes {
    let shell = batch(1, codec);
    let mut b = BytesMut::from(&shell[..61]);
    b.extend_from_slice(payload);
    let len = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    fix_crc(&mut b);
    b.freeze()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_bombs_get_an_error_and_the_node_keeps_serving() {
    let n = start_node(&[("message.max.bytes", "2097152")]).await;
    let mut c = Raw::connect(n.addr).await;
    create_topic(&mut c, "bombs").await;
    const GIB: u64 = 1 << 30;
    let zeros = || std::io::repeat(0).take(GIB);
    // zstd: 1 GiB of zeros in a few dozen KiB.
    let mut z = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    std::io::copy(&mut zeros(), &mut z).unwrap();
    let zstd_bomb = z.finish().unwrap();
    // gzip: deflate's best ratio, about 1 MiB for 1 GiB.
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::copy(&mut zeros(), &mut g).unwrap();
    let gzip_bomb = g.finish().unwrap();
    assert!(
        gzip_bomb.len() < 2 << 20,
        "gzip bomb of {} bytes",
        gzip_bomb.len()
    );
    for (codec, payload) in [
        (Compression::Zstd, zstd_bomb),
        (Compression::Gzip, gzip_bomb),
    ] {
        let (code, _) = produce_code(&mut c, "bombs", bomb_batch(codec, &payload)).await;
        assert_eq!(
            code,
            E::InvalidRecord.code(),
            "{codec:?} bomb of {} bytes",
            payload.len()
        );
    }
    // Garbage that claims to be zstd: CORRUPT_MESSAGE.
    let (code, _) = produce_code(
        &mut c,
        "bombs",
        bomb_batch(Compression::Zstd, b"not zstd at all"),
    )
    .await;
    assert_eq!(code, E::CorruptMessage.code());
    // The node still serves: a good compressed batch is stored at offset 0, and a Fetch
    // asking for 2^31-1 bytes gets just what there is.
    assert_eq!(
        produce_code(&mut c, "bombs", batch(3, Compression::Zstd)).await,
        (0, 0)
    );
    let fetch = FetchRequest::default()
        .with_max_wait_ms(0)
        .with_max_bytes(i32::MAX)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(s("bombs")))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(i32::MAX)])]);
    let r = c.call(&fetch, 11).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    assert_eq!(p.high_watermark, 3);
    assert!(p
        .records
        .as_ref()
        .is_some_and(|r| !r.is_empty() && r.len() < 4096));
    n.node.shutdown().await;
}

/// KIP-467: a batch with one record stamped two hours ahead (past the default
/// `message.timestamp.after.max.ms` of one hour) is refused with INVALID_TIMESTAMP and
/// `record_errors` naming that record's index; nothing is appended.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_errors_name_each_refused_record() {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let n = start_node(&[]).await;
    let mut c = Raw::connect(n.addr).await;
    create_topic(&mut c, "stamps").await;
    let now = strom_common::clock::now_ms();
    let records: Vec<Record> = [now, now + 2 * 3_600_000, now]
        .iter()
        .enumerate()
        .map(|(i, ts)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp: *ts,
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
    let r = c.call(&produce("stamps", 0, b.freeze()), 9).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, E::InvalidTimestamp.code());
    assert_eq!(
        p.record_errors
            .iter()
            .map(|e| e.batch_index)
            .collect::<Vec<_>>(),
        [1]
    );
    assert!(p.record_errors[0]
        .batch_index_error_message
        .as_deref()
        .is_some_and(|m| m.contains("out of range")));
    // Nothing was appended: the next good batch starts at offset 0.
    assert_eq!(
        produce_code(&mut c, "stamps", batch(1, Compression::None)).await,
        (0, 0)
    );
    n.node.shutdown().await;
}

/// A transactional batch when no transaction can include the partition (there is no
/// transaction coordinator yet) is refused with INVALID_TXN_STATE, as KIP-890's
/// verification answers; nothing is appended, so no transaction is left open to hold
/// read_committed consumers (librdkafka's default) at its offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transactional_batch_without_a_transaction_is_refused() {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let n = start_node(&[]).await;
    let mut c = Raw::connect(n.addr).await;
    create_topic(&mut c, "txn").await;
    let records: Vec<Record> = (0..2)
        .map(|i| Record {
            transactional: true,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 5000,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32,
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
    assert_eq!(
        produce_code(&mut c, "txn", b.freeze()).await.0,
        E::InvalidTxnState.code()
    );
    // Nothing was appended: the next good batch starts at offset 0.
    assert_eq!(
        produce_code(&mut c, "txn", batch(1, Compression::None)).await,
        (0, 0)
    );
    n.node.shutdown().await;
}
