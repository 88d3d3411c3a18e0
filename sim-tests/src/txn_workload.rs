//! A transactions workload and its checks (KIP-98). Transactional producers, written
//! here from the wire protocol up as the clients do it (FindCoordinator for the
//! transactional id, InitProducerId, AddPartitionsToTxn, transactional Produce with
//! sequences, EndTxn; InitProducerId again after a fatal error, which fences the
//! previous epoch), write unique values to one to three partitions per transaction and
//! commit or abort it at random; read_committed consumers read every partition over and
//! over. Each transaction's outcome is what the producer was told: committed, aborted,
//! or unknown (EndTxn never answered, or the producer was fenced). Some producers speak
//! transaction version 2 (KIP-890 part 2): no AddPartitionsToTxn (Produce v12 adds the
//! partition), EndTxn v5 bumps the epoch and answers the next one.
//!
//! `check_transactions` compares that history with the partitions read to their end
//! with read_committed after the faults:
//! * no aborted read: no value of an aborted transaction is ever read (during the run
//!   or at the end), and nothing read during the run is missing at the end;
//! * no committed write lost: every value of a committed transaction is there;
//! * all or nothing: of every transaction, all values or none are there;
//! * in order and once: a transaction's values in a partition keep their order, no
//!   value is there twice, and each consumer reads each partition in offset order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, EndTxnRequest, FindCoordinatorRequest, InitProducerIdRequest,
    ProduceRequest, ProducerId, TopicName, TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use madsim::rand::Rng;
use parking_lot::Mutex;
use strom_client::StartOffset;
use strom_client::{Client, ClientConfig, Connection, Consumer, ConsumerConfig, OffsetReset};

use crate::cluster::SimCluster;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    Committed,
    Aborted,
    Unknown(String),
}

#[derive(Clone, Debug)]
pub struct TxnSent {
    pub producer: u32,
    pub n: u64,
    /// (partition, value) in the order produced.
    pub values: Vec<(i32, String)>,
    pub outcome: TxnOutcome,
}

#[derive(Default, Debug)]
pub struct TxnHistory {
    pub txns: Vec<TxnSent>,
    /// (consumer, partition, offset, value) as read with read_committed.
    pub reads: Vec<(u32, i32, i64, String)>,
}

pub type SharedTxn = Arc<Mutex<TxnHistory>>;

/// Settings of the transaction tests: the replication tests' plus fast timeouts.
pub const TXN_SETTINGS: &[(&str, &str)] = &[
    ("broker.session.timeout.ms", "3000"),
    ("broker.heartbeat.interval.ms", "500"),
    ("replica.lag.time.max.ms", "2000"),
    ("replica.fetch.backoff.ms", "200"),
    ("replica.fetch.wait.max.ms", "200"),
    ("replica.high.watermark.checkpoint.interval.ms", "500"),
    ("leader.imbalance.check.interval.seconds", "5"),
    ("controlled.shutdown.timeout.ms", "10000"),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "1000",
    ),
    ("transaction.state.log.num.partitions", "5"),
    ("offsets.topic.num.partitions", "5"),
];

/// Transaction timeout of the producers.
const TXN_TIMEOUT_MS: i32 = 8000;

async fn connect(bootstrap: Vec<String>) -> Client {
    for _ in 0..200 {
        let mut cfg = ClientConfig::new(bootstrap.clone()).request_timeout(Duration::from_secs(6));
        cfg.retry_backoff = Duration::from_millis(100);
        if let Ok(c) = Client::connect(cfg).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cluster unreachable");
}

fn sid(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

/// Why a step failed: retry it, or give the producer up (re-initialise, fencing it).
#[derive(Debug)]
pub enum Step {
    Retry(String),
    Fatal(String),
}

fn classify(code: i16) -> Step {
    // Kafka's codes: which a transactional producer retries.
    let retriable = [6, 7, 14, 15, 16, 19, 20, 51, 3, 13, 56, 75, 74, 8, 5, 9, 89];
    if retriable.contains(&code) {
        Step::Retry(strom_client::error_name(code).to_string())
    } else {
        Step::Fatal(strom_client::error_name(code).to_string())
    }
}

pub struct TxnProducer {
    client: Client,
    tid: String,
    /// Transaction version 2 (KIP-890 part 2).
    tv2: bool,
    pub producer: Option<(i64, i16)>,
    seqs: BTreeMap<i32, i32>,
}

impl TxnProducer {
    pub async fn new(bootstrap: Vec<String>, tid: &str, tv2: bool) -> TxnProducer {
        TxnProducer {
            client: connect(bootstrap).await,
            tid: tid.to_string(),
            tv2,
            producer: None,
            seqs: BTreeMap::new(),
        }
    }

    async fn coordinator(&self) -> Result<Arc<Connection>, Step> {
        let conn = self
            .client
            .any_connection()
            .await
            .map_err(|e| Step::Retry(e.to_string()))?;
        let v = conn
            .version_for::<FindCoordinatorRequest>(3)
            .map_err(|e| Step::Fatal(e.to_string()))?;
        let r = conn
            .send(
                FindCoordinatorRequest::default()
                    .with_key(sid(&self.tid))
                    .with_key_type(1),
                v,
            )
            .await
            .map_err(|e| Step::Retry(e.to_string()))?;
        if r.error_code != 0 {
            return Err(Step::Retry(format!("FindCoordinator {}", r.error_code)));
        }
        self.client
            .broker_connection(r.node_id.0)
            .await
            .map_err(|e| Step::Retry(e.to_string()))
    }

    /// InitProducerId until it answers (aborting our previous epoch's transaction).
    pub async fn init(&mut self, stop: &AtomicBool) -> bool {
        for _ in 0..300 {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            let res = async {
                let c = self.coordinator().await?;
                let v = c
                    .version_for::<InitProducerIdRequest>(4)
                    .map_err(|e| Step::Fatal(e.to_string()))?;
                let r = c
                    .send(
                        InitProducerIdRequest::default()
                            .with_transactional_id(Some(TransactionalId(sid(&self.tid))))
                            .with_transaction_timeout_ms(TXN_TIMEOUT_MS)
                            .with_producer_id(ProducerId(-1))
                            .with_producer_epoch(-1),
                        v,
                    )
                    .await
                    .map_err(|e| Step::Retry(e.to_string()))?;
                if r.error_code != 0 {
                    return Err(classify(r.error_code));
                }
                Ok((r.producer_id.0, r.producer_epoch))
            }
            .await;
            match res {
                Ok(p) => {
                    self.producer = Some(p);
                    self.seqs.clear();
                    return true;
                }
                Err(Step::Retry(_) | Step::Fatal(_)) => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
            }
        }
        false
    }

    pub async fn add_partitions(&self, topic: &str, parts: &[i32]) -> Result<(), Step> {
        if self.tv2 {
            return Ok(()); // Produce v12 adds them
        }
        let (pid, epoch) = self.producer.expect("initialised");
        for _ in 0..50 {
            let c = match self.coordinator().await {
                Ok(c) => c,
                Err(Step::Retry(_)) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let v = c
                .version_for::<AddPartitionsToTxnRequest>(3)
                .map_err(|e| Step::Fatal(e.to_string()))?;
            let req = AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(sid(&self.tid)))
                .with_v3_and_below_producer_id(ProducerId(pid))
                .with_v3_and_below_producer_epoch(epoch)
                .with_v3_and_below_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(sid(topic)))
                    .with_partitions(parts.to_vec())]);
            let r = match c.send(req, v).await {
                Ok(r) => r,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let code = r
                .results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| t.results_by_partition.iter())
                .map(|p| p.partition_error_code)
                .find(|c| *c != 0)
                .unwrap_or(0);
            match code {
                0 => return Ok(()),
                c => match classify(c) {
                    Step::Retry(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    fatal => return Err(fatal),
                },
            }
        }
        Err(Step::Fatal("AddPartitionsToTxn kept failing".into()))
    }

    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        values: &[String],
    ) -> Result<(), Step> {
        let (pid, epoch) = self.producer.expect("initialised");
        let base_seq = *self.seqs.get(&partition).unwrap_or(&0);
        let records: Vec<Record> = values
            .iter()
            .enumerate()
            .map(|(i, v)| Record {
                transactional: true,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: pid,
                producer_epoch: epoch,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: base_seq + i as i32,
                timestamp: strom_common::clock::now_ms(),
                key: None,
                value: Some(Bytes::from(v.clone())),
                headers: Default::default(),
            })
            .collect();
        let mut buf = bytes::BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .map_err(|e| Step::Fatal(e.to_string()))?;
        let batch = buf.freeze();
        for _ in 0..60 {
            let res = async {
                let (_, c) = self
                    .client
                    .leader_connection(topic, partition)
                    .await
                    .map_err(|e| Step::Retry(e.to_string()))?;
                let v = c
                    .version_for::<ProduceRequest>(if self.tv2 { 12 } else { 9 })
                    .map_err(|e| Step::Fatal(e.to_string()))?;
                if self.tv2 && v < 12 {
                    return Err(Step::Fatal("the broker has no Produce v12".into()));
                }
                let req = ProduceRequest::default()
                    .with_transactional_id(Some(TransactionalId(sid(&self.tid))))
                    .with_acks(-1)
                    .with_timeout_ms(5000)
                    .with_topic_data(vec![TopicProduceData::default()
                        .with_name(TopicName(sid(topic)))
                        .with_partition_data(vec![PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch.clone()))])]);
                let r = c
                    .send(req, v)
                    .await
                    .map_err(|e| Step::Retry(e.to_string()))?;
                let code = r
                    .responses
                    .first()
                    .and_then(|t| t.partition_responses.first())
                    .map(|p| p.error_code)
                    .unwrap_or(-1);
                match code {
                    0 => Ok(()),
                    c => Err(classify(c)),
                }
            }
            .await;
            match res {
                Ok(()) => {
                    self.seqs.insert(partition, base_seq + values.len() as i32);
                    return Ok(());
                }
                Err(Step::Retry(_)) => {
                    self.client.invalidate_topic(topic);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(fatal) => return Err(fatal),
            }
        }
        Err(Step::Fatal("Produce kept failing".into()))
    }

    /// EndTxn; with transaction version 2 the producer goes on with the epoch it answers.
    pub async fn end(&mut self, commit: bool) -> Result<(), Step> {
        let (pid, epoch) = self.producer.expect("initialised");
        let answer = self.end_with(pid, epoch, commit).await?;
        if self.tv2 {
            if answer.1 < 0 {
                return Err(Step::Fatal("EndTxn v5 answered no epoch".into()));
            }
            self.producer = Some(answer);
            self.seqs.clear();
        }
        Ok(())
    }

    /// One EndTxn with this producer id and epoch (retried while retriable): the id and
    /// epoch the coordinator answers (v5; -1 before).
    pub async fn end_with(&self, pid: i64, epoch: i16, commit: bool) -> Result<(i64, i16), Step> {
        let mut last = String::new();
        for _ in 0..60 {
            let c = match self.coordinator().await {
                Ok(c) => c,
                Err(Step::Retry(e)) => {
                    last = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let v = c
                .version_for::<EndTxnRequest>(if self.tv2 { 5 } else { 3 })
                .map_err(|e| Step::Fatal(e.to_string()))?;
            let req = EndTxnRequest::default()
                .with_transactional_id(TransactionalId(sid(&self.tid)))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch)
                .with_committed(commit);
            match c.send(req, v).await {
                Ok(r) if r.error_code == 0 => return Ok((r.producer_id.0, r.producer_epoch)),
                Ok(r) => match classify(r.error_code) {
                    Step::Retry(e) => {
                        last = e;
                        tokio::time::sleep(Duration::from_millis(100)).await
                    }
                    fatal => return Err(fatal),
                },
                Err(e) => {
                    last = e.to_string();
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
            }
        }
        Err(Step::Retry(format!("EndTxn never answered: {last}")))
    }
}

/// A transactional producer until `stop`: transactions of 1–3 partitions with 1–3 values
/// each, 70% committed.
pub async fn txn_produce(
    bootstrap: Vec<String>,
    id: u32,
    topic: String,
    partitions: i32,
    history: SharedTxn,
    stop: Arc<AtomicBool>,
) {
    // Odd producers speak transaction version 2.
    let mut p = TxnProducer::new(bootstrap, &format!("sim-txn-{id}"), id % 2 == 1).await;
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if p.producer.is_none() && !p.init(&stop).await {
            return;
        }
        n += 1;
        let (parts, commit) = {
            let mut rng = madsim::rand::thread_rng();
            let k = rng.gen_range(1..=3.min(partitions));
            let mut all: Vec<i32> = (0..partitions).collect();
            let mut parts = Vec::new();
            for _ in 0..k {
                let i = rng.gen_range(0..all.len());
                parts.push(all.remove(i));
            }
            (parts, rng.gen_bool(0.7))
        };
        let mut txn = TxnSent {
            producer: id,
            n,
            values: Vec::new(),
            outcome: TxnOutcome::Unknown("not ended".into()),
        };
        let result = async {
            p.add_partitions(&topic, &parts).await?;
            for &part in &parts {
                let count = madsim::rand::thread_rng().gen_range(1..=3);
                let values: Vec<String> = (0..count)
                    .map(|i| format!("p{id}-t{n}-{part}-{i}"))
                    .collect();
                for v in &values {
                    txn.values.push((part, v.clone()));
                }
                p.produce(&topic, part, &values).await?;
            }
            p.end(commit).await
        }
        .await;
        match result {
            Ok(()) => {
                txn.outcome = if commit {
                    TxnOutcome::Committed
                } else {
                    TxnOutcome::Aborted
                }
            }
            Err(Step::Retry(e) | Step::Fatal(e)) => {
                // Start over with a new epoch: the coordinator aborts what is open.
                txn.outcome = TxnOutcome::Unknown(e);
                p.producer = None;
            }
        }
        history.lock().txns.push(txn);
        let pause = madsim::rand::thread_rng().gen_range(5..40);
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// A read_committed consumer reading every partition from the start until `stop`.
pub async fn txn_consume(
    bootstrap: Vec<String>,
    id: u32,
    topic: String,
    partitions: i32,
    history: SharedTxn,
    stop: Arc<AtomicBool>,
) {
    let client = connect(bootstrap).await;
    let mut consumer = Consumer::new(
        client,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            read_committed: true,
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
    while !stop.load(Ordering::Relaxed) {
        match consumer.poll(Duration::from_millis(300)).await {
            Ok(records) => {
                let mut h = history.lock();
                for r in records {
                    let v = String::from_utf8_lossy(r.value.as_deref().unwrap_or(b"")).to_string();
                    h.reads.push((id, r.partition, r.offset, v));
                }
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// Every partition read to its end with read_committed (once every transaction has
/// ended, the last stable offset reaches the high watermark): partition → offset → value.
pub async fn read_committed_to_end(
    cluster: &SimCluster,
    topic: &str,
    partitions: i32,
) -> Vec<BTreeMap<i64, String>> {
    crate::workload::final_logs_isolated(cluster, topic, partitions, true).await
}

/// Where each value is in the final logs; panics on a value there twice.
fn positions(logs: &[BTreeMap<i64, String>]) -> BTreeMap<&str, (i32, i64)> {
    let mut at: BTreeMap<&str, (i32, i64)> = BTreeMap::new();
    for (p, log) in logs.iter().enumerate() {
        for (o, v) in log {
            if let Some(prev) = at.insert(v.as_str(), (p as i32, *o)) {
                panic!("{v} is in the log twice: at {prev:?} and at ({p}, {o})");
            }
        }
    }
    at
}

fn report(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problems, first {:?}",
        problems.len(),
        &problems[..problems.len().min(5)]
    );
}

/// No aborted transaction's value is in the final logs or was ever read, and whatever
/// a read_committed consumer read is in the final logs at the offset it was read at
/// (it was committed, not a transaction that later aborted).
pub fn no_aborted_reads(h: &TxnHistory, logs: &[BTreeMap<i64, String>]) {
    let at = positions(logs);
    let mut problems = Vec::new();
    let aborted: BTreeSet<&str> = h
        .txns
        .iter()
        .filter(|t| t.outcome == TxnOutcome::Aborted)
        .flat_map(|t| t.values.iter().map(|(_, v)| v.as_str()))
        .collect();
    for v in &aborted {
        if let Some(pos) = at.get(v) {
            problems.push(format!("aborted {v} is in the log at {pos:?}"));
        }
    }
    for (c, p, o, v) in &h.reads {
        if aborted.contains(v.as_str()) {
            problems.push(format!("consumer {c} read aborted {v} at ({p}, {o})"));
        } else if at.get(v.as_str()) != Some(&(*p, *o)) {
            problems.push(format!(
                "consumer {c} read {v} at ({p}, {o}); the final log has it at {:?}",
                at.get(v.as_str())
            ));
        }
    }
    report(problems);
}

/// Every value of every committed transaction is in the final logs.
pub fn no_lost_commits(h: &TxnHistory, logs: &[BTreeMap<i64, String>]) {
    let at = positions(logs);
    let problems = h
        .txns
        .iter()
        .filter(|t| t.outcome == TxnOutcome::Committed)
        .filter(|t| t.values.iter().any(|(_, v)| !at.contains_key(v.as_str())))
        .map(|t| format!("committed transaction lost (all or part): {t:?}"))
        .collect();
    report(problems);
}

/// Of every transaction, all values or none are in the final logs.
pub fn txns_all_or_nothing(h: &TxnHistory, logs: &[BTreeMap<i64, String>]) {
    let at = positions(logs);
    let problems = h
        .txns
        .iter()
        .filter(|t| {
            let n = t
                .values
                .iter()
                .filter(|(_, v)| at.contains_key(v.as_str()))
                .count();
            n != 0 && n != t.values.len()
        })
        .map(|t| format!("transaction half visible: {t:?}"))
        .collect();
    report(problems);
}

/// Nothing is in the logs twice or without having been written, a transaction's values
/// keep their order in each partition, and every consumer reads each partition in
/// offset order.
pub fn txns_in_order_once(h: &TxnHistory, logs: &[BTreeMap<i64, String>]) {
    let at = positions(logs);
    let mut problems = Vec::new();
    let mut written: BTreeSet<&str> = BTreeSet::new();
    for t in &h.txns {
        let mut last: BTreeMap<i32, i64> = BTreeMap::new();
        for (p, v) in &t.values {
            written.insert(v);
            if let Some(&(lp, o)) = at.get(v.as_str()) {
                if lp != *p {
                    problems.push(format!("{v} is in partition {lp}, written to {p}"));
                }
                if last.get(p).is_some_and(|prev| *prev > o) {
                    problems.push(format!("transaction out of order in partition {p}: {t:?}"));
                }
                last.insert(*p, o);
            }
        }
    }
    for (v, pos) in &at {
        if !written.contains(v) {
            problems.push(format!("{v} at {pos:?} was never written"));
        }
    }
    let mut seen: BTreeMap<(u32, i32), i64> = BTreeMap::new();
    for (c, p, o, _) in &h.reads {
        if let Some(prev) = seen.insert((*c, *p), *o) {
            if prev >= *o {
                problems.push(format!(
                    "consumer {c} read partition {p} out of order: {prev} then {o}"
                ));
            }
        }
    }
    report(problems);
}

/// Every transaction check (see the module docs); panics naming each invariant that
/// failed ("INVARIANT <name> FAILED: <why>").
pub fn check_transactions(h: &TxnHistory, logs: &[BTreeMap<i64, String>]) {
    let count = |o: fn(&TxnOutcome) -> bool| h.txns.iter().filter(|t| o(&t.outcome)).count();
    let committed = count(|o| *o == TxnOutcome::Committed);
    let aborted = count(|o| *o == TxnOutcome::Aborted);
    let unknown = count(|o| matches!(o, TxnOutcome::Unknown(_)));
    // Odd producers speak transaction version 2.
    let committed_tv2 = h
        .txns
        .iter()
        .filter(|t| t.producer % 2 == 1 && t.outcome == TxnOutcome::Committed)
        .count();
    let tv2_producers = h.txns.iter().any(|t| t.producer % 2 == 1);
    tracing::info!(
        committed,
        committed_tv2,
        aborted,
        unknown,
        reads = h.reads.len(),
        "checking the transactions"
    );
    crate::invariants::run_checks(vec![
        ("no_aborted_reads", Box::new(|| no_aborted_reads(h, logs))),
        ("no_lost_commits", Box::new(|| no_lost_commits(h, logs))),
        (
            "txns_all_or_nothing",
            Box::new(|| txns_all_or_nothing(h, logs)),
        ),
        (
            "txns_in_order_once",
            Box::new(|| txns_in_order_once(h, logs)),
        ),
    ]);
    assert!(
        committed > 0
            && aborted > 0
            && !h.reads.is_empty()
            && (committed_tv2 > 0 || !tv2_producers),
        "the workload made no progress"
    );
}

/// The values an `Unknown` transaction may leave (for tests' own checks).
pub fn values_of(t: &TxnSent) -> BTreeSet<String> {
    t.values.iter().map(|(_, v)| v.clone()).collect()
}
