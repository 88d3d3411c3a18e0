//! `strom group list|describe|reset-offsets|delete`, like `kafka-consumer-groups.sh`.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use strom_client::consumer::{Consumer, ConsumerConfig, OffsetSpec};
use strom_client::groups::{reset_plan, ResetTo};
use strom_client::Admin;

use super::{connect, table, Conn};

#[derive(Args)]
pub struct GroupArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: GroupCmd,
}

#[derive(Subcommand)]
enum GroupCmd {
    /// List groups with their state and type.
    List,
    /// Members and, per partition, committed offset, log end offset and lag.
    Describe { group: String },
    /// Move a group's committed offsets (the group must have no members). Prints the
    /// plan; `--execute` applies it.
    ResetOffsets(ResetArgs),
    /// Delete groups (without members).
    Delete {
        #[arg(required = true)]
        groups: Vec<String>,
    },
}

#[derive(Args)]
struct ResetArgs {
    group: String,
    /// Topics to reset (default: every topic the group has offsets for).
    #[arg(long)]
    topic: Vec<String>,
    #[arg(long, group = "to")]
    to_earliest: bool,
    #[arg(long, group = "to")]
    to_latest: bool,
    #[arg(long, group = "to", value_name = "OFFSET")]
    to_offset: Option<i64>,
    /// RFC 3339 time (2026-11-23T10:00:00Z) or milliseconds since the epoch.
    #[arg(long, group = "to", value_name = "TIME")]
    to_datetime: Option<String>,
    #[arg(long, group = "to", value_name = "N", allow_hyphen_values = true)]
    shift_by: Option<i64>,
    /// Only print the plan (the default).
    #[arg(long, conflicts_with = "execute")]
    dry_run: bool,
    /// Commit the new offsets.
    #[arg(long)]
    execute: bool,
}

pub async fn run(a: GroupArgs) -> i32 {
    let client = match connect(&a.conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = Admin::new(client.clone());
    match a.cmd {
        GroupCmd::List => match admin.list_groups().await {
            Ok(gs) => {
                let rows: Vec<Vec<String>> = gs
                    .into_iter()
                    .map(|g| {
                        vec![
                            g.group_id,
                            g.state,
                            g.group_type,
                            g.protocol_type,
                            g.coordinator.to_string(),
                        ]
                    })
                    .collect();
                table::print(
                    &["GROUP", "STATE", "TYPE", "PROTOCOL-TYPE", "COORDINATOR"],
                    &rows,
                );
                0
            }
            Err(e) => super::topic::fail(e),
        },
        GroupCmd::Describe { group } => describe(&admin, client, &group).await,
        GroupCmd::ResetOffsets(r) => reset(&admin, client, r).await,
        GroupCmd::Delete { groups } => match admin.delete_groups(&groups).await {
            Ok(rs) => {
                let mut code = 0;
                for (g, e) in rs {
                    match e {
                        None => println!("deleted group {g}"),
                        Some(e) => {
                            eprintln!("cannot delete group {g}: {e}");
                            code = 1;
                        }
                    }
                }
                code
            }
            Err(e) => super::topic::fail(e),
        },
    }
}

/// One row per partition the group has an offset for or is assigned: topic, partition,
/// committed offset, log end offset, lag, and the owning member's id, host and client id
/// ("-" where there is none), as `kafka-consumer-groups --describe` lists them.
pub async fn offset_rows(
    client: &strom_client::Client,
    d: &strom_client::GroupDescription,
    offsets: &BTreeMap<(String, i32), i64>,
) -> Vec<Vec<String>> {
    let mut owner: BTreeMap<(String, i32), (String, String, String)> = BTreeMap::new();
    for m in &d.members {
        for (t, ps) in &m.assignment {
            for p in ps {
                owner.insert(
                    (t.clone(), *p),
                    (
                        m.member_id.clone(),
                        m.client_host.clone(),
                        m.client_id.clone(),
                    ),
                );
            }
        }
    }
    let mut keys: Vec<(String, i32)> = offsets.keys().cloned().collect();
    keys.extend(owner.keys().cloned());
    keys.sort();
    keys.dedup();
    let mut rows = Vec::new();
    for (t, p) in keys {
        let current = offsets.get(&(t.clone(), p)).copied();
        let end = log_end(client, &t, p).await;
        let lag = match (current, end) {
            (Some(c), Some(e)) => (e - c).max(0).to_string(),
            _ => "-".into(),
        };
        let (member, host, client_id) =
            owner
                .get(&(t.clone(), p))
                .cloned()
                .unwrap_or(("-".into(), "-".into(), "-".into()));
        rows.push(vec![
            t,
            p.to_string(),
            current.map_or("-".into(), |c| c.to_string()),
            end.map_or("-".into(), |e| e.to_string()),
            lag,
            member,
            host,
            client_id,
        ]);
    }
    rows
}

async fn log_end(client: &strom_client::Client, topic: &str, partition: i32) -> Option<i64> {
    let c = Consumer::new(client.clone(), ConsumerConfig::default());
    c.list_offsets(topic, partition, OffsetSpec::Latest)
        .await
        .ok()
        .map(|o| o.offset)
}

async fn describe(admin: &Admin, client: strom_client::Client, group: &str) -> i32 {
    let d = match admin.describe_group(group).await {
        Ok(d) => d,
        Err(e) => return super::topic::fail(e),
    };
    if let Some(e) = &d.error {
        eprintln!("group {group}: {e}");
        return 1;
    }
    let offsets = match admin.group_offsets(group).await {
        Ok(o) => o,
        Err(e) => return super::topic::fail(e),
    };
    println!(
        "Group {} is {} (coordinator {}, protocol {} {}, {} member(s))",
        d.group_id,
        d.state,
        d.coordinator,
        if d.protocol_type.is_empty() {
            "-"
        } else {
            &d.protocol_type
        },
        if d.protocol.is_empty() {
            "-"
        } else {
            &d.protocol
        },
        d.members.len()
    );
    println!();
    let rows = offset_rows(&client, &d, &offsets).await;
    table::print(
        &[
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

pub fn parse_time(s: &str) -> Option<i64> {
    if let Ok(ms) = s.parse::<i64>() {
        return Some(ms);
    }
    // RFC 3339 / ISO 8601 in UTC: YYYY-MM-DDTHH:MM:SS[.mmm]Z
    let s = s.trim_end_matches('Z');
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, mo, da) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>());
    let (h, mi, se) = (
        t.next()?.ok()?,
        t.next()?.ok()?,
        t.next().unwrap_or(Ok(0)).ok()?,
    );
    let ms: i64 = format!("{:0<3}", &frac[..frac.len().min(3)]).parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + da - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + h) * 60 + mi) * 60_000 + se * 1000 + ms)
}

async fn reset(admin: &Admin, client: strom_client::Client, r: ResetArgs) -> i32 {
    let d = match admin.describe_group(&r.group).await {
        Ok(d) => d,
        Err(e) => return super::topic::fail(e),
    };
    if r.execute && !d.members.is_empty() {
        eprintln!(
            "group {} has {} active member(s) (state {}): stop them before resetting offsets",
            r.group,
            d.members.len(),
            d.state
        );
        return 1;
    }
    let current = match admin.group_offsets(&r.group).await {
        Ok(o) => o,
        Err(e) => return super::topic::fail(e),
    };
    // The partitions: the topics asked for (all their partitions), else the group's.
    let mut targets: Vec<(String, i32)> = Vec::new();
    if r.topic.is_empty() {
        targets.extend(current.keys().cloned());
    } else {
        for t in &r.topic {
            match client.topic_metadata(t).await {
                Ok(m) => targets.extend(m.partitions.iter().map(|p| (t.clone(), p.partition))),
                Err(e) => return super::topic::fail(e),
            }
        }
    }
    let to = if r.to_earliest {
        ResetTo::Earliest
    } else if r.to_latest {
        ResetTo::Latest
    } else if let Some(o) = r.to_offset {
        ResetTo::Offset(o)
    } else if let Some(n) = r.shift_by {
        ResetTo::ShiftBy(n)
    } else if let Some(ts) = &r.to_datetime {
        let Some(ms) = parse_time(ts) else {
            eprintln!("--to-datetime {ts}: expected RFC 3339 (2026-11-23T10:00:00Z) or epoch milliseconds");
            return 2;
        };
        ResetTo::Time(ms)
    } else {
        eprintln!(
            "say where to: --to-earliest, --to-latest, --to-offset, --to-datetime or --shift-by"
        );
        return 2;
    };
    let started = std::time::Instant::now();
    eprintln!(
        "[reset] finding the new offsets of {} partition(s)",
        targets.len()
    );
    let plan = reset_plan(&client, &current, targets, to).await;
    let rows: Vec<Vec<String>> = plan
        .iter()
        .map(|((t, p), o)| {
            vec![
                t.clone(),
                p.to_string(),
                current
                    .get(&(t.clone(), *p))
                    .map_or("-".into(), |c| c.to_string()),
                o.to_string(),
            ]
        })
        .collect();
    table::print(
        &["TOPIC", "PARTITION", "CURRENT-OFFSET", "NEW-OFFSET"],
        &rows,
    );
    if !r.execute {
        println!("\n(dry run: nothing changed; add --execute to commit these offsets)");
        return 0;
    }
    eprintln!("[reset] committing {} offset(s)", plan.len());
    match admin.commit_group_offsets(&r.group, &plan).await {
        Ok(()) => {
            println!(
                "\ncommitted {} offset(s) for group {} ({:.1} s)",
                plan.len(),
                r.group,
                started.elapsed().as_secs_f64()
            );
            0
        }
        Err(e) => super::topic::fail(e),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_times() {
        assert_eq!(super::parse_time("0"), Some(0));
        assert_eq!(super::parse_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            super::parse_time("2026-11-23T10:00:00.5Z"),
            Some(1_795_428_000_500)
        );
        assert_eq!(super::parse_time("nonsense"), None);
    }
}
