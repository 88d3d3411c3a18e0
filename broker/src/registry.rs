//! The Schema Registry listener (`schema.registry.listener`, HTTP): Confluent Schema
//! Registry's REST API on every node, over the `_schemas` topic.
//!
//! * Every node follows `_schemas` (one partition, compacted, replicated like any topic)
//!   with a consumer of its own Kafka listener and applies the records to its
//!   [`Store`]; reads are answered from that store.
//! * One node writes: the leader of `_schemas` partition 0, as Confluent's registry has
//!   one leader. It takes one change at a time, first reading the partition to its log
//!   end (a new leader's log holds everything committed), so ids (the highest seen + 1)
//!   and versions are decided on the whole history; appends with acks=all; and answers
//!   once its own store has applied the records. A leader that lost its leadership
//!   meanwhile fails the append (NOT_LEADER) and nothing is stored.
//! * The other nodes forward a request that changes something to the leader's registry
//!   listener (registered with the node's Kafka endpoints under [`ENDPOINT`]), and answer
//!   once their own store has caught up with the leader's reply, so a client reads its
//!   own writes from any node.
//!
//! `_schemas` is created by the first write, with replication factor min(3, brokers)
//! and `cleanup.policy=compact`, as Confluent's registry creates it. Not built in the
//! simulation, which has no real sockets for hyper.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{to_bytes, Body as AxumBody};
use axum::extract::{Request as AxumRequest, State};
use axum::http::{header, HeaderValue, Method as HttpMethod, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use strom_client::admin::NewTopic;
use strom_client::consumer::{Consumer, ConsumerConfig, StartOffset};
use strom_client::{Admin, Client, ClientConfig};
use strom_registry::api::{self, Action, Body, Method, Reply};
use strom_registry::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::broker::Broker;

/// The registry's topic (Confluent's `kafkastore.topic` default).
pub const TOPIC: &str = "_schemas";
/// The name of the registry's address among a broker's registered endpoints.
pub const ENDPOINT: &str = "SCHEMA_REGISTRY";
/// Confluent's content type.
const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";
/// Marks a request one node forwarded to the writer (it is not forwarded again).
const FORWARDED: &str = "x-strom-forwarded";
/// The `_schemas` offset a write's reply is as of (a forwarding node waits for it).
const OFFSET: &str = "x-strom-registry-offset";
/// The most body read; a schema over `max_schema_bytes` is refused (42209) anyway.
const MAX_BODY: usize = 16 << 20;
const TOPIC_ALREADY_EXISTS: i16 = 36;
/// How long a write waits for the store to catch up before 50002.
const CATCH_UP: Duration = Duration::from_secs(15);

pub struct Registry {
    node_id: i32,
    cfg: api::Config,
    store: parking_lot::RwLock<Store>,
    /// The next `_schemas` offset the store will apply.
    position: watch::Sender<i64>,
    write_lock: tokio::sync::Mutex<()>,
    broker: Arc<Broker>,
    client_cfg: ClientConfig,
    client: tokio::sync::OnceCell<Client>,
}

impl Registry {
    /// A registry of `broker`, whose own Kafka listener is `bootstrap`.
    pub fn new(broker: Arc<Broker>, bootstrap: String, cfg: api::Config) -> Arc<Registry> {
        let mut client_cfg = ClientConfig::new([bootstrap])
            .client_id(format!("strom-registry-{}", broker.node_id))
            .request_timeout(Duration::from_secs(10));
        client_cfg.allow_auto_topic_creation = false;
        let (position, _) = watch::channel(0);
        Arc::new(Registry {
            node_id: broker.node_id,
            cfg,
            store: parking_lot::RwLock::new(Store::new()),
            position,
            write_lock: tokio::sync::Mutex::new(()),
            broker,
            client_cfg,
            client: tokio::sync::OnceCell::new(),
        })
    }

    async fn client(&self) -> Result<&Client, String> {
        self.client
            .get_or_try_init(|| Client::connect(self.client_cfg.clone()))
            .await
            .map_err(|e| e.to_string())
    }

    fn topic_exists(&self) -> bool {
        self.broker.cache.image().topic_by_name(TOPIC).is_some()
    }

    /// Follows `_schemas` into the store, for as long as the node runs.
    pub async fn follow(self: Arc<Self>) {
        loop {
            if !self.topic_exists() {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            let client = match self.client().await {
                Ok(c) => c.clone(),
                Err(e) => {
                    tracing::debug!(error = %e, "schema registry: no client yet");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let mut consumer = Consumer::new(client, ConsumerConfig::default());
            let from = *self.position.borrow();
            if let Err(e) = consumer.assign(TOPIC, 0, StartOffset::Offset(from)).await {
                tracing::debug!(error = %e, "schema registry: cannot read {TOPIC} yet");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            loop {
                match consumer.poll(Duration::from_millis(500)).await {
                    Ok(records) => {
                        if !records.is_empty() {
                            let mut st = self.store.write();
                            for r in &records {
                                let Some(key) = &r.key else { continue };
                                if let Err(e) = st.apply(key, r.value.as_deref()) {
                                    tracing::warn!(offset = r.offset, error = %e, "schema registry: skipped a {TOPIC} record");
                                }
                            }
                        }
                        let next = consumer
                            .assignments()
                            .get(&(TOPIC.to_string(), 0))
                            .map(|p| p.position);
                        if let Some(next) = next {
                            self.position.send_if_modified(|p| {
                                let moved = next > *p;
                                *p = (*p).max(next);
                                moved
                            });
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "schema registry: reading {TOPIC}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        break;
                    }
                }
            }
        }
    }

    /// Waits until the store has applied everything before `offset`.
    async fn caught_up(&self, offset: i64, timeout: Duration) -> bool {
        let mut rx = self.position.subscribe();
        let ok = matches!(
            tokio::time::timeout(timeout, rx.wait_for(|p| *p >= offset)).await,
            Ok(Ok(_))
        );
        ok
    }

    /// Creates `_schemas` if it does not exist, and waits for its leader.
    async fn ensure_topic(&self) -> Result<(), Reply> {
        if !self.topic_exists() {
            let brokers = self.broker.cache.image().unfenced_brokers().len().max(1);
            let rf = brokers.min(3) as i16;
            let client = self.client().await.map_err(store_error)?;
            let t = NewTopic::new(TOPIC, 1, rf).config("cleanup.policy", "compact");
            match Admin::new(client.clone())
                .create_topics(vec![t], false)
                .await
            {
                Ok(res) => {
                    for r in res {
                        match r.error {
                            None => {}
                            // Another node made it meanwhile.
                            Some(e) if e.code == TOPIC_ALREADY_EXISTS => {}
                            Some(e) => {
                                return Err(store_error(format!("creating {}: {e:?}", r.name)))
                            }
                        }
                    }
                }
                Err(e) => return Err(store_error(format!("creating {TOPIC}: {e}"))),
            }
        }
        let led = self
            .broker
            .cache
            .wait_until(Duration::from_secs(15), |img| {
                img.topic_by_name(TOPIC)
                    .and_then(|t| t.partitions.get(&0))
                    .is_some_and(|p| p.leader >= 0)
            })
            .await;
        if !led {
            return Err(Reply::error(500, 50004, "Leader not known."));
        }
        Ok(())
    }

    /// The leader of `_schemas` partition 0 (-1: none).
    fn leader(&self) -> i32 {
        self.broker
            .cache
            .image()
            .topic_by_name(TOPIC)
            .and_then(|t| t.partitions.get(&0))
            .map_or(-1, |p| p.leader)
    }

    /// A change, made here as the writer: (reply, the offset it is as of).
    async fn write_here(&self, req: &api::Request<'_>) -> (Reply, Option<i64>) {
        let Some(part) = self.broker.replicas.get(TOPIC, 0).filter(|p| p.is_leader()) else {
            return (Reply::error(500, 50004, "Leader not known."), None);
        };
        let _one_at_a_time = self.write_lock.lock().await;
        // Everything in the log (a new leader's log end holds every committed record).
        let end = part.log.offsets().log_end;
        if !self.caught_up(end, CATCH_UP).await {
            return (timed_out(), None);
        }
        let action = api::handle(&self.store.read(), &self.cfg, req);
        let (records, reply) = match action {
            Action::Reply(r) => return (r, Some(*self.position.borrow())),
            Action::Write { records, reply } => (records, reply),
        };
        let now = strom_common::clock::now_ms();
        let batch = crate::coordinator::encode_batch(
            records
                .into_iter()
                .map(|(k, v)| (Bytes::from(k), v.map(Bytes::from)))
                .collect(),
            now,
        );
        if let Err((code, msg)) = part
            .append_and_wait(
                &batch,
                Duration::from_secs(30),
                now,
                crate::log::TxnCheck::Trusted,
            )
            .await
        {
            tracing::warn!(code, %msg, "schema registry: a write to {TOPIC} failed");
            return (
                store_error(format!(
                    "Error while registering schema: {msg} (Kafka error {code})"
                )),
                None,
            );
        }
        let end = part.log.offsets().log_end;
        if !self.caught_up(end, CATCH_UP).await {
            return (timed_out(), None);
        }
        (reply, Some(end))
    }

    /// A change asked of this node: made here when it leads `_schemas`, else forwarded.
    async fn write(&self, req: &api::Request<'_>, forwarded: bool) -> (Reply, Option<i64>) {
        if let Err(r) = self.ensure_topic().await {
            return (r, None);
        }
        let leader = self.leader();
        if leader == self.node_id {
            return self.write_here(req).await;
        }
        if forwarded || leader < 0 {
            return (Reply::error(500, 50004, "Leader not known."), None);
        }
        let addr = self
            .broker
            .cache
            .image()
            .brokers
            .get(&leader)
            .and_then(|b| b.endpoints.iter().find(|e| e.listener == ENDPOINT))
            .map(|e| format!("{}:{}", e.host, e.port));
        let Some(addr) = addr else {
            return (
                Reply::error(500, 50003, format!("Error while forwarding the request to the leader: node {leader} serves no schema registry")),
                None,
            );
        };
        match forward(&addr, req).await {
            Ok((reply, offset)) => {
                // Read-your-writes here too.
                if let Some(o) = offset {
                    self.caught_up(o, CATCH_UP).await;
                }
                (reply, offset)
            }
            Err(e) => (
                Reply::error(
                    500,
                    50003,
                    format!("Error while forwarding the request to the leader {addr}: {e}"),
                ),
                None,
            ),
        }
    }
}

fn store_error(msg: impl std::fmt::Display) -> Reply {
    Reply::error(500, 50001, msg.to_string())
}

fn timed_out() -> Reply {
    Reply::error(500, 50002, "Operation timed out")
}

fn method(m: &HttpMethod) -> Method {
    match *m {
        HttpMethod::GET => Method::Get,
        HttpMethod::POST => Method::Post,
        HttpMethod::PUT => Method::Put,
        HttpMethod::DELETE => Method::Delete,
        _ => Method::Other,
    }
}

fn http_method(m: Method) -> HttpMethod {
    match m {
        Method::Get => HttpMethod::GET,
        Method::Post => HttpMethod::POST,
        Method::Put => HttpMethod::PUT,
        Method::Delete => HttpMethod::DELETE,
        Method::Other => HttpMethod::OPTIONS,
    }
}

/// Sends a request on to the writer's registry listener: its reply and offset.
async fn forward(addr: &str, req: &api::Request<'_>) -> Result<(Reply, Option<i64>), String> {
    let run = async {
        let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let uri = if req.query.is_empty() {
            req.path.to_string()
        } else {
            format!("{}?{}", req.path, req.query)
        };
        let r = axum::http::Request::builder()
            .method(http_method(req.method))
            .uri(uri)
            .header(header::HOST, addr)
            .header(header::CONTENT_TYPE, CONTENT_TYPE)
            .header(FORWARDED, "1")
            .body(http_body_util::Full::new(Bytes::copy_from_slice(req.body)))
            .map_err(|e| e.to_string())?;
        let resp = sender.send_request(r).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let offset = resp
            .headers()
            .get(OFFSET)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let body = match serde_json::from_slice(&body) {
            Ok(v) => Body::Json(v),
            Err(_) => Body::Text(String::from_utf8_lossy(&body).into_owned()),
        };
        Ok::<_, String>((Reply { status, body }, offset))
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .map_err(|_| "timed out".to_string())?
}

/// Binds `addr` (fails the node's start when it cannot, as a Kafka listener does).
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

pub fn local_addr(l: &TcpListener) -> Option<SocketAddr> {
    l.local_addr().ok()
}

/// Serves until the task is dropped.
pub async fn serve(listener: TcpListener, registry: Arc<Registry>) {
    let app = Router::new().fallback(handle).with_state(registry);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "schema registry listener failed");
    }
}

async fn handle(State(r): State<Arc<Registry>>, req: AxumRequest) -> Response {
    let (parts, body) = req.into_parts();
    let forwarded = parts.headers.contains_key(FORWARDED);
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return respond(
                Reply::error(
                    422,
                    42209,
                    "Register operation failed because schema is too large",
                ),
                None,
            )
        }
    };
    let req = api::Request {
        method: method(&parts.method),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        body: &bytes,
    };
    let action = api::handle(&r.store.read(), &r.cfg, &req);
    match action {
        Action::Reply(reply) => respond(reply, None),
        Action::Write { .. } => {
            let (reply, offset) = r.write(&req, forwarded).await;
            if reply.status >= 500 {
                tracing::info!(node = r.node_id, path = req.path, status = reply.status, body = ?reply.body, "schema registry: a change failed");
            }
            respond(reply, offset)
        }
    }
}

fn respond(reply: Reply, offset: Option<i64>) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match reply.body {
        Body::Json(v) => AxumBody::from(v.to_string()),
        Body::Text(t) => AxumBody::from(t),
    };
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Some(o) = offset {
        if let Ok(v) = HeaderValue::from_str(&o.to_string()) {
            resp.headers_mut().insert(OFFSET, v);
        }
    }
    resp
}
