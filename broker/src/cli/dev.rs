//! `strom dev`: a local cluster of `strom node` child processes on 127.0.0.1. The i-th
//! node (from 1; its id `first-node-id + i - 1`) serves Kafka on `base-port + i - 1` and
//! its internal listener on `base-port + 100 + i - 1` and its admin listener (HTTP:
//! metrics, health, the web console) on `base-port + 552 + i - 1` (9644, 9645, … with
//! the default base port, as Redpanda's admin API) and its schema registry on
//! `base-port - 1011 + i - 1` (8081, 8082, …, Confluent's port); its data lives in
//! `<data-dir>/node-<id>`, so starting again with the same data dir brings the same
//! cluster back. Ctrl-C stops them all.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use clap::Args;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

#[derive(Args)]
pub struct DevArgs {
    /// How many nodes (each both controller and broker).
    #[arg(long, default_value_t = 1)]
    nodes: u16,
    /// Where the nodes keep their data.
    #[arg(long, default_value = "./strom-data")]
    data_dir: PathBuf,
    /// The first Kafka port.
    #[arg(long, default_value_t = 9092)]
    base_port: u16,
    /// The first node's id (the others count up from it); Kafka's own test rigs use 0.
    #[arg(long, default_value_t = 1)]
    first_node_id: u16,
    /// Extra settings for every node: `--set num.partitions=3` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

/// The admin listener's port of the i-th node (from 1).
fn admin_port(a: &DevArgs, i: u16) -> u16 {
    admin_port_of(a.base_port, i)
}

/// The admin listener's port of the i-th node (from 1) of a cluster on `base_port`.
pub(super) fn admin_port_of(base_port: u16, i: u16) -> u16 {
    base_port + ADMIN_PORT_OFFSET + i - 1
}

/// The config file of the i-th of `nodes` local nodes on `base_port`, as `strom dev`
/// writes it (for `strom chaos`, which starts and restarts such nodes itself).
pub(super) fn local_node_config(
    nodes: u16,
    data_dir: &Path,
    base_port: u16,
    i: u16,
    dir: &Path,
) -> String {
    let a = DevArgs {
        nodes,
        data_dir: data_dir.to_path_buf(),
        base_port,
        first_node_id: 1,
        sets: Vec::new(),
    };
    node_config(&a, i, dir)
}

/// 9092 + 552 = 9644.
const ADMIN_PORT_OFFSET: u16 = 552;

/// The schema registry listener of the i-th node (from 1): 8081, 8082, … with the default
/// base port (Confluent's port); none when the base port is too low to leave room.
fn registry_listener(base_port: u16, i: u16) -> String {
    match (base_port + i - 1).checked_sub(REGISTRY_PORT_BELOW) {
        Some(p) if p >= 1024 => format!("127.0.0.1:{p}"),
        _ => String::new(),
    }
}

/// 9092 - 1011 = 8081.
const REGISTRY_PORT_BELOW: u16 = 1011;

fn node_config(a: &DevArgs, i: u16, dir: &Path) -> String {
    let voters: Vec<String> = (1..=a.nodes)
        .map(|n| {
            format!(
                "{}@127.0.0.1:{}",
                a.first_node_id + n - 1,
                a.base_port + 100 + n - 1
            )
        })
        .collect();
    let kafka = format!("PLAINTEXT://127.0.0.1:{}", a.base_port + i - 1);
    let q = |v: &str| format!("{v:?}");
    // (name, TOML value)
    let mut settings: Vec<(String, String)> = vec![
        ("node.id".into(), (a.first_node_id + i - 1).to_string()),
        ("process.roles".into(), q("broker,controller")),
        ("listeners".into(), q(&kafka)),
        // Set, as a Kafka node's server.properties sets it: what clients are told.
        ("advertised.listeners".into(), q(&kafka)),
        (
            "internal.listener".into(),
            q(&format!("127.0.0.1:{}", a.base_port + 100 + i - 1)),
        ),
        (
            "admin.listener".into(),
            q(&format!("127.0.0.1:{}", admin_port(a, i))),
        ),
        (
            "schema.registry.listener".into(),
            q(&registry_listener(a.base_port, i)),
        ),
        ("controller.quorum.voters".into(), q(&voters.join(","))),
        ("data.dir".into(), q(&dir.display().to_string())),
        // Kafka's default: a topic gets one replica unless it asks for more.
        ("default.replication.factor".into(), "1".into()),
        // As Kafka's shipped config/server.properties sets it for development: a new
        // group's first rebalance does not wait 3 s for more members.
        ("group.initial.rebalance.delay.ms".into(), "0".into()),
        (
            "offsets.topic.replication.factor".into(),
            a.nodes.min(3).to_string(),
        ),
    ];
    // `--set` adds a setting or replaces one of the above.
    for kv in &a.sets {
        if let Some((k, v)) = kv.split_once('=') {
            let (k, v) = (k.trim().to_string(), q(v.trim()));
            match settings.iter_mut().find(|(name, _)| *name == k) {
                Some(slot) => slot.1 = v,
                None => settings.push((k, v)),
            }
        }
    }
    settings
        .iter()
        .map(|(k, v)| format!("{k:?} = {v}\n"))
        .collect()
}

pub async fn run(a: DevArgs) -> i32 {
    if a.nodes == 0 {
        eprintln!("--nodes must be at least 1");
        return 2;
    }
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cannot find the strom executable: {e}");
            return 1;
        }
    };
    let mut children: Vec<(u16, Child)> = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<u16>(a.nodes as usize);
    for i in 1..=a.nodes {
        let dir = a.data_dir.join(format!("node-{}", a.first_node_id + i - 1));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("cannot create {}: {e}", dir.display());
            return 1;
        }
        let cfg_path = dir.join("node.toml");
        if let Err(e) = std::fs::write(&cfg_path, node_config(&a, i, &dir)) {
            eprintln!("cannot write {}: {e}", cfg_path.display());
            return 1;
        }
        let mut cmd = Command::new(&exe);
        cmd.arg("node")
            .arg("--config")
            .arg(&cfg_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // If this process dies without stopping them (kill -9), the nodes get SIGTERM.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc_prctl(PR_SET_PDEATHSIG, 15u64);
                Ok(())
            });
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("cannot start node {}: {e}", a.first_node_id + i - 1);
                return 1;
            }
        };
        if let Some(out) = child.stdout.take() {
            let tx = ready_tx.clone();
            let id = a.first_node_id + i - 1;
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    println!("[node {id}] {l}");
                    if l.contains("READY") {
                        let _ = tx.send(i).await;
                    }
                }
            });
        }
        children.push((a.first_node_id + i - 1, child));
    }
    let bootstrap: Vec<String> = (1..=a.nodes)
        .map(|i| format!("127.0.0.1:{}", a.base_port + i - 1))
        .collect();
    let mut ready = 0;
    let deadline = tokio::time::sleep(Duration::from_secs(120));
    tokio::pin!(deadline);
    let mut check = tokio::time::interval(Duration::from_millis(200));
    while ready < a.nodes {
        tokio::select! {
            Some(_) = ready_rx.recv() => ready += 1,
            _ = check.tick() => {
                if let Some((i, status)) = children
                    .iter_mut()
                    .find_map(|(i, c)| c.try_wait().ok().flatten().map(|s| (*i, s)))
                {
                    eprintln!("strom dev: node {i} exited while starting ({status}); stopping the others");
                    stop_all(&mut children).await;
                    return 1;
                }
            }
            _ = &mut deadline => {
                eprintln!("strom dev: nodes did not become ready in 120 s");
                break;
            }
            _ = super::node::wait_for_signal() => {
                stop_all(&mut children).await;
                return 0;
            }
        }
    }
    if ready == a.nodes {
        println!(
            "strom dev: {} node(s) ready; bootstrap.servers={}",
            a.nodes,
            bootstrap.join(",")
        );
        let consoles: Vec<String> = (1..=a.nodes)
            .map(|i| format!("http://127.0.0.1:{}/", admin_port(&a, i)))
            .collect();
        println!(
            "strom dev: web console and metrics at {}",
            consoles.join(" ")
        );
        println!(
            "strom dev: data in {}; Ctrl-C stops the cluster",
            a.data_dir.display()
        );
    }
    // Run until Ctrl-C or SIGTERM; report children that exit.
    let stop = super::node::wait_for_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                for (i, c) in children.iter_mut() {
                    if let Ok(Some(status)) = c.try_wait() {
                        eprintln!("strom dev: node {i} exited ({status}); the others keep running");
                    }
                }
                children.retain_mut(|(_, c)| !matches!(c.try_wait(), Ok(Some(_))));
                if children.is_empty() {
                    eprintln!("strom dev: every node has exited");
                    return 1;
                }
            }
        }
    }
    stop_all(&mut children).await;
    0
}

async fn stop_all(children: &mut [(u16, Child)]) {
    for (_, c) in children.iter() {
        if let Some(pid) = c.id() {
            // SIGTERM: each node stops cleanly.
            unsafe {
                libc_kill(pid as i32, 15);
            }
        }
    }
    for (i, c) in children.iter_mut() {
        match tokio::time::timeout(Duration::from_secs(20), c.wait()).await {
            Ok(_) => {}
            Err(_) => {
                eprintln!("strom dev: node {i} did not stop in 20 s; killing it");
                let _ = c.kill().await;
            }
        }
    }
}

const PR_SET_PDEATHSIG: i32 = 1;

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
    #[link_name = "prctl"]
    fn libc_prctl(option: i32, ...) -> i32;
}
