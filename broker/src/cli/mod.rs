//! Command-line interface. Exit codes: 0 success, 1 a failed operation (the message says
//! which Kafka error), 2 bad usage.

use std::collections::BTreeMap;

use clap::{Parser, Subcommand};

mod bench;
mod chaos;
mod cluster;
mod consume;
mod dev;
mod group;
mod health;
mod kafka;
mod node;
mod produce;
mod table;
mod topic;
mod txn;

#[derive(Parser)]
#[command(
    name = "strom",
    version,
    about = "A Kafka-compatible, replicated broker"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node (broker and/or controller) from a config file.
    Node(node::NodeArgs),
    /// Start a local cluster of child processes on 127.0.0.1 and stop it on Ctrl-C.
    Dev(dev::DevArgs),
    /// Topic administration: create, list, describe, delete, alter-config, reassign,
    /// elect-leaders.
    Topic(topic::TopicArgs),
    /// Consumer groups: list, describe (with lag), reset-offsets, delete.
    Group(group::GroupArgs),
    /// Write records from standard input, one per line.
    Produce(produce::ProduceArgs),
    /// Print records of a topic.
    Consume(consume::ConsumeArgs),
    /// Load generator: produce and consume throughput and latency percentiles.
    Bench(bench::BenchArgs),
    /// The cluster: brokers, the controller quorum, partition health, log directories.
    Cluster(cluster::ClusterArgs),
    /// Transactions: list, describe, describe-producers (like kafka-transactions.sh).
    Txn(txn::TxnArgs),
    /// Run a workload against a cluster while injecting faults (kill -9, SIGSTOP,
    /// SIGTERM, docker pause and network partitions), then check the history and print
    /// a verdict.
    Chaos(chaos::ChaosArgs),
    /// Ask a node's admin listener whether it is live or ready (exit 0 if so): the
    /// container health check.
    Health(health::HealthArgs),
    /// Link Kafka's tool names (kafka-topics, kafka-topics.sh, …) to this executable in
    /// DIR: invoked under such a name, strom behaves as that tool.
    InstallTools {
        /// Where to put the links (e.g. a directory on PATH).
        dir: std::path::PathBuf,
    },
}

/// Where the Kafka cluster is.
#[derive(clap::Args)]
pub struct Conn {
    /// Kafka bootstrap servers, comma-separated.
    #[arg(
        long,
        short = 'b',
        env = "STROM_BOOTSTRAP",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    bootstrap_server: String,
}

/// Connects to the cluster, printing the failure and returning the exit code on error.
pub async fn connect(c: &Conn) -> Result<strom_client::Client, i32> {
    let servers: Vec<String> = c
        .bootstrap_server
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let cfg = strom_client::ClientConfig::new(servers).client_id("strom-cli");
    match strom_client::Client::connect(cfg).await {
        Ok(client) => Ok(client),
        Err(e) => {
            eprintln!("cannot reach {}: {e}", c.bootstrap_server);
            Err(1)
        }
    }
}

pub fn main() -> i32 {
    let mut argv = std::env::args();
    let argv0 = argv.next().unwrap_or_default();
    if let Some(tool) = kafka::tool_of(&argv0) {
        let args: Vec<String> = argv.collect();
        init_logging_quiet();
        ignore_sigpipe_default();
        return match runtime() {
            Ok(rt) => rt.block_on(kafka::run(tool, args)),
            Err(code) => code,
        };
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    init_logging();
    if !matches!(cli.cmd, Cmd::Node(_) | Cmd::Dev(_) | Cmd::Chaos(_)) {
        ignore_sigpipe_default();
    }
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async move {
        match cli.cmd {
            Cmd::Node(a) => node::run(a).await,
            Cmd::Dev(a) => dev::run(a).await,
            Cmd::Topic(a) => topic::run(a).await,
            Cmd::Group(a) => group::run(a).await,
            Cmd::Produce(a) => produce::run(a).await,
            Cmd::Consume(a) => consume::run(a).await,
            Cmd::Bench(a) => bench::run(a).await,
            Cmd::Cluster(a) => cluster::run(a).await,
            Cmd::Txn(a) => txn::run(a).await,
            Cmd::Health(a) => health::run(a).await,
            Cmd::Chaos(a) => chaos::run(a).await,
            Cmd::InstallTools { dir } => kafka::install(&dir),
        }
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, i32> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cannot start the runtime: {e}");
            1
        })
}

/// A client command whose output goes to a pipe that closes (`| head -1`) ends quietly,
/// as Unix tools do, instead of failing on a write to stdout. The node keeps Rust's
/// default (SIGPIPE ignored, EPIPE from its sockets handled).
fn ignore_sigpipe_default() {
    // SAFETY: before any thread is started; SIG_DFL is always a valid disposition.
    unsafe {
        libc_signal(SIGPIPE, SIG_DFL);
    }
}

/// Kafka's tools log nothing on the terminal unless asked (`STROM_LOG`).
fn init_logging_quiet() {
    let filter = std::env::var("STROM_LOG").unwrap_or_else(|_| "error".to_string());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

fn init_logging() {
    let filter = std::env::var("STROM_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| {
            "info,openraft=off,sled=warn,h2=warn,tower=warn,hyper=warn".to_string()
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

/// `key=value` pairs from `--set`.
pub fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, String>, String> {
    sets.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or(format!("--set {s}: expected key=value"))
        })
        .collect()
}

const SIGPIPE: i32 = 13;
const SIG_DFL: usize = 0;

extern "C" {
    #[link_name = "signal"]
    fn libc_signal(sig: i32, handler: usize) -> usize;
}
