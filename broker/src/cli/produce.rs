//! `strom produce`: one record per line of standard input, like the console producer.

use bytes::Bytes;
use clap::Args;
use strom_client::{compression_from_name, Producer};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{connect, Conn};

#[derive(Args)]
pub struct ProduceArgs {
    #[command(flatten)]
    conn: Conn,
    /// The topic to write to.
    #[arg(long, short)]
    topic: String,
    /// A fixed partition (default: by key, round robin without one).
    #[arg(long, short)]
    partition: Option<i32>,
    /// Split each line into key and value at the first occurrence of this separator.
    #[arg(long, short = 'K')]
    key_separator: Option<String>,
    /// Acknowledgements: 0, 1 or all (-1).
    #[arg(long, default_value = "all")]
    acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// Idempotent producer (needs acks=all).
    #[arg(long)]
    idempotent: bool,
    /// A header on every record: `--header source=cli` (repeatable).
    #[arg(long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Send in batches of this many lines.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
}

pub async fn run(a: ProduceArgs) -> i32 {
    let acks: i16 = match a.acks.as_str() {
        "all" | "-1" => -1,
        "1" => 1,
        "0" => 0,
        other => {
            eprintln!("--acks {other}: expected 0, 1 or all");
            return 2;
        }
    };
    if a.idempotent && acks != -1 {
        eprintln!(
            "--idempotent needs --acks all (Kafka's rule), not --acks {}",
            a.acks
        );
        return 2;
    }
    let Some(compression) = compression_from_name(&a.compression) else {
        eprintln!(
            "--compression {}: expected none, gzip, snappy, lz4 or zstd",
            a.compression
        );
        return 2;
    };
    let mut headers = Vec::new();
    for h in &a.headers {
        let Some((k, v)) = h.split_once('=') else {
            eprintln!("--header {h}: expected KEY=VALUE");
            return 2;
        };
        headers.push((k.to_string(), Some(Bytes::from(v.to_string()))));
    }
    let client = match connect(&a.conn).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut producer = match Producer::builder(client)
        .acks(acks)
        .compression(compression)
        .idempotent(a.idempotent)
        .build()
    {
        Ok(p) => p,
        Err(e) => return super::topic::fail(e),
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut pending = 0usize;
    let mut sent = 0usize;
    let mut failed = 0usize;
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => Some(l),
            Ok(None) => None,
            Err(e) => {
                eprintln!("reading stdin: {e}");
                return 1;
            }
        };
        if let Some(l) = &line {
            let (key, value) = match &a.key_separator {
                Some(sep) => match l.split_once(sep.as_str()) {
                    Some((k, v)) => (Some(Bytes::from(k.to_string())), v.to_string()),
                    None => (None, l.clone()),
                },
                None => (None, l.clone()),
            };
            if let Err(e) = producer
                .send(
                    &a.topic,
                    a.partition,
                    key,
                    Some(Bytes::from(value)),
                    headers.clone(),
                    None,
                )
                .await
            {
                return super::topic::fail(e);
            }
            pending += 1;
        }
        if pending > 0 && (pending >= a.batch || line.is_none()) {
            match producer.flush().await {
                Ok(ds) => {
                    for d in ds {
                        match d.result {
                            Ok(_) => sent += 1,
                            Err(e) => {
                                failed += 1;
                                eprintln!("record to {}-{} failed: {e:?}", d.topic, d.partition);
                            }
                        }
                    }
                }
                Err(e) => return super::topic::fail(e),
            }
            pending = 0;
        }
        if line.is_none() {
            break;
        }
    }
    eprintln!("{sent} record(s) written, {failed} failed");
    if failed > 0 {
        1
    } else {
        0
    }
}
