//! The metadata quorum of three controllers (each node also a broker):
//! - it elects a leader and commits; every broker sees every broker and topic;
//! - it keeps committing after the leader is killed, and after the leader is cut off
//!   by a network partition (a new leader takes over; the old one rejoins);
//! - under random kills, restarts and partitions while topics are created, no
//!   acknowledged topic is lost or duplicated and all controllers agree on every
//!   committed batch (each applied log a prefix of the others);
//! - a leader that loses power while clients write comes back as a follower: the logs
//!   still agree;
//! - a broker whose heartbeats stop is fenced, and is unfenced when it comes back;
//! - two nodes killed together (a majority) register again once the quorum is back,
//!   without waiting out their old sessions.
#![cfg(madsim)]

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use madsim::rand::Rng;
use parking_lot::Mutex;
use strom_client::{Admin, NewTopic};
use strom_sim_tests::cluster::{connect, SimCluster};
use strom_sim_tests::invariants::{acknowledged_topics_exist_once, check_metadata};
use tokio::time::Instant;

/// The outcome of one creation attempt.
#[derive(Debug, PartialEq)]
enum Outcome {
    Acknowledged,
    Unknown,
}

/// Creates a topic, retrying retriable errors until `within` passes. Only this client
/// creates the name, so TOPIC_ALREADY_EXISTS after a retry means an earlier attempt
/// committed.
async fn create(bootstrap: Vec<String>, name: String, within: Duration) -> Outcome {
    create_with(bootstrap, name, within, false).await
}

/// As [`create`]; with `forwarding_retries`, TOPIC_ALREADY_EXISTS on the first attempt
/// also counts as this attempt's success: a broker retries a forwarded creation whose
/// controller lost leadership or its connection before answering (Kafka's forwarding
/// does the same), and the retry finds the topic the first try committed.
async fn create_with(
    bootstrap: Vec<String>,
    name: String,
    within: Duration,
    forwarding_retries: bool,
) -> Outcome {
    let deadline = Instant::now() + within;
    let mut tried = false;
    while Instant::now() < deadline {
        let admin = Admin::new(connect(bootstrap.clone()).await);
        match tokio::time::timeout(
            Duration::from_secs(5),
            admin.create_topics(vec![NewTopic::new(&name, 1, 1)], false),
        )
        .await
        {
            Ok(Ok(r)) => match &r[0].error {
                None => return Outcome::Acknowledged,
                Some(e) if e.code == 36 && (tried || forwarding_retries) => {
                    return Outcome::Acknowledged
                }
                Some(e) if e.code == 36 => panic!("{name} existed before we created it"),
                Some(e) => tracing::info!(topic = %name, error = %e, "create failed; retrying"),
            },
            Ok(Err(e)) => tracing::info!(topic = %name, error = %e, "create failed; retrying"),
            Err(_) => tracing::info!(topic = %name, "create timed out; retrying"),
        }
        tried = true;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Outcome::Unknown
}

/// Waits until every running broker has applied the same metadata offset.
async fn settle(cluster: &SimCluster) {
    for _ in 0..200 {
        let offsets: BTreeSet<u64> = cluster
            .nodes
            .iter()
            .filter_map(|n| cluster.live(n.id).and_then(|l| l.broker))
            .map(|b| b.cache.applied())
            .collect();
        if offsets.len() == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("brokers did not converge on one metadata offset");
}

#[madsim::test]
async fn quorum_elects_and_commits() {
    let cluster = SimCluster::start(3, &[]);
    let leader = cluster.wait_started(Duration::from_secs(20)).await;
    tracing::info!(leader, "--- leader elected; create topics");
    let bs = cluster.bootstrap();
    for i in 0..5 {
        let b = bs.clone();
        assert_eq!(
            cluster
                .on_client(create(b, format!("t{i}"), Duration::from_secs(30)))
                .await,
            Outcome::Acknowledged
        );
    }
    settle(&cluster).await;
    for n in &cluster.nodes {
        let img = cluster.live(n.id).unwrap().broker.unwrap().cache.image();
        assert_eq!(img.topics.len(), 5);
        assert_eq!(img.unfenced_brokers(), vec![1, 2, 3]);
    }
    check_metadata(&cluster);
}

#[madsim::test]
async fn survives_loss_of_the_leader_and_measures_failover() {
    let cluster = SimCluster::start(3, &[]);
    let bs = cluster.bootstrap();
    let old = cluster.wait_started(Duration::from_secs(20)).await;
    let b = bs.clone();
    assert_eq!(
        cluster
            .on_client(create(b, "before".into(), Duration::from_secs(30)))
            .await,
        Outcome::Acknowledged
    );
    tracing::info!(old, "--- kill the quorum leader");
    let killed_at = Instant::now();
    cluster.kill(old);
    let b = bs.clone();
    assert_eq!(
        cluster
            .on_client(create(b, "after".into(), Duration::from_secs(30)))
            .await,
        Outcome::Acknowledged
    );
    let failover = killed_at.elapsed();
    println!("FAILOVER_MS={}", failover.as_millis());
    tracing::info!(
        ms = failover.as_millis() as u64,
        "--- next metadata change committed after the leader died"
    );
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );
    let new = cluster.wait_for_leader(Duration::from_secs(10)).await;
    assert_ne!(new, old);
    tracing::info!("--- restart the old leader; it catches up");
    cluster.restart(old);
    tokio::time::sleep(Duration::from_secs(5)).await;
    settle(&cluster).await;
    let img = cluster.live(old).unwrap().broker.unwrap().cache.image();
    assert!(img.topic_by_name("before").is_some() && img.topic_by_name("after").is_some());
    check_metadata(&cluster);
}

#[madsim::test]
async fn a_partitioned_leader_is_replaced_and_rejoins() {
    let cluster = SimCluster::start(3, &[]);
    let bs = cluster.bootstrap();
    let old = cluster.wait_started(Duration::from_secs(20)).await;
    tracing::info!(old, "--- cut the leader off");
    cluster.isolate(old);
    let others: Vec<String> = cluster
        .nodes
        .iter()
        .filter(|n| n.id != old)
        .map(|n| format!("{}:9092", n.ip))
        .collect();
    assert_eq!(
        cluster
            .on_client(create(others, "during".into(), Duration::from_secs(30)))
            .await,
        Outcome::Acknowledged
    );
    let new = cluster
        .quorum_leader_excluding(old)
        .expect("a new leader among the majority");
    assert_ne!(new, old);
    tracing::info!(new, "--- heal");
    cluster.heal(old);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let b = bs.clone();
    assert_eq!(
        cluster
            .on_client(create(b, "after-heal".into(), Duration::from_secs(30)))
            .await,
        Outcome::Acknowledged
    );
    settle(&cluster).await;
    for n in &cluster.nodes {
        let img = cluster.live(n.id).unwrap().broker.unwrap().cache.image();
        assert!(
            img.topic_by_name("during").is_some(),
            "node {} missed a topic created while it was cut off",
            n.id
        );
    }
    check_metadata(&cluster);
}

/// The quorum leader loses power again and again while clients create topics: it may
/// lose a tail of its log that followers already hold. It must not resume leading its
/// old term when it restarts (it would write other entries under log ids the followers
/// hold); every controller's log stays a prefix of the others' and no acknowledged
/// topic is lost.
#[madsim::test]
async fn a_leader_that_loses_power_mid_write_comes_back_as_a_follower() {
    let cluster = SimCluster::start(3, &[("metadata.log.snapshot.every", "20")]);
    cluster.wait_started(Duration::from_secs(20)).await;
    let attempted = Arc::new(Mutex::new(BTreeSet::new()));
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let (bs, stop) = (cluster.bootstrap(), stop.clone());
            let (attempted, acknowledged) = (attempted.clone(), acknowledged.clone());
            cluster.client.spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let name = format!("w{w}-{i}");
                    i += 1;
                    attempted.lock().insert(name.clone());
                    let within = Duration::from_secs(20);
                    if create_with(bs.clone(), name.clone(), within, true).await
                        == Outcome::Acknowledged
                    {
                        acknowledged.lock().insert(name);
                    }
                }
            })
        })
        .collect();
    for round in 0..6 {
        let ms = madsim::rand::thread_rng().gen_range(300..1500);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        if let Some(leader) = cluster.quorum_leader() {
            tracing::info!(round, leader, "--- the quorum leader loses power");
            cluster.power_fail(leader);
        }
        cluster.wait_for_leader(Duration::from_secs(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = tokio::time::timeout(Duration::from_secs(30), w).await;
    }
    settle(&cluster).await;
    let (acknowledged, attempted) = (acknowledged.lock().clone(), attempted.lock().clone());
    assert!(
        acknowledged.len() > 20,
        "too few creations succeeded: {} of {}",
        acknowledged.len(),
        attempted.len()
    );
    acknowledged_topics_exist_once::check(&cluster, &acknowledged, &attempted);
    check_metadata(&cluster);
}

#[madsim::test]
async fn random_faults_lose_no_acknowledged_topic() {
    let cluster = SimCluster::start(3, &[("metadata.log.snapshot.every", "20")]);
    let bs = cluster.bootstrap();
    cluster.wait_started(Duration::from_secs(20)).await;
    let mut attempted = BTreeSet::new();
    let mut acknowledged = BTreeSet::new();
    let mut down: Option<i32> = None;
    let mut cut: Option<i32> = None;
    for round in 0..12 {
        // One fault at a time: at most one node down or cut off, so a majority remains.
        let fault = madsim::rand::thread_rng().gen_range(0..4);
        let victim = madsim::rand::thread_rng().gen_range(1..=3);
        if let Some(d) = down.take() {
            cluster.restart(d);
        }
        if let Some(c) = cut.take() {
            cluster.heal(c);
        }
        match fault {
            0 => {
                tracing::info!(round, victim, "--- kill");
                cluster.kill(victim);
                down = Some(victim);
            }
            1 => {
                tracing::info!(round, victim, "--- partition");
                cluster.isolate(victim);
                cut = Some(victim);
            }
            2 => {
                tracing::info!(round, victim, "--- power failure");
                cluster.power_fail(victim);
            }
            _ => tracing::info!(round, "--- no fault"),
        }
        let reachable: Vec<String> = cluster
            .nodes
            .iter()
            .filter(|n| Some(n.id) != down && Some(n.id) != cut)
            .map(|n| format!("{}:9092", n.ip))
            .collect();
        for k in 0..3 {
            let name = format!("r{round}-{k}");
            attempted.insert(name.clone());
            let b = reachable.clone();
            match cluster
                .on_client(create(b, name.clone(), Duration::from_secs(20)))
                .await
            {
                Outcome::Acknowledged => {
                    acknowledged.insert(name);
                }
                Outcome::Unknown => tracing::info!(topic = %name, "outcome unknown"),
            }
        }
        check_metadata(&cluster);
    }
    if let Some(d) = down.take() {
        cluster.restart(d);
    }
    if let Some(c) = cut.take() {
        cluster.heal(c);
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    settle(&cluster).await;
    assert!(
        acknowledged.len() >= attempted.len() / 2,
        "too few creations succeeded: {} of {}",
        acknowledged.len(),
        attempted.len()
    );
    acknowledged_topics_exist_once::check(&cluster, &acknowledged, &attempted);
    check_metadata(&cluster);
    let _ = bs;
}

#[madsim::test]
async fn a_silent_broker_is_fenced_and_comes_back() {
    let cluster = SimCluster::start(3, &[("broker.session.timeout.ms", "3000")]);
    cluster.wait_started(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = (1..=3)
        .find(|i| Some(*i) != cluster.quorum_leader())
        .unwrap();
    tracing::info!(victim, "--- stop a broker's heartbeats");
    cluster.kill(victim);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let leader = cluster.quorum_leader().unwrap();
    let img = cluster.live(leader).unwrap().broker.unwrap().cache.image();
    assert!(
        img.brokers[&victim].fenced,
        "broker {victim} should be fenced"
    );
    assert!(!img.unfenced_brokers().contains(&victim));
    tracing::info!("--- restart it");
    cluster.restart(victim);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let img = cluster.live(leader).unwrap().broker.unwrap().cache.image();
    assert!(
        !img.brokers[&victim].fenced,
        "broker {victim} should be unfenced after it caught up"
    );
}

/// The two nodes that do not lead the quorum are killed together and restarted at once:
/// while a majority is down the leader cannot commit their fencing, and their new
/// incarnations must not wait out the old sessions (6 s here) to register once the quorum
/// is back.
#[madsim::test]
async fn a_majority_killed_together_registers_again_before_its_sessions_expire() {
    let session = Duration::from_secs(6);
    let cluster = SimCluster::start(
        3,
        &[
            ("broker.session.timeout.ms", "6000"),
            ("broker.heartbeat.interval.ms", "500"),
        ],
    );
    cluster.wait_started(Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let leader = cluster.quorum_leader().expect("a quorum leader");
    let image = |cluster: &SimCluster| cluster.newest_image().expect("a running broker");
    let victims: Vec<i32> = (1..=3).filter(|&i| i != leader).collect();
    let before = image(&cluster);
    let old_epochs: Vec<i64> = victims
        .iter()
        .map(|v| before.brokers[v].broker_epoch)
        .collect();
    tracing::info!(
        ?victims,
        "--- kill -9 both followers of the quorum, restart them"
    );
    for &v in &victims {
        cluster.kill(v);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for &v in &victims {
        cluster.restart(v);
    }
    let restarted = Instant::now();
    loop {
        let img = image(&cluster);
        let back = victims.iter().zip(&old_epochs).all(|(v, old)| {
            img.brokers
                .get(v)
                .is_some_and(|b| b.broker_epoch != *old && !b.fenced)
        });
        if back {
            break;
        }
        assert!(
            restarted.elapsed() < session - Duration::from_secs(2),
            "brokers {victims:?} not registered and unfenced {} ms after their restart",
            restarted.elapsed().as_millis()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tracing::info!(
        ms = restarted.elapsed().as_millis() as u64,
        "--- both registered again and unfenced"
    );
    check_metadata(&cluster);
}
