//! A replication workload and its history: idempotent `acks=all` producers writing
//! unique values to a topic's partitions, and consumers reading every partition from the
//! start over and over, noting each record and each high watermark they are told. After
//! the faults, `final_logs` reads every partition to its end; the invariant checkers
//! compare that with what was acknowledged and read along the way, and with the replicas'
//! own logs (`replica_logs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use madsim::rand::Rng;
use parking_lot::Mutex;
use strom_client::{
    ClientConfig, Consumer, ConsumerConfig, OffsetReset, OffsetSpec, Producer, StartOffset,
};

use crate::cluster::{connect, SimCluster};

/// What a producer learned about one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged at this offset.
    Acked(i64),
    /// Not acknowledged: it may or may not be in the log.
    Unknown(String),
}

#[derive(Clone, Debug)]
pub struct Sent {
    pub value: String,
    pub partition: i32,
    pub outcome: Outcome,
}

/// A record a consumer read (below the high watermark of the answer it came in).
#[derive(Clone, Debug)]
pub struct Read {
    pub consumer: u32,
    pub partition: i32,
    pub offset: i64,
    pub value: String,
}

#[derive(Default, Debug)]
pub struct History {
    pub sent: Vec<Sent>,
    pub reads: Vec<Read>,
    /// (consumer, partition, high watermark), in the order each consumer saw them.
    pub high_watermarks: Vec<(u32, i32, i64)>,
}

pub type Shared = Arc<Mutex<History>>;

/// The final content of a partition: offset → value.
pub type FinalLog = BTreeMap<i64, String>;

/// Settings every replication test uses (short timeouts so faults play out quickly).
pub const SETTINGS: &[(&str, &str)] = &[
    ("broker.session.timeout.ms", "3000"),
    ("broker.heartbeat.interval.ms", "500"),
    ("replica.lag.time.max.ms", "2000"),
    ("replica.fetch.backoff.ms", "200"),
    ("replica.fetch.wait.max.ms", "200"),
    ("replica.high.watermark.checkpoint.interval.ms", "500"),
    ("leader.imbalance.check.interval.seconds", "5"),
    ("controlled.shutdown.timeout.ms", "10000"),
];

fn client_config(bootstrap: Vec<String>) -> ClientConfig {
    let mut cfg = ClientConfig::new(bootstrap).request_timeout(Duration::from_secs(8));
    cfg.retry_backoff = Duration::from_millis(100);
    cfg
}

/// Creates `topic` with `partitions` partitions on `rf` replicas and
/// `min.insync.replicas`, retrying while the cluster settles.
pub async fn create_topic(
    cluster: &SimCluster,
    topic: &str,
    partitions: i32,
    rf: i16,
    min_isr: i32,
) {
    let bs = cluster.bootstrap();
    let topic = topic.to_string();
    cluster
        .on_client(async move {
            for _ in 0..50 {
                let admin = strom_client::Admin::new(connect(bs.clone()).await);
                let t = strom_client::NewTopic::new(&topic, partitions, rf)
                    .config("min.insync.replicas", min_isr.to_string());
                match admin.create_topics(vec![t], false).await {
                    Ok(r) if r[0].error.is_none() => return,
                    Ok(r) if r[0].error.as_ref().is_some_and(|e| e.code == 36) => return,
                    Ok(r) => tracing::info!(error = ?r[0].error, "create topic; retrying"),
                    Err(e) => tracing::info!(error = %e, "create topic; retrying"),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            panic!("could not create {topic}");
        })
        .await;
}

/// A producer: flushes of 1–5 unique values to random partitions until `stop`. With
/// `fresh_ids`, every flush uses a new producer (a new producer id, sequences from 0),
/// so that a retried batch is always a first batch: only the broker's producer state
/// can tell it is a duplicate.
pub async fn produce(
    bootstrap: Vec<String>,
    id: u32,
    topic: String,
    partitions: i32,
    history: Shared,
    stop: Arc<std::sync::atomic::AtomicBool>,
    fresh_ids: bool,
) {
    let client = connect_with(bootstrap).await;
    let build = |client: strom_client::Client| {
        Producer::builder(client)
            .idempotent(true)
            .acks(-1)
            .retries(60)
            .build()
            .expect("producer settings")
    };
    let mut producer = build(client.clone());
    // Fresh producers get their ids ahead of time, so that a flush sends Produce at
    // once even when the node that would answer InitProducerId is cut off.
    let mut ready: std::collections::VecDeque<Producer> = std::collections::VecDeque::new();
    if fresh_ids {
        while ready.len() < 30 {
            let mut p = build(client.clone());
            if p.init_producer_id().await.is_ok() {
                ready.push_back(p);
            }
        }
    }
    let mut n = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        if fresh_ids {
            producer = match ready.pop_front() {
                Some(p) => p,
                None => build(client.clone()),
            };
        }
        let count = madsim::rand::thread_rng().gen_range(1..=5);
        let mut pending = Vec::new();
        for _ in 0..count {
            let value = format!("p{id}-{n}");
            n += 1;
            let partition = madsim::rand::thread_rng().gen_range(0..partitions);
            let sent = producer
                .send(
                    &topic,
                    Some(partition),
                    None,
                    Some(Bytes::from(value.clone())),
                    vec![],
                    None,
                )
                .await;
            match sent {
                Ok(_) => pending.push((value, partition)),
                Err(e) => history.lock().sent.push(Sent {
                    value,
                    partition,
                    outcome: Outcome::Unknown(e.to_string()),
                }),
            }
        }
        match producer.flush().await {
            Ok(deliveries) => {
                let mut h = history.lock();
                for ((value, partition), d) in pending.into_iter().zip(deliveries) {
                    let outcome = match d.result {
                        Ok(offset) => Outcome::Acked(offset),
                        Err(e) => Outcome::Unknown(e.to_string()),
                    };
                    h.sent.push(Sent {
                        value,
                        partition,
                        outcome,
                    });
                }
            }
            Err(e) => {
                let mut h = history.lock();
                for (value, partition) in pending {
                    h.sent.push(Sent {
                        value,
                        partition,
                        outcome: Outcome::Unknown(e.to_string()),
                    });
                }
            }
        }
        let pause = madsim::rand::thread_rng().gen_range(5..40);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

async fn connect_with(bootstrap: Vec<String>) -> strom_client::Client {
    for _ in 0..200 {
        if let Ok(c) = strom_client::Client::connect(client_config(bootstrap.clone())).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cluster unreachable");
}

/// A consumer: reads every partition from the start, noting records and high
/// watermarks, until `stop`.
pub async fn consume(
    bootstrap: Vec<String>,
    id: u32,
    topic: String,
    partitions: i32,
    history: Shared,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let client = connect_with(bootstrap).await;
    let mut consumer = Consumer::new(
        client,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..Default::default()
        },
    );
    for p in 0..partitions {
        while consumer
            .assign(&topic, p, StartOffset::Earliest)
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut last_fetched: BTreeMap<i32, i64> = BTreeMap::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(300)).await {
            Ok(records) => {
                {
                    let mut h = history.lock();
                    for r in records {
                        h.reads.push(Read {
                            consumer: id,
                            partition: r.partition,
                            offset: r.offset,
                            value: String::from_utf8_lossy(r.value.as_deref().unwrap_or(b""))
                                .to_string(),
                        });
                    }
                    // A changed cached value is a fresh Fetch answer.
                    for ((_, p), pos) in consumer.assignments() {
                        let last = last_fetched.entry(*p).or_insert(-1);
                        if pos.high_watermark >= 0 && pos.high_watermark != *last {
                            *last = pos.high_watermark;
                            h.high_watermarks.push((id, *p, pos.high_watermark));
                        }
                    }
                }
                // ListOffsets latest is a high watermark observation too (KIP-207).
                if madsim::rand::thread_rng().gen_bool(0.1) {
                    let p = madsim::rand::thread_rng().gen_range(0..partitions);
                    if let Ok(l) = consumer.list_offsets(&topic, p, OffsetSpec::Latest).await {
                        history.lock().high_watermarks.push((id, p, l.offset));
                    }
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Waits until every partition has a leader, its ISR holds every replica, and the
/// leader's high watermark reached its log end; panics after `within`.
pub async fn wait_converged(cluster: &SimCluster, topic: &str, within: Duration) {
    if let Err(e) = try_converge(cluster, topic, within).await {
        panic!("{e}");
    }
}

/// As `wait_converged`, returning why it did not converge instead of panicking.
pub async fn try_converge(
    cluster: &SimCluster,
    topic: &str,
    within: Duration,
) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if converged(cluster, topic) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "replicas of {topic} did not converge within {within:?}: {}",
                describe(cluster, topic)
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn converged(cluster: &SimCluster, topic: &str) -> bool {
    let Some(img) = cluster.newest_image() else {
        return false;
    };
    let Some(t) = img.topic_by_name(topic) else {
        return false;
    };
    t.partitions.iter().all(|(&i, p)| {
        if p.leader < 0 || p.isr.len() != p.replicas.len() {
            return false;
        }
        let Some(leader) = cluster.live(p.leader).and_then(|l| l.broker) else {
            return false;
        };
        let Some(lp) = leader.replicas.get(topic, i) else {
            return false;
        };
        let o = lp.log.offsets();
        // Every replica holds the leader's log end and knows the high watermark.
        o.high_watermark == o.log_end
            && p.replicas.iter().all(|r| {
                cluster
                    .live(*r)
                    .and_then(|l| l.broker)
                    .and_then(|b| b.replicas.get(topic, i))
                    .is_some_and(|x| x.log.offsets().log_end == o.log_end)
            })
    })
}

/// The partitions' leaders, ISRs and offsets, for failure messages.
pub fn describe(cluster: &SimCluster, topic: &str) -> String {
    let mut out = String::new();
    for n in &cluster.nodes {
        let Some(b) = cluster.live(n.id).and_then(|l| l.broker) else {
            out.push_str(&format!("\n node {}: down", n.id));
            continue;
        };
        let img = b.cache.image();
        if let Some(t) = img.topic_by_name(topic) {
            for (i, p) in &t.partitions {
                let local = b
                    .replicas
                    .get(topic, *i)
                    .map(|x| (x.log.offsets(), x.state()));
                out.push_str(&format!(
                    "\n node {} p{}: image leader {} epoch {} isr {:?} elr {:?}; local {:?}",
                    n.id,
                    i,
                    p.leader,
                    p.leader_epoch,
                    p.isr,
                    p.elr,
                    local.map(|(o, s)| (o.log_start, o.high_watermark, o.log_end, s.leader_epoch))
                ));
            }
        }
    }
    out
}

/// Reads every partition from its start to its end through a fresh client.
pub async fn final_logs(cluster: &SimCluster, topic: &str, partitions: i32) -> Vec<FinalLog> {
    final_logs_isolated(cluster, topic, partitions, false).await
}

/// `final_logs`, read with read_committed when asked (once every transaction ended, the
/// last stable offset reaches the end).
pub async fn final_logs_isolated(
    cluster: &SimCluster,
    topic: &str,
    partitions: i32,
    read_committed: bool,
) -> Vec<FinalLog> {
    let bs = cluster.bootstrap();
    let topic = topic.to_string();
    cluster
        .on_client(async move {
            let client = connect_with(bs).await;
            let mut consumer = Consumer::new(
                client,
                ConsumerConfig {
                    auto_offset_reset: OffsetReset::Earliest,
                    read_committed,
                    ..Default::default()
                },
            );
            let mut ends = Vec::new();
            for p in 0..partitions {
                consumer
                    .assign(&topic, p, StartOffset::Earliest)
                    .await
                    .expect("assign");
                let end = loop {
                    match consumer.list_offsets(&topic, p, OffsetSpec::Latest).await {
                        Ok(l) => break l.offset,
                        Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
                    }
                };
                ends.push(end);
            }
            let mut logs = vec![FinalLog::new(); partitions as usize];
            for _ in 0..2000 {
                let done = consumer
                    .assignments()
                    .iter()
                    .all(|((_, p), pos)| pos.position >= ends[*p as usize]);
                if done {
                    break;
                }
                if let Ok(records) = consumer.poll(Duration::from_millis(300)).await {
                    for r in records {
                        logs[r.partition as usize].insert(
                            r.offset,
                            String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"")).to_string(),
                        );
                    }
                }
            }
            for ((_, p), pos) in consumer.assignments() {
                assert!(
                    pos.position >= ends[*p as usize],
                    "could not read partition {p} to its end {}",
                    ends[*p as usize]
                );
            }
            logs
        })
        .await
}

/// Every live replica's batches of every partition: (broker, partition, batches as
/// (base offset, last offset, leader epoch, bytes)), with each replica's high watermark.
pub type ReplicaLog = (i32, i32, i64, Vec<(i64, i64, i32, Bytes)>);

pub async fn replica_logs(cluster: &SimCluster, topic: &str) -> Vec<ReplicaLog> {
    let mut out = Vec::new();
    for n in &cluster.nodes {
        let Some(b) = cluster.live(n.id).and_then(|l| l.broker) else {
            continue;
        };
        let mut hosted: Vec<_> = b
            .replicas
            .all()
            .into_iter()
            .filter(|p| p.topic == topic)
            .collect();
        hosted.sort_by_key(|p| p.index);
        for p in hosted {
            let o = p.log.offsets();
            let mut batches = Vec::new();
            let mut next = o.log_start;
            while next < o.log_end {
                let Ok(r) = p.log.read(next, 1 << 20, true, true).await else {
                    break;
                };
                if r.records.is_empty() {
                    break;
                }
                for (h, range) in strom_broker::log::batch::walk(&r.records) {
                    batches.push((
                        h.base_offset,
                        h.last_offset(),
                        h.partition_leader_epoch,
                        r.records.slice(range),
                    ));
                    next = h.last_offset() + 1;
                }
            }
            out.push((n.id, p.index, o.high_watermark, batches));
        }
    }
    out
}
