//! Transactions under faults (KIP-98): transactional producers commit and abort while
//! read_committed consumers read, on three nodes with a topic of three replicas
//! (`min.insync.replicas=2`), while the transaction coordinator of the producers is
//! killed and restarted, partition leaders are killed, and a coordinator is cut off
//! from the rest of the cluster and healed, and a producer is cut off for longer than its
//! transaction timeout (its requests held back, then delivered late). Afterwards every partition is read to its
//! end with read_committed and the history checks run
//! (`txn_workload::check_transactions`): no aborted read, no committed write lost,
//! every transaction all or nothing, in order, nothing twice.
#![cfg(madsim)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use strom_sim_tests::cluster::SimCluster;
use strom_sim_tests::txn_workload::{
    self, check_transactions, read_committed_to_end, TxnHistory, TXN_SETTINGS,
};
use strom_sim_tests::workload::{create_topic, wait_converged};

const TOPIC: &str = "payments";
const PARTITIONS: i32 = 3;

struct Workload {
    history: Arc<Mutex<TxnHistory>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<madsim::task::JoinHandle<()>>,
    _machines: Vec<madsim::runtime::NodeHandle>,
}

fn start(cluster: &SimCluster, producers: u32, consumers: u32) -> Workload {
    let history = Arc::new(Mutex::new(TxnHistory::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut machines = Vec::new();
    for i in 0..producers {
        let m = cluster.client_node(&format!("txn-producer-{i}"), 10 + i as u8);
        let (bs, h, s) = (cluster.bootstrap(), history.clone(), stop.clone());
        tasks.push(m.spawn(txn_workload::txn_produce(
            bs,
            i,
            TOPIC.into(),
            PARTITIONS,
            h,
            s,
        )));
        machines.push(m);
    }
    for i in 0..consumers {
        let m = cluster.client_node(&format!("txn-consumer-{i}"), 50 + i as u8);
        let (bs, h, s) = (cluster.bootstrap(), history.clone(), stop.clone());
        tasks.push(m.spawn(txn_workload::txn_consume(
            bs,
            i,
            TOPIC.into(),
            PARTITIONS,
            h,
            s,
        )));
        machines.push(m);
    }
    Workload {
        history,
        stop,
        tasks,
        _machines: machines,
    }
}

async fn finish(cluster: &SimCluster, w: Workload) {
    w.stop.store(true, Ordering::Relaxed);
    for t in w.tasks {
        let _ = tokio::time::timeout(Duration::from_secs(90), t).await;
    }
    tracing::info!("--- workload stopped; reading every partition with read_committed");
    wait_converged(cluster, TOPIC, Duration::from_secs(60)).await;
    let logs = read_committed_to_end(cluster, TOPIC, PARTITIONS).await;
    let h = std::mem::take(&mut *w.history.lock());
    check_transactions(&h, &logs);
}

async fn setup() -> SimCluster {
    let cluster = SimCluster::start(3, TXN_SETTINGS);
    cluster.wait_started(Duration::from_secs(30)).await;
    create_topic(&cluster, TOPIC, PARTITIONS, 3, 2).await;
    wait_converged(&cluster, TOPIC, Duration::from_secs(30)).await;
    cluster
}

/// The leader of a partition of `topic` as the newest image says.
fn leader_of(cluster: &SimCluster, topic: &str, partition: i32) -> i32 {
    cluster
        .nodes
        .iter()
        .filter_map(|n| cluster.live(n.id).and_then(|l| l.broker))
        .map(|b| b.cache.image())
        .max_by_key(|i| i.offset)
        .and_then(|img| {
            img.topic_by_name(topic)
                .and_then(|t| t.partitions.get(&partition))
                .map(|p| p.leader)
        })
        .unwrap_or(-1)
}

/// The node coordinating producer 0's transactional id.
fn coordinator_of_producer_0(cluster: &SimCluster) -> i32 {
    let p = strom_broker::coordinator::partition_for("sim-txn-0", 5);
    leader_of(cluster, "__transaction_state", p)
}

fn sleep(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}

#[madsim::test]
async fn a_killed_transaction_coordinator_loses_and_exposes_nothing() {
    let cluster = setup().await;
    let w = start(&cluster, 3, 2);
    sleep(4000).await;
    let coordinator = coordinator_of_producer_0(&cluster);
    assert!(coordinator >= 0, "no transaction coordinator yet");
    tracing::info!(coordinator, "--- kill -9 the transaction coordinator");
    cluster.kill(coordinator);
    sleep(5000).await;
    tracing::info!(coordinator, "--- restart it");
    cluster.restart(coordinator);
    sleep(4000).await;
    finish(&cluster, w).await;
}

#[madsim::test]
async fn killed_leaders_and_an_isolated_coordinator_lose_and_expose_nothing() {
    let cluster = setup().await;
    let w = start(&cluster, 3, 2);
    sleep(3000).await;
    let leader = leader_of(&cluster, TOPIC, 0);
    tracing::info!(leader, "--- kill -9 the leader of partition 0");
    cluster.kill(leader);
    sleep(4000).await;
    cluster.restart(leader);
    sleep(3000).await;
    let coordinator = coordinator_of_producer_0(&cluster);
    tracing::info!(coordinator, "--- cut the transaction coordinator off");
    cluster.isolate(coordinator);
    sleep(5000).await;
    tracing::info!(coordinator, "--- heal");
    cluster.heal(coordinator);
    sleep(4000).await;
    finish(&cluster, w).await;
}

/// A producer cut off from the cluster for longer than its transaction timeout (a
/// zombie): the coordinator aborts its open transaction and fences its epoch; when it
/// is back, what it still sends for that transaction is refused, and it starts again
/// with a new epoch. Its transactions in flight end up all or nothing.
#[madsim::test]
async fn a_producer_cut_off_past_its_timeout_is_fenced_and_its_transaction_aborted() {
    let cluster = setup().await;
    let w = start(&cluster, 3, 2);
    sleep(3000).await;
    let zombie = w._machines[0].clone();
    tracing::info!("--- cut producer 0 off for longer than its transaction timeout");
    cluster.disconnect_client(&zombie);
    sleep(12_000).await;
    tracing::info!("--- producer 0 is back");
    cluster.reconnect_client(&zombie);
    sleep(5000).await;
    finish(&cluster, w).await;
}

/// Jepsen's Bufstream anomaly (2024) as a named case: an EndTxn delayed in the network
/// arrives after its transaction was ended (by a retry) and the producer's next
/// transaction began. With transaction version 2 (KIP-890 part 2) every EndTxn bumps
/// the epoch, so the late request carries an old epoch and is fenced: it must not
/// commit the next transaction, which the producer then aborts — none of it may be
/// read. (With the classic protocol the late EndTxn carries the current epoch and
/// would commit it, as in Kafka before KIP-890 part 2.)
#[madsim::test]
async fn a_delayed_end_txn_does_not_commit_the_next_transaction() {
    let cluster = setup().await;
    let bs = cluster.bootstrap();
    cluster
        .on_client(async move {
            let stop = AtomicBool::new(false);
            let mut p = txn_workload::TxnProducer::new(bs, "jepsen-delayed-end", true).await;
            assert!(p.init(&stop).await, "InitProducerId");
            // T1: written and committed.
            p.produce(TOPIC, 0, &["t1".to_string()])
                .await
                .expect("produce t1");
            let (pid, t1_epoch) = p.producer.unwrap();
            p.end(true).await.expect("commit t1");
            // A retry of T1's EndTxn whose answer was lost: success, the same new epoch.
            let retry = p
                .end_with(pid, t1_epoch, true)
                .await
                .expect("retried commit");
            assert_eq!(retry, p.producer.unwrap());
            let (_, t2_epoch) = p.producer.unwrap();
            assert_eq!(t2_epoch, t1_epoch + 1, "EndTxn v5 bumps the epoch");
            // T2: written, open.
            p.produce(TOPIC, 0, &["t2".to_string()])
                .await
                .expect("produce t2");
            // T1's EndTxn(commit) arrives again, late: fenced, T2 untouched.
            let late = p.end_with(pid, t1_epoch, true).await;
            assert!(
                matches!(late, Err(txn_workload::Step::Fatal(ref e)) if e.contains("FENCED")),
                "a late EndTxn of the finished transaction is fenced: {late:?}"
            );
            // The producer aborts T2.
            p.end(false).await.expect("abort t2");
        })
        .await;
    sleep(2000).await;
    let logs = read_committed_to_end(&cluster, TOPIC, PARTITIONS).await;
    let got: Vec<&String> = logs[0].values().collect();
    assert_eq!(got, vec!["t1"], "only T1 is committed");
}
