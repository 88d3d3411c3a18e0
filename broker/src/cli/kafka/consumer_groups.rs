//! `kafka-consumer-groups`: Kafka's `ConsumerGroupCommand` — list, describe (offsets and
//! lag), reset offsets and delete groups — with its flags and its output.

use clap::Parser;
use strom_client::Admin;

use crate::cli::group::{offset_rows, parse_time};
use strom_client::groups::{reset_plan, ResetTo};

#[derive(Parser, Debug)]
#[command(
    name = "kafka-consumer-groups",
    about = "List, describe, reset or delete consumer groups (Kafka's kafka-consumer-groups, served by strom).",
    disable_version_flag = true
)]
struct Args {
    /// REQUIRED: The server(s) to connect to.
    #[arg(long, value_name = "String: server to connect to")]
    bootstrap_server: Option<String>,
    /// List all consumer groups.
    #[arg(long)]
    list: bool,
    /// Describe consumer group and list offset lag (number of messages not yet
    /// processed) related to given group.
    #[arg(long)]
    describe: bool,
    /// Reset offsets of consumer group.
    #[arg(long)]
    reset_offsets: bool,
    /// Pass in groups to delete topic partition offsets and ownership information.
    #[arg(long)]
    delete: bool,
    /// The consumer group we wish to act on (repeatable).
    #[arg(long = "group", value_name = "String: consumer group")]
    groups: Vec<String>,
    /// Apply to all consumer groups.
    #[arg(long)]
    all_groups: bool,
    /// The topic whose consumer group information should be reset (repeatable;
    /// `topic:0,1` names partitions).
    #[arg(long = "topic", value_name = "String: topic")]
    topics: Vec<String>,
    /// Consider all topics assigned to a group in the `reset-offsets` process.
    #[arg(long)]
    all_topics: bool,
    /// Reset offsets to earliest offset.
    #[arg(long)]
    to_earliest: bool,
    /// Reset offsets to latest offset.
    #[arg(long)]
    to_latest: bool,
    /// Reset offsets to a specific offset.
    #[arg(long, value_name = "Long: offset")]
    to_offset: Option<i64>,
    /// Reset offsets to offset from datetime. Format: 'YYYY-MM-DDThh:mm:ss.sss'.
    #[arg(long, value_name = "String: datetime")]
    to_datetime: Option<String>,
    /// Reset offsets shifting current offset by 'n', where 'n' can be positive or negative.
    #[arg(
        long,
        value_name = "Long: number-of-offsets",
        allow_hyphen_values = true
    )]
    shift_by: Option<i64>,
    /// Reset to current offset.
    #[arg(long)]
    to_current: bool,
    /// Execute operation. Supported operations: reset-offsets.
    #[arg(long)]
    execute: bool,
    /// Only show results without executing changes on Consumer Groups. Supported
    /// operations: reset-offsets.
    #[arg(long)]
    dry_run: bool,
    /// Describe members of the group.
    #[arg(long)]
    members: bool,
    /// Describe the group and list all topic partitions in the group along with their
    /// offset lag (the default of --describe).
    #[arg(long)]
    offsets: bool,
    /// Describe the group state.
    #[arg(long)]
    state: bool,
    /// Display Kafka version.
    #[arg(long)]
    version: bool,
}

/// Kafka's error line: `Error: <message>`, exit 1.
fn failed(msg: impl std::fmt::Display) -> i32 {
    println!("\nError: {msg}");
    1
}

pub async fn run(args: Vec<String>) -> i32 {
    let a: Args = match super::parse("kafka-consumer-groups", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if a.version {
        println!("4.0.0 (strom {})", env!("CARGO_PKG_VERSION"));
        return 0;
    }
    let actions = [a.list, a.describe, a.reset_offsets, a.delete]
        .iter()
        .filter(|x| **x)
        .count();
    if actions != 1 {
        eprintln!("Command must include exactly one action: --list, --describe, --delete, --reset-offsets");
        return 1;
    }
    let Some(bootstrap) = a.bootstrap_server.clone() else {
        eprintln!("Missing required argument \"[bootstrap-server]\"");
        return 1;
    };
    if !a.list && a.groups.is_empty() && !a.all_groups {
        eprintln!(
            "Option [{}] takes one of these options: [all-groups], [group]",
            if a.describe {
                "describe"
            } else if a.delete {
                "delete"
            } else {
                "reset-offsets"
            }
        );
        return 1;
    }
    let client = match super::connect(bootstrap).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = Admin::new(client.clone());
    let groups = if a.all_groups {
        match admin.list_groups().await {
            Ok(l) => l.into_iter().map(|g| g.group_id).collect(),
            Err(e) => return failed(super::message(&e)),
        }
    } else {
        a.groups.clone()
    };
    if a.list {
        return match admin.list_groups().await {
            Ok(l) => {
                let mut ids: Vec<String> = l.into_iter().map(|g| g.group_id).collect();
                ids.sort();
                for g in ids {
                    println!("{g}");
                }
                0
            }
            Err(e) => failed(super::message(&e)),
        };
    }
    if a.describe {
        let mut code = 0;
        for g in &groups {
            code = code.max(describe(&admin, &client, g, &a).await);
        }
        return code;
    }
    if a.delete {
        return match admin.delete_groups(&groups).await {
            Ok(rs) => {
                let mut code = 0;
                let mut ok = Vec::new();
                for (g, err) in rs {
                    match err {
                        None => ok.push(g),
                        Some(e) => {
                            println!("Error: Deletion of group '{g}' failed due to: {e}");
                            code = 1;
                        }
                    }
                }
                if !ok.is_empty() {
                    println!(
                        "Deletion of requested consumer groups ({}) was successful.",
                        ok.iter()
                            .map(|g| format!("'{g}'"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                }
                code
            }
            Err(e) => failed(super::message(&e)),
        };
    }
    reset(&admin, &client, &groups, &a).await
}

/// Left-aligned columns, each as wide as its widest cell, one space apart (Kafka's
/// `%-Ns` formats).
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$} ", w = widths[i]));
            }
        }
        println!("{out}");
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

async fn describe(admin: &Admin, client: &strom_client::Client, group: &str, a: &Args) -> i32 {
    let d = match admin.describe_group(group).await {
        Ok(d) => d,
        Err(e) => return failed(super::message(&e)),
    };
    if d.state == "Dead" || d.error.as_ref().is_some_and(|e| e.code == 69) {
        return failed(format!("Consumer group '{group}' does not exist."));
    }
    if a.state {
        println!();
        print_table(
            &[
                "GROUP",
                "COORDINATOR (ID)",
                "ASSIGNMENT-STRATEGY",
                "STATE",
                "#MEMBERS",
            ],
            &[vec![
                group.to_string(),
                format!("({})", d.coordinator),
                d.protocol.clone(),
                d.state.clone(),
                d.members.len().to_string(),
            ]],
        );
        return 0;
    }
    if a.members {
        if d.members.is_empty() {
            println!("\nConsumer group '{group}' has no active members.");
            return 0;
        }
        println!();
        let rows: Vec<Vec<String>> = d
            .members
            .iter()
            .map(|m| {
                vec![
                    group.to_string(),
                    m.member_id.clone(),
                    m.client_host.clone(),
                    m.client_id.clone(),
                    m.assignment
                        .values()
                        .map(|ps| ps.len())
                        .sum::<usize>()
                        .to_string(),
                ]
            })
            .collect();
        print_table(
            &["GROUP", "CONSUMER-ID", "HOST", "CLIENT-ID", "#PARTITIONS"],
            &rows,
        );
        return 0;
    }
    let offsets = match admin.group_offsets(group).await {
        Ok(o) => o,
        Err(e) => return failed(super::message(&e)),
    };
    if d.members.is_empty() {
        println!("\nConsumer group '{group}' has no active members.");
    }
    let rows: Vec<Vec<String>> = offset_rows(client, &d, &offsets)
        .await
        .into_iter()
        .map(|r| std::iter::once(group.to_string()).chain(r).collect())
        .collect();
    println!();
    print_table(
        &[
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID",
        ],
        &rows,
    );
    0
}

async fn reset(admin: &Admin, client: &strom_client::Client, groups: &[String], a: &Args) -> i32 {
    let to = if a.to_earliest {
        ResetTo::Earliest
    } else if a.to_latest {
        ResetTo::Latest
    } else if let Some(o) = a.to_offset {
        ResetTo::Offset(o)
    } else if let Some(n) = a.shift_by {
        ResetTo::ShiftBy(n)
    } else if a.to_current {
        ResetTo::ShiftBy(0)
    } else if let Some(ts) = &a.to_datetime {
        match parse_time(ts) {
            Some(ms) => ResetTo::Time(ms),
            None => {
                return failed(format!(
                    "Error parsing timestamp {ts}: expected 'YYYY-MM-DDThh:mm:ss.sss' (UTC)"
                ))
            }
        }
    } else {
        eprintln!("Option [reset-offsets] takes one of these options: [to-datetime], [by-duration], [to-earliest], [to-latest], [shift-by], [from-file], [to-current], [to-offset]");
        return 1;
    };
    if a.topics.is_empty() && !a.all_topics {
        eprintln!("Option [reset-offsets] takes one of these options: [all-topics], [topic]");
        return 1;
    }
    if !a.execute && !a.dry_run {
        println!("WARN: No action will be performed as the --execute option is missing. In a future major release, the default behavior of this command will be to prompt the user before executing the reset rather than doing a dry run. You should add the --dry-run option explicitly if you are scripting this command and want to keep the current default behavior without prompting.");
    }
    let mut rows = Vec::new();
    for group in groups {
        let d = match admin.describe_group(group).await {
            Ok(d) => d,
            Err(e) => return failed(super::message(&e)),
        };
        if a.execute && !d.members.is_empty() {
            return failed(format!(
                "Assignments can only be reset if the group '{group}' is inactive, but the current state is {}.",
                d.state
            ));
        }
        let current = match admin.group_offsets(group).await {
            Ok(o) => o,
            Err(e) => return failed(super::message(&e)),
        };
        let mut targets: Vec<(String, i32)> = Vec::new();
        if a.all_topics {
            targets.extend(current.keys().cloned());
        }
        for spec in &a.topics {
            let (t, parts) = match spec.split_once(':') {
                Some((t, ps)) => (
                    t.to_string(),
                    Some(
                        ps.split(',')
                            .filter_map(|p| p.trim().parse::<i32>().ok())
                            .collect::<Vec<_>>(),
                    ),
                ),
                None => (spec.clone(), None),
            };
            match parts {
                Some(ps) => targets.extend(ps.into_iter().map(|p| (t.clone(), p))),
                None => match client.topic_metadata(&t).await {
                    Ok(m) => targets.extend(m.partitions.iter().map(|p| (t.clone(), p.partition))),
                    Err(e) => return failed(super::message(&e)),
                },
            }
        }
        targets.sort();
        targets.dedup();
        let plan = reset_plan(client, &current, targets, to).await;
        if a.execute {
            if let Err(e) = admin.commit_group_offsets(group, &plan).await {
                return failed(super::message(&e));
            }
        }
        for ((t, p), o) in &plan {
            rows.push(vec![group.clone(), t.clone(), p.to_string(), o.to_string()]);
        }
    }
    println!();
    print_table(&["GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"], &rows);
    0
}
