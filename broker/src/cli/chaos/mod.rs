//! `strom chaos`: runs a workload against a cluster while injecting faults, then checks
//! the history and prints a verdict.
//!
//! The cluster is either local `strom node` processes that the run starts itself (its
//! own data dir and ports; faults by signal: kill -9, SIGSTOP/SIGCONT, SIGTERM, each
//! followed by a restart where the node stopped) or a running docker compose project
//! whose services are `strom-1`… (`deploy/docker-compose.yml`; faults by docker: kill,
//! pause, stop, network disconnect). Every `--every`, a fault picked with the seeded
//! random generator from `--faults` hits a node picked by `--target` (the leader of a
//! random partition of the topic, the metadata quorum's leader, a random node, or each
//! node in turn) and is healed `--down` later. The workload (see `workload`) runs
//! throughout; at the end every fault is healed, the cluster is waited on to be ready,
//! and the whole topic is read back.
//!
//! Output: a verdict table on stdout (see `verdict` for the checks), and in `--out`:
//! `history.json` (every send, acknowledgement, read and fault), `verdict.json` and
//! `plot.svg` (acknowledgements per second and p99 latency over time, faults shaded).
//! The exit status is 1 on any safety violation (a lost acknowledged record, a
//! duplicate, reordering within a key, an offset with two values), 2 when the run
//! itself could not be made.

pub mod cluster;
pub mod plot;
pub mod verdict;
pub mod workload;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use parking_lot::Mutex;
use strom_client::{Admin, Client, ClientConfig, NewTopic};

use cluster::{Cluster, Compose, FaultKind, Local, LocalNode};
use verdict::Fault;

#[derive(Args)]
pub struct ChaosArgs {
    /// How long the workload runs while faults come (e.g. 60s, 5m).
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Faults to pick from: kill, pause, term, partition (compose only).
    #[arg(long, default_value = "kill", value_delimiter = ',')]
    faults: Vec<String>,
    /// Time between the starts of two faults.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    every: Duration,
    /// How long a fault lasts before it is healed.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    down: Duration,
    /// Which node a fault hits: leader (of a random partition of the topic),
    /// quorum-leader, random, or round-robin (each node in turn: a rolling restart).
    #[arg(long, default_value = "leader", value_parser = ["leader", "quorum-leader", "random", "round-robin"])]
    target: String,
    /// Seed of the random choices (default: from the clock; printed).
    #[arg(long)]
    seed: Option<u64>,
    /// Local nodes to start (ignored with --compose-project).
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// The first Kafka port of the local nodes (as `strom dev --base-port`).
    #[arg(long, default_value_t = 19092)]
    base_port: u16,
    /// A running docker compose project to work on instead of local nodes.
    #[arg(long)]
    compose_project: Option<String>,
    /// Its compose file.
    #[arg(long, default_value = "deploy/docker-compose.yml")]
    compose_file: PathBuf,
    /// The compose cluster's bootstrap servers as seen from here.
    #[arg(long, default_value = "localhost:9092,localhost:9093,localhost:9094")]
    bootstrap: String,
    /// Producers (idempotent, acks=all).
    #[arg(long, default_value_t = 2)]
    producers: u32,
    /// Records each producer sends a second (0: as fast as acknowledged).
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Consumers in the group.
    #[arg(long, default_value_t = 2)]
    consumers: u32,
    /// The topic (created with these settings if missing).
    #[arg(long, default_value = "chaos")]
    topic: String,
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    #[arg(long, default_value_t = 3)]
    replication_factor: i16,
    #[arg(long, default_value_t = 2)]
    min_insync_replicas: u32,
    /// Producer acks (all, or 1 to see what acks=1 loses).
    #[arg(long, default_value = "all", value_parser = ["all", "1"])]
    acks: String,
    /// Where the history, verdict and plot go (and the local nodes' data and logs).
    #[arg(long, default_value = "./strom-chaos")]
    out: PathBuf,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map(|i| s.split_at(i))
        .unwrap_or((s, "s"));
    let n: f64 = num.parse().map_err(|_| format!("not a duration: {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in {s:?}: ms, s, m, h")),
    };
    Ok(Duration::from_secs_f64(secs))
}

/// A small deterministic generator (xorshift64*), so a seed replays the same choices.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        // Any seed, 0 included, gives a non-zero state.
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

pub async fn run(a: ChaosArgs) -> i32 {
    match run_inner(a).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("strom chaos: {e}");
            2
        }
    }
}

async fn run_inner(a: ChaosArgs) -> Result<i32, String> {
    let kinds: Vec<FaultKind> = a
        .faults
        .iter()
        .map(|f| FaultKind::parse(f.trim()))
        .collect::<Result<_, _>>()?;
    if a.down >= a.every {
        return Err("--down must be shorter than --every".into());
    }
    let seed = a
        .seed
        .unwrap_or_else(|| strom_common::clock::now_ms() as u64 % 1_000_000);
    std::fs::create_dir_all(&a.out).map_err(|e| format!("{}: {e}", a.out.display()))?;
    let (mut cluster, bootstrap) = match &a.compose_project {
        Some(project) => (
            Cluster::Compose(Compose {
                project: project.clone(),
                file: a.compose_file.clone(),
                nodes: vec![1, 2, 3],
            }),
            a.bootstrap.clone(),
        ),
        None => start_local(&a).await?,
    };
    for k in &kinds {
        if !cluster.supports(*k) {
            cluster.stop().await;
            return Err(format!(
                "{} needs a compose cluster (--compose-project)",
                k.name()
            ));
        }
    }
    let result = run_on(&a, &mut cluster, &bootstrap, &kinds, seed).await;
    cluster.stop().await;
    result
}

async fn start_local(a: &ChaosArgs) -> Result<(Cluster, String), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let data = a.out.join("data");
    let mut nodes = Vec::new();
    for i in 1..=a.nodes {
        let dir = data.join(format!("node-{i}"));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let config = dir.join("node.toml");
        let text = super::dev::local_node_config(a.nodes, &data, a.base_port, i, &dir);
        std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
        nodes.push(LocalNode {
            id: i as i32,
            config,
            log: a.out.join(format!("node-{i}.log")),
            admin: format!("127.0.0.1:{}", super::dev::admin_port_of(a.base_port, i)),
            child: None,
        });
    }
    let mut local = Local { exe, nodes };
    for i in 1..=a.nodes {
        local.start(i as i32).await?;
    }
    let bootstrap = (1..=a.nodes)
        .map(|i| format!("127.0.0.1:{}", a.base_port + i - 1))
        .collect::<Vec<_>>()
        .join(",");
    Ok((Cluster::Local(local), bootstrap))
}

async fn wait_ready(cluster: &Cluster, timeout: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut missing = Vec::new();
        for id in cluster.node_ids() {
            if !cluster.ready(id).await {
                missing.push(id);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("nodes {missing:?} not ready after {timeout:?}"));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn pick_target(
    a: &ChaosArgs,
    admin: &Admin,
    nodes: &[i32],
    rng: &mut Rng,
    turn: usize,
) -> i32 {
    let random = nodes[rng.below(nodes.len())];
    match a.target.as_str() {
        "round-robin" => nodes[turn % nodes.len()],
        "random" => random,
        "quorum-leader" => match admin.describe_quorum().await {
            Ok(q) if nodes.contains(&q.leader_id) => q.leader_id,
            _ => random,
        },
        _ => {
            let p = rng.below(a.partitions.max(1) as usize) as i32;
            admin.client().invalidate_topic(&a.topic);
            match admin.client().leader_for(&a.topic, p).await {
                Ok(l) if nodes.contains(&l) => l,
                _ => random,
            }
        }
    }
}

async fn run_on(
    a: &ChaosArgs,
    cluster: &mut Cluster,
    bootstrap: &str,
    kinds: &[FaultKind],
    seed: u64,
) -> Result<i32, String> {
    wait_ready(cluster, Duration::from_secs(120)).await?;
    let client = Client::connect(
        ClientConfig::new(bootstrap.split(',').map(str::to_owned)).client_id("strom-chaos"),
    )
    .await
    .map_err(|e| format!("cannot reach {bootstrap}: {e}"))?;
    let admin = Admin::new(client.clone());
    let mut topic = NewTopic::new(&a.topic, a.partitions, a.replication_factor);
    topic.configs.insert(
        "min.insync.replicas".into(),
        a.min_insync_replicas.to_string(),
    );
    let _ = admin.create_topics(vec![topic], false).await;
    client
        .topic_metadata(&a.topic)
        .await
        .map_err(|e| format!("topic {}: {e}", a.topic))?;
    let acks: i16 = if a.acks == "1" { 1 } else { -1 };
    println!(
        "strom chaos: seed {seed}, {:?} against {bootstrap}; faults {} every {:?} for {:?} on the {} node; topic {} ({} partitions, RF {}, min ISR {}), {} producers (acks={}) at {} records/s each, {} consumers",
        a.duration,
        a.faults.join(","),
        a.every,
        a.down,
        a.target,
        a.topic,
        a.partitions,
        a.replication_factor,
        a.min_insync_replicas,
        a.producers,
        a.acks,
        a.rate,
        a.consumers
    );
    let stop = Arc::new(AtomicBool::new(false));
    let produced = Arc::new(Mutex::new(Vec::new()));
    let reads = Arc::new(Mutex::new(Vec::new()));
    let rebalances = Arc::new(Mutex::new(Vec::new()));
    let start_ms = strom_common::clock::now_ms();
    let mut tasks = Vec::new();
    for p in 0..a.producers {
        tasks.push(tokio::spawn(workload::produce(
            client.clone(),
            a.topic.clone(),
            p,
            20,
            a.rate,
            acks,
            stop.clone(),
            produced.clone(),
        )));
    }
    let group = format!("chaos-{seed}");
    for m in 0..a.consumers {
        tasks.push(tokio::spawn(workload::consume(
            client.clone(),
            a.topic.clone(),
            group.clone(),
            m,
            stop.clone(),
            reads.clone(),
            rebalances.clone(),
        )));
    }
    // Faults on schedule.
    let mut rng = Rng::new(seed);
    let mut faults: Vec<Fault> = Vec::new();
    let nodes = cluster.node_ids();
    let started = tokio::time::Instant::now();
    let mut turn = 0;
    let mut next = started + a.every.min(Duration::from_secs(5));
    while next + a.down <= started + a.duration {
        tokio::time::sleep_until(next).await;
        let kind = kinds[rng.below(kinds.len())];
        let node = pick_target(a, &admin, &nodes, &mut rng, turn).await;
        turn += 1;
        let fault_start = strom_common::clock::now_ms();
        println!(
            "[chaos] {:>6.1} s  {} node {node}",
            started.elapsed().as_secs_f64(),
            kind.name()
        );
        if let Err(e) = cluster.inject(kind, node).await {
            eprintln!("[chaos] {} node {node} failed: {e}", kind.name());
        }
        tokio::time::sleep(a.down).await;
        if let Err(e) = cluster.heal(kind, node).await {
            eprintln!("[chaos] healing node {node} failed: {e}");
        }
        faults.push(Fault {
            kind: kind.name().to_string(),
            node,
            start_ms: fault_start,
            end_ms: strom_common::clock::now_ms(),
        });
        next += a.every;
    }
    tokio::time::sleep_until(started + a.duration).await;
    // Wind down: the cluster whole again, the workload stopped, the topic read back.
    wait_ready(cluster, Duration::from_secs(180)).await?;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(120), t).await;
    }
    let end_ms = strom_common::clock::now_ms();
    let final_read = workload::read_all(&client, &a.topic).await?;
    let produced = produced.lock().clone();
    let reads = reads.lock().clone();
    let rebalances = rebalances.lock().clone();
    let v = verdict::check(
        &produced,
        &reads,
        &final_read,
        &faults,
        &rebalances,
        (start_ms, end_ms),
    );
    print!("{}", table(&v, seed));
    let history = serde_json::json!({
        "seed": seed,
        "start_ms": start_ms,
        "end_ms": end_ms,
        "faults": faults,
        "produced": produced,
        "read_during": reads,
        "read_at_end": final_read,
        "rebalances": rebalances,
    });
    let write = |name: &str, text: String| {
        let p = a.out.join(name);
        std::fs::write(&p, text).map_err(|e| format!("{}: {e}", p.display()))
    };
    write("history.json", history.to_string())?;
    write(
        "verdict.json",
        serde_json::to_string_pretty(&v).unwrap_or_default(),
    )?;
    write(
        "plot.svg",
        plot::svg(
            &produced,
            &faults,
            start_ms,
            end_ms,
            &format!(
                "strom chaos, seed {seed}: {} faults, {} acknowledged, {} lost",
                faults.len(),
                v.acknowledged,
                v.lost.len()
            ),
        ),
    )?;
    println!("history, verdict and plot in {}", a.out.display());
    Ok(if v.violated() { 1 } else { 0 })
}

/// The verdict as a table.
fn table(v: &verdict::Verdict, seed: u64) -> String {
    let ok = |n: usize| if n == 0 { "ok" } else { "VIOLATED" };
    let lat = |l: Option<(i64, i64)>| match l {
        Some((p50, p99)) => format!("p50 {p50} ms, p99 {p99} ms"),
        None => "-".to_string(),
    };
    let example = |xs: &[String]| {
        xs.first()
            .map(|x| format!(" (e.g. {x})"))
            .unwrap_or_default()
    };
    let rows: Vec<(String, String, &str)> = vec![
        ("faults injected".into(), v.faults.to_string(), ""),
        (
            "records acknowledged".into(),
            v.acknowledged.to_string(),
            "",
        ),
        (
            "sends that failed (not acknowledged)".into(),
            v.failed_sends.to_string(),
            "",
        ),
        (
            "records read back at the end".into(),
            v.read_at_end.to_string(),
            "",
        ),
        (
            "acknowledged records lost".into(),
            format!("{}{}", v.lost.len(), example(&v.lost)),
            ok(v.lost.len()),
        ),
        (
            "duplicates".into(),
            format!("{}{}", v.duplicated.len(), example(&v.duplicated)),
            ok(v.duplicated.len()),
        ),
        (
            "reordered within a key".into(),
            format!("{}{}", v.reordered.len(), example(&v.reordered)),
            ok(v.reordered.len()),
        ),
        (
            "offsets with two values".into(),
            format!(
                "{}{}",
                v.offsets_with_two_values.len(),
                example(&v.offsets_with_two_values)
            ),
            ok(v.offsets_with_two_values.len()),
        ),
        (
            "longest time without an acknowledgement".into(),
            format!("{:.1} s", v.longest_unavailable_ms as f64 / 1000.0),
            "",
        ),
        (
            "produce latency during faults".into(),
            lat(v.latency_during_faults_ms),
            "",
        ),
        (
            "produce latency otherwise".into(),
            lat(v.latency_otherwise_ms),
            "",
        ),
        (
            "group rebalances (all members), longest member total".into(),
            format!(
                "{}, {:.1} s",
                v.rebalances,
                v.longest_member_rebalance_time_ms as f64 / 1000.0
            ),
            "",
        ),
    ];
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let w2 = rows.iter().map(|r| r.1.len().min(60)).max().unwrap_or(0);
    let mut out = format!("\n{:<w$}  {:<w2$}  check\n", "", "");
    for (name, value, check) in &rows {
        out.push_str(&format!("{name:<w$}  {value:<w2$}  {check}\n"));
    }
    out.push_str(&format!(
        "verdict (seed {seed}): {}\n",
        if v.violated() {
            "SAFETY VIOLATED"
        } else {
            "safe: nothing acknowledged was lost, duplicated, reordered or overwritten"
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_seeds() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("12").unwrap(), Duration::from_secs(12));
        assert!(parse_duration("5 parsecs").is_err());
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<usize> = (0..20).map(|_| a.below(3)).collect();
        assert_eq!(xs, (0..20).map(|_| b.below(3)).collect::<Vec<_>>());
        assert!(xs.iter().any(|x| *x != xs[0]));
    }
}
