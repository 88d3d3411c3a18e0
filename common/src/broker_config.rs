//! Broker settings strom knows (Kafka's names and defaults), which of them may change
//! while the cluster runs (dynamic broker configs, Kafka's `kafka-configs --entity-type
//! brokers`), and the dynamic group configs of KIP-848 (`--entity-type groups`).
//!
//! Dynamic configs live in the metadata log as config records: per broker (resource name
//! the broker id, source DYNAMIC_BROKER_CONFIG), cluster-wide (resource name "", source
//! DYNAMIC_DEFAULT_BROKER_CONFIG), and per group (source GROUP_CONFIG).

use crate::topic_config::TOPIC_CONFIGS;

/// Keys strom reads itself, with their defaults ("" = no default). Other Kafka names
/// are kept as static settings (topic config synonyms read them) and reported by
/// `DescribeConfigs`.
pub const KNOWN: &[(&str, &str)] = &[
    ("node.id", "1"),
    ("process.roles", "broker,controller"),
    ("listeners", "PLAINTEXT://127.0.0.1:9092"),
    ("advertised.listeners", ""),
    ("internal.listener", "127.0.0.1:9093"),
    // HTTP: /metrics, /health/*, /v1/*, the web console at /. Empty: none.
    ("admin.listener", "127.0.0.1:9644"),
    // Whether the web console may change anything (create/delete topics, configs,
    // group offsets); read-only otherwise.
    ("admin.console.write.enable", "false"),
    // Whether /metrics lists series per partition (log offsets, sizes, group lag);
    // per-topic totals are always there.
    ("admin.metrics.partition.detail", "true"),
    // The Schema Registry's REST API (Confluent's). Empty: none.
    ("schema.registry.listener", "127.0.0.1:8081"),
    // What other nodes dial to forward a change to this node when it is the registry's
    // writer, host:port. Default: the listener's address, with the host of the first
    // advertised Kafka listener when the listener binds a wildcard address.
    ("schema.registry.advertised.listener", ""),
    // Confluent's `schema.compatibility.level`: for subjects with no config of their own.
    ("schema.compatibility.level", "backward"),
    ("controller.quorum.voters", ""),
    ("data.dir", "./strom-data"),
    ("log.dirs", ""),
    ("cluster.id", ""),
    ("num.partitions", "1"),
    ("default.replication.factor", "1"),
    ("auto.create.topics.enable", "true"),
    ("delete.topic.enable", "true"),
    ("message.max.bytes", "1048588"),
    ("socket.request.max.bytes", "104857600"),
    ("broker.session.timeout.ms", "9000"),
    ("broker.heartbeat.interval.ms", "2000"),
    ("log.retention.check.interval.ms", "300000"),
    ("log.flush.scheduler.interval.ms", "1000"),
    ("log.flush.offset.checkpoint.interval.ms", "60000"),
    ("producer.id.expiration.ms", "86400000"),
    ("fetch.max.bytes", "57671680"),
    ("max.connections", "2147483647"),
    ("max.connections.per.ip", "2147483647"),
    ("connections.max.idle.ms", "600000"),
    ("queued.max.request.bytes", "536870912"),
    ("producer.id.expiration.check.interval.ms", "600000"),
    ("offsets.topic.num.partitions", "50"),
    ("offsets.topic.replication.factor", "3"),
    ("unclean.leader.election.enable", "false"),
    ("metadata.log.snapshot.every", "5000"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("group.max.size", "2147483647"),
    ("group.consumer.session.timeout.ms", "45000"),
    ("group.consumer.heartbeat.interval.ms", "5000"),
    ("group.consumer.max.size", "2147483647"),
    ("group.consumer.migration.policy", "bidirectional"),
    ("group.consumer.min.session.timeout.ms", "45000"),
    ("group.consumer.max.session.timeout.ms", "60000"),
    ("group.consumer.min.heartbeat.interval.ms", "5000"),
    ("group.consumer.max.heartbeat.interval.ms", "15000"),
    ("offsets.retention.minutes", "10080"),
    ("offsets.retention.check.interval.ms", "600000"),
    ("transaction.state.log.num.partitions", "50"),
    ("transaction.state.log.replication.factor", "3"),
    ("transaction.state.log.min.isr", "2"),
    ("transaction.state.log.segment.bytes", "104857600"),
    ("transaction.max.timeout.ms", "900000"),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
    ),
    ("transactional.id.expiration.ms", "604800000"),
    ("transaction.version", "2"),
    ("offset.metadata.max.bytes", "4096"),
    ("log.cleaner.backoff.ms", "15000"),
    ("rack", ""),
    ("min.insync.replicas", "1"),
    ("replica.lag.time.max.ms", "30000"),
    ("replica.fetch.wait.max.ms", "500"),
    ("replica.fetch.min.bytes", "1"),
    ("replica.fetch.max.bytes", "1048576"),
    ("replica.fetch.response.max.bytes", "10485760"),
    ("replica.fetch.backoff.ms", "1000"),
    ("replica.high.watermark.checkpoint.interval.ms", "5000"),
    ("inter.broker.listener.name", ""),
    // Kafka's KRaft names: the listener of `listeners` that is the controller quorum's
    // (taken as `internal.listener`), and each listener's security protocol
    // (PLAINTEXT only here).
    ("controller.listener.names", ""),
    ("listener.security.protocol.map", ""),
    ("auto.leader.rebalance.enable", "true"),
    ("leader.imbalance.check.interval.seconds", "300"),
    ("eligible.leader.replicas.enable", "true"),
    ("unclean.recovery.timeout.ms", "300000"),
    ("controlled.shutdown.enable", "true"),
    ("controlled.shutdown.timeout.ms", "30000"),
    ("max.incremental.fetch.session.cache.slots", "1000"),
];

/// Broker settings strom applies while running, besides the topic-config synonyms
/// (`log.retention.ms`, `min.insync.replicas`, `compression.type`, …), which every
/// partition's log re-resolves when the metadata changes.
const DYNAMIC_EXTRA: &[&str] = &["log.cleaner.dedupe.buffer.size"];

/// Whether `name` is a broker setting strom knows.
pub fn is_known(name: &str) -> bool {
    KNOWN.iter().any(|(k, _)| *k == name)
        || name == "broker.id"
        || is_topic_synonym(name)
        || DYNAMIC_EXTRA.contains(&name)
}

/// Whether `name` is a broker-level synonym of a topic config (`log.retention.ms`).
pub fn is_topic_synonym(name: &str) -> bool {
    TOPIC_CONFIGS
        .iter()
        .any(|d| d.synonyms.iter().any(|s| s.name == name))
}

/// Whether a dynamic broker config may set `name`: the topic-config synonyms and a few
/// others strom applies live; names strom does not know at all are kept as Kafka keeps
/// them (stored and described, used by nothing here). Every other known setting is
/// read once at start: Kafka's "Cannot update these configs dynamically".
pub fn is_dynamic(name: &str) -> bool {
    is_topic_synonym(name) || DYNAMIC_EXTRA.contains(&name) || !is_known(name)
}

/// A dynamic group config (KIP-848's `GroupConfig`): its name and the broker settings
/// that give its default and its bounds.
#[derive(Clone, Copy, Debug)]
pub struct GroupConfigDef {
    pub name: &'static str,
    /// The broker setting whose value is the default.
    pub broker_default: &'static str,
    pub min: &'static str,
    pub max: &'static str,
}

/// The group configs of the group types strom serves (consumer groups; share and
/// streams groups are not served, so their configs are unknown here).
pub const GROUP_CONFIGS: &[GroupConfigDef] = &[
    GroupConfigDef {
        name: "consumer.session.timeout.ms",
        broker_default: "group.consumer.session.timeout.ms",
        min: "group.consumer.min.session.timeout.ms",
        max: "group.consumer.max.session.timeout.ms",
    },
    GroupConfigDef {
        name: "consumer.heartbeat.interval.ms",
        broker_default: "group.consumer.heartbeat.interval.ms",
        min: "group.consumer.min.heartbeat.interval.ms",
        max: "group.consumer.max.heartbeat.interval.ms",
    },
];

/// The group config called `name`.
pub fn group_config(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks a group's configs after a change, as Kafka's `GroupConfig.validate` does:
/// names known, values integers within the broker's bounds, heartbeat interval below
/// the session timeout. `broker` gives the broker settings (default when absent).
pub fn validate_group_configs(
    configs: &std::collections::BTreeMap<String, String>,
    broker: impl Fn(&str) -> i64,
) -> Result<(), String> {
    for (k, v) in configs {
        let def = group_config(k).ok_or_else(|| format!("Unknown group config name: {k}"))?;
        let n: i64 = v.trim().parse().map_err(|_| {
            format!("Invalid value {v} for configuration {k}: Not a number of type INT")
        })?;
        let (lo, hi) = (broker(def.min), broker(def.max));
        if n < lo {
            return Err(format!("{k} must be greater than or equal to {}", def.min));
        }
        if n > hi {
            return Err(format!("{k} must be less than or equal to {}", def.max));
        }
    }
    let effective = |def: &GroupConfigDef| {
        configs
            .get(def.name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| broker(def.broker_default))
    };
    let (session, heartbeat) = (effective(&GROUP_CONFIGS[0]), effective(&GROUP_CONFIGS[1]));
    if heartbeat >= session {
        return Err(
            "consumer.heartbeat.interval.ms must be less than consumer.session.timeout.ms".into(),
        );
    }
    Ok(())
}

/// The default of a known broker setting ("" when it has none).
pub fn default_of(name: &str) -> Option<&'static str> {
    KNOWN.iter().find(|(k, _)| *k == name).map(|(_, d)| *d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn topic_synonyms_and_unknown_names_are_dynamic_start_settings_are_not() {
        assert!(is_dynamic("log.retention.ms"));
        assert!(is_dynamic("log.cleanup.policy"));
        assert!(is_dynamic("min.insync.replicas"));
        assert!(
            is_dynamic("background.threads"),
            "unknown to strom: kept as Kafka keeps it"
        );
        assert!(!is_dynamic("node.id"));
        assert!(!is_dynamic("broker.id"));
        assert!(!is_dynamic("listeners"));
        assert!(!is_dynamic("group.consumer.session.timeout.ms"));
    }

    #[test]
    fn group_configs_are_checked_against_the_broker_bounds() {
        let broker = |k: &str| default_of(k).and_then(|v| v.parse().ok()).unwrap_or(0);
        let one = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        assert!(
            validate_group_configs(&one("consumer.session.timeout.ms", "50000"), broker).is_ok()
        );
        let low = validate_group_configs(&one("consumer.session.timeout.ms", "1000"), broker);
        assert!(low.unwrap_err().contains("greater than or equal"));
        let high = validate_group_configs(&one("consumer.heartbeat.interval.ms", "20000"), broker);
        assert!(high.unwrap_err().contains("less than or equal"));
        let name = validate_group_configs(&one("share.record.lock.duration.ms", "1"), broker);
        assert!(name.unwrap_err().contains("Unknown group config name"));
        let nan = validate_group_configs(&one("consumer.session.timeout.ms", "soon"), broker);
        assert!(nan.is_err());
        // Both within bounds, but the heartbeat must come before the session ends.
        let mut both = one("consumer.session.timeout.ms", "45000");
        both.insert("consumer.heartbeat.interval.ms".into(), "15000".into());
        assert!(validate_group_configs(&both, broker).is_ok());
        let tight = |b: &str| {
            if b == "group.consumer.max.heartbeat.interval.ms" {
                60000
            } else {
                broker(b)
            }
        };
        let mut bad = one("consumer.session.timeout.ms", "45000");
        bad.insert("consumer.heartbeat.interval.ms".into(), "45000".into());
        assert!(validate_group_configs(&bad, tight)
            .unwrap_err()
            .contains("must be less than"));
    }
}
