//! Starting a real node in-process (real tokio, real files, ports picked by the OS) and
//! speaking raw Kafka frames to it.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use strom_broker::{Node, NodeConfig, NodeEnv};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct TestNode {
    pub node: Node,
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
}

pub async fn start_node(extra: &[(&str, &str)]) -> TestNode {
    let dir = tempfile::tempdir().unwrap();
    start_in(dir, extra).await
}

pub async fn start_in(dir: tempfile::TempDir, extra: &[(&str, &str)]) -> TestNode {
    let mut m: BTreeMap<String, String> = BTreeMap::new();
    m.insert("node.id".into(), "1".into());
    m.insert("listeners".into(), "PLAINTEXT://127.0.0.1:0".into());
    m.insert("internal.listener".into(), "127.0.0.1:0".into());
    m.insert("admin.listener".into(), "127.0.0.1:0".into());
    m.insert("schema.registry.listener".into(), "127.0.0.1:0".into());
    m.insert("data.dir".into(), dir.path().display().to_string());
    m.insert("broker.heartbeat.interval.ms".into(), "200".into());
    for (k, v) in extra {
        m.insert(k.to_string(), v.to_string());
    }
    let cfg = NodeConfig::resolve(m).unwrap();
    let node = strom_broker::start(cfg, NodeEnv::real()).await.unwrap();
    let addr = node.kafka_addrs[0].1;
    TestNode { node, dir, addr }
}

/// A raw Kafka connection.
pub struct Raw {
    pub stream: TcpStream,
    next_id: i32,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        Raw {
            stream: TcpStream::connect(addr).await.unwrap(),
            next_id: 1,
        }
    }

    pub async fn send_frame(&mut self, body: &[u8]) -> std::io::Result<()> {
        let mut b = BytesMut::new();
        b.put_i32(body.len() as i32);
        b.extend_from_slice(body);
        self.stream.write_all(&b).await?;
        self.stream.flush().await
    }

    /// Reads a response frame; `None` when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let mut size = [0u8; 4];
        let r = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.stream.read_exact(&mut size),
        )
        .await;
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(_)) => return None,
            Err(_) => panic!("no response and no close within 10 s"),
        }
        let n = i32::from_be_bytes(size) as usize;
        let mut body = vec![0u8; n];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(Bytes::from(body))
    }

    /// Encodes and sends a request; returns its correlation id.
    pub async fn send<R: Request>(&mut self, req: &R, version: i16) -> i32 {
        let id = self.next_id;
        self.next_id += 1;
        let key = ApiKey::try_from(R::KEY).unwrap();
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(id)
            .with_client_id(Some(StrBytes::from_static_str("strom-test")));
        let mut b = BytesMut::new();
        header
            .encode(&mut b, key.request_header_version(version))
            .unwrap();
        req.encode(&mut b, version).unwrap();
        self.send_frame(&b).await.unwrap();
        id
    }

    pub async fn call<R: Request>(&mut self, req: &R, version: i16) -> R::Response {
        let id = self.send(req, version).await;
        let mut frame = self.read_frame().await.expect("a response");
        let key = ApiKey::try_from(R::KEY).unwrap();
        let h = ResponseHeader::decode(&mut frame, key.response_header_version(version)).unwrap();
        assert_eq!(h.correlation_id, id);
        let resp = R::Response::decode(&mut frame, version).unwrap();
        assert_eq!(frame.remaining(), 0, "response fully consumed");
        resp
    }
}

/// One v2 record batch as a plain (non-idempotent) producer sends it: a record per
/// (key, value), all at `timestamp`. Sequences run with the offsets (offset minus
/// sequence constant), which keeps the encoder from splitting the records.
pub fn plain_batch(
    records: Vec<(Option<Bytes>, Bytes)>,
    timestamp: i64,
    compression: kafka_protocol::records::Compression,
) -> Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    let records: Vec<Record> = records
        .into_iter()
        .enumerate()
        .map(|(i, (key, value))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: i as i32 - 1,
            timestamp,
            key,
            value: Some(value),
            headers: Default::default(),
        })
        .collect();
    let mut b = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut b,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    b.freeze()
}
