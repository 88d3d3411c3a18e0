//! `kafka-topics`: Kafka's `TopicCommand` — create, list, describe, alter (partitions)
//! and delete topics — with its flags and its output.

use std::collections::BTreeMap;

use clap::Parser;
use regex::Regex;
use strom_client::{
    Admin, ClientError, ConfigResource, ConfigSource, NewTopic, Reassignment, TopicMetadata,
};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-topics",
    about = "Create, delete, describe, or change a topic (Kafka's kafka-topics, served by strom).",
    disable_version_flag = true
)]
struct Args {
    /// REQUIRED: The Kafka server to connect to.
    #[arg(long, value_name = "String: server to connect to")]
    bootstrap_server: Option<String>,
    /// Create a new topic.
    #[arg(long)]
    create: bool,
    /// List all available topics.
    #[arg(long)]
    list: bool,
    /// List details for the given topics.
    #[arg(long)]
    describe: bool,
    /// Alter the number of partitions and replica assignment.
    #[arg(long)]
    alter: bool,
    /// Delete a topic.
    #[arg(long)]
    delete: bool,
    /// The topic to create, alter, describe or delete; a regular expression for list,
    /// describe and delete.
    #[arg(long, value_name = "String: topic")]
    topic: Option<String>,
    /// The number of partitions for the topic being created or altered.
    #[arg(long, value_name = "Integer: # of partitions")]
    partitions: Option<i32>,
    /// The replication factor for each partition in the topic being created.
    #[arg(long, value_name = "Integer: replication factor")]
    replication_factor: Option<i16>,
    /// A topic configuration override for the topic being created (repeatable).
    #[arg(long = "config", value_name = "String: name=value")]
    configs: Vec<String>,
    /// If set when creating topics, the action will only execute if the topic does not
    /// already exist.
    #[arg(long)]
    if_not_exists: bool,
    /// If set when altering or deleting or describing topics, the action will only
    /// execute if the topic exists.
    #[arg(long)]
    if_exists: bool,
    /// Exclude internal topics when listing or describing topics.
    #[arg(long)]
    exclude_internal: bool,
    /// If set when describing topics, only show under-replicated partitions.
    #[arg(long)]
    under_replicated_partitions: bool,
    /// If set when describing topics, only show partitions whose leader is not available.
    #[arg(long)]
    unavailable_partitions: bool,
    /// If set when describing topics, only show partitions whose ISR count is less than
    /// the configured minimum.
    #[arg(long)]
    under_min_isr_partitions: bool,
    /// If set when describing topics, only show partitions whose ISR count is equal to the
    /// configured minimum.
    #[arg(long)]
    at_min_isr_partitions: bool,
    /// If set when describing topics, only show topics that have overridden configs.
    #[arg(long)]
    topics_with_overrides: bool,
    /// Display Kafka version.
    #[arg(long)]
    version: bool,
}

/// Kafka's error line: `Error while executing topic command : <message>`, exit 1.
fn failed(msg: impl std::fmt::Display) -> i32 {
    println!("Error while executing topic command : {msg}");
    1
}

pub async fn run(args: Vec<String>) -> i32 {
    let a: Args = match super::parse("kafka-topics", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if a.version {
        println!("4.0.0 (strom {})", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let actions = [a.create, a.list, a.describe, a.alter, a.delete]
        .iter()
        .filter(|x| **x)
        .count();
    if actions != 1 {
        eprintln!(
            "Command must include exactly one action: --list, --describe, --create, --alter or --delete"
        );
        return 1;
    }
    let Some(bootstrap) = a.bootstrap_server.clone() else {
        eprintln!("Missing required argument \"[bootstrap-server]\"");
        return 1;
    };
    if (a.create || a.alter || a.delete) && a.topic.is_none() {
        eprintln!("Missing required argument \"[topic]\"");
        return 1;
    }
    let conn = super::super::Conn {
        bootstrap_server: bootstrap,
    };
    let client = match super::super::connect(&conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = Admin::new(client);
    if a.create {
        create(&admin, &a).await
    } else if a.list {
        list(&admin, &a).await
    } else if a.describe {
        describe(&admin, &a).await
    } else if a.alter {
        alter(&admin, &a).await
    } else {
        delete(&admin, &a).await
    }
}

async fn create(admin: &Admin, a: &Args) -> i32 {
    let name = a.topic.clone().unwrap_or_default();
    let mut t = NewTopic::new(
        &name,
        a.partitions.unwrap_or(-1),
        a.replication_factor.unwrap_or(-1),
    );
    for kv in &a.configs {
        let Some((k, v)) = kv.split_once('=') else {
            return failed(format!("Invalid topic config: all configs to be added must be in the format \"key=val\" ({kv})."));
        };
        t = t.config(k.trim(), v.trim());
    }
    if name.contains('.') || name.contains('_') {
        println!("WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.");
    }
    match admin.create_topics(vec![t], false).await {
        Ok(rs) => {
            for r in rs {
                match r.error {
                    None => println!("Created topic {}.", r.name),
                    // TOPIC_ALREADY_EXISTS
                    Some(e) if e.code == 36 && a.if_not_exists => {}
                    Some(e) => {
                        return failed(
                            e.message
                                .clone()
                                .filter(|m| !m.is_empty())
                                .unwrap_or_else(|| e.to_string()),
                        )
                    }
                }
            }
            0
        }
        Err(e) => failed(super::message(&e)),
    }
}

/// Topic names matching `--topic` (a regular expression over the whole name, as Kafka's
/// include list) among `all`.
fn matching(a: &Args, all: Vec<TopicMetadata>) -> Result<Vec<TopicMetadata>, String> {
    let re = match &a.topic {
        Some(t) => Some(
            Regex::new(&format!("^(?:{t})$"))
                .map_err(|e| format!("Invalid topic regex {t}: {e}"))?,
        ),
        None => None,
    };
    let mut out: Vec<TopicMetadata> = all
        .into_iter()
        .filter(|t| !(a.exclude_internal && t.is_internal))
        .filter(|t| re.as_ref().is_none_or(|r| r.is_match(&t.name)))
        .collect();
    out.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(out)
}

async fn all_topics(admin: &Admin) -> Result<Vec<TopicMetadata>, ClientError> {
    admin.describe_topics(None).await
}

async fn list(admin: &Admin, a: &Args) -> i32 {
    let all = match all_topics(admin).await {
        Ok(t) => t,
        Err(e) => return failed(super::message(&e)),
    };
    match matching(a, all) {
        Ok(ts) => {
            for t in ts {
                println!("{}", t.name);
            }
            0
        }
        Err(m) => failed(m),
    }
}

fn ids(v: &[i32]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

async fn describe(admin: &Admin, a: &Args) -> i32 {
    let all = match all_topics(admin).await {
        Ok(t) => t,
        Err(e) => return failed(super::message(&e)),
    };
    let topics = match matching(a, all) {
        Ok(t) => t,
        Err(m) => return failed(m),
    };
    if topics.is_empty() && a.topic.is_some() && !a.if_exists {
        return failed(format!(
            "Topic '{}' does not exist as expected",
            a.topic.as_deref().unwrap_or_default()
        ));
    }
    let partition_filter = a.under_replicated_partitions
        || a.unavailable_partitions
        || a.under_min_isr_partitions
        || a.at_min_isr_partitions;
    // Kafka 3.8+ asks DescribeTopicPartitions and prints ELR columns (N/A without it),
    // and shows a reassignment's adding and removing replicas.
    let names: Vec<String> = topics.iter().map(|t| t.name.clone()).collect();
    let elrs = admin.partition_elrs(&names).await.ok().flatten();
    let moving: BTreeMap<(String, i32), Reassignment> = admin
        .list_partition_reassignments()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| ((r.topic.clone(), r.partition), r))
        .collect();
    for t in topics {
        let configs = admin
            .describe_configs(&ConfigResource::Topic(t.name.clone()), None)
            .await
            .unwrap_or_default();
        let overrides: Vec<String> = configs
            .iter()
            .filter(|c| c.source == ConfigSource::DynamicTopic)
            .map(|c| format!("{}={}", c.name, c.value.clone().unwrap_or_default()))
            .collect();
        if a.topics_with_overrides && overrides.is_empty() {
            continue;
        }
        let min_isr: usize = configs
            .iter()
            .find(|c| c.name == "min.insync.replicas")
            .and_then(|c| c.value.as_deref()?.parse().ok())
            .unwrap_or(1);
        let rf = t.partitions.first().map_or(0, |p| p.replicas.len());
        let shown: Vec<_> = t
            .partitions
            .iter()
            .filter(|p| {
                !partition_filter
                    || (a.under_replicated_partitions && p.isr.len() < p.replicas.len())
                    || (a.unavailable_partitions && p.leader < 0)
                    || (a.under_min_isr_partitions && p.isr.len() < min_isr)
                    || (a.at_min_isr_partitions && p.isr.len() == min_isr)
            })
            .collect();
        if partition_filter {
            if shown.is_empty() {
                continue;
            }
        } else {
            println!(
                "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                t.name,
                t.topic_id,
                t.partitions.len(),
                rf,
                overrides.join(",")
            );
        }
        for p in shown {
            let leader = if p.leader < 0 {
                "none".to_string()
            } else {
                p.leader.to_string()
            };
            let key = (t.name.clone(), p.partition);
            let mut line = format!(
                "\tTopic: {}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}",
                t.name,
                p.partition,
                leader,
                ids(&p.replicas),
                ids(&p.isr)
            );
            if let Some(r) = moving.get(&key) {
                line.push_str(&format!(
                    "\tAdding Replicas: {}\tRemoving Replicas: {}",
                    ids(&r.adding),
                    ids(&r.removing)
                ));
            }
            match elrs.as_ref().map(|e| e.get(&key)) {
                Some(Some((elr, last_known))) => line.push_str(&format!(
                    "\tElr: {}\tLastKnownElr: {}",
                    ids(elr),
                    ids(last_known)
                )),
                _ => line.push_str("\tElr: N/A\tLastKnownElr: N/A"),
            }
            println!("{line}");
        }
    }
    0
}

async fn alter(admin: &Admin, a: &Args) -> i32 {
    let name = a.topic.clone().unwrap_or_default();
    if a.replication_factor.is_some() || !a.configs.is_empty() {
        return failed("Option \"[replication-factor]\" and \"[config]\" can't be used with option \"[alter]\"; use kafka-configs to change configs");
    }
    let Some(count) = a.partitions else {
        return failed("--partitions is required to alter a topic");
    };
    let exists = match admin
        .describe_topics(Some(std::slice::from_ref(&name)))
        .await
    {
        Ok(ts) => ts.iter().any(|t| t.error.is_none()),
        Err(e) => return failed(super::message(&e)),
    };
    if !exists {
        if a.if_exists {
            return 0;
        }
        return failed(format!("Topic '{name}' does not exist as expected"));
    }
    match admin
        .create_partitions(&[(name.clone(), count)], false)
        .await
    {
        Ok(rs) => {
            for r in rs {
                if let Some(e) = r.error {
                    return failed(e.message.clone().unwrap_or_else(|| e.to_string()));
                }
            }
            0
        }
        Err(e) => failed(super::message(&e)),
    }
}

async fn delete(admin: &Admin, a: &Args) -> i32 {
    let all = match all_topics(admin).await {
        Ok(t) => t,
        Err(e) => return failed(super::message(&e)),
    };
    let names: Vec<String> = match matching(a, all) {
        Ok(t) => t.into_iter().map(|t| t.name).collect(),
        Err(m) => return failed(m),
    };
    if names.is_empty() {
        if a.if_exists {
            return 0;
        }
        return failed(format!(
            "Topic '{}' does not exist as expected",
            a.topic.as_deref().unwrap_or_default()
        ));
    }
    match admin.delete_topics(&names).await {
        Ok(rs) => {
            for r in rs {
                if let Some(e) = r.error {
                    return failed(e.message.clone().unwrap_or_else(|| e.to_string()));
                }
            }
            0
        }
        Err(e) => failed(super::message(&e)),
    }
}
