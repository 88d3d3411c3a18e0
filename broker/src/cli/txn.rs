//! `strom txn list|describe|describe-producers`, like `kafka-transactions.sh`.

use clap::{Args, Subcommand};
use strom_client::Admin;

use super::{connect, table, Conn};

#[derive(Args)]
pub struct TxnArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: TxnCmd,
}

#[derive(Subcommand)]
enum TxnCmd {
    /// Every transactional id with its producer id, state and coordinator.
    List,
    /// One transactional id: state, producer id and epoch, timeout, the open
    /// transaction's start and partitions.
    Describe { transactional_id: String },
    /// The producers a partition's leader keeps state for, with the first offset of
    /// each one's open transaction (what holds read_committed consumers back).
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
    },
}

pub async fn run(a: TxnArgs) -> i32 {
    let client = match connect(&a.conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = Admin::new(client);
    match a.cmd {
        TxnCmd::List => match admin.list_transactions().await {
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
                table::print(
                    &["TRANSACTIONAL-ID", "COORDINATOR", "PRODUCER-ID", "STATE"],
                    &rows,
                );
                0
            }
            Err(e) => super::topic::fail(e),
        },
        TxnCmd::Describe { transactional_id } => {
            match admin.describe_transaction(&transactional_id).await {
                Ok(t) => {
                    let now = strom_common::clock::now_ms();
                    let duration = if t.start_time_ms >= 0 && t.state == "Ongoing" {
                        format!("{}", (now - t.start_time_ms).max(0) / 1000)
                    } else {
                        "-".to_string()
                    };
                    let parts: Vec<String> = t
                        .partitions
                        .iter()
                        .map(|(topic, p)| format!("{topic}-{p}"))
                        .collect();
                    table::print(
                        &[
                            "COORDINATOR",
                            "TRANSACTIONAL-ID",
                            "PRODUCER-ID",
                            "PRODUCER-EPOCH",
                            "STATE",
                            "TIMEOUT-MS",
                            "DURATION-S",
                            "PARTITIONS",
                        ],
                        &[vec![
                            t.coordinator.to_string(),
                            t.transactional_id,
                            t.producer_id.to_string(),
                            t.producer_epoch.to_string(),
                            t.state,
                            t.timeout_ms.to_string(),
                            duration,
                            if parts.is_empty() {
                                "-".to_string()
                            } else {
                                parts.join(",")
                            },
                        ]],
                    );
                    0
                }
                Err(e) => super::topic::fail(e),
            }
        }
        TxnCmd::DescribeProducers { topic, partition } => {
            match admin.describe_producers(&topic, partition).await {
                Ok(ps) => {
                    let rows: Vec<Vec<String>> = ps
                        .into_iter()
                        .map(|p| {
                            vec![
                                p.producer_id.to_string(),
                                p.producer_epoch.to_string(),
                                p.last_sequence.to_string(),
                                p.last_timestamp.to_string(),
                                p.coordinator_epoch.to_string(),
                                if p.current_txn_start_offset >= 0 {
                                    p.current_txn_start_offset.to_string()
                                } else {
                                    "-".to_string()
                                },
                            ]
                        })
                        .collect();
                    table::print(
                        &[
                            "PRODUCER-ID",
                            "EPOCH",
                            "LAST-SEQUENCE",
                            "LAST-TIMESTAMP",
                            "COORDINATOR-EPOCH",
                            "TXN-START-OFFSET",
                        ],
                        &rows,
                    );
                    0
                }
                Err(e) => super::topic::fail(e),
            }
        }
    }
}
