//! Node settings with Kafka's names. Sources, later ones winning: built-in defaults
//! (Kafka's), the TOML file, the environment, and `--set key=value` flags. In the
//! environment, `STROM_NODE_ID` sets `node.id`; so does `KAFKA_NODE_ID`, with the
//! convention of Confluent's and Apache's Kafka images (`KAFKA_X_Y` is `x.y`, `__` is
//! `_`, `___` is `-`; `CLUSTER_ID` is `cluster.id`), so that a cp-kafka service block
//! runs with only its image changed; `STROM_` wins over `KAFKA_`.
//!
//! Kafka's KRaft listener layout is understood: the listener that
//! `controller.listener.names` names is the controller quorum's (strom's
//! `internal.listener`), not a client listener. Listeners are PLAINTEXT only: one whose
//! `listener.security.protocol.map` entry (or name) is SSL or SASL is refused. TOML may spell a key quoted
//! (`"log.retention.ms" = 1000`) or as dotted keys (`log.retention.ms = 1000`): both
//! flatten to the same name.

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use strom_common::broker_config::KNOWN;

/// A listener: `NAME://host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn parse_list(s: &str) -> Result<Vec<Listener>, ConfigError> {
        s.split(',')
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .map(Listener::parse)
            .collect()
    }

    fn parse(s: &str) -> Result<Listener, ConfigError> {
        let bad = || ConfigError::Invalid("listeners".into(), s.to_string());
        let (name, rest) = s.split_once("://").ok_or_else(bad)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Listener {
            name: name.to_uppercase(),
            host: host.to_string(),
            port: port.parse().map_err(|_| bad())?,
        })
    }

    pub fn addr(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        format!("{host}:{}", self.port)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0} is not valid TOML: {1}")]
    Toml(PathBuf, String),
    #[error("invalid value for {0}: {1:?}")]
    Invalid(String, String),
}

/// Every setting of a node, resolved.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub node_id: i32,
    pub broker: bool,
    pub controller: bool,
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub internal_listener: String,
    pub voters: BTreeMap<u64, String>,
    pub data_dir: PathBuf,
    pub log_dir: PathBuf,
    pub cluster_id: Option<String>,
    pub num_partitions: i32,
    pub default_replication_factor: i32,
    pub auto_create_topics: bool,
    pub delete_topic_enable: bool,
    pub message_max_bytes: usize,
    pub socket_request_max_bytes: usize,
    /// `fetch.max.bytes`: the most a consumer's Fetch answer carries (55 MiB).
    pub fetch_max_bytes: usize,
    pub session_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub retention_check_interval_ms: u64,
    pub flush_scheduler_interval_ms: u64,
    pub checkpoint_interval_ms: u64,
    pub producer_id_expiration_ms: i64,
    pub offsets_topic_num_partitions: i32,
    pub offsets_topic_replication_factor: i32,
    pub unclean_leader_election: bool,
    pub metadata_snapshot_every: u64,
    pub rack: String,
    /// `controlled.shutdown.enable`
    pub controlled_shutdown: bool,
    /// How long a stopping broker waits for its leaderships to move.
    pub controlled_shutdown_timeout_ms: u64,
    /// `max.incremental.fetch.session.cache.slots`
    pub fetch_session_slots: usize,
    /// Every setting given explicitly (file, environment, flags), by Kafka name.
    pub explicit: BTreeMap<String, String>,
}

/// `KAFKA_*` variables that Kafka's images read for the JVM, logging or the image
/// itself, not as broker settings.
const KAFKA_IMAGE_ONLY: &[&str] = &[
    "VERSION",
    "HEAP_OPTS",
    "OPTS",
    "JMX_OPTS",
    "JMX_PORT",
    "JMX_HOSTNAME",
    "JVM_PERFORMANCE_OPTS",
    "GC_LOG_OPTS",
    "LOG4J_OPTS",
    "LOG4J_ROOT_LOGLEVEL",
    "LOG4J_LOGGERS",
    "TOOLS_LOG4J_LOGLEVEL",
    "DEBUG",
];

/// The setting a `KAFKA_` variable names, by the images' convention: lower case,
/// `___` for `-`, `__` for `_`, `_` for `.` (`KAFKA_LISTENER_SECURITY_PROTOCOL_MAP` is
/// `listener.security.protocol.map`).
fn kafka_env_name(rest: &str) -> String {
    rest.to_lowercase()
        .replace("___", "-")
        .replace("__", "\u{0}")
        .replace('_', ".")
        .replace('\u{0}', "_")
}

/// Flattens a TOML table into dotted names with string values.
fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        toml::Value::Array(a) => {
            let items: Vec<String> = a
                .iter()
                .map(|x| match x {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.insert(prefix.to_string(), items.join(","));
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Refuses listeners that are not PLAINTEXT: by `listener.security.protocol.map`
/// (`NAME:PROTOCOL,...`), else by the listener's name when it is a protocol's name.
fn check_security_protocols(map: &str, listeners: &[Listener]) -> Result<(), ConfigError> {
    let mut protocols = BTreeMap::new();
    for entry in map.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, protocol) = entry.split_once(':').ok_or_else(|| {
            ConfigError::Invalid("listener.security.protocol.map".into(), entry.to_string())
        })?;
        protocols.insert(name.trim().to_uppercase(), protocol.trim().to_uppercase());
    }
    for l in listeners {
        let protocol = protocols.get(&l.name).unwrap_or(&l.name);
        if matches!(protocol.as_str(), "SSL" | "SASL_SSL" | "SASL_PLAINTEXT") {
            return Err(ConfigError::Invalid(
                "listeners".into(),
                format!(
                    "{} uses {protocol}: strom serves PLAINTEXT listeners only",
                    l.name
                ),
            ));
        }
    }
    Ok(())
}

impl NodeConfig {
    /// Reads a TOML file into flat settings.
    pub fn read_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
        Self::parse_toml(&text).map_err(|e| ConfigError::Toml(path.to_path_buf(), e))
    }

    pub fn parse_toml(text: &str) -> Result<BTreeMap<String, String>, String> {
        let v: toml::Value = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        let mut out = BTreeMap::new();
        flatten("", &v, &mut out);
        Ok(out)
    }

    /// Settings from `STROM_*`, `KAFKA_*` and `CLUSTER_ID` environment variables
    /// (`STROM_*` winning).
    pub fn from_env(vars: impl Iterator<Item = (String, String)>) -> BTreeMap<String, String> {
        let mut kafka = BTreeMap::new();
        let mut strom = BTreeMap::new();
        for (k, v) in vars {
            if let Some(rest) = k.strip_prefix("STROM_") {
                // The tools' and tests' own variables are not node settings.
                if !rest.is_empty() && !matches!(rest, "LOG" | "BOOTSTRAP" | "BIN") {
                    strom.insert(rest.to_lowercase().replace('_', "."), v);
                }
            } else if let Some(rest) = k.strip_prefix("KAFKA_") {
                if !rest.is_empty() && !KAFKA_IMAGE_ONLY.contains(&rest) {
                    kafka.insert(kafka_env_name(rest), v);
                }
            } else if k == "CLUSTER_ID" {
                kafka.insert("cluster.id".to_string(), v);
            }
        }
        kafka.extend(strom);
        kafka
    }

    /// Resolves settings (explicit ones over Kafka's defaults).
    pub fn resolve(explicit: BTreeMap<String, String>) -> Result<NodeConfig, ConfigError> {
        let get = |k: &str| -> String {
            explicit
                .get(k)
                .cloned()
                .or_else(|| {
                    KNOWN
                        .iter()
                        .find(|(n, _)| *n == k)
                        .map(|(_, d)| d.to_string())
                })
                .unwrap_or_default()
        };
        fn num<T: std::str::FromStr>(k: &str, v: String) -> Result<T, ConfigError> {
            v.trim()
                .parse()
                .map_err(|_| ConfigError::Invalid(k.to_string(), v))
        }
        fn flag(k: &str, v: String) -> Result<bool, ConfigError> {
            match v.trim().to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ConfigError::Invalid(k.to_string(), v)),
            }
        }
        for k in explicit.keys() {
            let known = KNOWN.iter().any(|(n, _)| n == k)
                || strom_common::topic_config::TOPIC_CONFIGS
                    .iter()
                    .any(|d| d.synonyms.iter().any(|s| s.name == k));
            if !known {
                tracing::warn!(setting = %k, "unknown setting; kept for DescribeConfigs but unused");
            }
        }
        let node_id: i32 = num("node.id", get("node.id"))?;
        let roles = get("process.roles").to_lowercase();
        let broker = roles.split(',').any(|r| r.trim() == "broker");
        let controller = roles.split(',').any(|r| r.trim() == "controller");
        if !broker && !controller {
            return Err(ConfigError::Invalid("process.roles".into(), roles));
        }
        let mut listeners = Listener::parse_list(&get("listeners"))?;
        let controller_names: Vec<String> = get("controller.listener.names")
            .split(',')
            .map(|n| n.trim().to_uppercase())
            .filter(|n| !n.is_empty())
            .collect();
        check_security_protocols(&get("listener.security.protocol.map"), &listeners)?;
        // Kafka's KRaft layout: the controller listener is the quorum's, not a client's.
        let mut internal = get("internal.listener");
        if let Some(pos) = listeners
            .iter()
            .position(|l| controller_names.contains(&l.name))
        {
            let l = listeners.remove(pos);
            if explicit
                .get("internal.listener")
                .is_some_and(|i| *i != l.addr())
            {
                tracing::info!(controller_listener = %l.addr(), internal_listener = %internal,
                    "the controller listener of `listeners` is the quorum's listener");
            }
            internal = l.addr();
        }
        listeners.retain(|l| !controller_names.contains(&l.name));
        let advertised = match get("advertised.listeners") {
            s if s.trim().is_empty() => listeners
                .iter()
                .map(|l| Listener {
                    host: if l.host.is_empty() || l.host == "0.0.0.0" {
                        "127.0.0.1".into()
                    } else {
                        l.host.clone()
                    },
                    ..l.clone()
                })
                .collect(),
            s => Listener::parse_list(&s)?
                .into_iter()
                .filter(|l| !controller_names.contains(&l.name))
                .collect(),
        };
        let mut voters = BTreeMap::new();
        for v in get("controller.quorum.voters")
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            let (id, addr) = v.split_once('@').ok_or_else(|| {
                ConfigError::Invalid("controller.quorum.voters".into(), v.to_string())
            })?;
            voters.insert(
                num::<u64>("controller.quorum.voters", id.to_string())?,
                addr.to_string(),
            );
        }
        if voters.is_empty() {
            voters.insert(node_id as u64, internal.clone());
        }
        let data_dir = PathBuf::from(get("data.dir"));
        let log_dir = match get("log.dirs") {
            s if s.trim().is_empty() => data_dir.join("logs"),
            s => PathBuf::from(s.split(',').next().unwrap_or("").trim()),
        };
        let cluster_id = Some(get("cluster.id")).filter(|c| !c.trim().is_empty());
        Ok(NodeConfig {
            node_id,
            broker,
            controller,
            listeners,
            advertised_listeners: advertised,
            internal_listener: internal,
            voters,
            data_dir,
            log_dir,
            cluster_id,
            num_partitions: num("num.partitions", get("num.partitions"))?,
            default_replication_factor: num(
                "default.replication.factor",
                get("default.replication.factor"),
            )?,
            auto_create_topics: flag(
                "auto.create.topics.enable",
                get("auto.create.topics.enable"),
            )?,
            delete_topic_enable: flag("delete.topic.enable", get("delete.topic.enable"))?,
            message_max_bytes: num("message.max.bytes", get("message.max.bytes"))?,
            socket_request_max_bytes: num(
                "socket.request.max.bytes",
                get("socket.request.max.bytes"),
            )?,
            fetch_max_bytes: num("fetch.max.bytes", get("fetch.max.bytes"))?,
            session_timeout_ms: num(
                "broker.session.timeout.ms",
                get("broker.session.timeout.ms"),
            )?,
            heartbeat_interval_ms: num(
                "broker.heartbeat.interval.ms",
                get("broker.heartbeat.interval.ms"),
            )?,
            retention_check_interval_ms: num(
                "log.retention.check.interval.ms",
                get("log.retention.check.interval.ms"),
            )?,
            flush_scheduler_interval_ms: num(
                "log.flush.scheduler.interval.ms",
                get("log.flush.scheduler.interval.ms"),
            )?,
            checkpoint_interval_ms: num(
                "log.flush.offset.checkpoint.interval.ms",
                get("log.flush.offset.checkpoint.interval.ms"),
            )?,
            producer_id_expiration_ms: num(
                "producer.id.expiration.ms",
                get("producer.id.expiration.ms"),
            )?,
            offsets_topic_num_partitions: num(
                "offsets.topic.num.partitions",
                get("offsets.topic.num.partitions"),
            )?,
            offsets_topic_replication_factor: num(
                "offsets.topic.replication.factor",
                get("offsets.topic.replication.factor"),
            )?,
            unclean_leader_election: flag(
                "unclean.leader.election.enable",
                get("unclean.leader.election.enable"),
            )?,
            metadata_snapshot_every: num(
                "metadata.log.snapshot.every",
                get("metadata.log.snapshot.every"),
            )?,
            rack: get("rack"),
            controlled_shutdown: flag(
                "controlled.shutdown.enable",
                get("controlled.shutdown.enable"),
            )?,
            controlled_shutdown_timeout_ms: num(
                "controlled.shutdown.timeout.ms",
                get("controlled.shutdown.timeout.ms"),
            )?,
            fetch_session_slots: num(
                "max.incremental.fetch.session.cache.slots",
                get("max.incremental.fetch.session.cache.slots"),
            )?,
            explicit,
        })
    }

    /// A known setting's value (explicit, else the default), parsed; the default when
    /// the explicit value does not parse (a warning is logged).
    pub fn known<T: std::str::FromStr>(&self, key: &str) -> T {
        let default = KNOWN
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, d)| *d)
            .unwrap_or("");
        let v = self
            .explicit
            .get(key)
            .map(String::as_str)
            .unwrap_or(default);
        v.trim().parse().unwrap_or_else(|_| {
            tracing::warn!(
                setting = key,
                value = v,
                "not a valid value; using the default"
            );
            default.parse().ok().expect("defaults parse")
        })
    }

    /// Limits on client connections and the requests they have in flight.
    pub fn connection_limits(&self) -> crate::server::Limits {
        let bytes: i64 = self.known("queued.max.request.bytes");
        crate::server::Limits {
            max_connections: self.known::<i64>("max.connections").max(1) as usize,
            max_connections_per_ip: self.known::<i64>("max.connections.per.ip").max(1) as usize,
            idle: std::time::Duration::from_millis(
                self.known::<i64>("connections.max.idle.ms").max(1) as u64,
            ),
            // -1 (Kafka's default): no broker-wide cap.
            queued_request_bytes: (bytes > 0).then_some(bytes as usize),
        }
    }

    /// The replication settings (Kafka's `replica.*` names).
    pub fn replication_config(&self) -> crate::replication::ReplicationConfig {
        let listener = self.known::<String>("inter.broker.listener.name");
        crate::replication::ReplicationConfig {
            replica_lag_time_max_ms: self.known("replica.lag.time.max.ms"),
            fetch_wait_max_ms: self.known("replica.fetch.wait.max.ms"),
            fetch_min_bytes: self.known("replica.fetch.min.bytes"),
            fetch_max_bytes: self.known("replica.fetch.max.bytes"),
            fetch_response_max_bytes: self.known("replica.fetch.response.max.bytes"),
            fetch_backoff_ms: self.known("replica.fetch.backoff.ms"),
            hw_checkpoint_interval_ms: self.known("replica.high.watermark.checkpoint.interval.ms"),
            producer_id_expiration_ms: self.producer_id_expiration_ms,
            producer_id_expiration_check_interval_ms: self
                .known("producer.id.expiration.check.interval.ms"),
            inter_broker_listener: if listener.trim().is_empty() {
                self.advertised_listeners
                    .first()
                    .map(|l| l.name.clone())
                    .unwrap_or_else(|| "PLAINTEXT".into())
            } else {
                listener.trim().to_uppercase()
            },
        }
    }

    /// The controller's cluster-wide defaults and election settings.
    pub fn apply_controller_settings(&self, c: &mut strom_controller::quorum::ControllerConfig) {
        c.defaults.num_partitions = self.num_partitions;
        c.defaults.default_replication_factor = self.default_replication_factor;
        c.defaults.unclean_leader_election = self.unclean_leader_election;
        c.defaults.min_insync_replicas = self.known("min.insync.replicas");
        c.defaults.elr_enabled = self.known("eligible.leader.replicas.enable");
        for def in strom_common::broker_config::GROUP_CONFIGS {
            for k in [def.broker_default, def.min, def.max] {
                c.defaults
                    .group_settings
                    .insert(k.to_string(), self.known(k));
            }
        }
        c.session_timeout = std::time::Duration::from_millis(self.session_timeout_ms);
        c.snapshot_every = self.metadata_snapshot_every;
        c.unclean_recovery_timeout =
            std::time::Duration::from_millis(self.known("unclean.recovery.timeout.ms"));
        c.leader_imbalance_check_interval =
            self.known::<bool>("auto.leader.rebalance.enable").then(|| {
                std::time::Duration::from_secs(
                    self.known::<u64>("leader.imbalance.check.interval.seconds")
                        .max(1),
                )
            });
    }

    /// `log.cleaner.backoff.ms`: how often compacted logs are checked.
    pub fn cleaner_backoff_ms(&self) -> u64 {
        self.known("log.cleaner.backoff.ms")
    }

    /// The group coordinator's settings.
    pub fn group_config(&self) -> crate::group::coordinator::CoordinatorConfig {
        use crate::group::classic::ClassicConfig;
        use crate::group::consumer::ConsumerConfig;
        crate::group::coordinator::CoordinatorConfig {
            classic: ClassicConfig {
                min_session_timeout_ms: self.known("group.min.session.timeout.ms"),
                max_session_timeout_ms: self.known("group.max.session.timeout.ms"),
                initial_rebalance_delay_ms: self.known("group.initial.rebalance.delay.ms"),
                max_size: self.known::<i64>("group.max.size").max(1) as usize,
            },
            consumer: ConsumerConfig {
                session_timeout_ms: self.known("group.consumer.session.timeout.ms"),
                heartbeat_interval_ms: self.known("group.consumer.heartbeat.interval.ms"),
                max_size: self.known::<i64>("group.consumer.max.size").max(1) as usize,
            },
            offsets_partitions: self.offsets_topic_num_partitions.max(1),
            offsets_retention_ms: self
                .known::<i64>("offsets.retention.minutes")
                .saturating_mul(60_000),
            retention_check_interval_ms: self.known("offsets.retention.check.interval.ms"),
            offset_metadata_max_bytes: self.known::<i64>("offset.metadata.max.bytes").max(0)
                as usize,
            migration_policy: crate::group::coordinator::MigrationPolicy::parse(
                &self.known::<String>("group.consumer.migration.policy"),
            ),
        }
    }

    /// The transaction coordinator's settings.
    pub fn txn_config(&self) -> crate::txn::coordinator::TxnConfig {
        crate::txn::coordinator::TxnConfig {
            partitions: self
                .known::<i32>("transaction.state.log.num.partitions")
                .max(1),
            max_timeout_ms: self.known("transaction.max.timeout.ms"),
            abort_check_interval_ms: self
                .known("transaction.abort.timed.out.transaction.cleanup.interval.ms"),
            id_expiration_ms: self.known("transactional.id.expiration.ms"),
        }
    }

    /// The effective value and whether it was set explicitly, for `DescribeConfigs`.
    pub fn describe(&self) -> Vec<(String, String, bool)> {
        let mut out: BTreeMap<String, (String, bool)> = BTreeMap::new();
        for (k, d) in KNOWN {
            out.insert(k.to_string(), (d.to_string(), false));
        }
        for def in strom_common::topic_config::TOPIC_CONFIGS {
            if let Some(s) = def.synonyms.first() {
                out.entry(s.name.to_string())
                    .or_insert((def.default.to_string(), false));
            }
        }
        for (k, v) in &self.explicit {
            out.insert(k.clone(), (v.clone(), true));
        }
        out.insert(
            "node.id".into(),
            (
                self.node_id.to_string(),
                self.explicit.contains_key("node.id"),
            ),
        );
        out.insert(
            "broker.id".into(),
            (
                self.node_id.to_string(),
                self.explicit.contains_key("node.id"),
            ),
        );
        out.insert(
            "log.dirs".into(),
            (
                self.log_dir.display().to_string(),
                self.explicit.contains_key("log.dirs"),
            ),
        );
        out.into_iter().map(|(k, (v, e))| (k, v, e)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_dotted_keys_flatten_alike() {
        let a = NodeConfig::parse_toml("\"log.retention.ms\" = 1000\n\"node.id\" = 3").unwrap();
        let b = NodeConfig::parse_toml("log.retention.ms = 1000\nnode.id = 3").unwrap();
        assert_eq!(a, b);
        assert_eq!(a["log.retention.ms"], "1000");
    }

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        NodeConfig::from_env(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn a_cp_kafka_service_block_configures_a_node() {
        // The environment of a KRaft broker+controller in Confluent's compose examples.
        let m = env(&[
            ("KAFKA_NODE_ID", "2"),
            ("KAFKA_PROCESS_ROLES", "broker,controller"),
            (
                "KAFKA_LISTENERS",
                "PLAINTEXT://kafka2:29092,CONTROLLER://kafka2:29093,PLAINTEXT_HOST://0.0.0.0:9093",
            ),
            (
                "KAFKA_ADVERTISED_LISTENERS",
                "PLAINTEXT://kafka2:29092,PLAINTEXT_HOST://localhost:9093",
            ),
            (
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP",
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,PLAINTEXT_HOST:PLAINTEXT",
            ),
            ("KAFKA_CONTROLLER_LISTENER_NAMES", "CONTROLLER"),
            ("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT"),
            (
                "KAFKA_CONTROLLER_QUORUM_VOTERS",
                "1@kafka1:29093,2@kafka2:29093,3@kafka3:29093",
            ),
            ("KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "3"),
            ("KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
            ("KAFKA_HEAP_OPTS", "-Xmx1G"),
            ("CLUSTER_ID", "MkU3OEVBNTcwNTJENDM2Qk"),
            ("STROM_NUM_PARTITIONS", "6"),
            ("KAFKA_NUM_PARTITIONS", "2"),
        ]);
        assert!(
            !m.contains_key("heap.opts"),
            "JVM settings are not node settings"
        );
        let c = NodeConfig::resolve(m).unwrap();
        assert_eq!(c.node_id, 2);
        assert_eq!(c.internal_listener, "kafka2:29093");
        let names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["PLAINTEXT", "PLAINTEXT_HOST"]);
        assert_eq!(c.advertised_listeners[1].host, "localhost");
        assert_eq!(c.voters[&3], "kafka3:29093");
        assert_eq!(c.offsets_topic_replication_factor, 3);
        assert_eq!(c.log_dir, PathBuf::from("/tmp/kraft-combined-logs"));
        assert_eq!(c.cluster_id.as_deref(), Some("MkU3OEVBNTcwNTJENDM2Qk"));
        assert_eq!(c.num_partitions, 6, "STROM_ wins over KAFKA_");
        assert_eq!(c.replication_config().inter_broker_listener, "PLAINTEXT");
    }

    #[test]
    fn kafka_env_names_follow_the_images_convention() {
        assert_eq!(kafka_env_name("LOG_RETENTION_MS"), "log.retention.ms");
        assert_eq!(
            kafka_env_name("LISTENER_NAME_INTERNAL_SASL_ENABLED__MECHANISMS"),
            "listener.name.internal.sasl.enabled_mechanisms"
        );
        assert_eq!(kafka_env_name("SOME___DASHED"), "some-dashed");
        assert!(env(&[("STROM_BOOTSTRAP", "x:1"), ("STROM_LOG", "info")]).is_empty());
    }

    #[test]
    fn tls_and_sasl_listeners_are_refused() {
        let mut m = env(&[
            ("KAFKA_LISTENERS", "SECURE://0.0.0.0:9094"),
            ("KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "SECURE:SASL_SSL"),
        ]);
        let e = NodeConfig::resolve(m.clone()).unwrap_err().to_string();
        assert!(e.contains("PLAINTEXT listeners only"), "{e}");
        m.insert("listeners".into(), "SSL://0.0.0.0:9094".into());
        m.remove("listener.security.protocol.map");
        assert!(NodeConfig::resolve(m).is_err());
    }

    #[test]
    fn env_overrides_and_defaults() {
        let mut m =
            NodeConfig::parse_toml("\"node.id\" = 3\nlisteners = \"PLAINTEXT://0.0.0.0:9092\"")
                .unwrap();
        m.extend(NodeConfig::from_env(
            vec![
                ("STROM_NUM_PARTITIONS".to_string(), "4".to_string()),
                ("PATH".into(), "/bin".into()),
            ]
            .into_iter(),
        ));
        let c = NodeConfig::resolve(m).unwrap();
        assert_eq!(c.node_id, 3);
        assert_eq!(c.num_partitions, 4);
        assert_eq!(c.message_max_bytes, 1048588);
        assert_eq!(c.socket_request_max_bytes, 100 * 1024 * 1024);
        assert_eq!(c.advertised_listeners[0].host, "127.0.0.1");
        assert_eq!(c.voters.get(&3).map(String::as_str), Some("127.0.0.1:9093"));
        assert!(c.broker && c.controller);
    }

    #[test]
    fn bad_values_are_refused() {
        let m = NodeConfig::parse_toml("\"num.partitions\" = \"many\"").unwrap();
        assert!(NodeConfig::resolve(m).is_err());
        let m = NodeConfig::parse_toml("listeners = \"nonsense\"").unwrap();
        assert!(NodeConfig::resolve(m).is_err());
        let m = NodeConfig::parse_toml("\"controller.quorum.voters\" = \"1@a:1,x\"").unwrap();
        assert!(NodeConfig::resolve(m).is_err());
    }
}
