//! `strom cluster describe`: brokers, the controller quorum (voters, leader, epoch, each
//! node's metadata offset) and partitions that are under-replicated or offline; `strom
//! cluster log-dirs`: each broker's log directory, its partitions' sizes and the disk
//! space (like `kafka-log-dirs.sh`).

use clap::{Args, Subcommand};
use strom_client::Admin;

use super::{connect, table, Conn};

#[derive(Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: ClusterCmd,
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Brokers, controllers, the quorum leader, under-replicated partitions.
    Describe,
    /// Each broker's log directory: partition sizes and lag, disk space.
    LogDirs {
        /// Only this topic's partitions.
        #[arg(long)]
        topic: Option<String>,
    },
}

pub async fn run(a: ClusterArgs) -> i32 {
    let client = match connect(&a.conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let ClusterCmd::LogDirs { topic } = a.cmd {
        return log_dirs(&Admin::new(client), topic).await;
    }
    let admin = Admin::new(client.clone());
    let cluster = match admin.describe_cluster().await {
        Ok(c) => c,
        Err(e) => return super::topic::fail(e),
    };
    let quorum = admin.describe_quorum().await.ok();
    println!(
        "Cluster id: {}",
        cluster.cluster_id.clone().unwrap_or_default()
    );
    let now = strom_common::clock::now_ms();
    let ago = |ts: i64| {
        if ts > 0 {
            format!("{:.1} s ago", (now - ts) as f64 / 1000.0)
        } else {
            "-".to_string()
        }
    };
    match &quorum {
        Some(q) => println!(
            "Quorum leader: {}   leader epoch: {}   high watermark: {}",
            q.leader_id, q.leader_epoch, q.high_watermark
        ),
        None => println!("Quorum: no leader reachable"),
    }
    println!();
    let observers: std::collections::BTreeMap<i32, (i64, i64)> = quorum
        .as_ref()
        .map(|q| {
            q.voters
                .iter()
                .chain(q.observers.iter())
                .map(|o| (o.id, (o.log_end_offset, o.last_fetch_timestamp)))
                .collect()
        })
        .unwrap_or_default();
    let rows: Vec<Vec<String>> = cluster
        .brokers
        .iter()
        .map(|b| {
            let (offset, seen) = observers.get(&b.node_id).copied().unwrap_or((-1, -1));
            vec![
                b.node_id.to_string(),
                b.addr(),
                b.rack.clone().unwrap_or_default(),
                if offset >= 0 {
                    offset.to_string()
                } else {
                    "-".into()
                },
                ago(seen),
            ]
        })
        .collect();
    table::print(
        &[
            "BROKER",
            "ADDRESS",
            "RACK",
            "METADATA OFFSET",
            "LAST HEARTBEAT",
        ],
        &rows,
    );
    println!();
    if let Some(q) = &quorum {
        let rows: Vec<Vec<String>> = q
            .voters
            .iter()
            .map(|v| {
                let role = if v.id == q.leader_id {
                    "leader"
                } else {
                    "follower"
                };
                let lag = if v.log_end_offset > 0 {
                    (q.high_watermark - v.log_end_offset).max(0).to_string()
                } else {
                    "-".into()
                };
                vec![
                    v.id.to_string(),
                    role.to_string(),
                    v.log_end_offset.to_string(),
                    lag,
                ]
            })
            .collect();
        table::print(&["VOTER", "ROLE", "LOG END OFFSET", "LAG"], &rows);
        println!();
    }
    match admin.describe_topics(None).await {
        Ok(topics) => {
            let mut under = 0;
            let mut offline = 0;
            for t in &topics {
                for p in &t.partitions {
                    if p.leader < 0 {
                        offline += 1;
                    }
                    if p.isr.len() < p.replicas.len() {
                        under += 1;
                    }
                }
            }
            println!(
                "Topics: {}   under-replicated partitions: {under}   offline partitions: {offline}",
                topics.len()
            );
            0
        }
        Err(e) => super::topic::fail(e),
    }
}

async fn log_dirs(admin: &Admin, topic: Option<String>) -> i32 {
    let dirs = match admin.describe_log_dirs().await {
        Ok(d) => d,
        Err(e) => return super::topic::fail(e),
    };
    let gb = |b: i64| {
        if b < 0 {
            "-".to_string()
        } else {
            format!("{:.1} GB", b as f64 / 1e9)
        }
    };
    let rows: Vec<Vec<String>> = dirs
        .iter()
        .map(|d| {
            vec![
                d.broker.to_string(),
                d.log_dir.clone(),
                d.partitions.len().to_string(),
                d.partitions.iter().map(|p| p.size).sum::<i64>().to_string(),
                gb(d.total_bytes),
                gb(d.usable_bytes),
                d.error.as_ref().map_or("-".into(), |e| e.to_string()),
            ]
        })
        .collect();
    table::print(
        &[
            "BROKER",
            "LOG DIR",
            "PARTITIONS",
            "BYTES",
            "TOTAL",
            "USABLE",
            "ERROR",
        ],
        &rows,
    );
    println!();
    let mut parts: Vec<_> = dirs
        .iter()
        .flat_map(|d| d.partitions.iter())
        .filter(|p| topic.as_ref().is_none_or(|t| &p.topic == t))
        .collect();
    parts.sort_by(|a, b| (&a.topic, a.partition, a.broker).cmp(&(&b.topic, b.partition, b.broker)));
    let rows: Vec<Vec<String>> = parts
        .iter()
        .map(|p| {
            vec![
                p.topic.clone(),
                p.partition.to_string(),
                p.broker.to_string(),
                p.size.to_string(),
                p.offset_lag.to_string(),
            ]
        })
        .collect();
    table::print(
        &["TOPIC", "PARTITION", "BROKER", "BYTES", "OFFSET LAG"],
        &rows,
    );
    0
}
