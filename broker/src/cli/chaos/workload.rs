//! The chaos run's workload, on strom's own client: idempotent acks=all producers with
//! unique values (`p<producer>-<seq>`, 16 keys each, so per-key order can be checked),
//! and consumers in one group; every send, acknowledgement and read goes into the
//! history.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use strom_client::{
    Client, Consumer, ConsumerConfig, GroupConfig, GroupConsumer, OffsetReset, Producer,
    StartOffset,
};

use super::verdict::{Produced, Read, Rebalances};

const KEYS: u64 = 16;

/// Sends batches of `batch` records until `stop`, at most `rate` records a second
/// (0: as fast as acknowledgements come), idempotent with acks=all (`acks` -1), or
/// plain with acks=1.
#[allow(clippy::too_many_arguments)]
pub async fn produce(
    client: Client,
    topic: String,
    producer: u32,
    batch: usize,
    rate: u64,
    acks: i16,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Produced>>>,
) {
    let build = || {
        Producer::builder(client.clone())
            .acks(acks)
            .idempotent(acks == -1)
            .retries(100)
            .build()
    };
    let mut p = match build() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("[chaos] producer {producer}: {e}");
            return;
        }
    };
    let mut seq = 0u64;
    let started = tokio::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if rate > 0 {
            let due = started + Duration::from_secs_f64(seq as f64 / rate as f64);
            tokio::time::sleep_until(due).await;
        }
        let sent_ms = strom_common::clock::now_ms();
        let mut pending = Vec::with_capacity(batch);
        let mut send_error = None;
        for _ in 0..batch {
            let key = format!("k{}", seq % KEYS);
            let value = format!("p{producer}-{seq}");
            match p
                .send(
                    &topic,
                    None,
                    Some(Bytes::from(key.clone())),
                    Some(Bytes::from(value.clone())),
                    Vec::new(),
                    None,
                )
                .await
            {
                Ok(_) => pending.push((seq, key, value)),
                Err(e) => {
                    send_error = Some(e.to_string());
                    break;
                }
            }
            seq += 1;
        }
        let deliveries = match p.flush().await {
            Ok(d) => d,
            Err(e) => {
                let e = e.to_string();
                out.lock().extend(
                    pending
                        .into_iter()
                        .map(|(s, key, value)| failed(producer, s, key, value, sent_ms, &e)),
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let acked_ms = strom_common::clock::now_ms();
        let outcomes: Vec<Produced> = pending
            .into_iter()
            .zip(deliveries)
            .map(|((s, key, value), d)| match d.result {
                Ok(offset) => Produced {
                    producer,
                    seq: s,
                    key,
                    value,
                    sent_ms,
                    acked_ms: Some(acked_ms),
                    partition: d.partition,
                    offset,
                    error: None,
                },
                Err(e) => failed(producer, s, key, value, sent_ms, &e.to_string()),
            })
            .collect();
        out.lock().extend(outcomes);
        if let Some(e) = send_error {
            tracing::debug!(error = %e, "chaos producer: send refused");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn failed(producer: u32, seq: u64, key: String, value: String, sent_ms: i64, e: &str) -> Produced {
    Produced {
        producer,
        seq,
        key,
        value,
        sent_ms,
        acked_ms: None,
        partition: -1,
        offset: -1,
        error: Some(e.to_string()),
    }
}

/// A group member reading until `stop`; its rebalances go to `rebalances`.
pub async fn consume(
    client: Client,
    topic: String,
    group: String,
    member: u32,
    stop: Arc<AtomicBool>,
    out: Arc<Mutex<Vec<Read>>>,
    rebalances: Arc<Mutex<Vec<Rebalances>>>,
) {
    let mut g = GroupConfig::new(group);
    g.session_timeout = Duration::from_secs(10);
    g.heartbeat_interval = Duration::from_millis(500);
    g.auto_commit_interval = Duration::from_secs(1);
    g.join_timeout = Duration::from_secs(120);
    let config = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..Default::default()
    };
    let mut c = GroupConsumer::new(client, config, g);
    c.subscribe([topic]);
    while !stop.load(Ordering::Relaxed) {
        match c.poll(Duration::from_millis(300)).await {
            Ok(records) => {
                let now = strom_common::clock::now_ms();
                out.lock()
                    .extend(records.into_iter().map(|r| read_of(r, now)));
            }
            Err(e) => {
                tracing::debug!(error = %e, member, "chaos consumer: poll failed");
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
    let (count, total) = c.rebalances();
    rebalances.lock().push(Rebalances {
        member,
        count,
        total_ms: total.as_millis() as u64,
    });
    let _ = c.close().await;
}

fn read_of(r: strom_client::ConsumerRecord, at_ms: i64) -> Read {
    Read {
        partition: r.partition,
        offset: r.offset,
        value: String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned(),
        at_ms,
    }
}

/// Reads every partition of `topic` from its start to the end it has now.
pub async fn read_all(client: &Client, topic: &str) -> Result<Vec<Read>, String> {
    let meta = client
        .topic_metadata(topic)
        .await
        .map_err(|e| e.to_string())?;
    let mut c = Consumer::new(client.clone(), ConsumerConfig::default());
    let mut ends = std::collections::BTreeMap::new();
    for p in &meta.partitions {
        let end = c
            .list_offsets(topic, p.partition, strom_client::OffsetSpec::Latest)
            .await
            .map_err(|e| e.to_string())?
            .offset;
        ends.insert(p.partition, end);
        c.assign(topic, p.partition, StartOffset::Earliest)
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let done = c
            .assignments()
            .iter()
            .all(|((_, p), pos)| pos.position >= ends.get(p).copied().unwrap_or(0));
        if done {
            return Ok(out);
        }
        if tokio::time::Instant::now() > deadline {
            return Err("the final read did not reach the end of every partition in 120 s".into());
        }
        let now = strom_common::clock::now_ms();
        match c.poll(Duration::from_millis(500)).await {
            Ok(records) => out.extend(records.into_iter().map(|r| read_of(r, now))),
            Err(e) => tracing::debug!(error = %e, "chaos final read: poll failed"),
        }
    }
}
