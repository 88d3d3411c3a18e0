//! The topic configs strom knows, with Kafka's names, types, defaults and the broker
//! settings that provide their defaults (Kafka's "synonyms").
//!
//! The controller validates `CreateTopics`/`AlterConfigs` against this table; the broker
//! resolves effective values and answers `DescribeConfigs` from it. It must not read any
//! state: callers pass the broker's static settings in.

use std::collections::BTreeMap;

/// A config's type as `DescribeConfigs` v3+ reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigType {
    Boolean,
    String,
    Int,
    Short,
    Long,
    Double,
    List,
    Class,
    Password,
}

impl ConfigType {
    /// The `config_type` code of `DescribeConfigsResponse`.
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Class => 8,
            ConfigType::Password => 9,
        }
    }
}

/// A broker setting that gives a topic config its default, with the factor that turns the
/// broker value into the topic config's unit (`log.retention.hours` × 3 600 000 = ms).
#[derive(Clone, Copy, Debug)]
pub struct Synonym {
    pub name: &'static str,
    pub factor: i64,
}

const fn syn(name: &'static str) -> Synonym {
    Synonym { name, factor: 1 }
}

const fn syn_x(name: &'static str, factor: i64) -> Synonym {
    Synonym { name, factor }
}

/// Constraints on a value beyond its type.
#[derive(Clone, Copy, Debug)]
pub enum Rule {
    None,
    AtLeast(i64),
    Between(i64, i64),
    RatioBetween(f64, f64),
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
}

/// One topic config.
#[derive(Clone, Copy, Debug)]
pub struct TopicConfigDef {
    pub name: &'static str,
    pub ty: ConfigType,
    pub default: &'static str,
    /// Broker settings providing the default, most specific first (Kafka's order).
    pub synonyms: &'static [Synonym],
    pub rule: Rule,
}

const LONG_MAX: &str = "9223372036854775807";
const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];

/// Every topic config strom accepts, sorted by name.
pub static TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        ty: ConfigType::List,
        default: "delete",
        synonyms: &[syn("log.cleanup.policy")],
        rule: Rule::ListOf(&["delete", "compact"]),
    },
    TopicConfigDef {
        name: "compression.type",
        ty: ConfigType::String,
        default: "producer",
        synonyms: &[syn("compression.type")],
        rule: Rule::OneOf(COMPRESSION),
    },
    TopicConfigDef {
        name: "delete.retention.ms",
        ty: ConfigType::Long,
        default: "86400000",
        synonyms: &[syn("log.cleaner.delete.retention.ms")],
        rule: Rule::AtLeast(0),
    },
    TopicConfigDef {
        name: "file.delete.delay.ms",
        ty: ConfigType::Long,
        default: "60000",
        synonyms: &[syn("log.segment.delete.delay.ms")],
        rule: Rule::AtLeast(0),
    },
    TopicConfigDef {
        name: "flush.messages",
        ty: ConfigType::Long,
        default: LONG_MAX,
        synonyms: &[syn("log.flush.interval.messages")],
        rule: Rule::AtLeast(1),
    },
    TopicConfigDef {
        name: "flush.ms",
        ty: ConfigType::Long,
        default: LONG_MAX,
        synonyms: &[syn("log.flush.interval.ms")],
        rule: Rule::AtLeast(0),
    },
    TopicConfigDef {
        name: "index.interval.bytes",
        ty: ConfigType::Int,
        default: "4096",
        synonyms: &[syn("log.index.interval.bytes")],
        rule: Rule::AtLeast(0),
    },
    TopicConfigDef {
        name: "max.compaction.lag.ms",
        ty: ConfigType::Long,
        default: LONG_MAX,
        synonyms: &[syn("log.cleaner.max.compaction.lag.ms")],
        rule: Rule::AtLeast(1),
    },
    TopicConfigDef {
        name: "max.message.bytes",
        ty: ConfigType::Int,
        default: "1048588",
        synonyms: &[syn("message.max.bytes")],
        rule: Rule::AtLeast(0),
    },
    TopicConfigDef {
        name: "message.timestamp.after.max.ms",
        ty: ConfigType::Long,
        // Kafka 4.0 (KIP-1030): one hour; it was Long.MAX_VALUE before.
        default: "3600000",
        synonyms: &[syn("log.message.timestamp.after.max.ms")],
        rule: Rule::AtLeast(0),
    },
    TopicConfigDef {
        name: "message.timestamp.before.max.ms",
        ty: ConfigType::Long,
        default: LONG_MAX,
        synonyms: &[syn("log.message.timestamp.before.max.ms")],
        rule: Rule::AtLeast(0),
    },
    TopicConfigDef {
        name: "message.timestamp.type",
        ty: ConfigType::String,
        default: "CreateTime",
        synonyms: &[syn("log.message.timestamp.type")],
        rule: Rule::OneOf(&["CreateTime", "LogAppendTime"]),
    },
    TopicConfigDef {
        name: "min.cleanable.dirty.ratio",
        ty: ConfigType::Double,
        default: "0.5",
        synonyms: &[syn("log.cleaner.min.cleanable.ratio")],
        rule: Rule::RatioBetween(0.0, 1.0),
    },
    TopicConfigDef {
        name: "min.compaction.lag.ms",
        ty: ConfigType::Long,
        default: "0",
        synonyms: &[syn("log.cleaner.min.compaction.lag.ms")],
        rule: Rule::AtLeast(0),
    },
    TopicConfigDef {
        name: "min.insync.replicas",
        ty: ConfigType::Int,
        default: "1",
        synonyms: &[syn("min.insync.replicas")],
        rule: Rule::AtLeast(1),
    },
    TopicConfigDef {
        name: "preallocate",
        ty: ConfigType::Boolean,
        default: "false",
        synonyms: &[syn("log.preallocate")],
        rule: Rule::None,
    },
    TopicConfigDef {
        name: "retention.bytes",
        ty: ConfigType::Long,
        default: "-1",
        synonyms: &[syn("log.retention.bytes")],
        rule: Rule::AtLeast(-1),
    },
    TopicConfigDef {
        name: "retention.ms",
        ty: ConfigType::Long,
        default: "604800000",
        synonyms: &[
            syn("log.retention.ms"),
            syn_x("log.retention.minutes", 60_000),
            syn_x("log.retention.hours", 3_600_000),
        ],
        rule: Rule::AtLeast(-1),
    },
    TopicConfigDef {
        name: "segment.bytes",
        ty: ConfigType::Int,
        default: "1073741824",
        synonyms: &[syn("log.segment.bytes")],
        rule: Rule::AtLeast(14),
    },
    TopicConfigDef {
        name: "segment.index.bytes",
        ty: ConfigType::Int,
        default: "10485760",
        synonyms: &[syn("log.index.size.max.bytes")],
        rule: Rule::AtLeast(4),
    },
    TopicConfigDef {
        name: "segment.jitter.ms",
        ty: ConfigType::Long,
        default: "0",
        synonyms: &[
            syn("log.roll.jitter.ms"),
            syn_x("log.roll.jitter.hours", 3_600_000),
        ],
        rule: Rule::AtLeast(0),
    },
    TopicConfigDef {
        name: "segment.ms",
        ty: ConfigType::Long,
        default: "604800000",
        synonyms: &[syn("log.roll.ms"), syn_x("log.roll.hours", 3_600_000)],
        rule: Rule::AtLeast(1),
    },
    TopicConfigDef {
        name: "unclean.leader.election.enable",
        ty: ConfigType::Boolean,
        default: "false",
        synonyms: &[syn("unclean.leader.election.enable")],
        rule: Rule::None,
    },
];

/// The definition of a topic config, if strom knows it.
pub fn lookup(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Why a config value was refused; the text goes into Kafka's error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig(pub String);

impl std::fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidConfig {}

/// Checks one topic config name and value as Kafka's `LogConfig.validate` would.
/// A boolean config value as Kafka reads it (`true`/`false`, any case).
pub fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("true") {
        Some(true)
    } else if v.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

pub fn validate(name: &str, value: &str) -> Result<(), InvalidConfig> {
    let def =
        lookup(name).ok_or_else(|| InvalidConfig(format!("Unknown topic config name: {name}")))?;
    check_value(def, value).map_err(|why| {
        InvalidConfig(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    })
}

fn check_value(def: &TopicConfigDef, value: &str) -> Result<(), String> {
    let v = value.trim();
    match def.ty {
        ConfigType::Boolean => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return Err("Expected value to be either true or false".into());
            }
        }
        ConfigType::Int | ConfigType::Short | ConfigType::Long => {
            let n: i64 = v.parse().map_err(|_| "Not a number".to_string())?;
            if def.ty == ConfigType::Int && i32::try_from(n).is_err() {
                return Err("Not a 32-bit integer".into());
            }
            match def.rule {
                Rule::AtLeast(min) if n < min => {
                    return Err(format!("Value must be at least {min}"))
                }
                Rule::Between(lo, hi) if n < lo || n > hi => {
                    return Err(format!("Value must be in [{lo}, {hi}]"))
                }
                _ => {}
            }
        }
        ConfigType::Double => {
            let x: f64 = v.parse().map_err(|_| "Not a number".to_string())?;
            if let Rule::RatioBetween(lo, hi) = def.rule {
                if !(lo..=hi).contains(&x) {
                    return Err(format!("Value must be in [{lo}, {hi}]"));
                }
            }
        }
        ConfigType::String | ConfigType::Class | ConfigType::Password => {
            if let Rule::OneOf(allowed) = def.rule {
                if !allowed.contains(&v) {
                    return Err(format!("String must be one of: {}", allowed.join(", ")));
                }
            }
        }
        ConfigType::List => {
            if let Rule::ListOf(allowed) = def.rule {
                let items: Vec<&str> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                // Empty is allowed (Kafka 4.0, KIP-1030): `cleanup.policy=""` keeps the log
                // forever, neither deleted nor compacted.
                if let Some(bad) = items.iter().find(|i| !allowed.contains(i)) {
                    return Err(format!("{bad} is not one of: {}", allowed.join(", ")));
                }
            }
        }
    }
    Ok(())
}

/// Where an effective value came from, as `DescribeConfigs` v1+ reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic,
    DynamicBroker,
    /// A cluster-wide dynamic broker config (Kafka's `--entity-default`).
    DynamicDefaultBroker,
    StaticBroker,
    Default,
    /// A group's own dynamic config (KIP-848).
    GroupConfig,
}

impl ConfigSource {
    pub fn kafka_code(self) -> i8 {
        match self {
            ConfigSource::DynamicTopic => 1,
            ConfigSource::DynamicBroker => 2,
            ConfigSource::DynamicDefaultBroker => 3,
            ConfigSource::StaticBroker => 4,
            ConfigSource::Default => 5,
            ConfigSource::GroupConfig => 8,
        }
    }
}

/// One entry of a config's synonym chain, most specific first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedSynonym {
    pub name: String,
    pub value: String,
    pub source: ConfigSource,
}

/// A topic config's effective value and how it was reached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub value: String,
    pub source: ConfigSource,
    pub synonyms: Vec<ResolvedSynonym>,
}

/// Resolves `def` for a topic: the topic's override, else the first broker synonym the
/// broker's static settings give, else the default.
pub fn resolve(
    def: &TopicConfigDef,
    topic_overrides: &BTreeMap<String, String>,
    broker_settings: &BTreeMap<String, String>,
) -> Resolved {
    resolve_layers(
        def,
        topic_overrides,
        &BrokerLayers {
            static_settings: broker_settings,
            ..BrokerLayers::default()
        },
    )
}

/// The broker-side layers a topic config falls back on, most specific first: this
/// broker's dynamic configs, the cluster-wide dynamic configs, the static settings.
#[derive(Clone, Copy, Debug)]
pub struct BrokerLayers<'a> {
    pub per_broker: &'a BTreeMap<String, String>,
    pub cluster: &'a BTreeMap<String, String>,
    pub static_settings: &'a BTreeMap<String, String>,
}

static EMPTY: BTreeMap<String, String> = BTreeMap::new();

impl Default for BrokerLayers<'_> {
    fn default() -> Self {
        BrokerLayers {
            per_broker: &EMPTY,
            cluster: &EMPTY,
            static_settings: &EMPTY,
        }
    }
}

impl BrokerLayers<'_> {
    /// The value of a broker setting from the most specific layer that has it.
    pub fn get(&self, name: &str) -> Option<&String> {
        self.per_broker
            .get(name)
            .or_else(|| self.cluster.get(name))
            .or_else(|| self.static_settings.get(name))
    }
}

/// Resolves `def` in Kafka's order: the topic's override, this broker's dynamic
/// configs, the cluster-wide dynamic configs, the static settings (each layer's
/// synonyms in turn), the default.
pub fn resolve_layers(
    def: &TopicConfigDef,
    topic_overrides: &BTreeMap<String, String>,
    broker: &BrokerLayers<'_>,
) -> Resolved {
    let mut synonyms = Vec::new();
    if let Some(v) = topic_overrides.get(def.name) {
        synonyms.push(ResolvedSynonym {
            name: def.name.to_string(),
            value: v.clone(),
            source: ConfigSource::DynamicTopic,
        });
    }
    for (layer, source) in [
        (broker.per_broker, ConfigSource::DynamicBroker),
        (broker.cluster, ConfigSource::DynamicDefaultBroker),
        (broker.static_settings, ConfigSource::StaticBroker),
    ] {
        for s in def.synonyms {
            if let Some(v) = layer.get(s.name) {
                synonyms.push(ResolvedSynonym {
                    name: s.name.to_string(),
                    value: v.clone(),
                    source,
                });
            }
        }
    }
    if let Some(first) = def.synonyms.first() {
        synonyms.push(ResolvedSynonym {
            name: first.name.to_string(),
            value: def.default.to_string(),
            source: ConfigSource::Default,
        });
    }
    let (value, source) = match synonyms.first() {
        Some(s)
            if matches!(
                s.source,
                ConfigSource::StaticBroker
                    | ConfigSource::DynamicDefaultBroker
                    | ConfigSource::DynamicBroker
            ) =>
        {
            let factor = def
                .synonyms
                .iter()
                .find(|x| x.name == s.name)
                .map_or(1, |x| x.factor);
            (scale(&s.value, factor), s.source)
        }
        Some(s) => (s.value.clone(), s.source),
        None => (def.default.to_string(), ConfigSource::Default),
    };
    Resolved {
        value,
        source,
        synonyms,
    }
}

fn scale(value: &str, factor: i64) -> String {
    if factor == 1 {
        return value.to_string();
    }
    match value.trim().parse::<i64>() {
        Ok(n) if n < 0 => n.to_string(),
        Ok(n) => n.saturating_mul(factor).to_string(),
        Err(_) => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_defaults_are_valid() {
        for w in TOPIC_CONFIGS.windows(2) {
            assert!(w[0].name < w[1].name, "{} before {}", w[0].name, w[1].name);
        }
        for d in TOPIC_CONFIGS {
            validate(d.name, d.default).unwrap_or_else(|e| panic!("default of {}: {e}", d.name));
        }
    }

    #[test]
    fn validate_refuses_bad_values() {
        assert!(validate("retention.ms", "abc").is_err());
        assert!(validate("retention.ms", "-2").is_err());
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "shred").is_err());
        assert!(validate("cleanup.policy", "").is_ok());
        assert!(validate("compression.type", "brotli").is_err());
        assert!(validate("segment.bytes", "99999999999").is_err());
        assert!(validate("no.such.config", "1").is_err());
        assert!(validate("min.cleanable.dirty.ratio", "1.5").is_err());
        assert!(validate("preallocate", "yes").is_err());
    }

    #[test]
    fn dynamic_broker_configs_beat_the_static_ones_but_not_the_topics() {
        let def = lookup("min.insync.replicas").unwrap();
        let mut broker = BTreeMap::new();
        broker.insert("min.insync.replicas".to_string(), "1".to_string());
        let mut cluster = BTreeMap::new();
        cluster.insert("min.insync.replicas".to_string(), "2".to_string());
        let mut per_broker = BTreeMap::new();
        let mut topic = BTreeMap::new();
        type Map = BTreeMap<String, String>;
        let layered = |def, topic: &Map, per_broker: &Map| {
            let layers = BrokerLayers {
                per_broker,
                cluster: &cluster,
                static_settings: &broker,
            };
            resolve_layers(def, topic, &layers)
        };
        let r = layered(def, &topic, &per_broker);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("2", ConfigSource::DynamicDefaultBroker)
        );
        let chain: Vec<_> = r.synonyms.iter().map(|s| s.source).collect();
        assert_eq!(
            chain,
            [
                ConfigSource::DynamicDefaultBroker,
                ConfigSource::StaticBroker,
                ConfigSource::Default
            ]
        );
        // This broker's own dynamic config beats the cluster-wide one.
        per_broker.insert("min.insync.replicas".to_string(), "3".to_string());
        let r = layered(def, &topic, &per_broker);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("3", ConfigSource::DynamicBroker)
        );
        assert_eq!(r.synonyms.len(), 4);
        topic.insert("min.insync.replicas".to_string(), "1".to_string());
        let r = layered(def, &topic, &per_broker);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("1", ConfigSource::DynamicTopic)
        );
        // A per-broker synonym in hours is scaled like a static one.
        let retention = lookup("retention.ms").unwrap();
        let hours = BTreeMap::from([("log.retention.hours".to_string(), "2".to_string())]);
        let r = layered(retention, &BTreeMap::new(), &hours);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("7200000", ConfigSource::DynamicBroker)
        );
    }

    #[test]
    fn resolve_prefers_topic_then_broker_then_default() {
        let def = lookup("retention.ms").unwrap();
        let mut broker = BTreeMap::new();
        let mut topic = BTreeMap::new();
        let r = resolve(def, &topic, &broker);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("604800000", ConfigSource::Default)
        );

        broker.insert("log.retention.hours".to_string(), "1".to_string());
        let r = resolve(def, &topic, &broker);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("3600000", ConfigSource::StaticBroker)
        );
        assert_eq!(r.synonyms[0].name, "log.retention.hours");

        topic.insert("retention.ms".to_string(), "5".to_string());
        let r = resolve(def, &topic, &broker);
        assert_eq!(
            (r.value.as_str(), r.source),
            ("5", ConfigSource::DynamicTopic)
        );
        assert_eq!(r.synonyms.len(), 3);
    }
}
