//! Topic and config administration, like Kafka's `Admin`: create, delete and grow topics,
//! describe and alter configs, list and describe topics, describe the cluster.
//!
//! Answers are plain Rust structs with per-topic Kafka errors; protocol types stay inside.
//! Requests that change metadata go to the controller Metadata names (brokers forward).

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::client::{BrokerInfo, Client, TopicMetadata};
use crate::error::{ClientError, KafkaError};

/// One replica of the metadata log, as DescribeQuorum reports it (-1: unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumReplica {
    /// Node id.
    pub id: i32,
    /// Its metadata log end offset as the leader last saw it.
    pub log_end_offset: i64,
    /// When it last fetched from the leader (ms since the epoch).
    pub last_fetch_timestamp: i64,
    /// When it was last caught up with the leader (ms since the epoch).
    pub last_caught_up_timestamp: i64,
}

/// The metadata quorum as its leader reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumDescription {
    /// The leader's node id (-1: none).
    pub leader_id: i32,
    /// The leader's epoch (the Raft term).
    pub leader_epoch: i32,
    /// The committed end of the metadata log.
    pub high_watermark: i64,
    /// The voters, leader included.
    pub voters: Vec<QuorumReplica>,
    /// The brokers that follow the log without voting.
    pub observers: Vec<QuorumReplica>,
}

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    /// Topic name.
    pub name: String,
    /// Partition count; -1 for the broker's `num.partitions`.
    pub num_partitions: i32,
    /// Replication factor; -1 for the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs (`cleanup.policy`, `retention.ms` …).
    pub configs: BTreeMap<String, String>,
}

impl NewTopic {
    /// A topic with the given partitions and replication factor and no configs.
    pub fn new(name: impl Into<String>, num_partitions: i32, replication_factor: i16) -> Self {
        NewTopic {
            name: name.into(),
            num_partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }

    /// Adds a config.
    pub fn config(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.configs.insert(name.into(), value.into());
        self
    }
}

/// The outcome for one topic of a create, delete or create-partitions request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicResult {
    /// Topic name.
    pub name: String,
    /// The Kafka error, if the operation failed for this topic.
    pub error: Option<KafkaError>,
    /// Topic id when the broker reports one (CreateTopics v7+).
    pub topic_id: Option<Uuid>,
    /// Partition count the broker reports (CreateTopics v5+), -1 otherwise.
    pub num_partitions: i32,
    /// Replication factor the broker reports (CreateTopics v5+), -1 otherwise.
    pub replication_factor: i16,
}

impl TopicResult {
    fn error_only(name: String, error: Option<KafkaError>) -> Self {
        TopicResult {
            name,
            error,
            topic_id: None,
            num_partitions: -1,
            replication_factor: -1,
        }
    }
}

/// What a config belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    /// A topic, by name.
    Topic(String),
    /// A broker, by node id.
    Broker(i32),
    /// The cluster-wide dynamic broker defaults (Kafka's `--entity-default`: a broker
    /// resource with an empty name).
    BrokerDefault,
    /// A consumer group's configs (KIP-848), by group id.
    Group(String),
}

impl ConfigResource {
    fn type_and_name(&self) -> (i8, String) {
        match self {
            ConfigResource::Topic(name) => (2, name.clone()),
            ConfigResource::Broker(id) => (4, id.to_string()),
            ConfigResource::BrokerDefault => (4, String::new()),
            ConfigResource::Group(id) => (32, id.clone()),
        }
    }
}

/// Where a config value comes from (Kafka's `ConfigSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// Set on the topic.
    DynamicTopic,
    /// Set dynamically for this broker.
    DynamicBroker,
    /// Set dynamically as the default for all brokers.
    DynamicDefaultBroker,
    /// From the broker's config file.
    StaticBroker,
    /// Kafka's default.
    Default,
    /// Any other source code.
    Other(i8),
}

impl ConfigSource {
    /// From the wire code.
    pub fn from_code(code: i8) -> Self {
        match code {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicDefaultBroker,
            4 => ConfigSource::StaticBroker,
            5 => ConfigSource::Default,
            other => ConfigSource::Other(other),
        }
    }

    /// Kafka's name, like `DYNAMIC_TOPIC_CONFIG`.
    pub fn name(&self) -> &'static str {
        match self {
            ConfigSource::DynamicTopic => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBroker => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBroker => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBroker => "STATIC_BROKER_CONFIG",
            ConfigSource::Default => "DEFAULT_CONFIG",
            ConfigSource::Other(6) => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::Other(7) => "CLIENT_METRICS_CONFIG",
            ConfigSource::Other(8) => "GROUP_CONFIG",
            ConfigSource::Other(_) => "UNKNOWN",
        }
    }
}

/// Another source of the same config, in precedence order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// Config name (a broker synonym may be named differently).
    pub name: String,
    /// Value, `None` if sensitive or unset.
    pub value: Option<String>,
    /// Where it comes from.
    pub source: ConfigSource,
}

/// One config of a described resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Value, `None` if sensitive or unset.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be altered.
    pub read_only: bool,
    /// Whether the value is hidden.
    pub is_sensitive: bool,
    /// Other sources, in precedence order.
    pub synonyms: Vec<ConfigSynonym>,
}

/// One change of an incremental config alteration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Set `name` to `value`.
    Set(String, String),
    /// Remove `name`, reverting to the default.
    Delete(String),
}

/// A topic as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicListing {
    /// Topic name.
    pub name: String,
    /// Topic id (nil below Metadata v10).
    pub topic_id: Uuid,
    /// Whether it is internal.
    pub is_internal: bool,
    /// Number of partitions.
    pub partitions: usize,
}

/// The cluster as DescribeCluster (or Metadata) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterDescription {
    /// Cluster id.
    pub cluster_id: Option<String>,
    /// Controller id as told to clients (-1 if unknown).
    pub controller_id: i32,
    /// Brokers, by node id.
    pub brokers: Vec<BrokerInfo>,
}

/// Admin operations on a cluster.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    /// Admin operations through `client`.
    pub fn new(client: Client) -> Self {
        Admin { client }
    }

    /// The client underneath.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The broker-side operation timeout: half the request timeout, so that the broker's
    /// answer (possibly REQUEST_TIMED_OUT) arrives before our request gives up.
    fn timeout_ms(&self) -> i32 {
        let half = self.client.config().connection.request_timeout / 2;
        half.as_millis().min(i32::MAX as u128) as i32
    }

    /// Creates topics; one result per topic, in the broker's order.
    pub async fn create_topics(
        &self,
        topics: Vec<NewTopic>,
        validate_only: bool,
    ) -> Result<Vec<TopicResult>, ClientError> {
        let conn = self.client.controller_connection().await?;
        let version = conn.version_for::<CreateTopicsRequest>(7)?;
        let topics = topics
            .into_iter()
            .map(|t| {
                CreatableTopic::default()
                    .with_name(topic_name(&t.name))
                    .with_num_partitions(t.num_partitions)
                    .with_replication_factor(t.replication_factor)
                    .with_configs(
                        t.configs
                            .into_iter()
                            .map(|(k, v)| {
                                CreatableTopicConfig::default()
                                    .with_name(StrBytes::from_string(k))
                                    .with_value(Some(StrBytes::from_string(v)))
                            })
                            .collect(),
                    )
            })
            .collect();
        let req = CreateTopicsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only);
        let resp = conn.send(req, version).await?;
        Ok(resp
            .topics
            .into_iter()
            .map(|t| TopicResult {
                name: t.name.0.to_string(),
                error: KafkaError::from_code(t.error_code, t.error_message.as_deref()),
                topic_id: (!t.topic_id.is_nil()).then_some(t.topic_id),
                num_partitions: t.num_partitions,
                replication_factor: t.replication_factor,
            })
            .collect())
    }

    /// Deletes topics by name.
    pub async fn delete_topics(&self, names: &[String]) -> Result<Vec<TopicResult>, ClientError> {
        let conn = self.client.controller_connection().await?;
        let version = conn.version_for::<DeleteTopicsRequest>(5)?;
        let req = DeleteTopicsRequest::default()
            .with_topic_names(names.iter().map(|n| topic_name(n)).collect())
            .with_timeout_ms(self.timeout_ms());
        let resp = conn.send(req, version).await?;
        for name in names {
            self.client.invalidate_topic(name);
        }
        Ok(resp
            .responses
            .into_iter()
            .map(|t| {
                let name = t.name.map(|n| n.0.to_string()).unwrap_or_default();
                let error = KafkaError::from_code(t.error_code, t.error_message.as_deref());
                TopicResult::error_only(name, error)
            })
            .collect())
    }

    /// Grows topics to the given total partition counts.
    pub async fn create_partitions(
        &self,
        totals: &[(String, i32)],
        validate_only: bool,
    ) -> Result<Vec<TopicResult>, ClientError> {
        let conn = self.client.controller_connection().await?;
        let version = conn.version_for::<CreatePartitionsRequest>(3)?;
        let topics = totals
            .iter()
            .map(|(name, count)| {
                CreatePartitionsTopic::default()
                    .with_name(topic_name(name))
                    .with_count(*count)
            })
            .collect();
        let req = CreatePartitionsRequest::default()
            .with_topics(topics)
            .with_timeout_ms(self.timeout_ms())
            .with_validate_only(validate_only);
        let resp = conn.send(req, version).await?;
        for (name, _) in totals {
            self.client.invalidate_topic(name);
        }
        Ok(resp
            .results
            .into_iter()
            .map(|t| {
                let error = KafkaError::from_code(t.error_code, t.error_message.as_deref());
                TopicResult::error_only(t.name.0.to_string(), error)
            })
            .collect())
    }

    /// Describes the configs of a topic or broker (`keys`: `None` for all), with synonyms.
    pub async fn describe_configs(
        &self,
        resource: &ConfigResource,
        keys: Option<&[String]>,
    ) -> Result<Vec<ConfigEntry>, ClientError> {
        let conn = match resource {
            ConfigResource::Broker(id) => self.client.broker_connection(*id).await?,
            ConfigResource::Topic(_) | ConfigResource::BrokerDefault | ConfigResource::Group(_) => {
                self.client.any_connection().await?
            }
        };
        let version = conn.version_for::<DescribeConfigsRequest>(4)?;
        let (resource_type, resource_name) = resource.type_and_name();
        let req = DescribeConfigsRequest::default()
            .with_resources(vec![DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(resource_name))
                .with_configuration_keys(keys.map(|ks| {
                    ks.iter()
                        .map(|k| StrBytes::from_string(k.clone()))
                        .collect()
                }))])
            .with_include_synonyms(true);
        let resp = conn.send(req, version).await?;
        let result =
            resp.results.into_iter().next().ok_or_else(|| {
                ClientError::Decode("DescribeConfigs answered no resource".into())
            })?;
        if let Some(e) = KafkaError::from_code(result.error_code, result.error_message.as_deref()) {
            return Err(e.into());
        }
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: ConfigSource::from_code(c.config_source),
                read_only: c.read_only,
                is_sensitive: c.is_sensitive,
                synonyms: c
                    .synonyms
                    .into_iter()
                    .map(|s| ConfigSynonym {
                        name: s.name.to_string(),
                        value: s.value.map(|v| v.to_string()),
                        source: ConfigSource::from_code(s.source),
                    })
                    .collect(),
            })
            .collect())
    }

    /// Sets or deletes configs of one resource (IncrementalAlterConfigs).
    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<(), ClientError> {
        let conn = match resource {
            ConfigResource::Broker(id) => self.client.broker_connection(*id).await?,
            ConfigResource::Topic(_) | ConfigResource::BrokerDefault | ConfigResource::Group(_) => {
                self.client.controller_connection().await?
            }
        };
        let version = conn.version_for::<IncrementalAlterConfigsRequest>(1)?;
        let (resource_type, resource_name) = resource.type_and_name();
        let configs = ops
            .iter()
            .map(|op| match op {
                AlterConfigOp::Set(name, value) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_string(value.clone()))),
                AlterConfigOp::Delete(name) => AlterableConfig::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_config_operation(1)
                    .with_value(None),
            })
            .collect();
        let req = IncrementalAlterConfigsRequest::default()
            .with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(StrBytes::from_string(resource_name))
                .with_configs(configs)])
            .with_validate_only(validate_only);
        let resp = conn.send(req, version).await?;
        for r in resp.responses {
            if let Some(e) = KafkaError::from_code(r.error_code, r.error_message.as_deref()) {
                return Err(e.into());
            }
        }
        Ok(())
    }

    /// Lists topics (internal ones only if asked), sorted by name.
    pub async fn list_topics(
        &self,
        include_internal: bool,
    ) -> Result<Vec<TopicListing>, ClientError> {
        let meta = self.client.fetch_metadata(None, false).await?;
        Ok(meta
            .topics
            .into_values()
            .filter(|t| include_internal || !t.is_internal)
            .map(|t| TopicListing {
                name: t.name,
                topic_id: t.topic_id,
                is_internal: t.is_internal,
                partitions: t.partitions.len(),
            })
            .collect())
    }

    /// Describes topics (`None`: all): partitions with leader, replicas, ISR, and topic id.
    /// A topic that does not exist comes back with UNKNOWN_TOPIC_OR_PARTITION in `error`.
    pub async fn describe_topics(
        &self,
        names: Option<&[String]>,
    ) -> Result<Vec<TopicMetadata>, ClientError> {
        let mut meta = self.client.fetch_metadata(names, false).await?;
        Ok(match names {
            None => meta.topics.into_values().collect(),
            Some(names) => names
                .iter()
                .map(|n| {
                    meta.topics.remove(n).unwrap_or_else(|| TopicMetadata {
                        name: n.clone(),
                        topic_id: Uuid::nil(),
                        is_internal: false,
                        partitions: Vec::new(),
                        error: Some(KafkaError::new(
                            crate::error::codes::UNKNOWN_TOPIC_OR_PARTITION,
                        )),
                    })
                })
                .collect(),
        })
    }

    /// Describes the cluster: DescribeCluster if the broker has it, else Metadata.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, ClientError> {
        let conn = self.client.any_connection().await?;
        if conn
            .api_versions()
            .contains_key(&(ApiKey::DescribeCluster as i16))
        {
            let version = conn.version_for::<DescribeClusterRequest>(1)?;
            let resp = conn
                .send(DescribeClusterRequest::default(), version)
                .await?;
            if let Some(e) = KafkaError::from_code(resp.error_code, resp.error_message.as_deref()) {
                return Err(e.into());
            }
            return Ok(ClusterDescription {
                cluster_id: Some(resp.cluster_id.to_string()),
                controller_id: resp.controller_id.0,
                brokers: resp
                    .brokers
                    .into_iter()
                    .map(|b| BrokerInfo {
                        node_id: b.broker_id.0,
                        host: b.host.to_string(),
                        port: b.port,
                        rack: b.rack.map(|r| r.to_string()),
                    })
                    .collect(),
            });
        }
        let meta = self.client.fetch_metadata(Some(&[]), false).await?;
        Ok(ClusterDescription {
            cluster_id: meta.cluster_id,
            controller_id: meta.controller_id,
            brokers: meta.brokers.into_values().collect(),
        })
    }
}

/// A partition's reassignment in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reassignment {
    pub topic: String,
    pub partition: i32,
    /// Every replica (the target ones and those being removed).
    pub replicas: Vec<i32>,
    pub adding: Vec<i32>,
    pub removing: Vec<i32>,
}

/// One partition's size and lag in a broker's log directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDirPartition {
    pub broker: i32,
    pub log_dir: String,
    pub topic: String,
    pub partition: i32,
    pub size: i64,
    pub offset_lag: i64,
}

/// A log directory of a broker with its disk space (-1 unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDir {
    pub broker: i32,
    pub log_dir: String,
    pub error: Option<KafkaError>,
    pub total_bytes: i64,
    pub usable_bytes: i64,
    pub partitions: Vec<LogDirPartition>,
}

impl Admin {
    /// Moves partitions to new replica lists (`None` cancels a move in progress):
    /// (topic, partition, error) per partition.
    pub async fn alter_partition_reassignments(
        &self,
        moves: &[(String, i32, Option<Vec<i32>>)],
    ) -> Result<Vec<(String, i32, Option<KafkaError>)>, ClientError> {
        use kafka_protocol::messages::alter_partition_reassignments_request::{
            ReassignablePartition, ReassignableTopic,
        };
        use kafka_protocol::messages::{AlterPartitionReassignmentsRequest, BrokerId};
        let conn = self.client.controller_connection().await?;
        let version = conn.version_for::<AlterPartitionReassignmentsRequest>(1)?;
        let mut topics: BTreeMap<&str, Vec<ReassignablePartition>> = BTreeMap::new();
        for (t, p, r) in moves {
            topics.entry(t).or_default().push(
                ReassignablePartition::default()
                    .with_partition_index(*p)
                    .with_replicas(r.as_ref().map(|r| r.iter().map(|&b| BrokerId(b)).collect())),
            );
        }
        let req = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_allow_replication_factor_change(true)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(t, ps)| {
                        ReassignableTopic::default()
                            .with_name(topic_name(t))
                            .with_partitions(ps)
                    })
                    .collect(),
            );
        let resp = conn.send(req, version).await?;
        if let Some(e) = KafkaError::from_code(resp.error_code, resp.error_message.as_deref()) {
            return Err(e.into());
        }
        Ok(resp
            .responses
            .into_iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| {
                    (
                        name.clone(),
                        p.partition_index,
                        KafkaError::from_code(p.error_code, p.error_message.as_deref()),
                    )
                })
            })
            .collect())
    }

    /// Each partition's eligible leader replicas and last known ELR (KIP-966), from
    /// DescribeTopicPartitions, paged with its cursor. `None` when the broker does not
    /// serve that API (Kafka's tools then print `N/A`).
    pub async fn partition_elrs(
        &self,
        topics: &[String],
    ) -> Result<Option<BTreeMap<(String, i32), (Vec<i32>, Vec<i32>)>>, ClientError> {
        use kafka_protocol::messages::describe_topic_partitions_request::{Cursor, TopicRequest};
        use kafka_protocol::messages::DescribeTopicPartitionsRequest;
        let conn = self.client.any_connection().await?;
        let Ok(version) = conn.version_for::<DescribeTopicPartitionsRequest>(0) else {
            return Ok(None);
        };
        let mut out = BTreeMap::new();
        let mut cursor = None;
        loop {
            let req = DescribeTopicPartitionsRequest::default()
                .with_topics(
                    topics
                        .iter()
                        .map(|t| {
                            TopicRequest::default()
                                .with_name(TopicName(StrBytes::from_string(t.clone())))
                        })
                        .collect(),
                )
                .with_response_partition_limit(2000)
                .with_cursor(cursor.take());
            let resp = conn.send(req, version).await?;
            for t in resp.topics {
                let Some(name) = t.name else { continue };
                for p in t.partitions {
                    let ids = |v: Option<Vec<kafka_protocol::messages::BrokerId>>| {
                        v.unwrap_or_default().into_iter().map(|b| b.0).collect()
                    };
                    out.insert(
                        (name.0.to_string(), p.partition_index),
                        (ids(p.eligible_leader_replicas), ids(p.last_known_elr)),
                    );
                }
            }
            match resp.next_cursor {
                Some(c) => {
                    cursor = Some(
                        Cursor::default()
                            .with_topic_name(c.topic_name)
                            .with_partition_index(c.partition_index),
                    )
                }
                None => return Ok(Some(out)),
            }
        }
    }

    /// The partition moves in progress.
    pub async fn list_partition_reassignments(&self) -> Result<Vec<Reassignment>, ClientError> {
        use kafka_protocol::messages::ListPartitionReassignmentsRequest;
        let conn = self.client.controller_connection().await?;
        let version = conn.version_for::<ListPartitionReassignmentsRequest>(0)?;
        let req = ListPartitionReassignmentsRequest::default()
            .with_timeout_ms(self.timeout_ms())
            .with_topics(None);
        let resp = conn.send(req, version).await?;
        if let Some(e) = KafkaError::from_code(resp.error_code, resp.error_message.as_deref()) {
            return Err(e.into());
        }
        let ids = |v: Vec<kafka_protocol::messages::BrokerId>| v.into_iter().map(|b| b.0).collect();
        Ok(resp
            .topics
            .into_iter()
            .flat_map(|t| {
                let name = t.name.0.to_string();
                t.partitions.into_iter().map(move |p| Reassignment {
                    topic: name.clone(),
                    partition: p.partition_index,
                    replicas: ids(p.replicas),
                    adding: ids(p.adding_replicas),
                    removing: ids(p.removing_replicas),
                })
            })
            .collect())
    }

    /// Preferred (`unclean` false) or unclean leader elections for the given partitions
    /// (`None`: all): (topic, partition, error) per partition that needed one.
    pub async fn elect_leaders(
        &self,
        unclean: bool,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<Vec<(String, i32, Option<KafkaError>)>, ClientError> {
        use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
        use kafka_protocol::messages::ElectLeadersRequest;
        let conn = self.client.controller_connection().await?;
        let version = conn.version_for::<ElectLeadersRequest>(2)?;
        let tps = partitions.map(|ps| {
            let mut by: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (t, p) in ps {
                by.entry(t).or_default().push(*p);
            }
            by.into_iter()
                .map(|(t, ps)| {
                    TopicPartitions::default()
                        .with_topic(topic_name(t))
                        .with_partitions(ps)
                })
                .collect()
        });
        let req = ElectLeadersRequest::default()
            .with_election_type(if unclean { 1 } else { 0 })
            .with_topic_partitions(tps)
            .with_timeout_ms(self.timeout_ms());
        let resp = conn.send(req, version).await?;
        if let Some(e) = KafkaError::from_code(resp.error_code, None) {
            return Err(e.into());
        }
        for r in &resp.replica_election_results {
            self.client.invalidate_topic(&r.topic.0);
        }
        Ok(resp
            .replica_election_results
            .into_iter()
            .flat_map(|t| {
                let name = t.topic.0.to_string();
                t.partition_result.into_iter().map(move |p| {
                    (
                        name.clone(),
                        p.partition_id,
                        KafkaError::from_code(p.error_code, p.error_message.as_deref()),
                    )
                })
            })
            .collect())
    }

    /// The metadata quorum as its leader reports it (DescribeQuorum, as
    /// `kafka-metadata-quorum describe` asks it): leader, epoch, high watermark, and the
    /// voters' and observers' replication state.
    pub async fn describe_quorum(&self) -> Result<QuorumDescription, ClientError> {
        use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        use kafka_protocol::messages::DescribeQuorumRequest;
        let conn = self.client.any_connection().await?;
        let version = conn.version_for::<DescribeQuorumRequest>(2)?;
        let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(topic_name("__cluster_metadata"))
            .with_partitions(vec![PartitionData::default().with_partition_index(0)])]);
        let resp = conn.send(req, version).await?;
        if let Some(e) = KafkaError::from_code(resp.error_code, resp.error_message.as_deref()) {
            return Err(e.into());
        }
        let p = resp
            .topics
            .into_iter()
            .flat_map(|t| t.partitions)
            .next()
            .ok_or_else(|| ClientError::Decode("DescribeQuorum answered no partition".into()))?;
        if let Some(e) = KafkaError::from_code(p.error_code, p.error_message.as_deref()) {
            return Err(e.into());
        }
        let replicas =
            |rs: Vec<kafka_protocol::messages::describe_quorum_response::ReplicaState>| {
                rs.into_iter()
                    .map(|r| QuorumReplica {
                        id: r.replica_id.0,
                        log_end_offset: r.log_end_offset,
                        last_fetch_timestamp: r.last_fetch_timestamp,
                        last_caught_up_timestamp: r.last_caught_up_timestamp,
                    })
                    .collect()
            };
        Ok(QuorumDescription {
            leader_id: p.leader_id.0,
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: replicas(p.current_voters),
            observers: replicas(p.observers),
        })
    }

    /// Every broker's log directories with partition sizes (DescribeLogDirs to each).
    pub async fn describe_log_dirs(&self) -> Result<Vec<LogDir>, ClientError> {
        use kafka_protocol::messages::DescribeLogDirsRequest;
        self.client.refresh_metadata(Some(&[])).await?;
        let brokers: Vec<i32> = self.client.metadata().brokers.keys().copied().collect();
        let mut out = Vec::new();
        for b in brokers {
            let conn = self.client.broker_connection(b).await?;
            let version = conn.version_for::<DescribeLogDirsRequest>(4)?;
            let resp = conn
                .send(DescribeLogDirsRequest::default().with_topics(None), version)
                .await?;
            for r in resp.results {
                let dir = r.log_dir.to_string();
                let partitions = r
                    .topics
                    .into_iter()
                    .flat_map(|t| {
                        let (name, dir) = (t.name.0.to_string(), dir.clone());
                        t.partitions.into_iter().map(move |p| LogDirPartition {
                            broker: b,
                            log_dir: dir.clone(),
                            topic: name.clone(),
                            partition: p.partition_index,
                            size: p.partition_size,
                            offset_lag: p.offset_lag,
                        })
                    })
                    .collect();
                out.push(LogDir {
                    broker: b,
                    log_dir: dir,
                    error: KafkaError::from_code(r.error_code, None),
                    total_bytes: r.total_bytes,
                    usable_bytes: r.usable_bytes,
                    partitions,
                });
            }
        }
        Ok(out)
    }
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_owned()))
}
