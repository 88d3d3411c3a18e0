//! `strom node --config FILE [--set key=value]...`

use std::path::PathBuf;

use clap::Args;
use strom_broker::{NodeConfig, NodeEnv};

#[derive(Args)]
pub struct NodeArgs {
    /// TOML file with Kafka-named settings (`"node.id" = 1`, `listeners = "..."`).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Override a setting: `--set log.retention.ms=60000` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

pub async fn run(a: NodeArgs) -> i32 {
    let mut settings = match &a.config {
        Some(p) => match NodeConfig::read_file(p) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{e}");
                return 2;
            }
        },
        None => Default::default(),
    };
    settings.extend(NodeConfig::from_env(std::env::vars()));
    match super::parse_sets(&a.sets) {
        Ok(m) => settings.extend(m),
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    }
    let cfg = match NodeConfig::resolve(settings) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let started = tokio::time::Instant::now();
    let node = match strom_broker::start(cfg, NodeEnv::real()).await {
        Ok(n) => n,
        Err(e) => {
            tracing::error!(error = %e, "cannot start");
            eprintln!("strom: cannot start: {e}");
            return 1;
        }
    };
    let kafka: Vec<String> = node
        .kafka_addrs
        .iter()
        .map(|(_, a)| a.to_string())
        .collect();
    let internal = node
        .internal_addr
        .map(|a| format!(" internal={a}"))
        .unwrap_or_default();
    let admin = node
        .admin_addr
        .map(|a| format!(" admin=http://{a}/"))
        .unwrap_or_default();
    let registry = node
        .registry_addr
        .map(|a| format!(" schema_registry=http://{a}"))
        .unwrap_or_default();
    println!(
        "strom node {} READY {}{internal}{admin}{registry} ready_ms={}",
        node.node_id,
        if kafka.is_empty() {
            "controller-only".to_string()
        } else {
            format!("kafka={}", kafka.join(","))
        },
        started.elapsed().as_millis()
    );
    tokio::select! {
        _ = wait_for_signal() => {}
        why = node.log_dir_failure() => {
            // Kafka's answer when the only log directory fails: halt, so that the other
            // replicas take over; nothing more is written to the failed disk.
            tracing::error!(error = %why, "the log directory failed; halting (exit code 1)");
            eprintln!("strom node {}: log directory failed ({why}); halting", node.node_id);
            std::process::exit(1);
        }
    }
    tracing::info!("stopping");
    node.shutdown().await;
    0
}

/// Waits for Ctrl-C (SIGINT) or SIGTERM.
pub(crate) async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
