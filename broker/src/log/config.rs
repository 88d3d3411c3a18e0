//! A partition log's effective settings, resolved from the topic's dynamic configs and
//! the broker's static settings through `strom_common::topic_config` (Kafka's rules).

use std::collections::BTreeMap;

use strom_common::topic_config::{lookup, resolve_layers, BrokerLayers};

/// Effective topic configs, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_jitter_ms: i64,
    pub segment_index_bytes: u64,
    pub index_interval_bytes: u32,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub max_message_bytes: usize,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub cleanup_delete: bool,
    pub cleanup_compact: bool,
    pub log_append_time: bool,
    pub timestamp_before_max_ms: i64,
    pub timestamp_after_max_ms: i64,
    pub min_insync_replicas: i32,
    pub compression_type: String,
    pub delete_retention_ms: i64,
    pub min_compaction_lag_ms: i64,
    pub min_cleanable_dirty_ratio: f64,
    /// `log.cleaner.dedupe.buffer.size` (broker-wide, 128 MiB): the most memory one
    /// compaction's key map may take; a log with more keys is cleaned in parts.
    pub cleaner_dedupe_buffer_bytes: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::resolve(&BTreeMap::new(), &BTreeMap::new())
    }
}

fn get(name: &str, topic: &BTreeMap<String, String>, broker: &BrokerLayers<'_>) -> String {
    let def = lookup(name).unwrap_or_else(|| panic!("{name} is in the topic config table"));
    resolve_layers(def, topic, broker).value
}

fn num(name: &str, topic: &BTreeMap<String, String>, broker: &BrokerLayers<'_>) -> i64 {
    let v = get(name, topic, broker);
    v.trim().parse().unwrap_or_else(|_| {
        let def = lookup(name).expect("known");
        tracing::warn!(config = name, value = %v, "not a number; using the default");
        def.default.parse().unwrap_or(0)
    })
}

impl LogConfig {
    /// Resolves every setting for a topic with `topic` overrides on static `broker`
    /// settings.
    pub fn resolve(
        topic: &BTreeMap<String, String>,
        broker: &BTreeMap<String, String>,
    ) -> LogConfig {
        LogConfig::resolve_layers(
            topic,
            &BrokerLayers {
                static_settings: broker,
                ..BrokerLayers::default()
            },
        )
    }

    /// Resolves every setting for a topic with `topic` overrides on the broker's
    /// dynamic and static layers.
    pub fn resolve_layers(
        topic: &BTreeMap<String, String>,
        broker: &BrokerLayers<'_>,
    ) -> LogConfig {
        let policy = get("cleanup.policy", topic, broker);
        LogConfig {
            segment_bytes: num("segment.bytes", topic, broker).max(14) as u64,
            segment_ms: num("segment.ms", topic, broker).max(1),
            segment_jitter_ms: num("segment.jitter.ms", topic, broker).max(0),
            segment_index_bytes: num("segment.index.bytes", topic, broker).max(8) as u64,
            index_interval_bytes: num("index.interval.bytes", topic, broker)
                .clamp(0, u32::MAX as i64) as u32,
            retention_ms: num("retention.ms", topic, broker),
            retention_bytes: num("retention.bytes", topic, broker),
            max_message_bytes: num("max.message.bytes", topic, broker).max(0) as usize,
            flush_messages: num("flush.messages", topic, broker).max(1),
            flush_ms: num("flush.ms", topic, broker).max(0),
            cleanup_delete: policy.split(',').any(|p| p.trim() == "delete"),
            cleanup_compact: policy.split(',').any(|p| p.trim() == "compact"),
            log_append_time: get("message.timestamp.type", topic, broker) == "LogAppendTime",
            timestamp_before_max_ms: num("message.timestamp.before.max.ms", topic, broker),
            timestamp_after_max_ms: num("message.timestamp.after.max.ms", topic, broker),
            min_insync_replicas: num("min.insync.replicas", topic, broker).clamp(1, i32::MAX as i64)
                as i32,
            compression_type: get("compression.type", topic, broker),
            delete_retention_ms: num("delete.retention.ms", topic, broker),
            min_compaction_lag_ms: num("min.compaction.lag.ms", topic, broker),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio", topic, broker)
                .trim()
                .parse()
                .unwrap_or(0.5),
            cleaner_dedupe_buffer_bytes: broker
                .get("log.cleaner.dedupe.buffer.size")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(128 << 20)
                .max(1 << 20) as usize,
        }
    }

    /// The most index entries a segment may hold before it rolls.
    pub fn max_index_entries(&self) -> usize {
        (self.segment_index_bytes / 8) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafkas_and_overrides_apply() {
        let c = LogConfig::default();
        assert_eq!(c.segment_bytes, 1 << 30);
        assert_eq!(c.retention_ms, 7 * 24 * 3600 * 1000);
        assert_eq!(c.max_message_bytes, 1048588);
        assert!(c.cleanup_delete && !c.cleanup_compact);
        let mut t = BTreeMap::new();
        t.insert("cleanup.policy".to_string(), "compact,delete".to_string());
        t.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        let mut b = BTreeMap::new();
        b.insert("log.segment.bytes".to_string(), "1000".to_string());
        let c = LogConfig::resolve(&t, &b);
        assert!(c.cleanup_delete && c.cleanup_compact && c.log_append_time);
        assert_eq!(c.segment_bytes, 1000);
    }

    #[test]
    fn an_empty_cleanup_policy_keeps_everything() {
        // Kafka 4.0 (KIP-1030): neither deleted nor compacted.
        let mut t = BTreeMap::new();
        t.insert("cleanup.policy".to_string(), String::new());
        let c = LogConfig::resolve(&t, &BTreeMap::new());
        assert!(!c.cleanup_delete && !c.cleanup_compact);
    }
}
