//! `strom consume`: prints records, like the console consumer (without a group).

use std::io::Write;
use std::time::Duration;

use clap::Args;
use strom_client::{Consumer, ConsumerConfig, OffsetReset, StartOffset};

use super::{connect, Conn};

#[derive(Args)]
pub struct ConsumeArgs {
    #[command(flatten)]
    conn: Conn,
    /// The topic to read.
    #[arg(long, short)]
    topic: String,
    /// One partition (default: all).
    #[arg(long, short)]
    partition: Option<i32>,
    /// Start at the beginning (default: new records only).
    #[arg(long)]
    from_beginning: bool,
    /// `read_committed`: only committed transactions' records, up to the last stable
    /// offset (default `read_uncommitted`), as kafka-console-consumer's option.
    #[arg(long, value_parser = ["read_uncommitted", "read_committed"], default_value = "read_uncommitted")]
    isolation_level: String,
    /// Start at this offset (needs --partition).
    #[arg(long, conflicts_with = "from_beginning")]
    offset: Option<i64>,
    /// Start at the first record with a timestamp at or after this one (ms).
    #[arg(long, conflicts_with_all = ["from_beginning", "offset"])]
    from_timestamp: Option<i64>,
    /// Stop after this many records.
    #[arg(long, short = 'n')]
    max_messages: Option<usize>,
    /// Stop when no record arrives for this long (ms; default: never).
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// Print keys (`key<TAB>value`).
    #[arg(long)]
    print_key: bool,
    /// Print partition, offset and timestamp before each record.
    #[arg(long)]
    print_offset: bool,
    /// Print headers after each record.
    #[arg(long)]
    print_headers: bool,
}

pub async fn run(a: ConsumeArgs) -> i32 {
    if a.offset.is_some() && a.partition.is_none() {
        eprintln!("--offset needs --partition");
        return 2;
    }
    let client = match connect(&a.conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let start = match (a.offset, a.from_timestamp, a.from_beginning) {
        (Some(o), _, _) => StartOffset::Offset(o),
        (_, Some(t), _) => StartOffset::Timestamp(t),
        (_, _, true) => StartOffset::Earliest,
        _ => StartOffset::Latest,
    };
    // As kafka-console-consumer: an out-of-range position (an `--offset` past the end,
    // or records deleted under us) goes to the start only with --from-beginning.
    let config = ConsumerConfig {
        auto_offset_reset: if a.from_beginning {
            OffsetReset::Earliest
        } else {
            OffsetReset::Latest
        },
        read_committed: a.isolation_level == "read_committed",
        ..Default::default()
    };
    let mut consumer = Consumer::new(client, config);
    let assigned = match a.partition {
        Some(p) => consumer.assign(&a.topic, p, start).await.map(|_| 1),
        None => consumer.assign_topic(&a.topic, start).await,
    };
    if let Err(e) = assigned {
        return super::topic::fail(e);
    }
    if a.max_messages == Some(0) {
        return 0;
    }
    let mut seen = 0usize;
    let mut idle = tokio::time::Instant::now();
    let stdout = std::io::stdout();
    loop {
        let records = match consumer.poll(Duration::from_millis(500)).await {
            Ok(r) => r,
            Err(e) => return super::topic::fail(e),
        };
        if records.is_empty() {
            if a.timeout_ms
                .is_some_and(|t| idle.elapsed() >= Duration::from_millis(t))
            {
                break;
            }
            continue;
        }
        idle = tokio::time::Instant::now();
        let mut out = stdout.lock();
        for r in records {
            if a.print_offset {
                let _ = write!(out, "{}:{}@{}\t", r.partition, r.offset, r.timestamp);
            }
            if a.print_key {
                let _ = write!(
                    out,
                    "{}\t",
                    r.key
                        .as_deref()
                        .map(String::from_utf8_lossy)
                        .unwrap_or("null".into())
                );
            }
            let _ = write!(
                out,
                "{}",
                r.value
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or("null".into())
            );
            if a.print_headers {
                for (k, v) in &r.headers {
                    let _ = write!(
                        out,
                        "\t{k}={}",
                        v.as_deref()
                            .map(String::from_utf8_lossy)
                            .unwrap_or("null".into())
                    );
                }
            }
            let _ = writeln!(out);
            seen += 1;
            if a.max_messages.is_some_and(|m| seen >= m) {
                let _ = out.flush();
                return 0;
            }
        }
        let _ = out.flush();
    }
    0
}
