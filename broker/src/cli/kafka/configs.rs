//! `kafka-configs`: Kafka's `ConfigCommand` for topics and brokers — describe (dynamic
//! configs, or `--all`) and alter (`--add-config`, `--delete-config`) — with its flags and
//! its output.

use clap::Parser;
use strom_client::{Admin, AlterConfigOp, ConfigEntry, ConfigResource, ConfigSource};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-configs",
    about = "Describe or change topic and broker configs (Kafka's kafka-configs, served by strom).",
    disable_version_flag = true
)]
struct Args {
    /// The Kafka server to connect to.
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// List configs for the given entity.
    #[arg(long)]
    describe: bool,
    /// Alter the configuration for the entity.
    #[arg(long)]
    alter: bool,
    /// Type of entity (topics/brokers/groups; clients, users, ips, broker-loggers and
    /// client-metrics are Kafka's too, and refused: strom has no quotas, runtime log
    /// levels or client metrics subscriptions).
    #[arg(long, value_parser = ["topics", "brokers", "groups", "clients", "users", "ips", "broker-loggers", "client-metrics"])]
    entity_type: Option<String>,
    /// Name of entity (topic name or broker id).
    #[arg(long)]
    entity_name: Option<String>,
    /// The cluster-wide default (with --entity-type brokers).
    #[arg(long)]
    entity_default: bool,
    /// The topic's name (the same as --entity-type topics --entity-name <topic>).
    #[arg(long)]
    topic: Option<String>,
    /// The broker's id (the same as --entity-type brokers --entity-name <id>).
    #[arg(long)]
    broker: Option<String>,
    /// List all configs for the given entity, including static and default ones.
    #[arg(long)]
    all: bool,
    /// Key Value pairs of configs to add: 'k1=v1,k2=[v1,v2,v2],k3=v3'.
    #[arg(long)]
    add_config: Option<String>,
    /// Config keys to remove: 'k1,k2'.
    #[arg(long)]
    delete_config: Option<String>,
}

fn failed(msg: impl std::fmt::Display) -> i32 {
    println!(
        "Error while executing config command with args '{}'",
        std::env::args().skip(1).collect::<Vec<_>>().join(" ")
    );
    println!("{msg}");
    1
}

/// Kafka's `--add-config` syntax: `k1=v1,k2=[a,b],k3=v3` (brackets keep commas in a value).
fn parse_add(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    let mut items = Vec::new();
    for c in s.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                items.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    items.push(cur);
    for item in items.into_iter().filter(|i| !i.trim().is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("Invalid entity config: all configs to be added must be in the format \"key=val\" ({item})."));
        };
        let v = v.trim();
        let v = v
            .strip_prefix('[')
            .and_then(|x| x.strip_suffix(']'))
            .unwrap_or(v);
        out.push((k.trim().to_string(), v.to_string()));
    }
    Ok(out)
}

/// One config line as Kafka prints it.
fn line(c: &ConfigEntry) -> String {
    let value = |v: &Option<String>, sensitive: bool| {
        if sensitive {
            "null".to_string()
        } else {
            v.clone().unwrap_or_else(|| "null".to_string())
        }
    };
    let synonyms: Vec<String> = c
        .synonyms
        .iter()
        .map(|s| {
            format!(
                "{}:{}={}",
                s.source.name(),
                s.name,
                value(&s.value, c.is_sensitive)
            )
        })
        .collect();
    format!(
        "  {}={} sensitive={} synonyms={{{}}}",
        c.name,
        value(&c.value, c.is_sensitive),
        c.is_sensitive,
        synonyms.join(", ")
    )
}

pub async fn run(args: Vec<String>) -> i32 {
    let a: Args = match super::parse("kafka-configs", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if a.describe == a.alter {
        eprintln!("Command must include exactly one action: --describe, --alter");
        return 1;
    }
    let Some(bootstrap) = a.bootstrap_server.clone() else {
        eprintln!("One of the required --bootstrap-server or --bootstrap-controller arguments must be specified");
        return 1;
    };
    let (kind, name) = match (&a.topic, &a.broker, &a.entity_type, &a.entity_name) {
        (None, None, Some(k), _) if !matches!(k.as_str(), "topics" | "brokers" | "groups") => {
            eprintln!("--entity-type {k}: strom does not serve it (it has no client quotas, runtime log levels or client metrics subscriptions)");
            return 1;
        }
        (Some(t), None, None, None) => ("topics", t.clone()),
        (None, Some(b), None, None) => ("brokers", b.clone()),
        (None, None, Some(k), Some(n)) if !a.entity_default => (k.as_str(), n.clone()),
        (None, None, Some(k), None) if a.entity_default && k == "brokers" => {
            ("brokers", String::new())
        }
        (None, None, Some(k), None) if a.entity_default => {
            // Kafka's own rule: only brokers (and the quota entities) have a default.
            eprintln!("--entity-default is not valid for --entity-type {k}");
            return 1;
        }
        (None, None, Some(_), None) => {
            eprintln!("an entity name or default entity must be specified with --entity-type: --entity-name or --entity-default");
            return 1;
        }
        _ => {
            eprintln!("An entity must be given with --entity-type and --entity-name, or --topic, or --broker");
            return 1;
        }
    };
    let resource = if kind == "topics" {
        ConfigResource::Topic(name.clone())
    } else if kind == "groups" {
        ConfigResource::Group(name.clone())
    } else if name.is_empty() {
        ConfigResource::BrokerDefault
    } else {
        match name.parse::<i32>() {
            Ok(id) => ConfigResource::Broker(id),
            Err(_) => {
                eprintln!("The entity name for brokers must be a valid integer broker id, but it is: {name}");
                return 1;
            }
        }
    };
    let what = match kind {
        "topics" => "topic",
        "groups" => "group",
        _ => "broker",
    };
    let client = match super::connect(bootstrap).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = Admin::new(client);
    if a.describe {
        let entries = match admin.describe_configs(&resource, None).await {
            Ok(e) => e,
            Err(e) => return failed(super::message(&e)),
        };
        // Kafka's filter: a topic's own overrides, or this broker's dynamic configs.
        let own = match kind {
            "topics" => ConfigSource::DynamicTopic,
            "groups" => ConfigSource::Other(8),
            _ => ConfigSource::DynamicBroker,
        };
        let dynamic = |s: &ConfigSource| *s == own;
        let default = resource == ConfigResource::BrokerDefault;
        if default {
            println!("Default configs for brokers in the cluster are:");
        } else if a.all {
            println!("All configs for {what} {name} are:");
        } else {
            println!("Dynamic configs for {what} {name} are:");
        }
        let shown = |c: &&ConfigEntry| {
            a.all
                || dynamic(&c.source)
                || (default && c.source == ConfigSource::DynamicDefaultBroker)
        };
        for c in entries.iter().filter(shown) {
            println!("{}", line(c));
        }
        return 0;
    }
    let mut ops: Vec<AlterConfigOp> = match a.add_config.as_deref().map(parse_add) {
        None => Vec::new(),
        Some(Ok(kvs)) => kvs
            .into_iter()
            .map(|(k, v)| AlterConfigOp::Set(k, v))
            .collect(),
        Some(Err(m)) => return failed(m),
    };
    if let Some(d) = &a.delete_config {
        ops.extend(
            d.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(|k| AlterConfigOp::Delete(k.to_string())),
        );
    }
    if ops.is_empty() {
        eprintln!("At least one of --add-config or --delete-config must be specified with --alter");
        return 1;
    }
    match admin
        .incremental_alter_configs(&resource, &ops, false)
        .await
    {
        Ok(()) => {
            if resource == ConfigResource::BrokerDefault {
                println!("Completed updating default config for brokers in the cluster.");
            } else {
                println!("Completed updating config for {what} {name}.");
            }
            0
        }
        Err(e) => failed(super::message(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_add;

    #[test]
    fn add_config_keeps_commas_inside_brackets() {
        assert_eq!(
            parse_add("retention.ms=1000,cleanup.policy=[compact,delete]").unwrap(),
            vec![
                ("retention.ms".to_string(), "1000".to_string()),
                ("cleanup.policy".to_string(), "compact,delete".to_string())
            ]
        );
        assert!(parse_add("nonsense").is_err());
    }
}
