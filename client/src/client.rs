//! The cluster view shared by admin, producer and consumer: bootstrap servers, the metadata
//! cache (brokers, topics, partitions, leaders, topic ids) and a pool of connections keyed
//! by broker address.
//!
//! It finds leaders and hands out connections; it does not build produce or fetch requests.
//! A `Client` is cheap to clone (all clones share one cache and one pool).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::connection::{Connection, ConnectionConfig};
use crate::error::{codes, is_stale_metadata, ClientError, KafkaError};

/// Highest Metadata version this client speaks (v13 only adds a top-level error code).
const METADATA_MAX_VERSION: i16 = 12;

/// Settings shared by everything built on one [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// "host:port" addresses tried, in order, until one answers.
    pub bootstrap_servers: Vec<String>,
    /// Per-connection settings (client id, timeouts).
    pub connection: ConnectionConfig,
    /// Whether producer and consumer metadata lookups may auto-create topics (when the
    /// broker allows it), as Kafka's clients do. Admin lookups never do.
    pub allow_auto_topic_creation: bool,
    /// Pause before the one retry after stale metadata.
    pub retry_backoff: Duration,
}

impl ClientConfig {
    /// Defaults with the given bootstrap servers.
    pub fn new<S: Into<String>>(bootstrap_servers: impl IntoIterator<Item = S>) -> Self {
        ClientConfig {
            bootstrap_servers: bootstrap_servers.into_iter().map(Into::into).collect(),
            connection: ConnectionConfig::default(),
            allow_auto_topic_creation: true,
            retry_backoff: Duration::from_millis(100),
        }
    }

    /// Sets the client id sent with every request.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.connection.client_id = id.into();
        self
    }

    /// Sets the timeout of every request.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.connection.request_timeout = timeout;
        self
    }
}

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerInfo {
    /// The broker's node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<String>,
}

impl BrokerInfo {
    /// "host:port".
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// One partition as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Leader broker id, -1 if none.
    pub leader: i32,
    /// Leader epoch, -1 if unknown.
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replicas: Vec<i32>,
    /// In-sync replica broker ids.
    pub isr: Vec<i32>,
    /// Offline replica broker ids.
    pub offline_replicas: Vec<i32>,
    /// Partition-level error (LEADER_NOT_AVAILABLE …).
    pub error: Option<KafkaError>,
}

/// One topic as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Topic name.
    pub name: String,
    /// Topic id (nil when the broker speaks Metadata below v10).
    pub topic_id: Uuid,
    /// Whether it is an internal topic.
    pub is_internal: bool,
    /// Partitions, sorted by index.
    pub partitions: Vec<PartitionMetadata>,
    /// Topic-level error (UNKNOWN_TOPIC_OR_PARTITION …).
    pub error: Option<KafkaError>,
}

/// The cached cluster view.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Cluster id, if the broker reports one.
    pub cluster_id: Option<String>,
    /// The broker clients should treat as controller (-1 if unknown).
    pub controller_id: i32,
    /// Brokers by node id.
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMetadata>,
}

struct Inner {
    config: ClientConfig,
    metadata: Mutex<ClusterMetadata>,
    /// The newest leader epoch seen per partition (with its topic id): metadata naming
    /// an older epoch comes from a broker that has not caught up and is not used
    /// (KIP-320), so a former leader cannot be mistaken for the current one.
    epochs: Mutex<BTreeMap<(String, i32), (Uuid, i32)>>,
    /// By address; a BTreeMap so that "any connection" is chosen deterministically.
    pool: tokio::sync::Mutex<BTreeMap<String, Arc<Connection>>>,
}

/// A handle on the cluster: metadata cache and connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bootstrap_servers", &self.inner.config.bootstrap_servers)
            .finish()
    }
}

impl Client {
    /// Creates a client and loads the broker list from a bootstrap server.
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        if config.bootstrap_servers.is_empty() {
            return Err(ClientError::InvalidArgument("no bootstrap servers".into()));
        }
        let client = Client {
            inner: Arc::new(Inner {
                config,
                metadata: Mutex::new(ClusterMetadata {
                    controller_id: -1,
                    ..Default::default()
                }),
                epochs: Mutex::new(BTreeMap::new()),
                pool: tokio::sync::Mutex::new(BTreeMap::new()),
            }),
        };
        client.refresh_metadata(Some(&[])).await?;
        Ok(client)
    }

    /// The configuration this client was made with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A copy of the cached cluster view.
    pub fn metadata(&self) -> ClusterMetadata {
        lock(&self.inner.metadata).clone()
    }

    /// The cached metadata of one topic.
    pub fn cached_topic(&self, topic: &str) -> Option<TopicMetadata> {
        lock(&self.inner.metadata).topics.get(topic).cloned()
    }

    /// Forgets a topic's cached metadata, so the next lookup asks a broker.
    pub fn invalidate_topic(&self, topic: &str) {
        lock(&self.inner.metadata).topics.remove(topic);
    }

    /// Asks a broker for metadata of `topics` (`None`: all topics; empty: brokers only)
    /// and updates the cache. Never auto-creates topics.
    pub async fn refresh_metadata(&self, topics: Option<&[String]>) -> Result<(), ClientError> {
        self.fetch_metadata(topics, false).await.map(|_| ())
    }

    /// Asks a broker for metadata, updates the cache and returns the answer.
    pub(crate) async fn fetch_metadata(
        &self,
        topics: Option<&[String]>,
        allow_auto_create: bool,
    ) -> Result<ClusterMetadata, ClientError> {
        let conn = self.any_connection().await?;
        let version = conn.version_for::<MetadataRequest>(METADATA_MAX_VERSION)?;
        let topics_req = topics.map(|names| {
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                })
                .collect()
        });
        let mut req = MetadataRequest::default().with_topics(topics_req);
        if version >= 4 {
            req = req.with_allow_auto_topic_creation(allow_auto_create);
        }
        let resp = match conn.send(req.clone(), version).await {
            Ok(resp) => resp,
            Err(e) => {
                // The connection may have gone stale: retry once on a fresh one.
                tracing::debug!(addr = conn.addr(), error = %e, "metadata request failed");
                self.drop_connection(conn.addr()).await;
                let conn = self.any_connection().await?;
                conn.send(req, version).await?
            }
        };
        let answer = convert_metadata(resp);
        let mut cache = lock(&self.inner.metadata);
        cache.cluster_id = answer.cluster_id.clone();
        cache.controller_id = answer.controller_id;
        cache.brokers = answer.brokers.clone();
        if topics.is_none() {
            cache.topics.clear();
        }
        let mut epochs = lock(&self.inner.epochs);
        for (name, topic) in &answer.topics {
            // Only usable answers are cached; errors are asked again next time.
            if topic.error.is_none() {
                let mut topic = topic.clone();
                for p in &mut topic.partitions {
                    let key = (name.clone(), p.partition);
                    match epochs.get(&key) {
                        Some(&(id, seen)) if id == topic.topic_id && p.leader_epoch < seen => {
                            // Stale: leave the leader unknown so the caller asks again.
                            p.leader = -1;
                        }
                        _ => {
                            if p.leader_epoch >= 0 {
                                epochs.insert(key, (topic.topic_id, p.leader_epoch));
                            }
                        }
                    }
                }
                cache.topics.insert(name.clone(), topic);
            } else {
                cache.topics.remove(name);
            }
        }
        Ok(answer)
    }

    /// A topic's metadata: from the cache, or asked for (with one retry after a pause if
    /// the broker answers with a stale-metadata error such as LEADER_NOT_AVAILABLE).
    pub async fn topic_metadata(&self, topic: &str) -> Result<TopicMetadata, ClientError> {
        if let Some(t) = self.cached_topic(topic) {
            return Ok(t);
        }
        let names = [topic.to_owned()];
        let auto = self.inner.config.allow_auto_topic_creation;
        let mut last = None;
        for attempt in 0..2 {
            if attempt > 0 {
                tokio::time::sleep(self.inner.config.retry_backoff).await;
            }
            let answer = self.fetch_metadata(Some(&names), auto).await?;
            match answer.topics.get(topic) {
                Some(t) if t.error.is_none() => return Ok(t.clone()),
                Some(t) => last = t.error.clone(),
                None => last = Some(KafkaError::new(codes::UNKNOWN_TOPIC_OR_PARTITION)),
            }
            if !last.as_ref().is_some_and(|e| is_stale_metadata(e.code)) {
                break;
            }
        }
        Err(last
            .unwrap_or_else(|| KafkaError::new(codes::UNKNOWN_TOPIC_OR_PARTITION))
            .into())
    }

    /// The leader of a partition, refreshing metadata once if the cache has none.
    pub async fn leader_for(&self, topic: &str, partition: i32) -> Result<i32, ClientError> {
        self.leader_and_epoch_for(topic, partition)
            .await
            .map(|(leader, _)| leader)
    }

    /// The leader of a partition and its leader epoch (-1 unknown), refreshing metadata
    /// once if the cache has none. Fetch and ListOffsets send the epoch (KIP-320) so that
    /// a former leader that has not heard of the new one yet cannot answer.
    pub async fn leader_and_epoch_for(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i32, i32), ClientError> {
        // The cached answer, looked up in place: cloning a topic of thousands of
        // partitions for each of them made per-partition loops quadratic.
        let cached = lock(&self.inner.metadata).topics.get(topic).and_then(|t| {
            let ps = &t.partitions;
            let i = ps.binary_search_by_key(&partition, |p| p.partition).ok()?;
            (ps[i].leader >= 0).then_some((ps[i].leader, ps[i].leader_epoch))
        });
        if let Some(found) = cached {
            return Ok(found);
        }
        for attempt in 0..2 {
            if attempt > 0 {
                self.invalidate_topic(topic);
                tokio::time::sleep(self.inner.config.retry_backoff).await;
            }
            let meta = self.topic_metadata(topic).await?;
            let Some(p) = meta.partitions.iter().find(|p| p.partition == partition) else {
                if attempt == 0 {
                    continue;
                }
                return Err(ClientError::InvalidArgument(format!(
                    "{topic} has no partition {partition}"
                )));
            };
            if p.leader >= 0 {
                return Ok((p.leader, p.leader_epoch));
            }
        }
        Err(KafkaError::new(codes::LEADER_NOT_AVAILABLE).into())
    }

    /// A connection to a broker by node id.
    pub async fn broker_connection(&self, broker_id: i32) -> Result<Arc<Connection>, ClientError> {
        let known = lock(&self.inner.metadata)
            .brokers
            .get(&broker_id)
            .map(BrokerInfo::addr);
        let addr = match known {
            Some(addr) => addr,
            None => {
                self.refresh_metadata(Some(&[])).await?;
                lock(&self.inner.metadata)
                    .brokers
                    .get(&broker_id)
                    .map(BrokerInfo::addr)
                    .ok_or_else(|| {
                        ClientError::NoBrokerAvailable(format!("broker {broker_id} unknown"))
                    })?
            }
        };
        self.connection_to(&addr).await
    }

    /// A connection to the leader of a partition, with the leader's id.
    pub async fn leader_connection(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i32, Arc<Connection>), ClientError> {
        let leader = self.leader_for(topic, partition).await?;
        Ok((leader, self.broker_connection(leader).await?))
    }

    /// A connection to the controller Metadata names, or any broker.
    pub async fn controller_connection(&self) -> Result<Arc<Connection>, ClientError> {
        let controller = lock(&self.inner.metadata).controller_id;
        if controller >= 0 {
            if let Ok(conn) = self.broker_connection(controller).await {
                return Ok(conn);
            }
        }
        self.any_connection().await
    }

    /// Any live connection: a pooled one, else a known broker, else a bootstrap server.
    pub async fn any_connection(&self) -> Result<Arc<Connection>, ClientError> {
        {
            let pool = self.inner.pool.lock().await;
            if let Some(conn) = pool.values().find(|c| !c.is_closed()) {
                return Ok(conn.clone());
            }
        }
        let mut candidates: Vec<String> = lock(&self.inner.metadata)
            .brokers
            .values()
            .map(BrokerInfo::addr)
            .collect();
        candidates.extend(self.inner.config.bootstrap_servers.iter().cloned());
        let mut errors = Vec::new();
        for addr in candidates {
            match self.connection_to(&addr).await {
                Ok(conn) => return Ok(conn),
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        Err(ClientError::NoBrokerAvailable(errors.join("; ")))
    }

    /// The pooled connection to `addr`, dialling it if there is none or it has closed.
    pub async fn connection_to(&self, addr: &str) -> Result<Arc<Connection>, ClientError> {
        let mut pool = self.inner.pool.lock().await;
        if let Some(conn) = pool.get(addr) {
            if !conn.is_closed() {
                return Ok(conn.clone());
            }
        }
        let conn = Arc::new(Connection::connect(addr, self.inner.config.connection.clone()).await?);
        pool.insert(addr.to_owned(), conn.clone());
        Ok(conn)
    }

    /// Drops a pooled connection (after a failure), so the next use dials again.
    pub async fn drop_connection(&self, addr: &str) {
        self.inner.pool.lock().await.remove(addr);
    }
}

fn convert_metadata(resp: MetadataResponse) -> ClusterMetadata {
    let brokers = resp
        .brokers
        .into_iter()
        .map(|b| {
            let info = BrokerInfo {
                node_id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            };
            (info.node_id, info)
        })
        .collect();
    let topics = resp
        .topics
        .into_iter()
        .filter_map(|t| {
            let name = t.name?.0.to_string();
            let mut partitions: Vec<PartitionMetadata> = t
                .partitions
                .into_iter()
                .map(|p| PartitionMetadata {
                    partition: p.partition_index,
                    leader: p.leader_id.0,
                    leader_epoch: p.leader_epoch,
                    replicas: p.replica_nodes.into_iter().map(|b| b.0).collect(),
                    isr: p.isr_nodes.into_iter().map(|b| b.0).collect(),
                    offline_replicas: p.offline_replicas.into_iter().map(|b| b.0).collect(),
                    error: KafkaError::from_code(p.error_code, None),
                })
                .collect();
            partitions.sort_by_key(|p| p.partition);
            let topic = TopicMetadata {
                name: name.clone(),
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                partitions,
                error: KafkaError::from_code(t.error_code, None),
            };
            Some((name, topic))
        })
        .collect();
    ClusterMetadata {
        cluster_id: resp.cluster_id.map(|c| c.to_string()),
        controller_id: resp.controller_id.0,
        brokers,
        topics,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
