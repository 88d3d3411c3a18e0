//! `kafka-console-consumer` and `kafka-console-producer`: Kafka's console tools, with
//! their flags, `--property` names and output format (Kafka's `DefaultMessageFormatter`
//! and `LineMessageReader`). As Kafka's, the consumer joins a consumer group unless it
//! reads one `--partition`: the `--group` given (offsets committed automatically, and
//! on exit exactly up to the last message printed), or a generated
//! `console-consumer-NNNNN` group without commits.

use std::io::Write;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use strom_client::{
    compression_from_name, Admin, Consumer, ConsumerConfig, ConsumerRecord, GroupConfig,
    GroupConsumer, OffsetReset, Producer, StartOffset,
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// `--property k=v` pairs.
fn properties(items: &[String]) -> Result<Vec<(String, String)>, String> {
    items
        .iter()
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| format!("Invalid property {p}: expected key=value"))
        })
        .collect()
}

fn flag(props: &[(String, String)], name: &str) -> bool {
    props
        .iter()
        .any(|(k, v)| k == name && v.eq_ignore_ascii_case("true"))
}

fn prop<'a>(props: &'a [(String, String)], name: &str) -> Option<&'a str> {
    props
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Kafka's escapes in separators given on the command line (`\t`, `\n`).
fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

fn connect_args(bootstrap: Option<String>, tool: &str) -> Result<crate::cli::Conn, i32> {
    match bootstrap {
        Some(b) => Ok(crate::cli::Conn {
            bootstrap_server: b,
        }),
        None => {
            eprintln!("{tool}: Missing required argument \"[bootstrap-server]\"");
            Err(1)
        }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "kafka-console-consumer",
    about = "Read records of a topic and print them (Kafka's kafka-console-consumer, served by strom).",
    disable_version_flag = true
)]
struct ConsumerArgs {
    /// REQUIRED: The server(s) to connect to.
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// The topic to consume on.
    #[arg(long)]
    topic: Option<String>,
    /// The partition to consume from (default: all).
    #[arg(long)]
    partition: Option<i32>,
    /// The offset to start from: a non-negative number, or 'earliest' or 'latest'
    /// (needs --partition unless earliest/latest).
    #[arg(long)]
    offset: Option<String>,
    /// Start with the earliest message present in the log rather than the latest.
    #[arg(long)]
    from_beginning: bool,
    /// The maximum number of messages to consume before exiting.
    #[arg(long)]
    max_messages: Option<usize>,
    /// Exit if no message is available for consumption for this many ms.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Formatter properties: print.key, print.value, print.timestamp, print.partition,
    /// print.offset, print.headers, key.separator, line.separator, null.literal (repeatable).
    #[arg(long = "property")]
    properties: Vec<String>,
    /// read_committed or read_uncommitted (default).
    #[arg(long, default_value = "read_uncommitted", value_parser = ["read_committed", "read_uncommitted"])]
    isolation_level: String,
    /// The consumer group id of the consumer.
    #[arg(long)]
    group: Option<String>,
    /// Consumer properties: group.id, enable.auto.commit, auto.offset.reset,
    /// session.timeout.ms, heartbeat.interval.ms and auto.commit.interval.ms are used;
    /// others are accepted and ignored (repeatable).
    #[arg(long = "consumer-property")]
    consumer_properties: Vec<String>,
}

/// Where the console consumer's records come from.
enum Source {
    /// Assigned partitions (`--partition`), committed for `group` on exit if one was given.
    Assigned(Consumer, Option<String>),
    /// A group member.
    Group(Box<GroupConsumer>),
}

impl Source {
    async fn poll(&mut self) -> Result<Vec<ConsumerRecord>, strom_client::ClientError> {
        let wait = Duration::from_millis(500);
        match self {
            Source::Assigned(c, _) => c.poll(wait).await,
            Source::Group(g) => g.poll(wait).await,
        }
    }

    /// Gives back records taken but not printed, so that no commit passes them.
    async fn rewind(&mut self, unused: &[ConsumerRecord]) {
        match self {
            Source::Group(g) => {
                let _ = g.rewind(unused).await;
            }
            Source::Assigned(c, _) => {
                for r in unused {
                    let pos = c
                        .assignments()
                        .get(&(r.topic.clone(), r.partition))
                        .copied();
                    if pos.is_some_and(|p| p.position > r.offset) {
                        let _ = c
                            .seek(&r.topic, r.partition, StartOffset::Offset(r.offset))
                            .await;
                    }
                }
            }
        }
    }

    /// Commits (when the group's settings say so) and leaves the group.
    async fn close(self, client: strom_client::Client) {
        match self {
            Source::Group(g) => {
                if let Err(e) = g.close().await {
                    eprintln!("[strom] leaving the consumer group: {}", super::message(&e));
                }
            }
            Source::Assigned(c, Some(group)) => {
                let offsets = c
                    .assignments()
                    .iter()
                    .map(|(k, p)| (k.clone(), p.position))
                    .collect();
                if let Err(e) = Admin::new(client)
                    .commit_group_offsets(&group, &offsets)
                    .await
                {
                    eprintln!(
                        "[strom] committing offsets of group {group}: {}",
                        super::message(&e)
                    );
                }
            }
            Source::Assigned(_, None) => {}
        }
    }
}

pub async fn consumer(args: Vec<String>) -> i32 {
    let a: ConsumerArgs = match super::parse("kafka-console-consumer", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(topic) = a.topic.clone() else {
        eprintln!("Exactly one of --include/--topic is required.");
        return 1;
    };
    let (props, cprops) = match (
        properties(&a.properties),
        properties(&a.consumer_properties),
    ) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(m), _) | (_, Err(m)) => {
            eprintln!("{m}");
            return 1;
        }
    };
    // As Kafka's: the group from --group or group.id (they must agree), else a generated
    // one that commits nothing unless told to.
    let group_prop = prop(&cprops, "group.id").map(str::to_owned);
    if let (Some(g), Some(p)) = (&a.group, &group_prop) {
        if g != p {
            eprintln!(
                "Provided Group ID '{g}' and the group.id consumer property '{p}' are different"
            );
            return 1;
        }
    }
    let given_group = a.group.clone().or(group_prop);
    let auto_commit = match prop(&cprops, "enable.auto.commit") {
        Some(v) => v.eq_ignore_ascii_case("true"),
        None => given_group.is_some(),
    };
    let ms = |name: &str, default: u64| -> Result<Duration, i32> {
        match prop(&cprops, name) {
            None => Ok(Duration::from_millis(default)),
            Some(v) => v.parse().map(Duration::from_millis).map_err(|_| {
                eprintln!("Invalid value {v} for configuration {name}: Not a number of type LONG");
                1
            }),
        }
    };
    let (session, heartbeat, commit_every) = match (
        ms("session.timeout.ms", 45_000),
        ms("heartbeat.interval.ms", 3_000),
        ms("auto.commit.interval.ms", 5_000),
    ) {
        (Ok(s), Ok(h), Ok(c)) => (s, h, c),
        _ => return 1,
    };
    let reset = match prop(&cprops, "auto.offset.reset") {
        _ if a.from_beginning => OffsetReset::Earliest,
        None | Some("latest") => OffsetReset::Latest,
        Some("earliest") => OffsetReset::Earliest,
        Some("none") => OffsetReset::None,
        Some(v) => {
            eprintln!("Invalid value {v} for configuration auto.offset.reset: String must be one of: latest, earliest, none");
            return 1;
        }
    };
    let start = match a.offset.as_deref() {
        None if a.from_beginning => StartOffset::Earliest,
        None => StartOffset::Latest,
        Some("earliest") => StartOffset::Earliest,
        Some("latest") => StartOffset::Latest,
        Some(n) => match n.parse::<i64>() {
            Ok(o) if o >= 0 && a.partition.is_some() => StartOffset::Offset(o),
            Ok(_) if a.partition.is_none() => {
                eprintln!("The partition is required when offset is specified.");
                return 1;
            }
            _ => {
                eprintln!("The provided offset value '{n}' is incorrect. Valid values are 'earliest', 'latest', or a non-negative long.");
                return 1;
            }
        },
    };
    let conn = match connect_args(a.bootstrap_server.clone(), "kafka-console-consumer") {
        Ok(c) => c,
        Err(code) => return code,
    };
    let client = match crate::cli::connect(&conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let config = ConsumerConfig {
        auto_offset_reset: reset,
        read_committed: a.isolation_level == "read_committed",
        ..Default::default()
    };
    let mut source = match a.partition {
        Some(p) => {
            let mut consumer = Consumer::new(client.clone(), config);
            if let Err(e) = consumer.assign(&topic, p, start).await {
                eprintln!(
                    "Error processing message, terminating consumer process: {}",
                    super::message(&e)
                );
                return 1;
            }
            Source::Assigned(consumer, given_group.filter(|_| auto_commit))
        }
        None if a.offset.is_some() => {
            // Only "earliest"/"latest" get here: all partitions, no group to commit.
            let mut consumer = Consumer::new(client.clone(), config);
            if let Err(e) = consumer.assign_topic(&topic, start).await {
                eprintln!(
                    "Error processing message, terminating consumer process: {}",
                    super::message(&e)
                );
                return 1;
            }
            Source::Assigned(consumer, None)
        }
        None => {
            let group = given_group.unwrap_or_else(|| {
                use std::hash::{BuildHasher, Hasher};
                let random = std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish();
                format!("console-consumer-{}", random % 100_000)
            });
            let mut g = GroupConfig::new(group);
            g.auto_commit = auto_commit;
            g.session_timeout = session;
            g.heartbeat_interval = heartbeat;
            g.auto_commit_interval = commit_every;
            let mut member = GroupConsumer::new(client.clone(), config, g);
            member.subscribe([topic.clone()]);
            Source::Group(Box::new(member))
        }
    };
    let print_key = flag(&props, "print.key");
    let print_value = prop(&props, "print.value").is_none_or(|v| v.eq_ignore_ascii_case("true"));
    let print_ts = flag(&props, "print.timestamp");
    let print_partition = flag(&props, "print.partition");
    let print_offset = flag(&props, "print.offset");
    let print_headers = flag(&props, "print.headers");
    let key_sep = unescape(prop(&props, "key.separator").unwrap_or("\t"));
    let line_sep = unescape(prop(&props, "line.separator").unwrap_or("\n"));
    let null = prop(&props, "null.literal").unwrap_or("null").to_string();
    let text = |b: &Option<Bytes>| {
        b.as_deref()
            .map(|x| String::from_utf8_lossy(x).into_owned())
            .unwrap_or_else(|| null.clone())
    };
    let mut seen = 0usize;
    let mut idle = tokio::time::Instant::now();
    let stdout = std::io::stdout();
    let done = |seen: usize| {
        eprintln!("Processed a total of {seen} messages");
    };
    if a.max_messages == Some(0) {
        source.close(client).await;
        done(0);
        return 0;
    }
    let interrupted = crate::cli::node::wait_for_signal();
    tokio::pin!(interrupted);
    loop {
        let polled = tokio::select! {
            biased;
            _ = &mut interrupted => {
                // Ctrl-C or SIGTERM: commit and leave the group, as Kafka's tool does.
                source.close(client).await;
                done(seen);
                return 0;
            }
            r = source.poll() => r,
        };
        let records = match polled {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "Error processing message, terminating consumer process: {}",
                    super::message(&e)
                );
                source.close(client).await;
                done(seen);
                return 1;
            }
        };
        if records.is_empty() {
            if a.timeout_ms
                .is_some_and(|t| idle.elapsed() >= Duration::from_millis(t))
            {
                // Kafka logs the timeout and exits normally.
                source.close(client).await;
                done(seen);
                return 0;
            }
            continue;
        }
        idle = tokio::time::Instant::now();
        let mut out = stdout.lock();
        let mut records = records.into_iter();
        while let Some(r) = records.next() {
            let mut line = String::new();
            if print_ts {
                line.push_str(&format!("CreateTime:{}{key_sep}", r.timestamp));
            }
            if print_partition {
                line.push_str(&format!("Partition:{}{key_sep}", r.partition));
            }
            if print_offset {
                line.push_str(&format!("Offset:{}{key_sep}", r.offset));
            }
            if print_headers {
                if r.headers.is_empty() {
                    line.push_str("NO_HEADERS");
                } else {
                    let hs: Vec<String> = r
                        .headers
                        .iter()
                        .map(|(k, v)| format!("{k}:{}", text(v)))
                        .collect();
                    line.push_str(&hs.join(","));
                }
                line.push_str(&key_sep);
            }
            if print_key {
                line.push_str(&text(&r.key));
                if print_value {
                    line.push_str(&key_sep);
                }
            }
            if print_value {
                line.push_str(&text(&r.value));
            }
            line.push_str(&line_sep);
            let _ = out.write_all(line.as_bytes());
            seen += 1;
            if a.max_messages.is_some_and(|m| seen >= m) {
                let _ = out.flush();
                drop(out);
                let unused: Vec<ConsumerRecord> = records.collect();
                source.rewind(&unused).await;
                source.close(client).await;
                done(seen);
                return 0;
            }
        }
        let _ = out.flush();
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "kafka-console-producer",
    about = "Write each line of standard input as a record (Kafka's kafka-console-producer, served by strom).",
    disable_version_flag = true
)]
struct ProducerArgs {
    /// REQUIRED: The server(s) to connect to.
    #[arg(long)]
    bootstrap_server: Option<String>,
    /// REQUIRED: The topic id to produce messages to.
    #[arg(long)]
    topic: Option<String>,
    /// Reader properties: parse.key, key.separator, parse.headers, headers.delimiter,
    /// headers.separator, headers.key.separator, null.marker (repeatable).
    #[arg(long = "property")]
    properties: Vec<String>,
    /// Producer properties: acks, compression.type, enable.idempotence are used; others
    /// are accepted and ignored (repeatable).
    #[arg(long = "producer-property")]
    producer_properties: Vec<String>,
    /// The required acks of the producer requests (-1/all, 0 or 1).
    #[arg(long)]
    request_required_acks: Option<String>,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long)]
    compression_codec: Option<String>,
    /// Send records synchronously, one at a time as they arrive.
    #[arg(long)]
    sync: bool,
}

pub async fn producer(args: Vec<String>) -> i32 {
    let a: ProducerArgs = match super::parse("kafka-console-producer", args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(topic) = a.topic.clone() else {
        eprintln!("Missing required argument \"[topic]\"");
        return 1;
    };
    let (props, pprops) = match (
        properties(&a.properties),
        properties(&a.producer_properties),
    ) {
        (Ok(p), Ok(q)) => (p, q),
        (Err(m), _) | (_, Err(m)) => {
            eprintln!("{m}");
            return 1;
        }
    };
    let acks_text = a
        .request_required_acks
        .clone()
        .or_else(|| prop(&pprops, "acks").map(str::to_string))
        .unwrap_or_else(|| "all".to_string());
    let acks: i16 = match acks_text.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        other => {
            eprintln!("Invalid value {other} for acks: expected all, -1, 0 or 1");
            return 1;
        }
    };
    let codec = a
        .compression_codec
        .clone()
        .or_else(|| prop(&pprops, "compression.type").map(str::to_string))
        .unwrap_or_else(|| "none".to_string());
    let Some(compression) = compression_from_name(&codec) else {
        eprintln!("Invalid compression codec {codec}: expected none, gzip, snappy, lz4 or zstd");
        return 1;
    };
    let idempotent = prop(&pprops, "enable.idempotence").is_none_or(|v| v == "true") && acks == -1;
    let parse_key = flag(&props, "parse.key");
    let key_sep = unescape(prop(&props, "key.separator").unwrap_or("\t"));
    let parse_headers = flag(&props, "parse.headers");
    let headers_delim = unescape(prop(&props, "headers.delimiter").unwrap_or("\t"));
    let headers_sep = unescape(prop(&props, "headers.separator").unwrap_or(","));
    let headers_kv = unescape(prop(&props, "headers.key.separator").unwrap_or(":"));
    let null_marker = prop(&props, "null.marker").map(str::to_string);
    let conn = match connect_args(a.bootstrap_server.clone(), "kafka-console-producer") {
        Ok(c) => c,
        Err(code) => return code,
    };
    let client = match crate::cli::connect(&conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut producer = match Producer::builder(client)
        .acks(acks)
        .compression(compression)
        .idempotent(idempotent)
        .build()
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{}", super::message(&e));
            return 1;
        }
    };
    let as_bytes = |s: &str| -> Option<Bytes> {
        if null_marker.as_deref() == Some(s) {
            None
        } else {
            Some(Bytes::from(s.to_string()))
        }
    };
    // Typed lines go out as they are entered; piped ones in batches.
    let sync = a.sync || std::io::IsTerminal::is_terminal(&std::io::stdin());
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending = 0usize;
    let mut code = 0;
    loop {
        let line = match lines.next_line().await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("reading standard input: {e}");
                return 1;
            }
        };
        if let Some(l) = &line {
            let mut rest = l.as_str();
            let mut headers = Vec::new();
            if parse_headers {
                let Some((h, r)) = rest.split_once(headers_delim.as_str()) else {
                    eprintln!("No headers delimiter found on line: {l}");
                    return 1;
                };
                for kv in h.split(headers_sep.as_str()).filter(|x| !x.is_empty()) {
                    let (k, v) = kv.split_once(headers_kv.as_str()).unwrap_or((kv, ""));
                    headers.push((k.to_string(), as_bytes(v)));
                }
                rest = r;
            }
            let (key, value) = if parse_key {
                match rest.split_once(key_sep.as_str()) {
                    Some((k, v)) => (as_bytes(k), as_bytes(v)),
                    None => {
                        eprintln!("No key separator found on line: {l}");
                        return 1;
                    }
                }
            } else {
                (None, as_bytes(rest))
            };
            if let Err(e) = producer.send(&topic, None, key, value, headers, None).await {
                eprintln!("{}", super::message(&e));
                return 1;
            }
            pending += 1;
        }
        if pending > 0 && (sync || pending >= 1000 || line.is_none()) {
            match producer.flush().await {
                Ok(ds) => {
                    for d in ds {
                        if let Err(e) = d.result {
                            eprintln!(
                                "Error when sending message to topic {} with key: ..., value: ...: {e:?}",
                                d.topic
                            );
                            code = 1;
                        }
                    }
                }
                Err(e) => {
                    eprintln!("{}", super::message(&e));
                    return 1;
                }
            }
            pending = 0;
        }
        if line.is_none() {
            return code;
        }
    }
}
