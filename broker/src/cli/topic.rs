//! `strom topic create|list|describe|delete|alter-config|reassign|elect-leaders`, like
//! `kafka-topics.sh`, `kafka-configs.sh`, `kafka-reassign-partitions.sh` and
//! `kafka-leader-election.sh`.

use clap::{Args, Subcommand};
use strom_client::{Admin, AlterConfigOp, ConfigResource, ConfigSource, NewTopic};

use super::{connect, table, Conn};

#[derive(Args)]
pub struct TopicArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: TopicCmd,
}

#[derive(Subcommand)]
enum TopicCmd {
    /// Create a topic.
    Create {
        name: String,
        /// Partitions (default: the broker's num.partitions).
        #[arg(long, short)]
        partitions: Option<i32>,
        /// Replicas per partition (default: the broker's default.replication.factor).
        #[arg(long, short = 'r')]
        replication_factor: Option<i16>,
        /// A topic config: `--config retention.ms=60000` (repeatable).
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
        /// Check the request without creating anything.
        #[arg(long)]
        validate_only: bool,
    },
    /// List topics.
    List {
        /// Include internal topics (__consumer_offsets, ...).
        #[arg(long)]
        internal: bool,
    },
    /// Describe topics: partitions, leaders, replicas, ISR, and configs that differ from
    /// the defaults.
    Describe {
        /// Topics (all when none).
        names: Vec<String>,
    },
    /// Delete topics.
    Delete {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Move a partition to other brokers (drain or add a broker), cancel a move, or list
    /// the moves in progress. The new replicas catch up as followers; the move completes
    /// once they are all in sync, and the replicas that leave are dropped.
    Reassign {
        /// The topic (not needed with --list).
        name: Option<String>,
        /// The partition to move.
        #[arg(long, short)]
        partition: Option<i32>,
        /// The new replicas, comma-separated broker ids, preferred leader first.
        #[arg(long, value_delimiter = ',')]
        replicas: Vec<i32>,
        /// Cancel the move in progress of the partition.
        #[arg(long)]
        cancel: bool,
        /// List the moves in progress.
        #[arg(long)]
        list: bool,
        /// Wait until the move is done, showing how far behind each new replica is
        /// (Ctrl-C stops waiting, not the move).
        #[arg(long)]
        wait: bool,
    },
    /// Elect leaders: the preferred (first) replica where it can lead, or with --unclean a
    /// replica of a leaderless partition that may lack committed records.
    ElectLeaders {
        /// Topics (all partitions of all topics when none).
        names: Vec<String>,
        /// Only this partition (with one topic).
        #[arg(long, short)]
        partition: Option<i32>,
        /// An unclean election (may lose committed records).
        #[arg(long)]
        unclean: bool,
    },
    /// Change a topic's configs.
    AlterConfig {
        name: String,
        /// Set a config: `--set retention.ms=60000` (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Remove a config override, going back to the default (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        deletes: Vec<String>,
    },
}

pub async fn run(a: TopicArgs) -> i32 {
    let client = match connect(&a.conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let admin = Admin::new(client);
    match a.cmd {
        TopicCmd::Create {
            name,
            partitions,
            replication_factor,
            configs,
            validate_only,
        } => {
            let mut t = NewTopic::new(
                &name,
                partitions.unwrap_or(-1),
                replication_factor.unwrap_or(-1),
            );
            let configs = match key_values("--config", &configs) {
                Ok(kvs) => kvs,
                Err(msg) => {
                    eprintln!("{msg}");
                    return 2;
                }
            };
            for (k, v) in &configs {
                t = t.config(k, v);
            }
            match admin.create_topics(vec![t], validate_only).await {
                Ok(rs) => {
                    let mut code = 0;
                    for r in rs {
                        match r.error {
                            None if validate_only => {
                                println!("topic {} is valid (not created)", r.name)
                            }
                            None => println!(
                                "created topic {} ({} partitions, replication factor {}, id {})",
                                r.name,
                                r.num_partitions,
                                r.replication_factor,
                                r.topic_id.map(|u| u.to_string()).unwrap_or_default()
                            ),
                            Some(e) => {
                                eprintln!("cannot create {}: {e}", r.name);
                                code = 1;
                            }
                        }
                    }
                    code
                }
                Err(e) => fail(e),
            }
        }
        TopicCmd::List { internal } => match admin.list_topics(internal).await {
            Ok(ts) => {
                for t in ts {
                    println!("{}", t.name);
                }
                0
            }
            Err(e) => fail(e),
        },
        TopicCmd::Describe { names } => {
            let filter = if names.is_empty() {
                None
            } else {
                Some(names.as_slice())
            };
            let topics = match admin.describe_topics(filter).await {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            let mut code = 0;
            for t in topics {
                if let Some(e) = &t.error {
                    eprintln!("{}: {e}", t.name);
                    code = 1;
                    continue;
                }
                let overrides = match admin
                    .describe_configs(&ConfigResource::Topic(t.name.clone()), None)
                    .await
                {
                    Ok(cs) => cs
                        .into_iter()
                        .filter(|c| c.source == ConfigSource::DynamicTopic)
                        .map(|c| format!("{}={}", c.name, c.value.unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(","),
                    Err(_) => String::new(),
                };
                let rf = t.partitions.first().map_or(0, |p| p.replicas.len());
                println!(
                    "Topic: {}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {}\tConfigs: {}",
                    t.name,
                    t.topic_id,
                    t.partitions.len(),
                    rf,
                    overrides
                );
                let rows: Vec<Vec<String>> = t
                    .partitions
                    .iter()
                    .map(|p| {
                        vec![
                            p.partition.to_string(),
                            p.leader.to_string(),
                            p.leader_epoch.to_string(),
                            join(&p.replicas),
                            join(&p.isr),
                            join(&p.offline_replicas),
                        ]
                    })
                    .collect();
                table::print(
                    &["PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "OFFLINE"],
                    &rows,
                );
                println!();
            }
            code
        }
        TopicCmd::Delete { names } => match admin.delete_topics(&dedup(names)).await {
            Ok(rs) => {
                let mut code = 0;
                for r in rs {
                    match r.error {
                        None => println!("deleted topic {}", r.name),
                        Some(e) => {
                            eprintln!("cannot delete {}: {e}", r.name);
                            code = 1;
                        }
                    }
                }
                code
            }
            Err(e) => fail(e),
        },
        TopicCmd::Reassign {
            name,
            partition,
            replicas,
            cancel,
            list,
            wait,
        } => {
            let code = reassign(&admin, name.clone(), partition, replicas, cancel, list).await;
            match (code, wait && !cancel && !list, name, partition) {
                (0, true, Some(n), Some(p)) => wait_for_move(&admin, &n, p).await,
                _ => code,
            }
        }
        TopicCmd::ElectLeaders {
            names,
            partition,
            unclean,
        } => elect(&admin, names, partition, unclean).await,
        TopicCmd::AlterConfig {
            name,
            sets,
            deletes,
        } => {
            let mut ops: Vec<AlterConfigOp> = match key_values("--set", &sets) {
                Ok(kvs) => kvs
                    .into_iter()
                    .map(|(k, v)| AlterConfigOp::Set(k, v))
                    .collect(),
                Err(msg) => {
                    eprintln!("{msg}");
                    return 2;
                }
            };
            ops.extend(deletes.into_iter().map(AlterConfigOp::Delete));
            if ops.is_empty() {
                eprintln!("nothing to change: give --set KEY=VALUE or --delete KEY");
                return 2;
            }
            match admin
                .incremental_alter_configs(&ConfigResource::Topic(name.clone()), &ops, false)
                .await
            {
                Ok(()) => {
                    println!("altered configs of topic {name}");
                    0
                }
                Err(e) => fail(e),
            }
        }
    }
}

fn join(v: &[i32]) -> String {
    v.iter()
        .map(|x| x.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

async fn reassign(
    admin: &Admin,
    name: Option<String>,
    partition: Option<i32>,
    replicas: Vec<i32>,
    cancel: bool,
    list: bool,
) -> i32 {
    if list {
        return match admin.list_partition_reassignments().await {
            Ok(moves) => {
                let rows: Vec<Vec<String>> = moves
                    .iter()
                    .map(|m| {
                        vec![
                            m.topic.clone(),
                            m.partition.to_string(),
                            join(&m.replicas),
                            join(&m.adding),
                            join(&m.removing),
                        ]
                    })
                    .collect();
                if rows.is_empty() {
                    println!("no reassignment in progress");
                } else {
                    table::print(
                        &["TOPIC", "PARTITION", "REPLICAS", "ADDING", "REMOVING"],
                        &rows,
                    );
                }
                0
            }
            Err(e) => fail(e),
        };
    }
    let (Some(name), Some(partition)) = (name, partition) else {
        eprintln!("usage: strom topic reassign TOPIC --partition P (--replicas 1,2,3 | --cancel), or --list");
        return 2;
    };
    if cancel != replicas.is_empty() {
        eprintln!("give either --replicas or --cancel");
        return 2;
    }
    let target = (!cancel).then_some(replicas);
    match admin
        .alter_partition_reassignments(&[(name.clone(), partition, target.clone())])
        .await
    {
        Ok(rs) => {
            let mut code = 0;
            for (t, p, e) in rs {
                match e {
                    None if cancel => println!("cancelled the move of {t}-{p}"),
                    None => println!(
                        "moving {t}-{p} to {}; `strom topic reassign --list` shows progress",
                        join(target.as_deref().unwrap_or(&[]))
                    ),
                    Some(e) => {
                        eprintln!("cannot move {t}-{p}: {e}");
                        code = 1;
                    }
                }
            }
            code
        }
        Err(e) => fail(e),
    }
}

/// Polls until `topic`-`partition` has no move in progress, printing on stderr every
/// 2 s how much of the leader's log (bytes on disk) each adding replica holds.
async fn wait_for_move(admin: &Admin, topic: &str, partition: i32) -> i32 {
    let start = std::time::Instant::now();
    loop {
        let moves = match admin.list_partition_reassignments().await {
            Ok(m) => m,
            Err(e) => return fail(e),
        };
        let Some(m) = moves
            .into_iter()
            .find(|m| m.topic == topic && m.partition == partition)
        else {
            let replicas = admin
                .describe_topics(Some(&[topic.to_string()]))
                .await
                .ok()
                .and_then(|ts| ts.into_iter().next())
                .and_then(|t| t.partitions.into_iter().find(|p| p.partition == partition))
                .map(|p| join(&p.replicas))
                .unwrap_or_else(|| "?".into());
            println!(
                "moved {topic}-{partition}: replicas {replicas} ({:.1} s)",
                start.elapsed().as_secs_f64()
            );
            return 0;
        };
        // Each new replica's size on disk against the leader's.
        let dirs = admin.describe_log_dirs().await.unwrap_or_default();
        let size_on = |b: i32| {
            dirs.iter()
                .flat_map(|d| &d.partitions)
                .find(|p| p.broker == b && p.topic == topic && p.partition == partition)
                .map(|p| p.size)
        };
        let leader = admin
            .client()
            .leader_for(topic, partition)
            .await
            .ok()
            .and_then(size_on);
        let mb = |b: i64| format!("{:.1} MB", b as f64 / 1e6);
        let behind: Vec<String> = m
            .adding
            .iter()
            .map(|b| match (size_on(*b), leader) {
                (Some(s), Some(l)) => format!("broker {b}: {} of {}", mb(s), mb(l)),
                (Some(s), None) => format!("broker {b}: {}", mb(s)),
                (None, _) => format!("broker {b}: no replica yet"),
            })
            .collect();
        let removing = if m.removing.is_empty() {
            String::new()
        } else {
            format!(", removing {}", join(&m.removing))
        };
        eprintln!(
            "[reassign] {:.0} s: {topic}-{partition} adding {} ({}){removing}",
            start.elapsed().as_secs_f64(),
            join(&m.adding),
            behind.join("; "),
        );
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}

async fn elect(admin: &Admin, names: Vec<String>, partition: Option<i32>, unclean: bool) -> i32 {
    let selection: Option<Vec<(String, i32)>> = if names.is_empty() {
        None
    } else {
        let mut out = Vec::new();
        for n in &names {
            match partition {
                Some(p) => out.push((n.clone(), p)),
                None => match admin.describe_topics(Some(std::slice::from_ref(n))).await {
                    Ok(ts) => out.extend(ts[0].partitions.iter().map(|p| (n.clone(), p.partition))),
                    Err(e) => return fail(e),
                },
            }
        }
        Some(out)
    };
    match admin.elect_leaders(unclean, selection.as_deref()).await {
        Ok(rs) => {
            let mut code = 0;
            let mut elected = 0;
            for (t, p, e) in rs {
                match e {
                    None => elected += 1,
                    Some(e) if e.code == 84 => println!("{t}-{p}: election not needed"),
                    Some(e) => {
                        eprintln!("{t}-{p}: {e}");
                        code = 1;
                    }
                }
            }
            println!("elected leaders for {elected} partition(s)");
            code
        }
        Err(e) => fail(e),
    }
}

pub fn fail(e: strom_client::ClientError) -> i32 {
    eprintln!("error: {e}");
    1
}

/// The names in order, each once (`topic delete t t` deletes t once).
fn dedup(mut names: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::BTreeSet::new();
    names.retain(|n| seen.insert(n.clone()));
    names
}

/// `KEY=VALUE` arguments of `flag`, trimmed, in order; a malformed one or a key given
/// twice is a usage error (the message to print).
fn key_values(flag: &str, items: &[String]) -> Result<Vec<(String, String)>, String> {
    let mut seen = std::collections::BTreeSet::new();
    items
        .iter()
        .map(|kv| {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("{flag} {kv}: expected KEY=VALUE"))?;
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if !seen.insert(k.clone()) {
                return Err(format!("{flag} {k}: given twice"));
            }
            Ok((k, v))
        })
        .collect()
}
