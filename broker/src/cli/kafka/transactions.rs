//! `kafka-transactions`: Kafka's `TransactionsCommand` (KIP-664) — `list`, `describe`
//! and `describe-producers`, with its tables. `abort` and `find-hanging` are not served
//! yet and say so.

use clap::{Parser, Subcommand};
use strom_client::Admin;

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
    /// Abort a hanging transaction (not served by strom yet).
    Abort {
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        partition: Option<i32>,
        #[arg(long)]
        start_offset: Option<i64>,
        #[arg(long)]
        producer_id: Option<i64>,
        #[arg(long)]
        producer_epoch: Option<i16>,
        #[arg(long)]
        coordinator_epoch: Option<i32>,
    },
    /// Find hanging transactions (not served by strom yet).
    FindHanging {
        #[arg(long)]
        broker_id: Option<i32>,
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        partition: Option<i32>,
        #[arg(long)]
        max_transaction_timeout: Option<i64>,
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
        Cmd::Abort { .. } | Cmd::FindHanging { .. } => {
            eprintln!("kafka-transactions: abort and find-hanging are not served by strom yet");
            1
        }
    }
}
