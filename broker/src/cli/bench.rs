//! `strom bench produce|consume`: a load generator with throughput and latency
//! percentiles. It speaks plain Kafka through strom's client, so it measures any
//! Kafka-compatible broker the same way (the comparison script runs it against tansu).
//!
//! Produce: `--concurrency` requests in flight, each carrying one pre-encoded batch of
//! `--batch-bytes` for every partition its worker owns; `--throughput` paces requests to
//! a fixed rate (MB/s) for latency measurements. Latency is per request, from sending to
//! the acknowledgement. Results print as a human line and as one JSON line.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{Record, TimestampType};
use strom_client::{
    compression_from_name, Admin, Consumer, ConsumerConfig, NewTopic, OffsetReset, StartOffset,
};
use tokio::time::Instant;

use super::{connect, Conn};

#[derive(Args)]
pub struct BenchArgs {
    #[command(flatten)]
    conn: Conn,
    #[command(subcommand)]
    cmd: BenchCmd,
}

#[derive(Subcommand)]
enum BenchCmd {
    /// Write records as fast as possible, or at a fixed rate.
    Produce(ProduceBench),
    /// Read a topic from the beginning to its end.
    Consume(ConsumeBench),
}

#[derive(Args)]
struct ProduceBench {
    #[arg(long, short, default_value = "strom-bench")]
    topic: String,
    /// Partitions when the topic has to be created.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Replicas per partition when the topic has to be created (default: the broker's
    /// default.replication.factor).
    #[arg(long, short = 'r')]
    replication_factor: Option<i16>,
    /// A topic config when the topic has to be created: `--config min.insync.replicas=2`.
    #[arg(long = "config", value_name = "KEY=VALUE")]
    configs: Vec<String>,
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Total bytes of record values to write (e.g. 1073741824).
    #[arg(long, default_value_t = 1 << 30)]
    bytes: u64,
    /// Stop after this many seconds even if `--bytes` is not reached.
    #[arg(long)]
    duration_s: Option<u64>,
    /// 0, 1 or all.
    #[arg(long, default_value = "1")]
    acks: String,
    /// Bytes per batch (per partition per request).
    #[arg(long, default_value_t = 64 * 1024)]
    batch_bytes: usize,
    /// Requests in flight (rounded up to a multiple of the partition leaders).
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Pace to this many MB/s (1 MB = 10^6 bytes of record values).
    #[arg(long)]
    throughput_mbs: Option<f64>,
    #[arg(long, default_value = "none")]
    compression: String,
}

#[derive(Args)]
struct ConsumeBench {
    #[arg(long, short, default_value = "strom-bench")]
    topic: String,
    /// Stop after this many bytes of record values (default: the whole topic).
    #[arg(long)]
    bytes: Option<u64>,
    #[arg(long, default_value_t = 50 * 1024 * 1024)]
    fetch_max_bytes: i32,
    #[arg(long, default_value_t = 4 * 1024 * 1024)]
    partition_max_bytes: i32,
}

pub async fn run(a: BenchArgs) -> i32 {
    let client = match connect(&a.conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    match a.cmd {
        BenchCmd::Produce(p) => produce(client, p).await,
        BenchCmd::Consume(c) => consume(client, c).await,
    }
}

/// How often a running benchmark reports (on stderr; stdout keeps the result lines).
const PROGRESS: Duration = Duration::from_secs(5);

/// Prints `line(elapsed)` on stderr every `every` until the task is aborted.
fn progress_every(
    every: Duration,
    line: impl Fn(Duration) -> String + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let start = Instant::now();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(start + every, every);
        loop {
            tick.tick().await;
            eprintln!("{}", line(start.elapsed()));
        }
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn produce(client: strom_client::Client, a: ProduceBench) -> i32 {
    let acks: i16 = match a.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        _ => {
            eprintln!("--acks: 0, 1 or all");
            return 2;
        }
    };
    let Some(compression) = compression_from_name(&a.compression) else {
        eprintln!("--compression: none, gzip, snappy, lz4 or zstd");
        return 2;
    };
    let admin = Admin::new(client.clone());
    let mut topic = NewTopic::new(&a.topic, a.partitions, a.replication_factor.unwrap_or(-1));
    for kv in &a.configs {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("--config {kv}: expected KEY=VALUE");
            return 2;
        };
        topic = topic.config(k.trim(), v.trim());
    }
    let _ = admin.create_topics(vec![topic], false).await;
    let meta = match client.topic_metadata(&a.topic).await {
        Ok(m) => m,
        Err(e) => return super::topic::fail(e),
    };
    // A fresh topic's leaders take a moment to appear everywhere: wait until every
    // partition has one (the brokers may still answer NOT_LEADER_OR_FOLLOWER briefly,
    // which the warm-up below rides out).
    let mut meta = meta;
    let wait_until = Instant::now() + Duration::from_secs(15);
    while meta.partitions.iter().any(|p| p.leader < 0) && Instant::now() < wait_until {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let _ = client
            .refresh_metadata(Some(std::slice::from_ref(&a.topic)))
            .await;
        if let Ok(m) = client.topic_metadata(&a.topic).await {
            meta = m;
        }
    }
    if meta.partitions.is_empty() {
        eprintln!("topic {} has no partitions", a.topic);
        return 1;
    }
    if let Some(p) = meta.partitions.iter().find(|p| p.leader < 0) {
        eprintln!("partition {} of {} has no leader", p.partition, a.topic);
        return 1;
    }
    // One pre-encoded batch reused for every request (the broker stamps offsets).
    let per_batch = (a.batch_bytes / a.record_size.max(1)).max(1);
    let value = Bytes::from(
        (0..a.record_size)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let records: Vec<Record> = (0..per_batch)
        .map(|_| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 0,
            sequence: -1,
            timestamp: strom_common::clock::now_ms(),
            key: None,
            value: Some(value.clone()),
            headers: Default::default(),
        })
        .collect();
    let batch = match strom_client::producer::encode_batch(records, compression, None, None) {
        Ok(b) => b,
        Err(e) => return super::topic::fail(e),
    };
    let batch_value_bytes = (per_batch * a.record_size) as u64;
    let target = a.bytes;
    let sent = Arc::new(AtomicU64::new(0));
    let acked_so_far = Arc::new(AtomicU64::new(0));
    let duration = a.duration_s.map(Duration::from_secs);
    // Every request goes to one leader, so workers own partitions of one leader each:
    // worker w serves leader w modulo the leaders, and a leader's workers split its
    // partitions round-robin.
    let mut by_leader: std::collections::BTreeMap<i32, Vec<i32>> = Default::default();
    for p in &meta.partitions {
        by_leader.entry(p.leader).or_default().push(p.partition);
    }
    let groups: Vec<Vec<i32>> = by_leader.into_values().collect();
    // The same number of workers for every leader, so that no broker gets more load.
    let workers = a.concurrency.max(1).div_ceil(groups.len()) * groups.len();
    let start_line = Arc::new(tokio::sync::Barrier::new(workers + 1));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let group = &groups[w % groups.len()];
        let group_workers = (0..workers)
            .filter(|x| x % groups.len() == w % groups.len())
            .count();
        let k = w / groups.len();
        let mine: Vec<i32> = if group_workers <= group.len() {
            group
                .iter()
                .enumerate()
                .filter(|(i, _)| i % group_workers == k)
                .map(|(_, p)| *p)
                .collect()
        } else {
            vec![group[k % group.len()]]
        };
        // Pacing: each request carries `batch_value_bytes` per partition of its worker.
        let per_request = batch_value_bytes * mine.len() as u64;
        let interval = a.throughput_mbs.map(|mbs| {
            Duration::from_secs_f64(per_request as f64 * workers as f64 / (mbs * 1_000_000.0))
        });
        let start_line = start_line.clone();
        let client = client.clone();
        let topic = a.topic.clone();
        let batch = batch.clone();
        let sent = sent.clone();
        let acked_so_far = acked_so_far.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut acked = 0u64;
            // Connect and warm up (not timed): one acknowledged request, retried while
            // the leader is still taking over the partitions. Every worker reaches the
            // start line, even a failed one, so the others are not left waiting.
            let setup = async {
                let (_, conn) = client
                    .leader_connection(&topic, mine[0])
                    .await
                    .map_err(|e| e.to_string())?;
                let version = conn
                    .version_for::<ProduceRequest>(9)
                    .map_err(|e| e.to_string())?;
                let req = ProduceRequest::default()
                    .with_acks(acks)
                    .with_timeout_ms(30_000)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(TopicName(StrBytes::from_string(topic.clone())))
                        .with_partition_data(
                            mine.iter()
                                .map(|p| {
                                    PartitionProduceData::default()
                                        .with_index(*p)
                                        .with_records(Some(batch.clone()))
                                })
                                .collect(),
                        )]);
                let warm = req.clone().with_acks(if acks == 0 { 1 } else { acks });
                let warm_until = Instant::now() + Duration::from_secs(15);
                loop {
                    let resp = match conn.send(warm.clone(), version).await {
                        Ok(r) => r,
                        Err(e) => break Err(e.to_string()),
                    };
                    let err = resp
                        .responses
                        .iter()
                        .flat_map(|t| t.partition_responses.iter())
                        .map(|p| p.error_code)
                        .find(|c| *c != 0);
                    match err {
                        None => break Ok::<_, String>((conn, version, req)),
                        Some(c)
                            if strom_client::error::is_retriable(c)
                                && Instant::now() < warm_until =>
                        {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Some(c) => {
                            break Err(format!("warm-up error {}", strom_client::error_name(c)));
                        }
                    }
                }
            }
            .await;
            start_line.wait().await;
            let (conn, version, req) = setup?;
            let deadline = duration.map(|d| Instant::now() + d);
            let mut next = Instant::now();
            loop {
                if sent.fetch_add(per_request, Ordering::AcqRel) >= target
                    || deadline.is_some_and(|d| Instant::now() >= d)
                {
                    break;
                }
                if let Some(iv) = interval {
                    tokio::time::sleep_until(next).await;
                    next += iv;
                }
                let t0 = Instant::now();
                if acks == 0 {
                    conn.send_no_response(req.clone(), version)
                        .await
                        .map_err(|e| e.to_string())?;
                    acked += per_request;
                    acked_so_far.fetch_add(per_request, Ordering::Relaxed);
                    continue;
                }
                let resp = conn
                    .send(req.clone(), version)
                    .await
                    .map_err(|e| e.to_string())?;
                lat.push(t0.elapsed().as_secs_f64() * 1000.0);
                for t in &resp.responses {
                    for p in &t.partition_responses {
                        if p.error_code != 0 {
                            return Err(format!(
                                "partition {} error {}",
                                p.index,
                                strom_client::error_name(p.error_code)
                            ));
                        }
                    }
                }
                acked += per_request;
                acked_so_far.fetch_add(per_request, Ordering::Relaxed);
            }
            Ok((lat, acked))
        }));
    }
    start_line.wait().await;
    let start = Instant::now();
    let progress = progress_every(PROGRESS, move |elapsed| {
        let done = acked_so_far.load(Ordering::Relaxed);
        format!(
            "[bench] {:.0} s: {} of {} MB acknowledged ({:.1} MB/s)",
            elapsed.as_secs_f64(),
            done / 1_000_000,
            target / 1_000_000,
            done as f64 / elapsed.as_secs_f64() / 1e6
        )
    });
    let mut lat = Vec::new();
    let mut acked_bytes = 0u64;
    for t in tasks {
        match t.await {
            Ok(Ok((l, b))) => {
                lat.extend(l);
                acked_bytes += b;
            }
            Ok(Err(e)) => {
                eprintln!("bench failed: {e}");
                return 1;
            }
            Err(e) => {
                eprintln!("bench task failed: {e}");
                return 1;
            }
        }
    }
    progress.abort();
    let secs = start.elapsed().as_secs_f64();
    let requests = lat.len() as u64;
    lat.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
    let mbs = acked_bytes as f64 / secs / 1e6;
    println!(
        "produce: {:.1} MB/s, {:.0} records/s, {} MB in {:.2} s; request latency ms p50 {:.2} p99 {:.2} p99.9 {:.2} max {:.2} ({} requests, acks={})",
        mbs,
        acked_bytes as f64 / a.record_size as f64 / secs,
        acked_bytes / 1_000_000,
        secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        lat.last().copied().unwrap_or(0.0),
        requests,
        a.acks
    );
    println!(
        "{{\"kind\":\"produce\",\"acks\":\"{}\",\"mb_per_s\":{:.3},\"bytes\":{},\"seconds\":{:.3},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3},\"max_ms\":{:.3},\"requests\":{}}}",
        a.acks,
        mbs,
        acked_bytes,
        secs,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        percentile(&lat, 0.999),
        lat.last().copied().unwrap_or(0.0),
        requests
    );
    0
}

async fn consume(client: strom_client::Client, a: ConsumeBench) -> i32 {
    let config = ConsumerConfig {
        max_bytes: a.fetch_max_bytes,
        partition_max_bytes: a.partition_max_bytes,
        min_bytes: 1,
        auto_offset_reset: OffsetReset::Earliest,
        read_committed: false,
    };
    let mut c = Consumer::new(client, config);
    let n = match c.assign_topic(&a.topic, StartOffset::Earliest).await {
        Ok(n) => n,
        Err(e) => return super::topic::fail(e),
    };
    if n == 0 {
        eprintln!("topic {} has no partitions", a.topic);
        return 1;
    }
    let start = Instant::now();
    let mut bytes = 0u64;
    let mut records = 0u64;
    let mut idle = 0;
    let mut last_report = start;
    loop {
        if last_report.elapsed() >= PROGRESS {
            last_report = Instant::now();
            let secs = start.elapsed().as_secs_f64();
            eprintln!(
                "[bench] {secs:.0} s: {} MB, {records} records read ({:.1} MB/s)",
                bytes / 1_000_000,
                bytes as f64 / secs / 1e6
            );
        }
        let rs = match c.poll(Duration::from_millis(500)).await {
            Ok(r) => r,
            Err(e) => return super::topic::fail(e),
        };
        if rs.is_empty() {
            let caught_up = c
                .assignments()
                .values()
                .all(|p| p.position >= p.high_watermark);
            idle += 1;
            if caught_up || idle > 10 {
                break;
            }
            continue;
        }
        idle = 0;
        for r in &rs {
            bytes += r.value.as_ref().map_or(0, |v| v.len() as u64);
        }
        records += rs.len() as u64;
        if a.bytes.is_some_and(|b| bytes >= b) {
            break;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "consume: {:.1} MB/s, {:.0} records/s, {} MB in {:.2} s",
        bytes as f64 / secs / 1e6,
        records as f64 / secs,
        bytes / 1_000_000,
        secs
    );
    println!(
        "{{\"kind\":\"consume\",\"mb_per_s\":{:.3},\"bytes\":{},\"records\":{},\"seconds\":{:.3}}}",
        bytes as f64 / secs / 1e6,
        bytes,
        records,
        secs
    );
    0
}
