//! A single simulated node, booted through `strom_broker::start`: topics created through
//! the quorum, records produced and read back; after a kill and restart every
//! acknowledged record is still there; after a power failure every record acknowledged
//! with `flush.messages=1` is still there.
#![cfg(madsim)]

use std::time::Duration;

use bytes::Bytes;
use strom_client::{Admin, Consumer, ConsumerConfig, NewTopic, OffsetReset, Producer, StartOffset};
use strom_sim_tests::cluster::{connect, SimCluster};
use strom_sim_tests::invariants::check_metadata;

async fn produce(bootstrap: Vec<String>, topic: &str, from: usize, n: usize) -> Vec<(i32, i64)> {
    let client = connect(bootstrap).await;
    let mut p = Producer::builder(client)
        .acks(-1)
        .idempotent(true)
        .build()
        .unwrap();
    for i in from..from + n {
        p.send(
            topic,
            None,
            Some(Bytes::from(format!("k{i}"))),
            Some(Bytes::from(format!("v{i}"))),
            vec![],
            None,
        )
        .await
        .unwrap();
    }
    p.flush()
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.partition, d.result.expect("acknowledged")))
        .collect()
}

async fn read_all(bootstrap: Vec<String>, topic: &str) -> Vec<String> {
    let client = connect(bootstrap).await;
    let mut c = Consumer::new(
        client,
        ConsumerConfig {
            auto_offset_reset: OffsetReset::Earliest,
            ..Default::default()
        },
    );
    c.assign_topic(topic, StartOffset::Earliest).await.unwrap();
    let mut out = Vec::new();
    let mut idle = 0;
    while idle < 5 {
        let rs = c.poll(Duration::from_millis(200)).await.unwrap();
        if rs.is_empty() {
            idle += 1;
        }
        for r in rs {
            out.push(String::from_utf8(r.value.unwrap().to_vec()).unwrap());
        }
    }
    out.sort();
    out
}

fn expected(n: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..n).map(|i| format!("v{i}")).collect();
    v.sort();
    v
}

#[madsim::test]
async fn kill_and_restart_keep_acknowledged_records() {
    let cluster = SimCluster::start(1, &[("num.partitions", "3")]);
    let bs = cluster.bootstrap();
    tracing::info!("--- create a topic and produce");
    let b = bs.clone();
    cluster
        .on_client(async move {
            let admin = Admin::new(connect(b.clone()).await);
            let r = admin
                .create_topics(vec![NewTopic::new("t", 3, 1)], false)
                .await
                .unwrap();
            assert!(r[0].error.is_none(), "{:?}", r[0].error);
            assert_eq!(produce(b, "t", 0, 50).await.len(), 50);
        })
        .await;
    tracing::info!("--- kill and restart");
    cluster.kill(1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.restart(1);
    let b = bs.clone();
    let got = cluster
        .on_client(async move { read_all(b, "t").await })
        .await;
    assert_eq!(got, expected(50));
    tracing::info!("--- produce more after the restart");
    let b = bs.clone();
    cluster
        .on_client(async move { produce(b, "t", 50, 10).await })
        .await;
    let b = bs.clone();
    let got = cluster
        .on_client(async move { read_all(b, "t").await })
        .await;
    assert_eq!(got, expected(60));
}

#[madsim::test]
async fn power_failure_keeps_records_flushed_before_acknowledgement() {
    let cluster = SimCluster::start(
        1,
        &[
            ("num.partitions", "2"),
            ("log.flush.interval.messages", "1"),
        ],
    );
    let bs = cluster.bootstrap();
    let b = bs.clone();
    let acked = cluster
        .on_client(async move { produce(b, "p", 0, 40).await })
        .await;
    assert_eq!(acked.len(), 40);
    tracing::info!("--- power failure");
    cluster.power_fail(1);
    // New metadata after the restart: a quorum that lost committed entries would write
    // other batches at their offsets, which the history kept outside the node catches.
    let b = bs.clone();
    let acked = cluster
        .on_client(async move { produce(b, "q", 0, 5).await })
        .await;
    assert_eq!(acked.len(), 5);
    check_metadata(&cluster);
    let b = bs.clone();
    let got = cluster
        .on_client(async move { read_all(b, "p").await })
        .await;
    assert_eq!(got, expected(40));
}

/// The clock seam under simulation: a node's wall clock set an hour ahead reads an hour
/// ahead on that node and nowhere else (the replication tests skew and step clocks).
#[madsim::test]
async fn a_clock_offset_moves_only_that_nodes_wall_clock() {
    let cluster = SimCluster::start(1, &[]);
    cluster.set_clock_offset(1, 3_600_000);
    let on_node = cluster
        .node(1)
        .handle
        .spawn(async { strom_common::clock::now_ms() })
        .await
        .unwrap();
    let on_client = cluster
        .on_client(async { strom_common::clock::now_ms() })
        .await;
    assert!(
        (on_node - on_client - 3_600_000).abs() < 1000,
        "node {on_node}, client {on_client}"
    );
}
