//! `/metrics`: the node's counters and its state at the moment of the scrape, in the
//! Prometheus text format. Every family is documented in the README's metric list.
//!
//! Cluster-wide figures (offline partitions, fenced brokers) are this node's view of
//! the metadata log; per-partition figures cover the partitions this node hosts, and
//! the ones about leadership only those it leads, so that summing over nodes counts
//! each partition once.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;

use kafka_protocol::messages::ApiKey;

use super::process::ProcessStats;
use super::text::{Kind, Text};
use super::Metrics;
use crate::broker::Broker;

/// A consumer group this node coordinates.
#[derive(Clone, Debug)]
pub struct GroupView {
    pub id: String,
    pub state: &'static str,
    /// "classic" or "consumer" (KIP-848).
    pub kind: &'static str,
    pub protocol_type: String,
    pub members: usize,
    /// Committed offsets: (topic, partition) → offset.
    pub offsets: BTreeMap<(String, i32), i64>,
}

/// The controller quorum as this node sees it (controllers only).
#[derive(Clone, Debug)]
pub struct QuorumView {
    /// "leader", "follower", "candidate", "learner" or "shutdown".
    pub role: &'static str,
    pub term: u64,
    pub leader: Option<u64>,
    pub last_log_index: Option<u64>,
    pub last_applied_index: Option<u64>,
    pub voters: usize,
}

/// Everything a scrape shows.
pub struct Inputs<'a> {
    pub node_id: i32,
    pub metrics: &'a Metrics,
    pub broker: Option<&'a Broker>,
    pub open_connections: Option<usize>,
    pub quorum: Option<QuorumView>,
    pub groups: &'a [GroupView],
    /// Log end offsets (high watermarks) of the groups' partitions, as their leaders
    /// answered; a partition missing here has no lag series.
    pub log_ends: &'a BTreeMap<(String, i32), i64>,
    pub ready: bool,
    pub process: ProcessStats,
}

fn api_name(key: i16) -> String {
    match ApiKey::try_from(key) {
        Ok(k) => format!("{k:?}"),
        Err(_) => key.to_string(),
    }
}

pub fn render(i: &Inputs) -> String {
    let mut t = Text::default();
    let m = i.metrics;
    let node = i.node_id.to_string();

    t.family(
        "strom_node_ready",
        Kind::Gauge,
        "1 when /health/ready answers 200 (registered, unfenced, caught up with metadata).",
    );
    t.sample("strom_node_ready", &[("node", &node)], i.ready as i64);

    // Requests.
    let requests = m.requests();
    t.family(
        "strom_requests_total",
        Kind::Counter,
        "Kafka requests handled, by API and version.",
    );
    for (k, v, s) in &requests {
        t.sample(
            "strom_requests_total",
            &[("api", &api_name(*k)), ("version", &v.to_string())],
            s.latency.count(),
        );
    }
    t.family(
        "strom_request_duration_seconds",
        Kind::Histogram,
        "Time from a request's last byte read to its answer ready to send (long polls included), by API and version.",
    );
    for (k, v, s) in &requests {
        t.histogram(
            "strom_request_duration_seconds",
            &[("api", &api_name(*k)), ("version", &v.to_string())],
            &s.latency.snapshot(),
        );
    }
    t.family(
        "strom_partition_errors_total",
        Kind::Counter,
        "Partitions answered with an error in Produce and Fetch responses, by API and Kafka error.",
    );
    for ((api, code), n) in m.partition_error_counts() {
        let name = strom_client::error::error_name(code);
        t.sample(
            "strom_partition_errors_total",
            &[
                ("api", &api_name(api)),
                ("error", name),
                ("code", &code.to_string()),
            ],
            n,
        );
    }

    // Connections.
    if let Some(open) = i.open_connections {
        t.family(
            "strom_connections",
            Kind::Gauge,
            "Open client connections on the Kafka listeners.",
        );
        t.sample("strom_connections", &[], open);
    }
    t.family(
        "strom_connections_accepted_total",
        Kind::Counter,
        "Client connections accepted on the Kafka listeners.",
    );
    t.sample(
        "strom_connections_accepted_total",
        &[],
        m.connections_accepted.load(Relaxed),
    );
    t.family(
        "strom_connections_refused_total",
        Kind::Counter,
        "Client connections closed at once because of a limit, by setting.",
    );
    for (limit, n) in m.connections_refused() {
        t.sample("strom_connections_refused_total", &[("limit", limit)], n);
    }

    if let Some(b) = i.broker {
        broker_families(&mut t, i, b);
    }
    if let Some(q) = &i.quorum {
        quorum_families(&mut t, q);
    }
    process_families(&mut t, &i.process);
    t.finish()
}

fn broker_families(t: &mut Text, i: &Inputs, b: &Broker) {
    let m = i.metrics;
    let img = b.cache.image();

    // Throughput per topic.
    let topics = m.topics(|name| img.topic_ids.contains_key(name));
    type Field = fn(&super::TopicStats) -> &std::sync::atomic::AtomicU64;
    let per_topic: [(&str, &str, Field); 6] = [
        (
            "strom_topic_bytes_in_total",
            "Record batch bytes producers wrote to partitions this node leads, by topic.",
            |s| &s.bytes_in,
        ),
        (
            "strom_topic_records_in_total",
            "Records producers wrote to partitions this node leads, by topic.",
            |s| &s.records_in,
        ),
        (
            "strom_topic_bytes_out_total",
            "Record batch bytes sent to consumers, by topic.",
            |s| &s.bytes_out,
        ),
        (
            "strom_topic_records_out_total",
            "Records sent to consumers (counted from the batch headers), by topic.",
            |s| &s.records_out,
        ),
        (
            "strom_topic_replication_bytes_out_total",
            "Record batch bytes sent to follower replicas, by topic.",
            |s| &s.replication_bytes_out,
        ),
        (
            "strom_topic_replication_bytes_in_total",
            "Record batch bytes this node fetched as a follower, by topic.",
            |s| &s.replication_bytes_in,
        ),
    ];
    for (name, help, field) in per_topic {
        t.family(name, Kind::Counter, help);
        for (topic, s) in &topics {
            t.sample(name, &[("topic", topic)], field(s).load(Relaxed));
        }
    }

    // Partitions hosted here.
    let hosted = b.replicas.all();
    let mut led = 0usize;
    let mut under_replicated = 0usize;
    let mut under_min_isr = 0usize;
    let mut at_min_isr = 0usize;
    let mut size_by_topic: BTreeMap<&str, u64> = BTreeMap::new();
    let mut rows = Vec::new();
    for p in &hosted {
        let s = p.state();
        let size = p.log.size();
        *size_by_topic.entry(p.topic.as_str()).or_default() += size;
        let leader = p.is_leader();
        if leader {
            led += 1;
            if s.isr.len() < s.replicas.len() {
                under_replicated += 1;
            }
            // Kafka's effective min ISR: min.insync.replicas capped at the replica count.
            let min = (p.min_isr().max(1) as usize).min(s.replicas.len().max(1));
            if s.isr.len() < min {
                under_min_isr += 1;
            } else if s.isr.len() == min {
                at_min_isr += 1;
            }
        }
        rows.push((p, leader, size));
    }
    t.family(
        "strom_partitions",
        Kind::Gauge,
        "Partition replicas this node hosts, and those it leads.",
    );
    t.sample("strom_partitions", &[("role", "hosted")], hosted.len());
    t.sample("strom_partitions", &[("role", "leader")], led);
    t.family(
        "strom_under_replicated_partitions",
        Kind::Gauge,
        "Partitions this node leads whose ISR is smaller than their replica set.",
    );
    t.sample("strom_under_replicated_partitions", &[], under_replicated);
    t.family(
        "strom_under_min_isr_partitions",
        Kind::Gauge,
        "Partitions this node leads whose ISR is smaller than min.insync.replicas (acks=all writes fail).",
    );
    t.sample("strom_under_min_isr_partitions", &[], under_min_isr);
    t.family(
        "strom_at_min_isr_partitions",
        Kind::Gauge,
        "Partitions this node leads whose ISR is exactly min.insync.replicas.",
    );
    t.sample("strom_at_min_isr_partitions", &[], at_min_isr);
    t.family(
        "strom_isr_shrinks_total",
        Kind::Counter,
        "ISR shrinks the controller accepted from this node as leader.",
    );
    t.sample("strom_isr_shrinks_total", &[], m.isr_shrinks.load(Relaxed));
    t.family(
        "strom_isr_expands_total",
        Kind::Counter,
        "ISR expansions the controller accepted from this node as leader.",
    );
    t.sample("strom_isr_expands_total", &[], m.isr_expands.load(Relaxed));
    t.family(
        "strom_topic_log_size_bytes",
        Kind::Gauge,
        "Bytes on disk of the partition replicas this node hosts, by topic.",
    );
    for (topic, size) in &size_by_topic {
        t.sample("strom_topic_log_size_bytes", &[("topic", topic)], *size);
    }
    if m.partition_detail {
        let families: [(&str, &str); 4] = [
            (
                "strom_partition_log_start_offset",
                "First offset of a hosted partition replica's log.",
            ),
            (
                "strom_partition_log_end_offset",
                "Offset after the last record of a hosted partition replica's log.",
            ),
            (
                "strom_partition_high_watermark",
                "High watermark of a hosted partition replica.",
            ),
            (
                "strom_partition_log_size_bytes",
                "Bytes on disk of a hosted partition replica.",
            ),
        ];
        for (fi, (name, help)) in families.iter().enumerate() {
            t.family(name, Kind::Gauge, help);
            for (p, leader, size) in &rows {
                let o = p.log.offsets();
                let v = match fi {
                    0 => o.log_start,
                    1 => o.log_end,
                    2 => o.high_watermark,
                    _ => *size as i64,
                };
                let part = p.index.to_string();
                let role = if *leader { "leader" } else { "follower" };
                t.sample(
                    name,
                    &[("topic", &p.topic), ("partition", &part), ("role", role)],
                    v,
                );
            }
        }
    }

    // The cluster, as this node's metadata shows it.
    let mut offline = 0usize;
    let mut total = 0usize;
    for topic in img.topics.values() {
        for p in topic.partitions.values() {
            total += 1;
            if p.leader < 0 {
                offline += 1;
            }
        }
    }
    t.family(
        "strom_cluster_partitions",
        Kind::Gauge,
        "Partitions in the cluster (this node's view of the metadata log).",
    );
    t.sample("strom_cluster_partitions", &[], total);
    t.family(
        "strom_cluster_offline_partitions",
        Kind::Gauge,
        "Partitions without a leader (this node's view of the metadata log).",
    );
    t.sample("strom_cluster_offline_partitions", &[], offline);
    let fenced = img.brokers.values().filter(|r| r.fenced).count();
    t.family(
        "strom_cluster_brokers",
        Kind::Gauge,
        "Registered brokers by state (this node's view of the metadata log).",
    );
    t.sample(
        "strom_cluster_brokers",
        &[("state", "unfenced")],
        img.brokers.len() - fenced,
    );
    t.sample("strom_cluster_brokers", &[("state", "fenced")], fenced);
    t.family(
        "strom_metadata_applied_offset",
        Kind::Gauge,
        "Offset of the last metadata record this node applied.",
    );
    t.sample("strom_metadata_applied_offset", &[], b.cache.applied());

    // Consumer groups this node coordinates.
    let mut states: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for g in i.groups {
        *states.entry((g.kind, g.state)).or_default() += 1;
    }
    t.family(
        "strom_groups",
        Kind::Gauge,
        "Consumer groups this node coordinates, by type and state.",
    );
    for ((kind, state), n) in &states {
        t.sample("strom_groups", &[("type", kind), ("state", state)], *n);
    }
    t.family(
        "strom_group_members",
        Kind::Gauge,
        "Members of a consumer group this node coordinates.",
    );
    for g in i.groups {
        t.sample("strom_group_members", &[("group", &g.id)], g.members);
    }
    let mut by_topic: BTreeMap<(&str, &str), i64> = BTreeMap::new();
    let mut by_partition = Vec::new();
    for g in i.groups {
        for ((topic, partition), committed) in &g.offsets {
            let Some(end) = i.log_ends.get(&(topic.clone(), *partition)) else {
                continue;
            };
            let lag = (end - committed).max(0);
            *by_topic.entry((&g.id, topic)).or_default() += lag;
            by_partition.push((&g.id, topic, *partition, lag));
        }
    }
    t.family(
        "strom_group_lag",
        Kind::Gauge,
        "Records between a group's committed offsets and the log end, summed over a topic's partitions.",
    );
    for ((g, topic), lag) in &by_topic {
        t.sample("strom_group_lag", &[("group", g), ("topic", topic)], *lag);
    }
    if m.partition_detail {
        t.family(
            "strom_group_partition_lag",
            Kind::Gauge,
            "Records between a group's committed offset of a partition and its log end.",
        );
        for (g, topic, partition, lag) in &by_partition {
            let part = partition.to_string();
            t.sample(
                "strom_group_partition_lag",
                &[("group", g), ("topic", topic), ("partition", &part)],
                *lag,
            );
        }
    }
}

fn quorum_families(t: &mut Text, q: &QuorumView) {
    t.family(
        "strom_quorum_role",
        Kind::Gauge,
        "1 for this controller's role in the metadata quorum.",
    );
    t.sample("strom_quorum_role", &[("role", q.role)], 1i64);
    t.family(
        "strom_quorum_term",
        Kind::Gauge,
        "The metadata quorum's current term as this controller knows it.",
    );
    t.sample("strom_quorum_term", &[], q.term);
    t.family(
        "strom_quorum_leader",
        Kind::Gauge,
        "Node id of the quorum leader this controller knows, -1 when none.",
    );
    t.sample(
        "strom_quorum_leader",
        &[],
        q.leader.map(|l| l as i64).unwrap_or(-1),
    );
    t.family(
        "strom_quorum_voters",
        Kind::Gauge,
        "Voters in the metadata quorum.",
    );
    t.sample("strom_quorum_voters", &[], q.voters);
    if let Some(v) = q.last_log_index {
        t.family(
            "strom_quorum_last_log_index",
            Kind::Gauge,
            "Index of the last entry in this controller's Raft log.",
        );
        t.sample("strom_quorum_last_log_index", &[], v);
    }
    if let Some(v) = q.last_applied_index {
        t.family(
            "strom_quorum_last_applied_index",
            Kind::Gauge,
            "Index of the last committed Raft entry this controller applied.",
        );
        t.sample("strom_quorum_last_applied_index", &[], v);
    }
}

fn process_families(t: &mut Text, p: &ProcessStats) {
    if let Some(v) = p.cpu_seconds {
        t.family(
            "strom_process_cpu_seconds_total",
            Kind::Counter,
            "User and system CPU time of the process.",
        );
        t.sample("strom_process_cpu_seconds_total", &[], v);
    }
    let gauges: [(&str, &str, Option<f64>); 6] = [
        (
            "strom_process_resident_memory_bytes",
            "Resident memory of the process.",
            p.resident_bytes.map(|v| v as f64),
        ),
        (
            "strom_process_virtual_memory_bytes",
            "Virtual memory of the process.",
            p.virtual_bytes.map(|v| v as f64),
        ),
        (
            "strom_process_open_fds",
            "Open file descriptors of the process.",
            p.open_fds.map(|v| v as f64),
        ),
        (
            "strom_process_max_fds",
            "The process's limit on open file descriptors.",
            p.max_fds.map(|v| v as f64),
        ),
        (
            "strom_process_start_time_seconds",
            "Start time of the process, seconds since the Unix epoch.",
            p.start_time_seconds,
        ),
        (
            "strom_process_threads",
            "Threads of the process.",
            p.threads.map(|v| v as f64),
        ),
    ];
    for (name, help, v) in gauges {
        if let Some(v) = v {
            t.family(name, Kind::Gauge, help);
            t.sample(name, &[], v);
        }
    }
}
