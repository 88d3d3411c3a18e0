//! `kafka-reassign-partitions`: Kafka's `ReassignPartitionsCommand` (KIP-455) —
//! `--generate` a plan, `--execute` it, `--verify`, `--cancel` and `--list` moves — with
//! its JSON files and its output. strom does not throttle replication: `--throttle` and
//! `--replica-alter-log-dirs-throttle` are accepted and said to be ignored.

use std::collections::{BTreeMap, BTreeSet};

use clap::Parser;
use serde_json::{json, Value};
use strom_client::{Admin, TopicMetadata};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-reassign-partitions",
    about = "Move partitions between brokers (Kafka's kafka-reassign-partitions, served by strom).",
    disable_version_flag = true
)]
struct Args {
    /// The Kafka server to connect to.
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// Property file with admin client configs (accepted, not read).
    #[arg(long)]
    command_config: Option<String>,
    /// Propose a plan for the topics of --topics-to-move-json-file onto --broker-list.
    #[arg(long)]
    generate: bool,
    /// Start the moves of --reassignment-json-file.
    #[arg(long)]
    execute: bool,
    /// Report whether the moves of --reassignment-json-file are done.
    #[arg(long)]
    verify: bool,
    /// Cancel the moves of --reassignment-json-file.
    #[arg(long)]
    cancel: bool,
    /// List the moves in progress.
    #[arg(long)]
    list: bool,
    /// {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2]}]}
    #[arg(long)]
    reassignment_json_file: Option<String>,
    /// {"version":1,"topics":[{"topic":"t"}]}
    #[arg(long)]
    topics_to_move_json_file: Option<String>,
    /// The brokers to move to: "1,2,3".
    #[arg(long)]
    broker_list: Option<String>,
    /// Ignore racks when generating (strom's generator ignores them anyway).
    #[arg(long)]
    disable_rack_aware: bool,
    /// Replication throttle in B/s (strom does not throttle: ignored).
    #[arg(long)]
    throttle: Option<i64>,
    /// Log-dir move throttle in B/s (ignored).
    #[arg(long)]
    replica_alter_log_dirs_throttle: Option<i64>,
    /// Keep throttles after --verify (nothing to keep: accepted).
    #[arg(long)]
    preserve_throttles: bool,
    /// Let --execute reassign partitions already being moved (accepted).
    #[arg(long)]
    additional: bool,
    /// Timeout in ms for an operation (accepted).
    #[arg(long)]
    timeout: Option<i64>,
}

type Plan = Vec<(String, i32, Vec<i32>)>;

fn failed(msg: impl std::fmt::Display) -> i32 {
    eprintln!("{msg}");
    1
}

/// Kafka's reassignment JSON, compact, partitions in the given order.
fn plan_json(plan: &Plan) -> String {
    let parts: Vec<Value> = plan
        .iter()
        .map(|(t, p, r)| {
            json!({
                "topic": t, "partition": p, "replicas": r,
                "log_dirs": vec!["any"; r.len()],
            })
        })
        .collect();
    // serde_json keeps insertion order only with preserve_order; write the keys by hand
    // in Kafka's order instead.
    let items: Vec<String> = parts
        .iter()
        .map(|v| {
            format!(
                "{{\"topic\":{},\"partition\":{},\"replicas\":{},\"log_dirs\":{}}}",
                v["topic"], v["partition"], v["replicas"], v["log_dirs"]
            )
        })
        .collect();
    format!("{{\"version\":1,\"partitions\":[{}]}}", items.join(","))
}

fn parse_plan(text: &str) -> Result<Plan, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("the reassignment file is not JSON: {e}"))?;
    let parts = v
        .get("partitions")
        .and_then(Value::as_array)
        .ok_or("the reassignment file needs a \"partitions\" array")?;
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for p in parts {
        let topic = p.get("topic").and_then(Value::as_str);
        let partition = p.get("partition").and_then(Value::as_i64);
        let replicas = p.get("replicas").and_then(Value::as_array);
        let (Some(t), Some(n), Some(rs)) = (topic, partition, replicas) else {
            return Err(format!(
                "each partition needs \"topic\", \"partition\" and \"replicas\": {p}"
            ));
        };
        let rs: Option<Vec<i32>> = rs
            .iter()
            .map(|r| r.as_i64().and_then(|x| i32::try_from(x).ok()))
            .collect();
        let Some(rs) = rs.filter(|r| !r.is_empty()) else {
            return Err(format!(
                "Partition {t}-{n} has an empty or bad replica list"
            ));
        };
        if rs.iter().collect::<BTreeSet<_>>().len() != rs.len() {
            return Err(format!(
                "Partition replica lists may not contain duplicate entries: {t}-{n}"
            ));
        }
        if !seen.insert((t.to_string(), n)) {
            return Err(format!(
                "Duplicate partition in the reassignment file: {t}-{n}"
            ));
        }
        out.push((t.to_string(), n as i32, rs));
    }
    if out.is_empty() {
        return Err("Partition reassignment list cannot be empty".into());
    }
    Ok(out)
}

fn parse_topics(text: &str) -> Result<Vec<String>, String> {
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("the topics file is not JSON: {e}"))?;
    let topics: Option<Vec<String>> = v.get("topics").and_then(Value::as_array).map(|ts| {
        ts.iter()
            .filter_map(|t| t.get("topic").and_then(Value::as_str).map(String::from))
            .collect()
    });
    match topics {
        Some(ts) if !ts.is_empty() => Ok(ts),
        _ => Err("the topics file needs {\"topics\": [{\"topic\": \"name\"}, ...]}".into()),
    }
}

/// The proposal for `--generate`: each partition keeps its replication factor; replica i
/// of partition p goes to broker (p + i) of the list, so leaders and followers spread
/// evenly over the brokers (as Kafka's rack-unaware assignment does, without its random
/// start).
fn propose(current: &Plan, brokers: &[i32]) -> Result<Plan, String> {
    current
        .iter()
        .map(|(t, p, r)| {
            if r.len() > brokers.len() {
                return Err(format!(
                    "Replication factor: {} larger than available brokers: {}.",
                    r.len(),
                    brokers.len()
                ));
            }
            let start = (*p as usize) % brokers.len();
            let replicas = (0..r.len())
                .map(|i| brokers[(start + i) % brokers.len()])
                .collect();
            Ok((t.clone(), *p, replicas))
        })
        .collect()
}

fn read(path: &Option<String>, flag: &str) -> Result<String, String> {
    let Some(path) = path else {
        return Err(format!("Missing required argument \"{flag}\""));
    };
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))
}

fn current_of(topics: &[TopicMetadata], wanted: &BTreeSet<(String, i32)>) -> Result<Plan, String> {
    let mut out = Vec::new();
    for t in topics {
        if let Some(e) = &t.error {
            return Err(format!("Topic {}: {e}", t.name));
        }
        for p in &t.partitions {
            if wanted.is_empty() || wanted.contains(&(t.name.clone(), p.partition)) {
                out.push((t.name.clone(), p.partition, p.replicas.clone()));
            }
        }
    }
    Ok(out)
}

pub async fn run(args: Vec<String>) -> i32 {
    let a: Args = match super::parse("kafka-reassign-partitions", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let actions = [a.generate, a.execute, a.verify, a.cancel, a.list];
    if actions.iter().filter(|x| **x).count() != 1 {
        return failed("Command must include exactly one action: --generate, --execute, --verify, --cancel, or --list");
    }
    let Some(bootstrap) = a.bootstrap_server.clone() else {
        return failed("Please specify --bootstrap-server");
    };
    if a.throttle.is_some() || a.replica_alter_log_dirs_throttle.is_some() {
        eprintln!("strom does not throttle replication: the throttle is ignored.");
    }
    let client = match super::connect(bootstrap).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = Admin::new(client);
    if a.list {
        return match admin.list_partition_reassignments().await {
            Ok(rs) if rs.is_empty() => {
                println!("No partition reassignments found.");
                0
            }
            Ok(rs) => {
                println!("Current partition reassignments:");
                for r in rs {
                    let ids =
                        |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
                    println!(
                        "{}-{}: replicas: {}. adding: {}. removing: {}.",
                        r.topic,
                        r.partition,
                        ids(&r.replicas),
                        ids(&r.adding),
                        ids(&r.removing)
                    );
                }
                0
            }
            Err(e) => failed(super::message(&e)),
        };
    }
    if a.generate {
        let topics = match read(&a.topics_to_move_json_file, "--topics-to-move-json-file")
            .and_then(|t| parse_topics(&t))
        {
            Ok(t) => t,
            Err(m) => return failed(m),
        };
        let Some(list) = &a.broker_list else {
            return failed("Missing required argument \"--broker-list\"");
        };
        let brokers: Result<Vec<i32>, _> =
            list.split(',').map(|b| b.trim().parse::<i32>()).collect();
        let Ok(brokers) = brokers.map(|b| {
            b.into_iter()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
        }) else {
            return failed(format!(
                "--broker-list {list}: expected comma-separated broker ids"
            ));
        };
        let described = match admin.describe_topics(Some(&topics)).await {
            Ok(d) => d,
            Err(e) => return failed(super::message(&e)),
        };
        let current = match current_of(&described, &BTreeSet::new()) {
            Ok(c) => c,
            Err(m) => return failed(m),
        };
        let proposed = match propose(&current, &brokers) {
            Ok(p) => p,
            Err(m) => return failed(m),
        };
        println!(
            "Current partition replica assignment\n{}\n",
            plan_json(&current)
        );
        println!(
            "Proposed partition reassignment configuration\n{}",
            plan_json(&proposed)
        );
        return 0;
    }
    let plan = match read(&a.reassignment_json_file, "--reassignment-json-file")
        .and_then(|t| parse_plan(&t))
    {
        Ok(p) => p,
        Err(m) => return failed(m),
    };
    let names: Vec<String> = plan
        .iter()
        .map(|(t, ..)| t.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let tps = |ps: &[(String, i32)]| {
        ps.iter()
            .map(|(t, p)| format!("{t}-{p}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    if a.verify {
        let ongoing: BTreeSet<(String, i32)> = match admin.list_partition_reassignments().await {
            Ok(rs) => rs.into_iter().map(|r| (r.topic, r.partition)).collect(),
            Err(e) => return failed(super::message(&e)),
        };
        let described = match admin.describe_topics(Some(&names)).await {
            Ok(d) => d,
            Err(e) => return failed(super::message(&e)),
        };
        let replicas: BTreeMap<(String, i32), Vec<i32>> = described
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| ((t.name.clone(), p.partition), p.replicas.clone()))
            })
            .collect();
        println!("Status of partition reassignment:");
        let mut code = 0;
        for (t, p, target) in &plan {
            let k = (t.clone(), *p);
            if ongoing.contains(&k) {
                println!("Reassignment of partition {t}-{p} is still in progress.");
            } else if replicas.get(&k) == Some(target) {
                println!("Reassignment of partition {t}-{p} is completed.");
            } else {
                let now = replicas.get(&k).map_or("-".to_string(), |r| {
                    r.iter().map(i32::to_string).collect::<Vec<_>>().join(",")
                });
                let want = target
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(",");
                println!("There is no active reassignment of partition {t}-{p}, but replica set is {now} rather than {want}.");
                code = 1;
            }
        }
        return code;
    }
    if a.cancel {
        let moves: Vec<(String, i32, Option<Vec<i32>>)> =
            plan.iter().map(|(t, p, _)| (t.clone(), *p, None)).collect();
        return match admin.alter_partition_reassignments(&moves).await {
            Ok(rs) => {
                let (ok, bad): (Vec<_>, Vec<_>) = rs.into_iter().partition(|(.., e)| {
                    e.is_none()
                        || e.as_ref()
                            .is_some_and(|e| e.name() == "NO_REASSIGNMENT_IN_PROGRESS")
                });
                let ok: Vec<(String, i32)> = ok.into_iter().map(|(t, p, _)| (t, p)).collect();
                if !ok.is_empty() {
                    println!(
                        "Successfully cancelled partition reassignments for: {}",
                        tps(&ok)
                    );
                }
                for (t, p, e) in &bad {
                    println!(
                        "Error cancelling the reassignment of {t}-{p}: {}",
                        e.as_ref().expect("an error")
                    );
                }
                i32::from(!bad.is_empty())
            }
            Err(e) => failed(super::message(&e)),
        };
    }
    // --execute: print the current assignment (for a rollback), then start the moves.
    let described = match admin.describe_topics(Some(&names)).await {
        Ok(d) => d,
        Err(e) => return failed(super::message(&e)),
    };
    let wanted: BTreeSet<(String, i32)> = plan.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
    let current = match current_of(&described, &wanted) {
        Ok(c) => c,
        Err(m) => return failed(m),
    };
    if let Some((t, p, _)) = plan
        .iter()
        .find(|(t, p, _)| !current.iter().any(|(ct, cp, _)| ct == t && cp == p))
    {
        return failed(format!("Topic {t} has no partition {p}"));
    }
    println!(
        "Current partition replica assignment\n\n{}\n",
        plan_json(&current)
    );
    println!("Save this to use as the --reassignment-json-file option during rollback");
    let moves: Vec<(String, i32, Option<Vec<i32>>)> = plan
        .iter()
        .map(|(t, p, r)| (t.clone(), *p, Some(r.clone())))
        .collect();
    match admin.alter_partition_reassignments(&moves).await {
        Ok(rs) => {
            let bad: Vec<_> = rs.iter().filter(|(.., e)| e.is_some()).collect();
            if bad.is_empty() {
                let all: Vec<(String, i32)> =
                    plan.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
                println!(
                    "Successfully started partition reassignment{} for {}",
                    if all.len() == 1 { "" } else { "s" },
                    tps(&all)
                );
                return 0;
            }
            for (t, p, e) in bad {
                println!(
                    "Error reassigning partition(s):\n{t}-{p}: {}",
                    e.as_ref().expect("an error")
                );
            }
            1
        }
        Err(e) => failed(super::message(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_round_trip_through_kafkas_json() {
        let plan = vec![
            ("t".to_string(), 0, vec![1, 2]),
            ("t".to_string(), 1, vec![2, 3]),
        ];
        let text = plan_json(&plan);
        assert_eq!(
            text,
            r#"{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any","any"]},{"topic":"t","partition":1,"replicas":[2,3],"log_dirs":["any","any"]}]}"#
        );
        assert_eq!(parse_plan(&text).unwrap(), plan);
        assert!(
            parse_plan(r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}"#).is_err()
        );
        assert!(parse_plan(r#"{"partitions":[]}"#).is_err());
        assert!(parse_plan(r#"{"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}"#).is_err());
    }

    #[test]
    fn generate_spreads_replicas_and_keeps_the_replication_factor() {
        let current = vec![
            ("t".to_string(), 0, vec![1, 2]),
            ("t".to_string(), 1, vec![2, 1]),
            ("t".to_string(), 2, vec![1, 2]),
        ];
        let p = propose(&current, &[4, 5, 6]).unwrap();
        assert_eq!(p[0].2, vec![4, 5]);
        assert_eq!(p[1].2, vec![5, 6]);
        assert_eq!(p[2].2, vec![6, 4]);
        assert!(propose(&current, &[4]).is_err());
        assert_eq!(
            parse_topics(r#"{"version":1,"topics":[{"topic":"a"},{"topic":"b"}]}"#).unwrap(),
            ["a", "b"]
        );
        assert!(parse_topics("{}").is_err());
    }
}
