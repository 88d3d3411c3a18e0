//! Partition replication under faults. Idempotent acks=all producers and consumers run
//! against a topic with three replicas per partition and `min.insync.replicas=2` while
//! leaders are killed, power-failed (alone and two at once), paused like a SIGSTOP
//! (zombies), cut from the controllers but not from clients, restarted inside the
//! session timeout, and stopped cleanly, and a leader whose answers to producers are lost
//! dies (every batch in flight is retried at the new leader), connections are reset
//! (retries at the same leader), a leader's disk fails, a killed leader's successor loses
//! power (two unclean failures: the replica with the most records must lead), and
//! wall clocks disagree and jump; the clusters are three combined nodes, or three
//! controllers with two brokers that are not controllers. After the faults the cluster
//! heals and every history check runs (`invariants::check_replication`): no acknowledged
//! record lost; one value per offset and one offset per value; no duplicates; replicas
//! byte-identical below the high watermark; the high watermark never going back for any
//! consumer; batch epochs never decreasing; nothing read below the high watermark ever
//! disappearing.
#![cfg(madsim)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use madsim::rand::Rng;
use madsim::runtime::NodeHandle;
use parking_lot::Mutex;
use strom_sim_tests::cluster::SimCluster;
use strom_sim_tests::invariants::{check_metadata, check_replica_logs, check_replication};
use strom_sim_tests::workload::{
    self, create_topic, final_logs, replica_logs, try_converge, wait_converged, History, Outcome,
    SETTINGS,
};

const TOPIC: &str = "orders";

/// A running workload: producer and consumer tasks on their own client machines.
struct Workload {
    history: Arc<Mutex<History>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<madsim::task::JoinHandle<()>>,
    producers: Vec<NodeHandle>,
    _consumers: Vec<NodeHandle>,
    partitions: i32,
}

fn start_workload(
    cluster: &SimCluster,
    partitions: i32,
    producers: u32,
    consumers: u32,
) -> Workload {
    start_workload_with(cluster, partitions, producers, consumers, false)
}

fn start_workload_with(
    cluster: &SimCluster,
    partitions: i32,
    producers: u32,
    consumers: u32,
    fresh_ids: bool,
) -> Workload {
    let history = Arc::new(Mutex::new(History::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    let mut producer_machines = Vec::new();
    let mut consumer_machines = Vec::new();
    for i in 0..producers {
        let m = cluster.client_node(&format!("producer-{i}"), 10 + i as u8);
        let (bs, h, s) = (cluster.bootstrap(), history.clone(), stop.clone());
        tasks.push(m.spawn(workload::produce(
            bs,
            i,
            TOPIC.into(),
            partitions,
            h,
            s,
            fresh_ids,
        )));
        producer_machines.push(m);
    }
    for i in 0..consumers {
        let m = cluster.client_node(&format!("consumer-{i}"), 50 + i as u8);
        let (bs, h, s) = (cluster.bootstrap(), history.clone(), stop.clone());
        tasks.push(m.spawn(workload::consume(bs, i, TOPIC.into(), partitions, h, s)));
        consumer_machines.push(m);
    }
    Workload {
        history,
        stop,
        tasks,
        producers: producer_machines,
        _consumers: consumer_machines,
        partitions,
    }
}

/// Stops the workload, lets the cluster converge, reads the final logs and runs every
/// history check. Returns the history for test-specific checks.
async fn finish(cluster: &SimCluster, w: Workload) -> History {
    w.stop.store(true, Ordering::Relaxed);
    for t in w.tasks {
        let _ = tokio::time::timeout(Duration::from_secs(60), t).await;
    }
    tracing::info!("--- workload stopped; waiting for the replicas to converge");
    if let Err(e) = try_converge(cluster, TOPIC, Duration::from_secs(60)).await {
        // Still check what the replicas hold: a broken log is the likelier cause.
        let replicas = replica_logs(cluster, TOPIC).await;
        check_replica_logs(&replicas);
        panic!("{e}");
    }
    let logs = final_logs(cluster, TOPIC, w.partitions).await;
    let replicas = replica_logs(cluster, TOPIC).await;
    let h = std::mem::take(&mut *w.history.lock());
    let acked = h
        .sent
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Acked(_)))
        .count();
    tracing::info!(
        acked,
        sent = h.sent.len(),
        reads = h.reads.len(),
        "--- checking the history"
    );
    check_replication(&h, &logs, &replicas);
    check_metadata(cluster);
    h
}

/// The current leader of a partition as a running broker's image says.
fn leader_of(cluster: &SimCluster, partition: i32) -> i32 {
    cluster
        .newest_image()
        .and_then(|img| {
            img.topic_by_name(TOPIC)
                .and_then(|t| t.partitions.get(&partition))
                .map(|p| p.leader)
        })
        .unwrap_or(-1)
}

/// The replicas of a partition.
fn replicas_of(cluster: &SimCluster, partition: i32) -> Vec<i32> {
    cluster
        .newest_image()
        .and_then(|img| {
            img.topic_by_name(TOPIC)
                .and_then(|t| t.partitions.get(&partition))
                .map(|p| p.replicas.clone())
        })
        .unwrap_or_default()
}

async fn setup(combined: i32, brokers_only: i32, partitions: i32) -> SimCluster {
    let cluster = SimCluster::start_mixed(combined, brokers_only, SETTINGS);
    cluster.wait_started(Duration::from_secs(30)).await;
    create_topic(&cluster, TOPIC, partitions, 3, 2).await;
    wait_converged(&cluster, TOPIC, Duration::from_secs(30)).await;
    cluster
}

fn sleep(ms: u64) -> tokio::time::Sleep {
    tokio::time::sleep(Duration::from_millis(ms))
}

#[madsim::test]
async fn a_killed_leader_loses_nothing() {
    let cluster = setup(3, 0, 2).await;
    let w = start_workload(&cluster, 2, 2, 2);
    sleep(2000).await;
    let leader = leader_of(&cluster, 0);
    tracing::info!(leader, "--- kill -9 the leader of partition 0");
    cluster.kill(leader);
    sleep(4000).await;
    tracing::info!(leader, "--- restart it");
    cluster.restart(leader);
    sleep(3000).await;
    finish(&cluster, w).await;
}

/// Two unclean failures in a row, beyond what Kafka 4.x survives: the third replica is
/// down, the leader is killed (its page cache keeps every record), the follower that
/// takes over loses power (it keeps only what it had synced), and both come back with
/// unclean restarts. Kafka elects the last known leader — the follower with the short
/// log — and loses what only the old leader holds; strom compares the replicas' logs and
/// elects the old leader (KIP-966's unclean recovery).
#[madsim::test]
async fn a_double_unclean_failure_elects_the_replica_with_the_most_records() {
    // Five controllers: three nodes down at once still leave a quorum.
    let cluster = setup(5, 0, 1).await;
    let w = start_workload(&cluster, 1, 2, 1);
    sleep(2000).await;
    let leader = leader_of(&cluster, 0);
    let others: Vec<i32> = replicas_of(&cluster, 0)
        .into_iter()
        .filter(|&r| r != leader)
        .collect();
    let (follower, third) = (others[0], others[1]);
    tracing::info!(third, "--- kill -9 the third replica; it stays down");
    cluster.kill(third);
    // Acknowledged by the leader and the follower, synced by neither.
    sleep(3000).await;
    tracing::info!(leader, "--- kill -9 the leader");
    cluster.kill(leader);
    sleep(2000).await;
    tracing::info!(follower, "--- power failure of the follower that took over");
    cluster.power_fail(follower);
    sleep(3000).await;
    tracing::info!(
        leader,
        third,
        "--- restart the old leader and the third replica"
    );
    cluster.restart(leader);
    cluster.restart(third);
    sleep(6000).await;
    finish(&cluster, w).await;
}

#[madsim::test]
async fn a_leader_whose_answers_are_lost_dies_and_retries_are_not_duplicated() {
    let cluster = setup(3, 0, 1).await;
    // A new producer id per flush: every batch retried at the new leader is a first
    // batch, which only replicated producer state can recognise as a duplicate.
    let w = start_workload_with(&cluster, 1, 3, 1, true);
    // Until the producers write steadily (their producer ids are ready).
    while w.history.lock().sent.len() < 60 {
        sleep(100).await;
    }
    let leader = leader_of(&cluster, 0);
    tracing::info!(leader, "--- the leader's answers to producers are lost");
    for m in &w.producers {
        cluster.cut_to_client(leader, m);
    }
    // Batches arrive, replicate and commit; their acknowledgements never leave.
    sleep(1500).await;
    tracing::info!(
        leader,
        "--- kill -9 it: producers retry those batches at the new leader"
    );
    cluster.kill(leader);
    for m in &w.producers {
        cluster.restore_to_client(leader, m);
    }
    // Longer than the producers' request timeout (8 s): the unanswered requests time
    // out and are retried at the new leader before the old one is back (it would
    // lead again as the preferred leader, with producer state rebuilt from its disk).
    sleep(12_000).await;
    cluster.restart(leader);
    sleep(3000).await;
    let h = finish(&cluster, w).await;
    let retried_and_acked = h
        .sent
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Acked(_)))
        .count();
    assert!(
        retried_and_acked > 150,
        "the producers made no progress after the kill ({retried_and_acked} acknowledged)"
    );
}

/// Every node's client connections are reset again and again (a flapping path, a
/// middlebox dropping connections) while producers and consumers run and replica
/// fetchers follow: a batch whose answer is lost is retried on a new connection to the
/// same leader, which must recognise it; nothing acknowledged is lost, nothing doubled.
#[madsim::test]
async fn connection_resets_lose_nothing_and_duplicate_nothing() {
    let cluster = setup(3, 0, 2).await;
    // A new producer id per flush (each retry is a first batch) on some producers, the
    // same id throughout on others.
    let fresh = madsim::rand::thread_rng().gen_bool(0.5);
    let w = start_workload_with(&cluster, 2, 3, 2, fresh);
    while w.history.lock().sent.len() < 40 {
        sleep(100).await;
    }
    let ids: Vec<i32> = cluster.nodes.iter().map(|n| n.id).collect();
    for round in 0..20 {
        let victim = ids[madsim::rand::thread_rng().gen_range(0..ids.len())];
        tracing::info!(round, victim, "--- the node's connections are reset");
        cluster.flap_connections(victim, 3).await;
    }
    sleep(2000).await;
    let h = finish(&cluster, w).await;
    assert!(
        h.sent.len() > 200,
        "the producers made progress: {} sent",
        h.sent.len()
    );
}

#[madsim::test]
async fn power_failure_of_one_replica_with_brokers_that_are_not_controllers() {
    let cluster = setup(3, 2, 2).await;
    let w = start_workload(&cluster, 2, 2, 2);
    sleep(2000).await;
    let replicas = replicas_of(&cluster, 0);
    let victim = replicas[madsim::rand::thread_rng().gen_range(0..replicas.len())];
    tracing::info!(victim, "--- power failure of a replica of partition 0");
    cluster.power_fail(victim);
    sleep(5000).await;
    finish(&cluster, w).await;
}

#[madsim::test]
async fn power_failure_of_two_replicas_at_once() {
    let cluster = setup(3, 2, 2).await;
    let w = start_workload(&cluster, 2, 2, 2);
    sleep(2000).await;
    let leader = leader_of(&cluster, 0);
    let follower = *replicas_of(&cluster, 0)
        .iter()
        .find(|&&r| r != leader)
        .expect("a follower");
    tracing::info!(
        leader,
        follower,
        "--- power failure of the leader and a follower"
    );
    cluster.power_fail(leader);
    cluster.power_fail(follower);
    sleep(6000).await;
    finish(&cluster, w).await;
}

#[madsim::test]
async fn a_paused_leader_is_a_zombie_and_its_tail_is_truncated() {
    let cluster = setup(3, 2, 2).await;
    let w = start_workload(&cluster, 2, 2, 2);
    sleep(2000).await;
    let leader = leader_of(&cluster, 0);
    tracing::info!(
        leader,
        "--- pause the leader of partition 0 (SIGSTOP) for 15 s"
    );
    cluster.pause(leader);
    sleep(15_000).await;
    tracing::info!(leader, "--- resume it (SIGCONT)");
    cluster.resume(leader);
    sleep(4000).await;
    finish(&cluster, w).await;
}

#[madsim::test]
async fn a_leader_cut_from_the_controllers_but_not_from_clients() {
    let cluster = setup(3, 2, 5).await;
    let w = start_workload(&cluster, 5, 2, 2);
    sleep(2000).await;
    // A partition led by a broker that is not a controller, so the cut is between nodes.
    let leader = (0..5)
        .map(|p| leader_of(&cluster, p))
        .find(|l| !cluster.controllers.contains(l))
        .expect("a broker-only node leads something");
    tracing::info!(
        leader,
        "--- cut the leader off from every controller, one way"
    );
    for &c in &cluster.controllers {
        cluster.cut_one_way(leader, c);
    }
    sleep(8000).await;
    tracing::info!(leader, "--- restore its links");
    for &c in &cluster.controllers {
        cluster.restore_one_way(leader, c);
    }
    sleep(4000).await;
    finish(&cluster, w).await;
}

#[madsim::test]
async fn a_leader_restarted_inside_the_session_timeout() {
    let cluster = setup(3, 0, 2).await;
    let w = start_workload(&cluster, 2, 2, 2);
    sleep(2000).await;
    let leader = leader_of(&cluster, 0);
    tracing::info!(leader, "--- kill -9 the leader and restart it at once");
    cluster.kill(leader);
    sleep(300).await;
    cluster.restart(leader);
    sleep(6000).await;
    finish(&cluster, w).await;
}

#[madsim::test]
async fn a_controlled_shutdown_of_a_leader_fails_no_request() {
    let cluster = setup(3, 2, 2).await;
    let w = start_workload(&cluster, 2, 2, 2);
    sleep(2000).await;
    let leader = leader_of(&cluster, 0);
    tracing::info!(leader, "--- stop the leader of partition 0 cleanly");
    cluster.stop_gracefully(leader).await;
    sleep(2000).await;
    tracing::info!(leader, "--- restart it");
    cluster.restart(leader);
    sleep(4000).await;
    let h = finish(&cluster, w).await;
    let failed: Vec<_> = h
        .sent
        .iter()
        .filter(|s| matches!(s.outcome, Outcome::Unknown(_)))
        .collect();
    assert!(
        failed.is_empty(),
        "a controlled shutdown failed {} deliveries, e.g. {:?}",
        failed.len(),
        failed.first()
    );
}

#[madsim::test]
async fn random_faults_keep_every_replication_invariant() {
    let cluster = setup(3, 2, 3).await;
    let w = start_workload(&cluster, 3, 2, 2);
    let ids: Vec<i32> = cluster.nodes.iter().map(|n| n.id).collect();
    // Clocks disagree by up to half a minute, as unsynchronised ones do.
    for &id in &ids {
        cluster.set_clock_offset(id, madsim::rand::thread_rng().gen_range(-30_000..30_000));
    }
    for step in 0..6 {
        sleep(madsim::rand::thread_rng().gen_range(500..2500)).await;
        let victim = ids[madsim::rand::thread_rng().gen_range(0..ids.len())];
        let fault = madsim::rand::thread_rng().gen_range(0..8);
        tracing::info!(step, victim, fault, "--- fault");
        match fault {
            0 => {
                cluster.kill(victim);
                sleep(madsim::rand::thread_rng().gen_range(200..4000)).await;
                cluster.restart(victim);
            }
            1 => cluster.power_fail(victim),
            2 => {
                cluster.pause(victim);
                sleep(madsim::rand::thread_rng().gen_range(500..6000)).await;
                cluster.resume(victim);
            }
            3 => {
                cluster.isolate(victim);
                sleep(madsim::rand::thread_rng().gen_range(500..6000)).await;
                cluster.heal(victim);
            }
            4 => {
                cluster.stop_gracefully(victim).await;
                cluster.restart(victim);
            }
            5 => {
                // A clock step (NTP correcting, a VM resumed): up to ten minutes either way.
                let jump = madsim::rand::thread_rng().gen_range(-600_000..600_000);
                tracing::info!(victim, jump, "--- the wall clock jumps");
                cluster.set_clock_offset(victim, jump);
            }
            6 => {
                tracing::info!(victim, "--- the node's connections are reset, repeatedly");
                cluster.flap_connections(victim, 8).await;
            }
            _ => {
                for &c in &cluster.controllers {
                    if c != victim {
                        cluster.cut_one_way(victim, c);
                    }
                }
                sleep(madsim::rand::thread_rng().gen_range(500..6000)).await;
                for &c in &cluster.controllers {
                    if c != victim {
                        cluster.restore_one_way(victim, c);
                    }
                }
            }
        }
    }
    sleep(3000).await;
    finish(&cluster, w).await;
}

/// A leader's disk fills up (a short write, then ENOSPC) or fails (EIO): its log
/// directory goes offline, the node halts as Kafka does when its only log directory
/// fails, the other replicas take over, and nothing acknowledged is lost. The disk is
/// then "replaced" (the fault cleared) and the node restarted: it recovers its log,
/// cutting the torn write, and rejoins.
#[madsim::test]
async fn a_leader_whose_disk_fails_halts_and_loses_nothing() {
    use strom_broker::log::DiskFault;
    let cluster = setup(3, 0, 2).await;
    let w = start_workload(&cluster, 2, 2, 2);
    sleep(2000).await;
    let leader = leader_of(&cluster, 0);
    let fault = if madsim::rand::thread_rng().gen_bool(0.5) {
        DiskFault::Enospc
    } else {
        DiskFault::Eio
    };
    tracing::info!(leader, ?fault, "--- the leader's disk fails");
    cluster.node(leader).storage.inject(Some(fault));
    sleep(4000).await;
    assert!(
        cluster.live(leader).is_none(),
        "node {leader} still runs on a failed disk"
    );
    let now = leader_of(&cluster, 0);
    assert!(
        now != leader && now > 0,
        "partition 0 is still led by {leader} (leader now {now})"
    );
    tracing::info!(
        leader,
        "--- a new disk (same bytes, fault cleared); restart"
    );
    cluster.kill(leader);
    cluster.node(leader).storage.inject(None);
    cluster.restart(leader);
    sleep(4000).await;
    finish(&cluster, w).await;
}
