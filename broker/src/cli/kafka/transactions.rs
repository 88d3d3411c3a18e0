//! `kafka-transactions`: Kafka's `TransactionsCommand` (KIP-664) — `list`, `describe`,
//! `describe-producers`, `abort` (an abort marker for the open transaction found at
//! `--start-offset`, or for the producer id/epoch given) and `find-hanging` (open
//! transactions older than `--max-transaction-timeout` minutes that their coordinator
//! does not know of), with its tables and messages. Producer state is read from each
//! partition's leader.

use std::collections::{BTreeMap, BTreeSet};

use clap::{Parser, Subcommand};
use strom_client::{Admin, ProducerDescription, TransactionDescription};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-transactions",
    about = "List and describe transactions (Kafka's kafka-transactions, served by strom).",
    disable_version_flag = true
)]
struct Args {
    /// The Kafka server to connect to.
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// Property file with admin client configs (accepted, not read).
    #[arg(long)]
    command_config: Option<String>,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Every transactional id the coordinators know.
    List,
    /// One transactional id at its coordinator.
    Describe {
        #[arg(long)]
        transactional_id: String,
    },
    /// The producers a partition's leader keeps state for.
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        /// Ask this broker instead of the leader (strom asks the leader).
        #[arg(long)]
        broker_id: Option<i32>,
    },
    /// Abort a hanging transaction.
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        #[arg(long)]
        start_offset: Option<i64>,
        #[arg(long)]
        producer_id: Option<i64>,
        #[arg(long)]
        producer_epoch: Option<i16>,
        #[arg(long)]
        coordinator_epoch: Option<i32>,
    },
    /// Find hanging transactions.
    FindHanging {
        #[arg(long)]
        broker_id: Option<i32>,
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        partition: Option<i32>,
        /// Minutes: only transactions open longer than this are looked at.
        #[arg(long, default_value_t = 15)]
        max_transaction_timeout: i64,
    },
}

fn none_if_negative(v: i64) -> String {
    if v < 0 {
        "None".to_string()
    } else {
        v.to_string()
    }
}

pub async fn run(args: Vec<String>) -> i32 {
    let a: Args = match super::parse("kafka-transactions", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(bootstrap) = a.bootstrap_server.clone() else {
        eprintln!("Missing required argument \"--bootstrap-server\"");
        return 1;
    };
    let Some(cmd) = a.cmd else {
        eprintln!("kafka-transactions: a command is required: list, describe, describe-producers");
        return 1;
    };
    let client = match super::connect(bootstrap).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = Admin::new(client);
    let fail = |e: strom_client::ClientError| {
        eprintln!("{}", super::message(&e));
        1
    };
    match cmd {
        Cmd::List => match admin.list_transactions().await {
            Ok(ts) => {
                let rows: Vec<Vec<String>> = ts
                    .into_iter()
                    .map(|t| {
                        vec![
                            t.transactional_id,
                            t.coordinator.to_string(),
                            t.producer_id.to_string(),
                            t.state,
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    super::pretty_table(
                        &[
                            "TransactionalId",
                            "Coordinator",
                            "ProducerId",
                            "TransactionState"
                        ],
                        &rows
                    )
                );
                0
            }
            Err(e) => fail(e),
        },
        Cmd::Describe { transactional_id } => {
            match admin.describe_transaction(&transactional_id).await {
                Ok(t) => {
                    let now = strom_common::clock::now_ms();
                    let (start, duration) = if t.start_time_ms >= 0 {
                        (
                            t.start_time_ms.to_string(),
                            (now - t.start_time_ms).max(0).to_string(),
                        )
                    } else {
                        ("None".to_string(), "None".to_string())
                    };
                    let parts: Vec<String> = t
                        .partitions
                        .iter()
                        .map(|(topic, p)| format!("{topic}-{p}"))
                        .collect();
                    print!(
                        "{}",
                        super::pretty_table(
                            &[
                                "CoordinatorId",
                                "TransactionalId",
                                "ProducerId",
                                "ProducerEpoch",
                                "TransactionState",
                                "TransactionTimeoutMs",
                                "CurrentTransactionStartTimeMs",
                                "TransactionDurationMs",
                                "TopicPartitions",
                            ],
                            &[vec![
                                t.coordinator.to_string(),
                                t.transactional_id,
                                t.producer_id.to_string(),
                                t.producer_epoch.to_string(),
                                t.state,
                                t.timeout_ms.to_string(),
                                start,
                                duration,
                                parts.join(","),
                            ]],
                        )
                    );
                    0
                }
                Err(e) => fail(e),
            }
        }
        Cmd::DescribeProducers {
            topic, partition, ..
        } => match admin.describe_producers(&topic, partition).await {
            Ok(ps) => {
                let rows: Vec<Vec<String>> = ps
                    .into_iter()
                    .map(|p| {
                        vec![
                            p.producer_id.to_string(),
                            p.producer_epoch.to_string(),
                            none_if_negative(p.coordinator_epoch.into()),
                            p.last_sequence.to_string(),
                            p.last_timestamp.to_string(),
                            none_if_negative(p.current_txn_start_offset),
                        ]
                    })
                    .collect();
                print!(
                    "{}",
                    super::pretty_table(
                        &[
                            "ProducerId",
                            "ProducerEpoch",
                            "LatestCoordinatorEpoch",
                            "LastSequence",
                            "LastTimestamp",
                            "CurrentTransactionStartOffset",
                        ],
                        &rows
                    )
                );
                0
            }
            Err(e) => fail(e),
        },
        Cmd::Abort {
            topic,
            partition,
            start_offset,
            producer_id,
            producer_epoch,
            coordinator_epoch,
        } => {
            let tp = format!("{topic}-{partition}");
            let (pid, epoch, coordinator_epoch) = match (start_offset, producer_id) {
                (None, None) => {
                    eprintln!("The transaction to abort must be identified either with --start-offset (for brokers on 3.0 or above) or with --producer-id, --producer-epoch, and --coordinator-epoch (for older brokers)");
                    return 1;
                }
                (Some(start), _) => match admin.describe_producers(&topic, partition).await {
                    Err(e) => {
                        eprintln!(
                            "Failed to validate producer state for partition {tp}: {}.",
                            super::message(&e)
                        );
                        return 1;
                    }
                    Ok(ps) => match ps.into_iter().find(|p| p.current_txn_start_offset == start) {
                        Some(p) => (
                            p.producer_id,
                            p.producer_epoch as i16,
                            p.coordinator_epoch.max(0),
                        ),
                        None => {
                            eprintln!("Could not find any open transactions starting at offset {start} on partition {tp}");
                            return 1;
                        }
                    },
                },
                (None, Some(pid)) => {
                    let Some(epoch) = producer_epoch else {
                        eprintln!("Missing required argument --producer-epoch");
                        return 1;
                    };
                    let Some(ce) = coordinator_epoch else {
                        eprintln!("Missing required argument --coordinator-epoch");
                        return 1;
                    };
                    // A coordinator epoch of -1 (never ended) is taken as 0, as Kafka does.
                    (pid, epoch, ce.max(0))
                }
            };
            match admin
                .abort_transaction(&topic, partition, pid, epoch, coordinator_epoch)
                .await
            {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!(
                        "Failed to abort transaction AbortTransactionSpec(topicPartition={tp}, producerId={pid}, producerEpoch={epoch}, coordinatorEpoch={coordinator_epoch}): {}.",
                        super::message(&e)
                    );
                    1
                }
            }
        }
        Cmd::FindHanging {
            broker_id,
            topic,
            partition,
            max_transaction_timeout,
        } => {
            if topic.is_none() && broker_id.is_none() {
                eprintln!("The `find-hanging` command requires either --topic or --broker-id to limit the scope of the search");
                return 1;
            }
            if partition.is_some() && topic.is_none() {
                eprintln!("The --partition argument requires --topic to be provided");
                return 1;
            }
            match find_hanging(&admin, broker_id, topic, partition, max_transaction_timeout).await {
                Ok(rows) => {
                    print!("{}", super::pretty_table(&HANGING_HEADERS, &rows));
                    0
                }
                Err(m) => {
                    eprintln!("{m}");
                    1
                }
            }
        }
    }
}

const HANGING_HEADERS: [&str; 8] = [
    "Topic",
    "Partition",
    "ProducerId",
    "ProducerEpoch",
    "CoordinatorEpoch",
    "StartOffset",
    "LastTimestamp",
    "Duration(min)",
];

/// An open transaction on a partition, as its leader's producer state shows it.
type Open = ((String, i32), ProducerDescription);

/// `find-hanging`: the partitions in scope, their producers with a transaction open for
/// longer than the timeout, and of those the ones their coordinator does not know of.
async fn find_hanging(
    admin: &Admin,
    broker_id: Option<i32>,
    topic: Option<String>,
    partition: Option<i32>,
    max_timeout_min: i64,
) -> Result<Vec<Vec<String>>, String> {
    let err = |what: &str, e: strom_client::ClientError| format!("{what}: {}.", super::message(&e));
    let partitions: Vec<(String, i32)> = match (&topic, partition) {
        (Some(t), Some(p)) => vec![(t.clone(), p)],
        _ => {
            let topics = match topic {
                Some(t) => vec![t],
                None => admin
                    .list_topics(false)
                    .await
                    .map_err(|e| err("Failed to list topics", e))?
                    .into_iter()
                    .map(|t| t.name)
                    .collect(),
            };
            let mut out = Vec::new();
            for t in &topics {
                let meta =
                    admin.client().topic_metadata(t).await.map_err(|e| {
                        err(&format!("Failed to describe {} topics", topics.len()), e)
                    })?;
                out.extend(
                    meta.partitions
                        .iter()
                        .filter(|p| broker_id.is_none_or(|b| p.replicas.contains(&b)))
                        .map(|p| (t.clone(), p.partition)),
                );
            }
            out
        }
    };
    let now = strom_common::clock::now_ms();
    let max_ms = max_timeout_min.saturating_mul(60_000);
    let mut candidates: Vec<Open> = Vec::new();
    for (t, p) in &partitions {
        let producers = admin.describe_producers(t, *p).await.map_err(|e| {
            err(
                &format!(
                    "Failed to describe producers for {} partitions on broker {broker_id:?}",
                    partitions.len()
                ),
                e,
            )
        })?;
        candidates.extend(
            producers
                .into_iter()
                .filter(|s| s.current_txn_start_offset >= 0 && now - s.last_timestamp > max_ms)
                .map(|s| ((t.clone(), *p), s)),
        );
    }
    let mut ids = BTreeMap::new();
    let mut descriptions = BTreeMap::new();
    if !candidates.is_empty() {
        let pids: BTreeSet<i64> = candidates.iter().map(|(_, s)| s.producer_id).collect();
        let pids: Vec<i64> = pids.into_iter().collect();
        for l in admin.list_transactions_of(&pids).await.map_err(|e| {
            err(
                &format!("Failed to list transactions for {} producers", pids.len()),
                e,
            )
        })? {
            if pids.contains(&l.producer_id) {
                ids.insert(l.producer_id, l.transactional_id);
            }
        }
        for id in ids.values() {
            match admin.describe_transaction(id).await {
                Ok(d) => {
                    descriptions.insert(id.clone(), d);
                }
                // TRANSACTIONAL_ID_NOT_FOUND: the coordinator has forgotten it.
                Err(e) if e.kafka_code() == Some(105) => {}
                Err(e) => {
                    return Err(err(
                        &format!("Failed to describe {} transactions", ids.len()),
                        e,
                    ))
                }
            }
        }
    }
    Ok(hanging(candidates, &ids, &descriptions)
        .into_iter()
        .map(|((t, p), s)| {
            vec![
                t,
                p.to_string(),
                s.producer_id.to_string(),
                s.producer_epoch.to_string(),
                s.coordinator_epoch.to_string(),
                s.current_txn_start_offset.to_string(),
                s.last_timestamp.to_string(),
                ((now - s.last_timestamp) / 60_000).to_string(),
            ]
        })
        .collect())
}

/// Kafka's rule: an open transaction hangs if no transactional id has its producer id,
/// the coordinator cannot describe that id, or the coordinator's transaction does not
/// include the partition (it would write the partition's marker if it did).
fn hanging(
    candidates: Vec<Open>,
    ids: &BTreeMap<i64, String>,
    descriptions: &BTreeMap<String, TransactionDescription>,
) -> Vec<Open> {
    candidates
        .into_iter()
        .filter(
            |(tp, s)| match ids.get(&s.producer_id).and_then(|id| descriptions.get(id)) {
                None => true,
                Some(d) => !d.partitions.contains(tp),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(topic: &str, p: i32, pid: i64) -> Open {
        (
            (topic.to_string(), p),
            ProducerDescription {
                producer_id: pid,
                producer_epoch: 0,
                last_sequence: 0,
                last_timestamp: 0,
                coordinator_epoch: -1,
                current_txn_start_offset: 5,
            },
        )
    }

    #[test]
    fn a_transaction_hangs_unless_its_coordinator_holds_the_partition() {
        let ids = BTreeMap::from([(1, "known".to_string()), (2, "forgotten".to_string())]);
        let descriptions = BTreeMap::from([(
            "known".to_string(),
            TransactionDescription {
                transactional_id: "known".into(),
                state: "Ongoing".into(),
                producer_id: 1,
                producer_epoch: 0,
                timeout_ms: 60_000,
                start_time_ms: 0,
                partitions: vec![("t".into(), 0)],
                coordinator: 1,
            },
        )]);
        let got = hanging(
            vec![
                open("t", 0, 1), // the coordinator will write its marker
                open("t", 1, 1), // same producer, a partition the coordinator does not list
                open("t", 0, 2), // a transactional id the coordinator cannot describe
                open("t", 0, 3), // no transactional id at all
            ],
            &ids,
            &descriptions,
        );
        let got: Vec<(i32, i64)> = got.iter().map(|((_, p), s)| (*p, s.producer_id)).collect();
        assert_eq!(got, vec![(1, 1), (0, 2), (0, 3)]);
    }
}
