//! `kafka-leader-election`: Kafka's `LeaderElectionCommand` (KIP-460) — a preferred or
//! unclean leader election for one partition, the partitions of a JSON file, or every
//! partition — with its flags and its output.

use clap::Parser;
use strom_client::Admin;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-leader-election",
    about = "Run a preferred or unclean leader election (Kafka's kafka-leader-election, served by strom).",
    disable_version_flag = true
)]
struct Args {
    /// The Kafka server to connect to.
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// Property file with admin client configs (accepted, not read: strom's tools speak
    /// PLAINTEXT).
    #[arg(long = "admin.config")]
    admin_config: Option<String>,
    /// PREFERRED or UNCLEAN.
    #[arg(long)]
    election_type: Option<String>,
    /// The topic (with --partition).
    #[arg(long)]
    topic: Option<String>,
    /// The partition (with --topic).
    #[arg(long)]
    partition: Option<i32>,
    /// Every partition of every topic.
    #[arg(long)]
    all_topic_partitions: bool,
    /// A JSON file: {"partitions": [{"topic": "t", "partition": 0}, ...]}.
    #[arg(long)]
    path_to_json_file: Option<String>,
}

/// The partitions of Kafka's election JSON file.
fn parse_json(text: &str) -> Result<Vec<(String, i32)>, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the JSON file is not JSON: {e}"))?;
    let parts = v
        .get("partitions")
        .and_then(|p| p.as_array())
        .ok_or("the JSON file needs a \"partitions\" array")?;
    let mut out = Vec::new();
    for p in parts {
        let topic = p.get("topic").and_then(|t| t.as_str());
        let partition = p.get("partition").and_then(|t| t.as_i64());
        match (topic, partition) {
            (Some(t), Some(n)) if i32::try_from(n).is_ok() => out.push((t.to_string(), n as i32)),
            _ => {
                return Err(format!(
                    "each partition needs \"topic\" and \"partition\": {p}"
                ))
            }
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = out.iter().find(|p| !seen.insert((*p).clone())) {
        return Err(format!(
            "Replica election data contains duplicate partitions: {}-{}",
            dup.0, dup.1
        ));
    }
    Ok(out)
}

pub async fn run(args: Vec<String>) -> i32 {
    let a: Args = match super::parse("kafka-leader-election", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(bootstrap) = a.bootstrap_server.clone() else {
        eprintln!("Missing required option(s) [bootstrap-server]");
        return 1;
    };
    let (unclean, name) = match a.election_type.as_deref().map(str::to_ascii_uppercase) {
        Some(t) if t == "PREFERRED" => (false, "PREFERRED"),
        Some(t) if t == "UNCLEAN" => (true, "UNCLEAN"),
        Some(t) => {
            eprintln!("Unknown election type: {t} (expected PREFERRED or UNCLEAN)");
            return 1;
        }
        None => {
            eprintln!("Missing required option(s) [election-type]");
            return 1;
        }
    };
    let chosen = [
        a.topic.is_some() || a.partition.is_some(),
        a.all_topic_partitions,
        a.path_to_json_file.is_some(),
    ];
    if chosen.iter().filter(|c| **c).count() != 1 {
        eprintln!("One and only one of the following options is required: --all-topic-partitions, --topic, --path-to-json-file");
        return 1;
    }
    let partitions: Option<Vec<(String, i32)>> = if a.all_topic_partitions {
        None
    } else if let Some(path) = &a.path_to_json_file {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read {path}: {e}");
                return 1;
            }
        };
        match parse_json(&text) {
            Ok(p) => Some(p),
            Err(m) => {
                eprintln!("{m}");
                return 1;
            }
        }
    } else {
        match (&a.topic, a.partition) {
            (Some(t), Some(p)) => Some(vec![(t.clone(), p)]),
            (Some(_), None) => {
                eprintln!("Missing required option(s) [partition]");
                return 1;
            }
            _ => {
                eprintln!("Missing required option(s) [topic]");
                return 1;
            }
        }
    };
    let client = match super::connect(bootstrap).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let results = match Admin::new(client)
        .elect_leaders(unclean, partitions.as_deref())
        .await
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error while making request: {}", super::message(&e));
            return 1;
        }
    };
    let (mut done, mut noop, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for (t, p, err) in results {
        let tp = format!("{t}-{p}");
        match err {
            None => done.push(tp),
            Some(e) if e.name() == "ELECTION_NOT_NEEDED" => noop.push(tp),
            Some(e) => failed.push((tp, e)),
        }
    }
    if !done.is_empty() {
        println!(
            "Successfully completed leader election ({name}) for partitions {}",
            done.join(", ")
        );
    }
    if !noop.is_empty() {
        println!(
            "Valid replica already elected for partitions {}",
            noop.join(", ")
        );
    }
    if failed.is_empty() {
        return 0;
    }
    for (tp, e) in &failed {
        println!("Error completing leader election ({name}) for partition: {tp}: {e}");
    }
    eprintln!("{} replica(s) could not be elected", failed.len());
    1
}

#[cfg(test)]
mod tests {
    use super::parse_json;

    #[test]
    fn reads_kafkas_election_file() {
        let ps = parse_json(
            r#"{"partitions": [{"topic": "a", "partition": 0}, {"topic": "b", "partition": 2}]}"#,
        )
        .unwrap();
        assert_eq!(ps, vec![("a".to_string(), 0), ("b".to_string(), 2)]);
        assert!(parse_json(r#"{"partitions": [{"topic": "a"}]}"#).is_err());
        assert!(parse_json(
            r#"{"partitions": [{"topic": "a", "partition": 0}, {"topic": "a", "partition": 0}]}"#
        )
        .unwrap_err()
        .contains("duplicate"));
        assert!(parse_json("nope").is_err());
    }
}
