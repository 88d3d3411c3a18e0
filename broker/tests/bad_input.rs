//! Bad input never takes a node down: malformed frames, unknown API keys and versions,
//! oversized requests, corrupt record batches, and tiny frames whose array lengths
//! claim 2^31 elements (which would make a naive decoder abort on allocation) each get
//! Kafka's error or a closed connection, and the node keeps serving.
#![cfg(not(madsim))]

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{start_node, Raw};
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ApiVersionsRequest, MetadataRequest, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::Compression;

// As in the strom binary: mimalloc, with arenas committed lazily (broker/src/main.rs),
// but a single allocation over 1 GiB fails as it would under `ulimit -v` or without
// overcommit (Rust then aborts the process: the test fails). Overcommit would otherwise
// hide a decoder that reserves what a length read off the wire claims.
#[global_allocator]
static GLOBAL: Limited = Limited;

struct Limited;

const LIMIT: usize = 1 << 30;

unsafe impl std::alloc::GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            return std::ptr::null_mut();
        }
        mimalloc::MiMalloc.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        if layout.size() > LIMIT {
            return std::ptr::null_mut();
        }
        mimalloc::MiMalloc.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        mimalloc::MiMalloc.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        if new_size > LIMIT {
            return std::ptr::null_mut();
        }
        mimalloc::MiMalloc.realloc(ptr, layout, new_size)
    }
}

extern "C" {
    fn mi_option_set(option: i32, value: std::os::raw::c_long);
}

#[used]
#[link_section = ".init_array"]
static LAZY_ARENA_COMMIT: extern "C" fn() = {
    extern "C" fn lazy_arena_commit() {
        unsafe { mi_option_set(4, 0) };
    }
    lazy_arena_commit
};

async fn still_serving(addr: std::net::SocketAddr) {
    let mut c = Raw::connect(addr).await;
    let r = c.call(&ApiVersionsRequest::default(), 3).await;
    assert_eq!(r.error_code, 0);
    assert!(
        r.api_keys
            .iter()
            .any(|k| k.api_key == 0 && k.min_version == 0),
        "Produce advertised from v0"
    );
}

/// A request header for `key`/`version` followed by `body`.
fn frame(key: i16, version: i16, flexible: bool, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_i16(key);
    b.put_i16(version);
    b.put_i32(7);
    b.put_i16(-1); // null client id
    if flexible {
        b.put_u8(0); // no tagged fields
    }
    b.extend_from_slice(body);
    b.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn array_lengths_claiming_2_pow_31_elements_close_the_connection() {
    let n = start_node(&[]).await;
    // Produce v7: transactional id null, acks, timeout, then topic array of 0x7fffffff.
    let mut body = BytesMut::new();
    body.put_i16(-1);
    body.put_i16(1);
    body.put_i32(1000);
    body.put_i32(0x7fff_ffff);
    let mut c = Raw::connect(n.addr).await;
    c.send_frame(&frame(0, 7, false, &body)).await.unwrap();
    assert!(c.read_frame().await.is_none(), "connection closed");
    // Produce v9 (flexible): compact array with length varint 0x7fffffff + 1.
    let mut body = BytesMut::new();
    body.put_u8(0); // null compact string
    body.put_i16(1);
    body.put_i32(1000);
    body.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x08]);
    let mut c = Raw::connect(n.addr).await;
    c.send_frame(&frame(0, 9, true, &body)).await.unwrap();
    assert!(c.read_frame().await.is_none());
    // Metadata v1: topic array of 0x7fffffff.
    let mut c = Raw::connect(n.addr).await;
    c.send_frame(&frame(3, 1, false, &0x7fff_ffffi32.to_be_bytes()))
        .await
        .unwrap();
    assert!(c.read_frame().await.is_none());
    still_serving(n.addr).await;
    n.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_and_unknown_apis_close_the_connection() {
    let n = start_node(&[("socket.request.max.bytes", "1000000")]).await;
    // Frame larger than socket.request.max.bytes.
    let mut c = Raw::connect(n.addr).await;
    c.stream_write(&(2_000_000i32).to_be_bytes()).await;
    assert!(c.read_frame().await.is_none());
    // Negative size.
    let mut c = Raw::connect(n.addr).await;
    c.stream_write(&(-5i32).to_be_bytes()).await;
    assert!(c.read_frame().await.is_none());
    // Unknown API key.
    let mut c = Raw::connect(n.addr).await;
    c.send_frame(&frame(9999, 0, false, &[])).await.unwrap();
    assert!(c.read_frame().await.is_none());
    // Known key, version we do not serve (Fetch v1).
    let mut c = Raw::connect(n.addr).await;
    c.send_frame(&frame(1, 1, false, &[0; 16])).await.unwrap();
    assert!(c.read_frame().await.is_none());
    // A header cut short.
    let mut c = Raw::connect(n.addr).await;
    c.send_frame(&[0, 18]).await.unwrap();
    assert!(c.read_frame().await.is_none());
    // Random garbage bodies for a few APIs.
    for (key, version) in [(0i16, 9i16), (1, 12), (3, 12), (19, 5), (32, 4)] {
        let mut c = Raw::connect(n.addr).await;
        let junk: Vec<u8> = (0..64u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        c.send_frame(&frame(key, version, version >= 9, &junk))
            .await
            .unwrap();
        let _ = c.read_frame().await;
    }
    still_serving(n.addr).await;
    n.node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_versions_version_is_answered_at_v0() {
    let n = start_node(&[]).await;
    let mut c = Raw::connect(n.addr).await;
    // ApiVersions v99: header v2 (flexible) as a client that knows v99 would send.
    c.send_frame(&frame(18, 99, true, &[0, 0, 0]))
        .await
        .unwrap();
    let mut resp = c.read_frame().await.expect("an answer");
    use kafka_protocol::protocol::Decodable;
    let h = kafka_protocol::messages::ResponseHeader::decode(&mut resp, 0).unwrap();
    assert_eq!(h.correlation_id, 7);
    let r = kafka_protocol::messages::ApiVersionsResponse::decode(&mut resp, 0).unwrap();
    assert_eq!(r.error_code, 35, "UNSUPPORTED_VERSION");
    assert_eq!(r.api_keys.len(), 1);
    assert_eq!(
        (
            r.api_keys[0].api_key,
            r.api_keys[0].min_version,
            r.api_keys[0].max_version
        ),
        (18, 0, 4)
    );
    n.node.shutdown().await;
}

fn batch(n: usize) -> Bytes {
    let records = (0..n)
        .map(|_| (None, Bytes::from(vec![b'x'; 10])))
        .collect();
    common::plain_batch(records, 1, Compression::None)
}

fn produce(topic: &str, partitions: Vec<(i32, Bytes)>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(
                partitions
                    .into_iter()
                    .map(|(i, r)| {
                        PartitionProduceData::default()
                            .with_index(i)
                            .with_records(Some(r))
                    })
                    .collect(),
            )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_batches_get_per_partition_errors_and_lose_nothing() {
    let n = start_node(&[("num.partitions", "3")]).await;
    let mut c = Raw::connect(n.addr).await;
    // Auto-create the topic through Metadata.
    let md = MetadataRequest::default().with_topics(Some(vec![
        kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("bad")))),
    ]));
    // The call that creates it answers LEADER_NOT_AVAILABLE (Kafka's way); the next
    // one has the leaders.
    let md = md.with_allow_auto_topic_creation(true);
    let r = c.call(&md, 12).await;
    assert_eq!(r.topics[0].error_code, E::LeaderNotAvailable.code());
    let r = c.call(&md, 12).await;
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].partitions.len(), 3);
    let good = batch(3);
    let mut bad_crc = BytesMut::from(&good[..]);
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let mut bad_magic = BytesMut::from(&good[..]);
    bad_magic[16] = 1;
    let r = c
        .call(
            &produce(
                "bad",
                vec![
                    (0, good.clone()),
                    (1, bad_crc.freeze()),
                    (2, bad_magic.freeze()),
                ],
            ),
            9,
        )
        .await;
    let codes: Vec<i16> = r.responses[0]
        .partition_responses
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(
        codes,
        vec![0, 2, 43],
        "ok, CORRUPT_MESSAGE, UNSUPPORTED_FOR_MESSAGE_FORMAT"
    );
    // A truncated batch and an unknown partition.
    let r = c
        .call(
            &produce(
                "bad",
                vec![(0, good.slice(..good.len() - 3)), (7, good.clone())],
            ),
            9,
        )
        .await;
    let codes: Vec<i16> = r.responses[0]
        .partition_responses
        .iter()
        .map(|p| p.error_code)
        .collect();
    assert_eq!(codes, vec![2, 3]);
    // The good batch is there, once.
    let r = c.call(&produce("bad", vec![(0, good.clone())]), 9).await;
    assert_eq!(r.responses[0].partition_responses[0].base_offset, 3);
    n.node.shutdown().await;
}

impl Raw {
    async fn stream_write(&mut self, b: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(b).await.unwrap();
        self.stream.flush().await.unwrap();
    }
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    fn node() -> &'static (tokio::runtime::Runtime, std::net::SocketAddr) {
        static NODE: std::sync::OnceLock<(tokio::runtime::Runtime, std::net::SocketAddr)> =
            std::sync::OnceLock::new();
        NODE.get_or_init(|| {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let n = rt.block_on(start_node(&[]));
            let addr = n.addr;
            // Keep the node (and its data dir) for the whole test binary.
            std::mem::forget(n);
            (rt, addr)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Any frame (a served or unknown API key, any version, any body) gets an answer
        /// or a closed connection, and the node keeps serving.
        #[test]
        fn random_requests_never_take_the_node_down(
            key in prop_oneof![0i16..70, any::<i16>()],
            version in -2i16..20,
            flexible in any::<bool>(),
            body in proptest::collection::vec(any::<u8>(), 0..400),
        ) {
            let (rt, addr) = node();
            rt.block_on(async {
                let mut c = Raw::connect(*addr).await;
                if c.send_frame(&frame(key, version, flexible, &body)).await.is_ok() {
                    let _ = c.read_frame().await;
                }
            });
        }
    }

    #[test]
    fn after_fuzzing_the_node_still_serves() {
        let (rt, addr) = node();
        rt.block_on(async {
            for _ in 0..20 {
                let mut c = Raw::connect(*addr).await;
                let junk: Vec<u8> = (0..100u32).map(|i| (i * 37 % 251) as u8).collect();
                let _ = c.send_frame(&frame(0, 9, true, &junk)).await;
                let _ = c.read_frame().await;
            }
            still_serving(*addr).await;
        });
    }
}
