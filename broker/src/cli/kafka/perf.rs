//! `kafka-producer-perf-test` and `kafka-consumer-perf-test`: Kafka's
//! `ProducerPerformance` and `ConsumerPerformance` with their flags and their report
//! lines, on strom's client.
//!
//! The producer keeps `max.in.flight.requests.per.connection` (5) batches of
//! `batch.size` (16384) bytes in flight, each record's latency from its send to its
//! acknowledgement, paced to `--throughput` records a second. The consumer joins a
//! consumer group (`--group`, or a generated `perf-consumer-NNNNN` as Kafka's), reads
//! from the log start (or end, `--from-latest`) where the group has no offsets, commits
//! automatically, and reports the time its joins took as `rebalance.time.ms`, the rest as
//! `fetch.time.ms`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use parking_lot::Mutex;
use strom_client::{
    compression_from_name, Client, ConsumerConfig, GroupConfig, GroupConsumer, OffsetReset,
    Producer,
};
use tokio::time::Instant;

const MB: f64 = 1024.0 * 1024.0;

#[derive(Parser, Debug)]
#[command(
    name = "kafka-producer-perf-test",
    about = "Measure producer throughput and latency (Kafka's kafka-producer-perf-test, served by strom).",
    disable_version_flag = true
)]
struct ProducerArgs {
    /// The topic to produce to.
    #[arg(long)]
    topic: Option<String>,
    /// Records to produce.
    #[arg(long)]
    num_records: Option<u64>,
    /// Records a second at most; -1: as fast as possible.
    #[arg(long, allow_negative_numbers = true)]
    throughput: Option<f64>,
    /// Bytes a record.
    #[arg(long)]
    record_size: Option<usize>,
    /// Records' values from this file, split at --payload-delimiter, chosen at random.
    #[arg(long)]
    payload_file: Option<String>,
    #[arg(long, default_value = "\\n")]
    payload_delimiter: String,
    /// Producer configs: `acks=all compression.type=lz4 bootstrap.servers=...`.
    #[arg(long, num_args = 1..)]
    producer_props: Vec<String>,
    /// A producer properties file.
    #[arg(long = "producer.config")]
    producer_config: Option<String>,
    /// The Kafka server to connect to (else bootstrap.servers of the props).
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// Print the client's metrics at the end (strom's client has none: refused).
    #[arg(long)]
    print_metrics: bool,
    /// Produce in transactions with this transactional id.
    #[arg(long)]
    transactional_id: Option<String>,
    /// Commit each transaction once it is this old (ms; 3000 when transactional).
    #[arg(long)]
    transaction_duration_ms: Option<u64>,
}

#[derive(Parser, Debug)]
#[command(
    name = "kafka-consumer-perf-test",
    about = "Measure consumer throughput (Kafka's kafka-consumer-perf-test, served by strom).",
    disable_version_flag = true
)]
struct ConsumerArgs {
    /// The Kafka server to connect to.
    #[arg(long, alias = "broker-list")]
    bootstrap_server: Option<String>,
    /// The topic to consume.
    #[arg(long)]
    topic: Option<String>,
    /// Records to consume.
    #[arg(long)]
    messages: Option<u64>,
    /// The group id to consume in (default: a generated perf-consumer-NNNNN).
    #[arg(long)]
    group: Option<String>,
    /// Bytes a partition per fetch.
    #[arg(long, default_value_t = 1024 * 1024)]
    fetch_size: i32,
    /// Start at the log end instead of the log start.
    #[arg(long)]
    from_latest: bool,
    /// Longest wait in ms between records before giving up.
    #[arg(long, default_value_t = 10_000)]
    timeout: u64,
    /// Print a line every --reporting-interval ms.
    #[arg(long)]
    show_detailed_stats: bool,
    #[arg(long, default_value_t = 5_000)]
    reporting_interval: u64,
    /// Leave out the header line.
    #[arg(long)]
    hide_header: bool,
    /// A consumer properties file (accepted, not read).
    #[arg(long = "consumer.config")]
    consumer_config: Option<String>,
    /// Print the client's metrics at the end (strom's client has none: refused).
    #[arg(long)]
    print_metrics: bool,
    /// The date format (only Kafka's default, yyyy-MM-dd HH:mm:ss:SSS, is served).
    #[arg(long)]
    date_format: Option<String>,
    #[arg(long)]
    socket_buffer_size: Option<i32>,
    #[arg(long)]
    threads: Option<u32>,
    #[arg(long)]
    num_fetch_threads: Option<u32>,
}

/// `k=v` lines of a properties file (`#` and `!` comments).
fn read_properties(path: &str) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .filter_map(|l| l.split_once('=').or_else(|| l.split_once(':')))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect())
}

/// What the producer run measured.
#[derive(Default)]
struct Stats {
    count: u64,
    bytes: u64,
    latency_sum_ms: f64,
    latency_max_ms: f64,
    latencies: Vec<u32>,
    window_count: u64,
    window_bytes: u64,
    window_latency_sum_ms: f64,
    window_latency_max_ms: f64,
    window_start: Option<Instant>,
    errors: u64,
}

impl Stats {
    fn record(&mut self, n: u64, bytes: u64, latency_ms: f64) {
        self.count += n;
        self.bytes += bytes;
        self.latency_sum_ms += latency_ms * n as f64;
        self.latency_max_ms = self.latency_max_ms.max(latency_ms);
        self.window_count += n;
        self.window_bytes += bytes;
        self.window_latency_sum_ms += latency_ms * n as f64;
        self.window_latency_max_ms = self.window_latency_max_ms.max(latency_ms);
        // Every record's latency, as Kafka samples them (at most ~500,000 kept).
        if self.latencies.len() < 500_000 {
            self.latencies
                .extend(std::iter::repeat_n(latency_ms as u32, n as usize));
        }
    }

    /// Kafka's window line, and a new window.
    fn window_line(&mut self, now: Instant) -> String {
        let start = self.window_start.unwrap_or(now);
        let secs = now.duration_since(start).as_secs_f64().max(1e-9);
        let n = self.window_count;
        let line = format!(
            "{n} records sent, {:.1} records/sec ({:.2} MB/sec), {:.1} ms avg latency, {:.1} ms max latency.",
            n as f64 / secs,
            self.window_bytes as f64 / MB / secs,
            if n > 0 { self.window_latency_sum_ms / n as f64 } else { 0.0 },
            self.window_latency_max_ms,
        );
        self.window_count = 0;
        self.window_bytes = 0;
        self.window_latency_sum_ms = 0.0;
        self.window_latency_max_ms = 0.0;
        self.window_start = Some(now);
        line
    }

    /// Kafka's summary line.
    fn total_line(&mut self, elapsed: Duration) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        self.latencies.sort_unstable();
        let pct = |p: f64| -> u32 {
            if self.latencies.is_empty() {
                0
            } else {
                let i = ((self.latencies.len() as f64 * p) as usize).min(self.latencies.len() - 1);
                self.latencies[i]
            }
        };
        format!(
            "{} records sent, {:.6} records/sec ({:.2} MB/sec), {:.2} ms avg latency, {:.2} ms max latency, {} ms 50th, {} ms 95th, {} ms 99th, {} ms 99.9th.",
            self.count,
            self.count as f64 / secs,
            self.bytes as f64 / MB / secs,
            if self.count > 0 { self.latency_sum_ms / self.count as f64 } else { 0.0 },
            self.latency_max_ms,
            pct(0.5),
            pct(0.95),
            pct(0.99),
            pct(0.999),
        )
    }
}

/// Kafka's random payload: `size` upper-case letters.
fn random_payload(size: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    Bytes::from(
        (0..size)
            .map(|_| {
                // xorshift64
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                b'A' + (x % 26) as u8
            })
            .collect::<Vec<u8>>(),
    )
}

pub async fn producer(args: Vec<String>) -> i32 {
    let a: ProducerArgs = match super::parse("kafka-producer-perf-test", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (Some(topic), Some(num), Some(throughput)) = (a.topic.clone(), a.num_records, a.throughput)
    else {
        eprintln!(
            "Missing required argument: --topic, --num-records and --throughput are required"
        );
        return 1;
    };
    if a.print_metrics {
        eprintln!(
            "kafka-producer-perf-test: --print-metrics: strom's client keeps no client metrics"
        );
        return 1;
    }
    let mut props = BTreeMap::new();
    if let Some(path) = &a.producer_config {
        match read_properties(path) {
            Ok(p) => props.extend(p),
            Err(m) => {
                eprintln!("{m}");
                return 1;
            }
        }
    }
    for kv in &a.producer_props {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("Invalid property: {kv}");
            return 1;
        };
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    let Some(bootstrap) = a
        .bootstrap_server
        .clone()
        .or_else(|| props.get("bootstrap.servers").cloned())
    else {
        eprintln!("Either --bootstrap-server or bootstrap.servers in --producer-props or --producer.config must be specified");
        return 1;
    };
    let payloads: Vec<Bytes> = match (&a.record_size, &a.payload_file) {
        (Some(size), None) => vec![random_payload(*size, 0x5eed)],
        (None, Some(path)) => {
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("cannot read {path}: {e}");
                    return 1;
                }
            };
            let delim = a.payload_delimiter.replace("\\n", "\n");
            let ps: Vec<Bytes> = text
                .split(delim.as_str())
                .filter(|p| !p.is_empty())
                .map(|p| Bytes::from(p.to_string()))
                .collect();
            if ps.is_empty() {
                eprintln!("File is empty: {path}");
                return 1;
            }
            println!("Reading payloads from: {path}");
            println!("Number of messages read: {}", ps.len());
            ps
        }
        _ => {
            eprintln!("Exactly one of --record-size or --payload-file must be specified");
            return 1;
        }
    };
    let acks: i16 = match props.get("acks").map(String::as_str).unwrap_or("all") {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        other => {
            eprintln!("Invalid value {other} for configuration acks");
            return 1;
        }
    };
    let Some(compression) =
        compression_from_name(props.get("compression.type").map_or("none", String::as_str))
    else {
        eprintln!("Invalid value for configuration compression.type");
        return 1;
    };
    let batch_bytes: usize = props
        .get("batch.size")
        .and_then(|v| v.parse().ok())
        .unwrap_or(16_384);
    let in_flight: u64 = props
        .get("max.in.flight.requests.per.connection")
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(1);
    // Kafka 3's default: idempotent when acks=all, unless turned off.
    let idempotent =
        acks == -1 && props.get("enable.idempotence").map(String::as_str) != Some("false");
    // Transactions as Kafka's perf test runs them: on with a transactional id (flag or
    // property) or a duration; each transaction is committed once it is this old. One
    // transactional id is one producer, so its batches go one request at a time.
    let txn_id = a
        .transactional_id
        .clone()
        .or_else(|| props.get("transactional.id").cloned());
    let txn = match (txn_id, a.transaction_duration_ms) {
        (None, None) => None,
        (_, Some(0)) => {
            eprintln!("--transaction-duration-ms should be greater than zero.");
            return 1;
        }
        (id, ms) => Some((
            id.unwrap_or_else(|| "performance-producer-default-transactional-id".to_string()),
            Duration::from_millis(ms.unwrap_or(3000)),
        )),
    };
    if txn.is_some() && acks != -1 {
        eprintln!("Must set acks to all in order to use the transactional producer.");
        return 1;
    }
    let in_flight = if txn.is_some() { 1 } else { in_flight };
    let client = match super::connect(bootstrap).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let payload_len = payloads[0].len().max(1);
    let per_chunk = (batch_bytes / payload_len).max(1) as u64;
    let next = Arc::new(AtomicU64::new(0));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let start = Instant::now();
    stats.lock().window_start = Some(start);
    let reporter = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval_at(start + Duration::from_secs(5), Duration::from_secs(5));
            loop {
                tick.tick().await;
                let line = stats.lock().window_line(Instant::now());
                println!("{line}");
            }
        })
    };
    let mut workers = Vec::new();
    for w in 0..in_flight {
        let (client, topic, next, stats, payloads) = (
            client.clone(),
            topic.clone(),
            next.clone(),
            stats.clone(),
            payloads.clone(),
        );
        let txn = txn.clone();
        workers.push(tokio::spawn(async move {
            produce_worker(
                client,
                topic,
                num,
                throughput,
                per_chunk,
                start,
                next,
                stats,
                payloads,
                w,
                acks,
                compression,
                idempotent,
                batch_bytes,
                txn,
            )
            .await
        }));
    }
    let mut code = 0;
    for w in workers {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(m)) => {
                eprintln!("{m}");
                code = 1;
            }
            Err(e) => {
                eprintln!("a producer task failed: {e}");
                code = 1;
            }
        }
    }
    reporter.abort();
    let elapsed = start.elapsed();
    let mut s = stats.lock();
    if s.window_count > 0 {
        println!("{}", s.window_line(Instant::now()));
    }
    println!("{}", s.total_line(elapsed));
    if s.errors > 0 {
        code = 1;
    }
    code
}

#[allow(clippy::too_many_arguments)]
async fn produce_worker(
    client: Client,
    topic: String,
    num: u64,
    throughput: f64,
    per_chunk: u64,
    start: Instant,
    next: Arc<AtomicU64>,
    stats: Arc<Mutex<Stats>>,
    payloads: Vec<Bytes>,
    worker: u64,
    acks: i16,
    compression: strom_client::Compression,
    idempotent: bool,
    batch_bytes: usize,
    txn: Option<(String, Duration)>,
) -> Result<(), String> {
    let mut producer = Producer::builder(client)
        .acks(acks)
        .compression(compression)
        .idempotent(idempotent)
        .max_batch_bytes(batch_bytes.max(1024))
        .transactional_id(txn.as_ref().map(|(id, _)| id.clone()))
        .build()
        .map_err(|e| format!("cannot build a producer: {e}"))?;
    if txn.is_some() {
        producer
            .init_transactions()
            .await
            .map_err(|e| format!("cannot initialise transactions: {e}"))?;
    }
    // When the open transaction began (None: none open).
    let mut open_since: Option<Instant> = None;
    let mut pick = worker.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    loop {
        let first = next.fetch_add(per_chunk, Ordering::Relaxed);
        if first >= num {
            if open_since.is_some() {
                producer
                    .commit_transaction()
                    .await
                    .map_err(|e| format!("cannot commit the transaction: {e}"))?;
            }
            return Ok(());
        }
        if txn.is_some() && open_since.is_none() {
            producer.begin_transaction().map_err(|e| format!("{e}"))?;
            open_since = Some(Instant::now());
        }
        let n = per_chunk.min(num - first);
        // Kafka's throttle: sleep until the records before these are due.
        if throughput > 0.0 {
            let due = start + Duration::from_secs_f64(first as f64 / throughput);
            tokio::time::sleep_until(due).await;
        }
        let sent_at = Instant::now();
        let mut bytes = 0u64;
        for _ in 0..n {
            let payload = if payloads.len() == 1 {
                payloads[0].clone()
            } else {
                pick ^= pick << 13;
                pick ^= pick >> 7;
                pick ^= pick << 17;
                payloads[(pick % payloads.len() as u64) as usize].clone()
            };
            bytes += payload.len() as u64;
            producer
                .send(&topic, None, None, Some(payload), Vec::new(), None)
                .await
                .map_err(|e| format!("{e}"))?;
        }
        let deliveries = producer.flush().await.map_err(|e| format!("{e}"))?;
        let latency_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
        let failed: Vec<_> = deliveries
            .iter()
            .filter_map(|d| d.result.as_ref().err())
            .collect();
        {
            let mut s = stats.lock();
            if let Some(e) = failed.first() {
                if s.errors == 0 {
                    eprintln!("Error when sending message to topic {topic}: {e}");
                }
                s.errors += failed.len() as u64;
            }
            let ok = n - failed.len() as u64;
            s.record(ok, bytes * ok / n.max(1), latency_ms);
        }
        let failed_any = !failed.is_empty();
        if let (Some((_, every)), Some(since)) = (&txn, open_since) {
            if failed_any {
                producer
                    .abort_transaction()
                    .await
                    .map_err(|e| format!("cannot abort the transaction: {e}"))?;
                open_since = None;
            } else if since.elapsed() >= *every {
                producer
                    .commit_transaction()
                    .await
                    .map_err(|e| format!("cannot commit the transaction: {e}"))?;
                open_since = None;
            }
        }
    }
}

/// Kafka's default date format, `yyyy-MM-dd HH:mm:ss:SSS`, in UTC.
fn format_time(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}:{:03}",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

pub async fn consumer(args: Vec<String>) -> i32 {
    let a: ConsumerArgs = match super::parse("kafka-consumer-perf-test", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let (Some(bootstrap), Some(topic), Some(messages)) =
        (a.bootstrap_server.clone(), a.topic.clone(), a.messages)
    else {
        eprintln!(
            "Missing required argument: --bootstrap-server, --topic and --messages are required"
        );
        return 1;
    };
    if a.print_metrics {
        eprintln!(
            "kafka-consumer-perf-test: --print-metrics: strom's client keeps no client metrics"
        );
        return 1;
    }
    if a.date_format
        .as_deref()
        .is_some_and(|f| f != "yyyy-MM-dd HH:mm:ss:SSS")
    {
        eprintln!("kafka-consumer-perf-test: only the default --date-format is served");
        return 1;
    }
    let client = match super::connect(bootstrap).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = client.topic_metadata(&topic).await {
        eprintln!("{}", super::message(&e));
        return 1;
    }
    let config = ConsumerConfig {
        partition_max_bytes: a.fetch_size,
        auto_offset_reset: if a.from_latest {
            OffsetReset::Latest
        } else {
            OffsetReset::Earliest
        },
        ..ConsumerConfig::default()
    };
    let group = a.group.clone().unwrap_or_else(|| {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        format!("perf-consumer-{}", random % 100_000)
    });
    let mut consumer = GroupConsumer::new(client, config, GroupConfig::new(group));
    consumer.subscribe([topic.clone()]);
    let start_ms = strom_common::clock::now_ms();
    let start = Instant::now();
    let header = "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";
    let detail_header = "time, threadId, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec";
    if !a.hide_header {
        println!(
            "{}",
            if a.show_detailed_stats {
                detail_header
            } else {
                header
            }
        );
    }
    let (mut count, mut bytes) = (0u64, 0u64);
    let (mut last_count, mut last_bytes, mut last_report) = (0u64, 0u64, start);
    let mut last_record = Instant::now();
    let mut last_rebalance = Duration::ZERO;
    let interval = Duration::from_millis(a.reporting_interval.max(1));
    while count < messages {
        let got = match consumer.poll(Duration::from_millis(100)).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{}", super::message(&e));
                return 1;
            }
        };
        if !got.is_empty() {
            last_record = Instant::now();
        }
        for r in got {
            count += 1;
            bytes += r.key.as_ref().map_or(0, |k| k.len() as u64)
                + r.value.as_ref().map_or(0, |v| v.len() as u64);
        }
        let now = Instant::now();
        if a.show_detailed_stats && now.duration_since(last_report) >= interval {
            let rebalance = consumer.rebalances().1;
            let joins = rebalance - last_rebalance;
            let elapsed = now.duration_since(last_report);
            let fetching = elapsed.saturating_sub(joins).as_secs_f64().max(1e-9);
            let secs = elapsed.as_secs_f64();
            let mb = (bytes - last_bytes) as f64 / MB;
            let n = count - last_count;
            println!(
                "{}, 0, {:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
                format_time(strom_common::clock::now_ms()),
                bytes as f64 / MB,
                mb / secs,
                count,
                n as f64 / secs,
                joins.as_millis(),
                elapsed.saturating_sub(joins).as_millis(),
                mb / fetching,
                n as f64 / fetching
            );
            (last_count, last_bytes, last_report) = (count, bytes, now);
            last_rebalance = rebalance;
        }
        if now.duration_since(last_record) > Duration::from_millis(a.timeout) {
            eprintln!(
                "WARNING: Exiting before consuming the expected number of messages: timeout ({} ms) exceeded. You can use the --timeout option to increase the timeout.",
                a.timeout
            );
            break;
        }
    }
    let end_ms = strom_common::clock::now_ms();
    let elapsed = start.elapsed();
    let rebalance = consumer.rebalances().1;
    if let Err(e) = consumer.close().await {
        eprintln!("[strom] leaving the consumer group: {}", super::message(&e));
    }
    if !a.show_detailed_stats {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let fetching = elapsed.saturating_sub(rebalance);
        let fetch_secs = fetching.as_secs_f64().max(1e-9);
        let mb = bytes as f64 / MB;
        println!(
            "{}, {}, {:.4}, {:.4}, {}, {:.4}, {}, {}, {:.4}, {:.4}",
            format_time(start_ms),
            format_time(end_ms),
            mb,
            mb / secs,
            count,
            count as f64 / secs,
            rebalance.as_millis(),
            fetching.as_millis(),
            mb / fetch_secs,
            count as f64 / fetch_secs
        );
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_print_in_kafkas_default_format() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00:000");
        assert_eq!(format_time(1_796_512_345_678), "2026-12-05 23:12:25:678");
        assert_eq!(format_time(951_782_400_000), "2000-02-29 00:00:00:000");
    }

    #[test]
    fn the_summary_has_kafkas_percentiles() {
        let mut s = Stats::default();
        for ms in 1..=100 {
            s.record(1, 100, ms as f64);
        }
        let line = s.total_line(Duration::from_secs(2));
        assert_eq!(
            line,
            "100 records sent, 50.000000 records/sec (0.00 MB/sec), 50.50 ms avg latency, 100.00 ms max latency, 51 ms 50th, 96 ms 95th, 100 ms 99th, 100 ms 99.9th."
        );
        assert!(random_payload(50, 7).iter().all(|b| b.is_ascii_uppercase()));
    }
}
