//! strom's own client as a consumer group member and as a transactional producer,
//! against a real node: two members split a topic's partitions (range), commit what
//! they read, and the one that stays takes over the other's partitions where it
//! committed; a transaction that is aborted is never read by read_committed consumers,
//! one that commits is, and a second producer with the same transactional id fences
//! the first.
#![cfg(not(madsim))]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use common::start_node;
use strom_client::{
    Admin, Client, ClientConfig, Consumer, ConsumerConfig, GroupConfig, GroupConsumer, NewTopic,
    OffsetReset, Producer, StartOffset,
};

async fn client(addr: std::net::SocketAddr) -> Client {
    Client::connect(ClientConfig::new([addr.to_string()]))
        .await
        .expect("connect")
}

async fn produce(client: &Client, topic: &str, values: impl IntoIterator<Item = String>) {
    let mut p = Producer::builder(client.clone()).build().unwrap();
    for v in values {
        p.send(
            topic,
            None,
            Some(Bytes::from(v.clone())),
            Some(Bytes::from(v)),
            vec![],
            None,
        )
        .await
        .unwrap();
    }
    for d in p.flush().await.unwrap() {
        d.result.expect("delivered");
    }
}

fn member(client: &Client, group: &str, topic: &str) -> GroupConsumer {
    let mut g = GroupConfig::new(group);
    g.session_timeout = Duration::from_secs(6);
    g.heartbeat_interval = Duration::from_millis(200);
    g.auto_commit_interval = Duration::from_millis(300);
    let config = ConsumerConfig {
        auto_offset_reset: OffsetReset::Earliest,
        ..Default::default()
    };
    let mut m = GroupConsumer::new(client.clone(), config, g);
    m.subscribe([topic]);
    m
}

fn values(records: &[strom_client::ConsumerRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_split_the_partitions_and_hand_over_where_they_committed() {
    let n = start_node(&[]).await;
    let c = client(n.addr).await;
    Admin::new(c.clone())
        .create_topics(vec![NewTopic::new("shared", 4, 1)], false)
        .await
        .unwrap();
    produce(&c, "shared", (0..40).map(|i| format!("v{i}"))).await;

    let (mut a, mut b) = (member(&c, "g", "shared"), member(&c, "g", "shared"));
    let (mut got_a, mut got_b) = (Vec::new(), Vec::new());
    // Both poll until the group is stable with two members and everything is read.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while got_a.len() + got_b.len() < 40
        || a.assignment().len() + b.assignment().len() != 4
        || a.generation() != b.generation()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: {got_a:?} {got_b:?}"
        );
        let (ra, rb) = tokio::join!(
            a.poll(Duration::from_millis(100)),
            b.poll(Duration::from_millis(100))
        );
        got_a.extend(values(&ra.unwrap()));
        got_b.extend(values(&rb.unwrap()));
    }
    let owned_a: BTreeSet<i32> = a.assignment().into_iter().map(|(_, p)| p).collect();
    let owned_b: BTreeSet<i32> = b.assignment().into_iter().map(|(_, p)| p).collect();
    assert_eq!(
        owned_a.len(),
        2,
        "range gives each of two members two of four"
    );
    assert!(owned_a.is_disjoint(&owned_b));
    let mut all: Vec<String> = got_a.iter().chain(&got_b).cloned().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 40, "every record read (a member that read before the second joined may repeat none after its commit)");

    // a leaves (committing); b takes its partitions from a's commits: of 10 new
    // records b reads each once, and nothing old again.
    a.commit().await.unwrap();
    a.close().await.unwrap();
    produce(&c, "shared", (40..50).map(|i| format!("v{i}"))).await;
    let mut later = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while later.len() < 10 || b.assignment().len() != 4 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "b never took over: {later:?}"
        );
        later.extend(values(&b.poll(Duration::from_millis(100)).await.unwrap()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    later.extend(values(&b.poll(Duration::from_millis(100)).await.unwrap()));
    later.sort();
    let mut want: Vec<String> = (40..50).map(|i| format!("v{i}")).collect();
    want.sort();
    assert_eq!(later, want);
    b.close().await.unwrap();
    let committed = Admin::new(c.clone()).group_offsets("g").await.unwrap();
    assert_eq!(committed.values().sum::<i64>(), 50, "{committed:?}");
    n.node.shutdown().await;
}

async fn read_committed(c: &Client, topic: &str) -> Vec<String> {
    let mut consumer = Consumer::new(
        c.clone(),
        ConsumerConfig {
            read_committed: true,
            ..Default::default()
        },
    );
    consumer
        .assign(topic, 0, StartOffset::Earliest)
        .await
        .unwrap();
    let mut out = Vec::new();
    for _ in 0..10 {
        out.extend(values(
            &consumer.poll(Duration::from_millis(100)).await.unwrap(),
        ));
    }
    out
}

async fn send(p: &mut Producer, v: &'static str) {
    p.send("tx", Some(0), None, Some(Bytes::from(v)), vec![], None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_abort_and_fence_the_older_producer() {
    let n = start_node(&[]).await;
    let c = client(n.addr).await;
    Admin::new(c.clone())
        .create_topics(vec![NewTopic::new("tx", 1, 1)], false)
        .await
        .unwrap();
    let txn = |id: &str| {
        Producer::builder(c.clone())
            .transactional_id(Some(id.to_string()))
            .build()
            .unwrap()
    };
    let mut p = txn("t1");
    assert!(
        p.send("tx", Some(0), None, None, vec![], None)
            .await
            .is_err(),
        "no send before init and begin"
    );
    p.init_transactions().await.unwrap();
    p.begin_transaction().unwrap();
    send(&mut p, "aborted-1").await;
    send(&mut p, "aborted-2").await;
    p.flush().await.unwrap();
    p.abort_transaction().await.unwrap();
    p.begin_transaction().unwrap();
    send(&mut p, "committed").await;
    for d in p.commit_transaction().await.unwrap() {
        d.result.expect("delivered");
    }
    assert_eq!(read_committed(&c, "tx").await, vec!["committed"]);

    // A second instance with the same id fences the first: its next transaction fails.
    p.begin_transaction().unwrap();
    let mut q = txn("t1");
    q.init_transactions().await.unwrap();
    send(&mut p, "zombie").await;
    assert!(
        p.commit_transaction().await.is_err(),
        "the fenced producer committed"
    );
    q.begin_transaction().unwrap();
    send(&mut q, "new").await;
    q.commit_transaction().await.unwrap();
    assert_eq!(read_committed(&c, "tx").await, vec!["committed", "new"]);
    n.node.shutdown().await;
}
