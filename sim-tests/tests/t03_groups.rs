//! Consumer groups under faults, with strom's own client as members. Classic members
//! join, crash and come back; KIP-848 members join, leave and crash; the coordinator's
//! node restarts; messages are delayed and the network is cut between members and the
//! coordinator; members are cut off past their session (zombies) and nodes lose power.
//! Through all of it no partition is ever owned by two members of one generation
//! (classic) or at the same time (KIP-848), committed offsets never go backwards, and
//! every acknowledged commit is kept.
#![cfg(madsim)]

use std::sync::Arc;
use std::time::Duration;

use madsim::rand::Rng;
use parking_lot::Mutex;
use strom_client::{Admin, NewTopic};
use strom_sim_tests::cluster::{connect, SimCluster};
use strom_sim_tests::group_member::{
    classic_member, consumer_member, crashed, final_committed, poll_committed, History,
};
use strom_sim_tests::invariants::check_groups;

const SETTINGS: &[(&str, &str)] = &[
    ("group.initial.rebalance.delay.ms", "200"),
    ("group.min.session.timeout.ms", "1000"),
    ("group.consumer.heartbeat.interval.ms", "500"),
    ("group.consumer.session.timeout.ms", "3000"),
    ("offsets.topic.num.partitions", "5"),
];

async fn setup(cluster: &SimCluster, topic: &str, partitions: i32) {
    let bs = cluster.bootstrap();
    let topic = topic.to_string();
    cluster
        .on_client(async move {
            let admin = Admin::new(connect(bs).await);
            let r = admin
                .create_topics(vec![NewTopic::new(&topic, partitions, 1)], false)
                .await
                .unwrap();
            assert!(r[0].error.is_none() || r[0].error.as_ref().unwrap().code == 36);
        })
        .await;
}

/// The committed offsets once the members are gone (after their last requests settled).
async fn final_offsets(
    cluster: &SimCluster,
    group: &str,
    topic: &str,
) -> std::collections::BTreeMap<i32, i64> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (bs, g, t) = (cluster.bootstrap(), group.to_string(), topic.to_string());
    cluster
        .on_client(async move { final_committed(connect(bs).await, g, t, 6).await })
        .await
}

#[madsim::test]
async fn classic_members_crash_and_rejoin_without_overlap() {
    let cluster = SimCluster::start(3, SETTINGS);
    cluster.wait_started(Duration::from_secs(20)).await;
    setup(&cluster, "events", 6).await;
    let history = Arc::new(Mutex::new(History::default()));
    // Each member on its own machine, so that one can be cut off alone (a zombie).
    let machines: Vec<_> = (1..=3u8)
        .map(|i| cluster.client_node(&format!("member-{i}"), i))
        .collect();
    let start = |i: usize| {
        let h = history.clone();
        let bs = cluster.bootstrap();
        machines[i].spawn(async move {
            classic_member(connect(bs).await, "g-classic".into(), "events".into(), 6, h).await
        })
    };
    let mut members: Vec<_> = (0..3).map(start).collect();
    let (h, bs) = (history.clone(), cluster.bootstrap());
    let _poller = cluster.client.spawn(async move {
        poll_committed(connect(bs).await, "g-classic".into(), "events".into(), 6, h).await
    });
    for round in 0..10 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let i = madsim::rand::thread_rng().gen_range(0..members.len());
        // The first fault moves partitions for sure: a member crashes.
        let fault = if round == 0 {
            0
        } else {
            madsim::rand::thread_rng().gen_range(0..6)
        };
        match fault {
            0 => {
                tracing::info!(round, i, "--- a member crashes and a new one starts");
                members[i].abort();
                members[i] = start(i);
            }
            1 => {
                let n = madsim::rand::thread_rng().gen_range(1..=3);
                if madsim::rand::thread_rng().gen_bool(0.5) {
                    tracing::info!(round, n, "--- a node loses power");
                    cluster.power_fail(n);
                } else {
                    tracing::info!(round, n, "--- a node restarts");
                    cluster.kill(n);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    cluster.restart(n);
                }
            }
            2 => {
                tracing::info!(round, "--- slow network");
                madsim::net::NetSim::current().update_config(|c| {
                    c.send_latency = Duration::from_millis(20)..Duration::from_millis(200)
                });
                tokio::time::sleep(Duration::from_secs(2)).await;
                madsim::net::NetSim::current().update_config(|c| {
                    c.send_latency = Duration::from_millis(1)..Duration::from_millis(10)
                });
            }
            3 => {
                tracing::info!(
                    round,
                    i,
                    "--- a member is cut off past its session (a zombie), then comes back"
                );
                cluster.disconnect_client(&machines[i]);
                tokio::time::sleep(Duration::from_secs(5)).await;
                cluster.reconnect_client(&machines[i]);
            }
            4 => {
                let n = madsim::rand::thread_rng().gen_range(1..=3);
                tracing::info!(round, n, "--- a node's connections are reset, repeatedly");
                cluster.flap_connections(n, 6).await;
            }
            _ => {
                let n = madsim::rand::thread_rng().gen_range(1..=3);
                tracing::info!(round, n, "--- a node is cut off for a while");
                cluster.isolate(n);
                tokio::time::sleep(Duration::from_secs(2)).await;
                cluster.heal(n);
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    for m in &members {
        m.abort();
    }
    let fin = final_offsets(&cluster, "g-classic", "events").await;
    let mut h = history.lock();
    h.final_committed = fin;
    check_groups(&h);
    assert!(
        h.commits.len() > 20,
        "the group made progress: {} commits",
        h.commits.len()
    );
    assert!(!h.classic_owned.is_empty());
    // Partitions really moved between members (the faults were felt).
    let moved = (0..6).any(|p| {
        h.classic_owned
            .iter()
            .filter(|(_, _, q)| *q == p)
            .map(|(_, m, _)| m)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1
    });
    assert!(moved, "no partition ever changed owner");
    assert!(h.polled.len() > 20, "the poller read committed offsets");
}

#[madsim::test]
async fn consumer_protocol_members_never_share_a_partition() {
    let cluster = SimCluster::start(3, SETTINGS);
    cluster.wait_started(Duration::from_secs(20)).await;
    setup(&cluster, "orders", 6).await;
    let history = Arc::new(Mutex::new(History::default()));
    let mut members = Vec::new();
    let mut next_id = 0;
    let mut spawn = |history: &Arc<Mutex<History>>| {
        next_id += 1;
        let id = format!("member-{next_id}");
        let h = history.clone();
        let bs = cluster.bootstrap();
        let stop = Arc::new(tokio::sync::Notify::new());
        let s2 = stop.clone();
        let mid = id.clone();
        // Each member on its own machine, so that one can be cut off alone (a zombie).
        let machine = cluster.client_node(&id, 100 + next_id as u8);
        let task = machine.spawn(async move {
            consumer_member(
                connect(bs).await,
                mid,
                "g-848".into(),
                "orders".into(),
                h,
                s2,
            )
            .await
        });
        (task, stop, id, machine)
    };
    for _ in 0..3 {
        members.push(spawn(&history));
    }
    let (h, bs) = (history.clone(), cluster.bootstrap());
    let _poller = cluster.client.spawn(async move {
        poll_committed(connect(bs).await, "g-848".into(), "orders".into(), 6, h).await
    });
    for round in 0..8 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        let i = madsim::rand::thread_rng().gen_range(0..members.len());
        let fault = if round == 0 {
            1
        } else {
            madsim::rand::thread_rng().gen_range(0..7)
        };
        match fault {
            6 => {
                let n = madsim::rand::thread_rng().gen_range(1..=3);
                tracing::info!(round, n, "--- a node's connections are reset, repeatedly");
                cluster.flap_connections(n, 6).await;
            }
            4 => {
                tracing::info!(
                    round,
                    i,
                    "--- a member is cut off past its session (a zombie), then comes back"
                );
                cluster.disconnect_client(&members[i].3);
                tokio::time::sleep(Duration::from_secs(5)).await;
                cluster.reconnect_client(&members[i].3);
            }
            5 => {
                let n = madsim::rand::thread_rng().gen_range(1..=3);
                tracing::info!(round, n, "--- a node loses power (consumer protocol)");
                cluster.power_fail(n);
            }
            0 => {
                tracing::info!(round, i, "--- a member leaves; a new one joins");
                members[i].1.notify_one();
                tokio::time::sleep(Duration::from_millis(500)).await;
                members[i] = spawn(&history);
            }
            1 => {
                tracing::info!(round, i, "--- a member crashes; a new one joins");
                members[i].0.abort();
                crashed(&history, &members[i].2);
                members[i] = spawn(&history);
            }
            2 => {
                let n = madsim::rand::thread_rng().gen_range(1..=3);
                tracing::info!(round, n, "--- a node restarts (consumer protocol)");
                cluster.kill(n);
                tokio::time::sleep(Duration::from_secs(1)).await;
                cluster.restart(n);
            }
            _ => {
                tracing::info!(round, "--- slow network");
                madsim::net::NetSim::current().update_config(|c| {
                    c.send_latency = Duration::from_millis(20)..Duration::from_millis(150)
                });
                tokio::time::sleep(Duration::from_secs(2)).await;
                madsim::net::NetSim::current().update_config(|c| {
                    c.send_latency = Duration::from_millis(1)..Duration::from_millis(10)
                });
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(10)).await;
    for m in &members {
        m.0.abort();
    }
    let fin = final_offsets(&cluster, "g-848", "orders").await;
    let mut h = history.lock();
    h.final_committed = fin;
    check_groups(&h);
    assert!(
        h.commits.len() > 20,
        "the group made progress: {} commits",
        h.commits.len()
    );
    assert!(!h.intervals.is_empty());
    let moved = (0..6).any(|p| {
        h.intervals
            .iter()
            .filter(|(_, q, _, _)| *q == p)
            .map(|(m, _, _, _)| m)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 1
    });
    assert!(moved, "no partition ever changed owner");
    assert!(h.polled.len() > 20, "the poller read committed offsets");
}

/// Offsets of a group without members are dropped once it has been empty for
/// `offsets.retention.minutes`, and stay dropped after its coordinator restarts; until
/// then they survive restarts.
#[madsim::test]
async fn offsets_of_an_empty_group_expire_after_the_retention() {
    let mut settings = SETTINGS.to_vec();
    settings.push(("offsets.retention.minutes", "1"));
    settings.push(("offsets.retention.check.interval.ms", "1000"));
    let cluster = SimCluster::start(3, &settings);
    cluster.wait_started(Duration::from_secs(20)).await;
    setup(&cluster, "kept", 2).await;
    let bs = cluster.bootstrap();
    let offsets: std::collections::BTreeMap<(String, i32), i64> =
        [(("kept".to_string(), 0), 5), (("kept".to_string(), 1), 7)].into();
    let (o, b) = (offsets.clone(), bs.clone());
    let coordinator = cluster
        .on_client(async move {
            let admin = Admin::new(connect(b).await);
            admin.commit_group_offsets("g-ret", &o).await.unwrap();
            admin.find_coordinator("g-ret").await.unwrap()
        })
        .await;
    let fetch = |bs: Vec<String>| async move {
        let admin = Admin::new(connect(bs).await);
        loop {
            match admin.group_offsets("g-ret").await {
                Ok(o) => return o,
                Err(e) => {
                    tracing::info!(error = %e, "offset fetch failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    };
    tokio::time::sleep(Duration::from_secs(20)).await;
    cluster.kill(coordinator);
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.restart(coordinator);
    let before = cluster.on_client(fetch(bs.clone())).await;
    assert_eq!(
        before, offsets,
        "offsets are kept within the retention, across a restart"
    );
    tokio::time::sleep(Duration::from_secs(75)).await;
    let after = cluster.on_client(fetch(bs.clone())).await;
    assert!(after.is_empty(), "offsets expired: {after:?}");
    cluster.kill(coordinator);
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.restart(coordinator);
    let reloaded = cluster.on_client(fetch(bs)).await;
    assert!(
        reloaded.is_empty(),
        "expiry survives a restart: {reloaded:?}"
    );
}
