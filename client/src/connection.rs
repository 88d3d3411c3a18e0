//! One TCP connection to one broker: Kafka framing (a 4-byte big-endian size before every
//! request and response), request and response headers, correlation ids, and the
//! ApiVersions handshake that decides which version of each API to speak.
//!
//! Requests are pipelined: callers write under a lock and then wait on their own oneshot
//! channel, while one reader task routes each response to its waiter by correlation id.
//! This module knows nothing of topics, leaders or metadata; it only uses `tokio::` APIs so
//! that it runs under madsim, and flushes after every write (madsim sends on flush).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{
    encode_request_header_into_buffer, Decodable, Encodable, HeaderVersion, Request, StrBytes,
    VersionRange,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::error::{codes, ClientError, KafkaError};

/// The ApiVersions version asked first; brokers that do not know it answer at v0.
const API_VERSIONS_VERSION: i16 = 3;

/// Settings of one connection.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The `client_id` sent in every request header.
    pub client_id: String,
    /// How long to wait for each response.
    pub request_timeout: Duration,
    /// How long to wait for the TCP connect.
    pub connect_timeout: Duration,
    /// Largest response frame accepted (a larger one closes the connection).
    pub max_response_bytes: usize,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            client_id: "strom".to_owned(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            max_response_bytes: 256 * 1024 * 1024,
        }
    }
}

/// Responses awaited on a connection, by correlation id.
#[derive(Default)]
struct Pending {
    waiters: BTreeMap<i32, oneshot::Sender<Bytes>>,
    /// Why the connection closed, once it has.
    closed: Option<String>,
}

/// The writing side, behind an async lock so that a frame is written whole.
struct Writer {
    stream: WriteHalf<TcpStream>,
    next_correlation_id: i32,
}

/// A connection to one broker, shareable between tasks (`&self` methods only).
pub struct Connection {
    addr: String,
    config: ConnectionConfig,
    writer: tokio::sync::Mutex<Writer>,
    pending: Arc<Mutex<Pending>>,
    closed: Arc<AtomicBool>,
    reader: tokio::task::JoinHandle<()>,
    api_versions: BTreeMap<i16, VersionRange>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Connection {
    /// Connects to `addr` ("host:port") and negotiates API versions.
    pub async fn connect(addr: &str, config: ConnectionConfig) -> Result<Connection, ClientError> {
        let io_err = |source| ClientError::Io {
            addr: addr.to_owned(),
            source,
        };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Timeout {
                addr: addr.to_owned(),
                after: config.connect_timeout,
            })?
            .map_err(io_err)?;
        let _ = stream.set_nodelay(true);
        let (read_half, write_half) = tokio::io::split(stream);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let closed = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn(read_loop(
            read_half,
            pending.clone(),
            closed.clone(),
            addr.to_owned(),
            config.max_response_bytes,
        ));
        let mut conn = Connection {
            addr: addr.to_owned(),
            config,
            writer: tokio::sync::Mutex::new(Writer {
                stream: write_half,
                next_correlation_id: 0,
            }),
            pending,
            closed,
            reader,
            api_versions: BTreeMap::new(),
        };
        conn.api_versions = conn.negotiate_api_versions().await?;
        Ok(conn)
    }

    /// The broker address this connection dialled.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// True once the socket failed or the broker closed it; such a connection is useless.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The version ranges the broker advertised, by API key.
    pub fn api_versions(&self) -> &BTreeMap<i16, VersionRange> {
        &self.api_versions
    }

    /// The highest version of `api_key` that both the broker and we (up to
    /// `max_supported_by_us`) support.
    pub fn pick_version(
        &self,
        api_key: ApiKey,
        max_supported_by_us: i16,
    ) -> Result<i16, ClientError> {
        self.pick_version_in(api_key, 0, max_supported_by_us)
    }

    /// The highest version of `R` that the broker supports, we support (up to `max`), and
    /// the codec can encode.
    pub fn version_for<R: Request>(&self, max: i16) -> Result<i16, ClientError> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| ClientError::Encode(format!("unknown api key {}", R::KEY)))?;
        self.pick_version_in(key, R::VERSIONS.min, max.min(R::VERSIONS.max))
    }

    fn pick_version_in(&self, api_key: ApiKey, min: i16, max: i16) -> Result<i16, ClientError> {
        match self.api_versions.get(&(api_key as i16)) {
            Some(range) if range.min <= max && range.max >= min => Ok(range.max.min(max)),
            _ => Err(ClientError::UnsupportedVersion {
                addr: self.addr.clone(),
                api: format!("{api_key:?}"),
                min,
                max,
            }),
        }
    }

    /// Sends `req` at `version` and waits for its response.
    pub async fn send<R: Request>(&self, req: R, version: i16) -> Result<R::Response, ClientError> {
        let mut body = self.round_trip(&req, version).await?;
        decode_response::<R>(&mut body, version)
    }

    /// Sends `req` without waiting for an answer (Produce with acks=0, which gets none).
    pub async fn send_no_response<R: Request>(
        &self,
        req: R,
        version: i16,
    ) -> Result<(), ClientError> {
        self.write_request(&req, version, None).await.map(|_| ())
    }

    /// Writes the request and returns the response frame after the size (header included).
    async fn round_trip<R: Request>(&self, req: &R, version: i16) -> Result<Bytes, ClientError> {
        let (tx, rx) = oneshot::channel();
        let correlation_id = self.write_request(req, version, Some(tx)).await?;
        match tokio::time::timeout(self.config.request_timeout, rx).await {
            Ok(Ok(frame)) => Ok(frame),
            Ok(Err(_)) => Err(ClientError::ConnectionClosed(self.addr.clone())),
            Err(_) => {
                lock(&self.pending).waiters.remove(&correlation_id);
                Err(ClientError::Timeout {
                    addr: self.addr.clone(),
                    after: self.config.request_timeout,
                })
            }
        }
    }

    /// Encodes and writes one request frame; registers `waiter` before the write so the
    /// response cannot overtake the registration. Returns the correlation id used.
    async fn write_request<R: Request>(
        &self,
        req: &R,
        version: i16,
        waiter: Option<oneshot::Sender<Bytes>>,
    ) -> Result<i32, ClientError> {
        let body = encode_body(req, version)?;
        let mut writer = self.writer.lock().await;
        if self.is_closed() {
            return Err(ClientError::ConnectionClosed(self.addr.clone()));
        }
        let correlation_id = writer.next_correlation_id;
        writer.next_correlation_id = correlation_id.wrapping_add(1);
        let head = encode_head::<R>(version, correlation_id, &self.config.client_id, body.len())?;
        if let Some(waiter) = waiter {
            let mut pending = lock(&self.pending);
            if pending.closed.is_some() {
                return Err(ClientError::ConnectionClosed(self.addr.clone()));
            }
            pending.waiters.insert(correlation_id, waiter);
        }
        // If this future is dropped mid-frame the stream is out of step: mark it closed.
        let mut guard = ClosedUnlessDone {
            closed: &self.closed,
            done: false,
        };
        let result = async {
            writer.stream.write_all(&head).await?;
            writer.stream.write_all(&body).await?;
            writer.stream.flush().await
        }
        .await;
        guard.done = true;
        if let Err(source) = result {
            self.closed.store(true, Ordering::Release);
            lock(&self.pending).waiters.remove(&correlation_id);
            return Err(ClientError::Io {
                addr: self.addr.clone(),
                source,
            });
        }
        Ok(correlation_id)
    }

    /// ApiVersions at v3; if the broker does not know v3 it answers at v0 with
    /// UNSUPPORTED_VERSION (KIP-511) and its own range, and we ask again within it.
    async fn negotiate_api_versions(&self) -> Result<BTreeMap<i16, VersionRange>, ClientError> {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("strom"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut frame = self.round_trip(&req, API_VERSIONS_VERSION).await?;
        let mut resp = decode_api_versions(&mut frame, API_VERSIONS_VERSION)?;
        if resp.error_code == codes::UNSUPPORTED_VERSION {
            let retry = resp
                .api_keys
                .iter()
                .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                .map_or(0, |k| k.max_version.clamp(0, API_VERSIONS_VERSION));
            let req = if retry >= 3 {
                req
            } else {
                ApiVersionsRequest::default()
            };
            let mut frame = self.round_trip(&req, retry).await?;
            resp = decode_api_versions(&mut frame, retry)?;
        }
        if let Some(e) = KafkaError::from_code(resp.error_code, None) {
            return Err(e.into());
        }
        Ok(resp
            .api_keys
            .iter()
            .map(|k| {
                let range = VersionRange {
                    min: k.min_version,
                    max: k.max_version,
                };
                (k.api_key, range)
            })
            .collect())
    }
}

/// Decodes an ApiVersions response frame: at `version`, unless the error code says the
/// broker fell back to v0.
fn decode_api_versions(
    frame: &mut Bytes,
    version: i16,
) -> Result<ApiVersionsResponse, ClientError> {
    // ApiVersions responses always carry header v0: the correlation id only.
    if frame.len() >= 6 && i16::from_be_bytes([frame[4], frame[5]]) == codes::UNSUPPORTED_VERSION {
        return decode_response::<ApiVersionsRequest>(frame, 0);
    }
    decode_response::<ApiVersionsRequest>(frame, version)
}

/// Decodes the response header and body of a frame (the bytes after the size).
fn decode_response<R: Request>(
    frame: &mut Bytes,
    version: i16,
) -> Result<R::Response, ClientError> {
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    ResponseHeader::decode(frame, header_version).map_err(decode_err)?;
    <R::Response as Decodable>::decode(frame, version).map_err(decode_err)
}

fn decode_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Decode(e.to_string())
}

fn encode_body<R: Encodable>(req: &R, version: i16) -> Result<BytesMut, ClientError> {
    let mut body = BytesMut::new();
    req.encode(&mut body, version)
        .map_err(|e| ClientError::Encode(e.to_string()))?;
    Ok(body)
}

/// The size prefix and request header of a frame whose body is `body_len` bytes.
fn encode_head<R: Request>(
    version: i16,
    correlation_id: i32,
    client_id: &str,
    body_len: usize,
) -> Result<BytesMut, ClientError> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_string(client_id.to_owned())));
    let mut head = BytesMut::with_capacity(64);
    head.put_i32(0);
    encode_request_header_into_buffer(&mut head, &header)
        .map_err(|e| ClientError::Encode(e.to_string()))?;
    let size = head.len() - 4 + body_len;
    let size = i32::try_from(size).map_err(|_| ClientError::Encode("request too large".into()))?;
    head[..4].copy_from_slice(&size.to_be_bytes());
    Ok(head)
}

/// A whole request frame (size, header, body), as written to the socket.
pub fn encode_request_frame<R: Request>(
    req: &R,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) -> Result<Bytes, ClientError> {
    let body = encode_body(req, version)?;
    let mut frame = encode_head::<R>(version, correlation_id, client_id, body.len())?;
    frame.extend_from_slice(&body);
    Ok(frame.freeze())
}

/// Reads response frames and hands each to the waiter registered under its correlation id.
/// On any read error it marks the connection closed and drops every waiter.
async fn read_loop(
    mut stream: ReadHalf<TcpStream>,
    pending: Arc<Mutex<Pending>>,
    closed: Arc<AtomicBool>,
    addr: String,
    max_response_bytes: usize,
) {
    let reason = loop {
        let mut size = [0u8; 4];
        if let Err(e) = stream.read_exact(&mut size).await {
            break e.to_string();
        }
        let size = i32::from_be_bytes(size);
        if size < 4 || size as usize > max_response_bytes {
            break format!("bad response frame size {size}");
        }
        let mut frame = vec![0u8; size as usize];
        if let Err(e) = stream.read_exact(&mut frame).await {
            break e.to_string();
        }
        let frame = Bytes::from(frame);
        let correlation_id = (&frame[..4]).get_i32();
        match lock(&pending).waiters.remove(&correlation_id) {
            Some(waiter) => {
                let _ = waiter.send(frame);
            }
            None => tracing::debug!(%addr, correlation_id, "response nobody waits for"),
        }
    };
    tracing::debug!(%addr, %reason, "connection closed");
    closed.store(true, Ordering::Release);
    let mut pending = lock(&pending);
    pending.closed = Some(reason);
    pending.waiters.clear();
}

/// Marks a connection closed when dropped before `done` (a write cut off mid-frame).
struct ClosedUnlessDone<'a> {
    closed: &'a AtomicBool,
    done: bool,
}

impl Drop for ClosedUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.closed.store(true, Ordering::Release);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;
    use kafka_protocol::protocol::decode_request_header_from_buffer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn frame_round_trip() {
        let req = MetadataRequest::default().with_topics(None);
        let frame = encode_request_frame(&req, 12, 7, "me").unwrap();
        let mut buf = frame.clone();
        let size = buf.get_i32();
        assert_eq!(size as usize, frame.len() - 4);
        let header = decode_request_header_from_buffer(&mut buf).unwrap();
        assert_eq!(header.request_api_key, ApiKey::Metadata as i16);
        assert_eq!(header.request_api_version, 12);
        assert_eq!(header.correlation_id, 7);
        assert_eq!(header.client_id.as_deref(), Some("me"));
        assert_eq!(MetadataRequest::decode(&mut buf, 12).unwrap(), req);
        assert!(!buf.has_remaining());
    }

    #[test]
    fn field_absent_at_version_is_an_encode_error() {
        let req = MetadataRequest::default().with_allow_auto_topic_creation(false);
        assert!(matches!(
            encode_request_frame(&req, 3, 0, "me"),
            Err(ClientError::Encode(_))
        ));
    }

    #[test]
    fn api_versions_v0_fallback_decodes() {
        // A v0 ApiVersions answer with UNSUPPORTED_VERSION and one key (18: 0..=2).
        let mut frame = BytesMut::new();
        frame.put_i32(1); // correlation id
        frame.put_i16(codes::UNSUPPORTED_VERSION);
        frame.put_i32(1);
        frame.put_i16(18);
        frame.put_i16(0);
        frame.put_i16(2);
        let resp = decode_api_versions(&mut frame.freeze(), 3).unwrap();
        assert_eq!(resp.error_code, codes::UNSUPPORTED_VERSION);
        assert_eq!(resp.api_keys[0].max_version, 2);
    }

    /// Reads one request frame off a fake broker's socket: (api key, version, correlation id).
    async fn read_request(stream: &mut TcpStream) -> (i16, i16, i32) {
        let size = stream.read_i32().await.unwrap();
        let mut frame = vec![0u8; size as usize];
        stream.read_exact(&mut frame).await.unwrap();
        let header = decode_request_header_from_buffer(&mut Bytes::from(frame)).unwrap();
        (
            header.request_api_key,
            header.request_api_version,
            header.correlation_id,
        )
    }

    async fn write_response<M: Encodable>(
        stream: &mut TcpStream,
        correlation_id: i32,
        header_version: i16,
        body: &M,
        version: i16,
    ) {
        let mut buf = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut buf, header_version)
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        stream.write_i32(buf.len() as i32).await.unwrap();
        stream.write_all(&buf).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// A broker that knows ApiVersions only up to v2 answers v3 at v0 (KIP-511); the
    /// client retries within the advertised range, then pipelines two requests whose
    /// answers come back in reverse order.
    #[tokio::test]
    async fn api_versions_fallback_and_out_of_order_responses() {
        use kafka_protocol::messages::api_versions_response::ApiVersion;
        use kafka_protocol::messages::MetadataResponse;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let broker = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let keys = vec![
                ApiVersion::default()
                    .with_api_key(18)
                    .with_min_version(0)
                    .with_max_version(2),
                ApiVersion::default()
                    .with_api_key(3)
                    .with_min_version(0)
                    .with_max_version(9),
            ];
            let (key, version, cid) = read_request(&mut s).await;
            assert_eq!((key, version), (18, 3));
            let refuse = ApiVersionsResponse::default()
                .with_error_code(codes::UNSUPPORTED_VERSION)
                .with_api_keys(keys.clone());
            write_response(&mut s, cid, 0, &refuse, 0).await;
            let (key, version, cid) = read_request(&mut s).await;
            assert_eq!((key, version), (18, 2));
            write_response(
                &mut s,
                cid,
                0,
                &ApiVersionsResponse::default().with_api_keys(keys),
                2,
            )
            .await;
            let first = read_request(&mut s).await;
            let second = read_request(&mut s).await;
            for (_, version, cid) in [second, first] {
                let resp = MetadataResponse::default().with_controller_id(cid.into());
                write_response(&mut s, cid, 1, &resp, version).await;
            }
        });
        let conn = Connection::connect(&addr, ConnectionConfig::default())
            .await
            .unwrap();
        assert_eq!(conn.pick_version(ApiKey::Metadata, 12).unwrap(), 9);
        assert!(conn.pick_version(ApiKey::Produce, 9).is_err());
        let req = MetadataRequest::default().with_topics(None);
        let (a, b) = tokio::join!(conn.send(req.clone(), 9), conn.send(req, 9));
        // Each caller gets the answer to its own correlation id (echoed as controller id).
        let (a, b) = (a.unwrap().controller_id.0, b.unwrap().controller_id.0);
        assert_eq!((a, b), (2, 3));
        broker.await.unwrap();
    }
}
