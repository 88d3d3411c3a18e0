//! Real processes, real tokio, sled and gRPC with real protobuf encoding: three `strom
//! node` processes form the metadata quorum; while a client creates topics through
//! them, the quorum leader is killed with SIGKILL. Creation continues through the other
//! two; after the killed node restarts (recovering from sled), every acknowledged topic
//! is on every node, once. Prints the gap between the kill and the next committed
//! metadata change (FAILOVER_MS).
#![cfg(not(madsim))]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use strom_client::{Admin, Client, ClientConfig, NewTopic};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Proc {
    id: u16,
    child: Child,
    config: std::path::PathBuf,
}

/// Starts a node; the receiver gets a message when it prints READY.
fn spawn(config: &Path) -> (Child, std::sync::mpsc::Receiver<()>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_strom"))
        .arg("node")
        .arg("--config")
        .arg(config)
        .env("STROM_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start strom");
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains("READY") {
                let _ = tx.send(());
            }
        }
    });
    (child, rx)
}

async fn client(bootstrap: &[String]) -> Client {
    for _ in 0..100 {
        if let Ok(c) = Client::connect(
            ClientConfig::new(bootstrap.to_vec()).request_timeout(Duration::from_secs(5)),
        )
        .await
        {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no broker reachable");
}

/// Creates `name`; true when acknowledged (TOPIC_ALREADY_EXISTS after a retry counts:
/// only this test creates the name).
async fn create(bootstrap: &[String], name: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut tried = false;
    while Instant::now() < deadline {
        let admin = Admin::new(client(bootstrap).await);
        if let Ok(Ok(r)) = tokio::time::timeout(
            Duration::from_secs(5),
            admin.create_topics(vec![NewTopic::new(name, 1, 1)], false),
        )
        .await
        {
            match &r[0].error {
                None => return true,
                Some(e) if e.code == 36 && tried => return true,
                Some(e) if e.code == 36 => panic!("{name} existed before"),
                Some(_) => {}
            }
        }
        tried = true;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_quorum_leader_loses_no_acknowledged_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let voters: Vec<String> = ports
        .iter()
        .enumerate()
        .map(|(i, (_, p))| format!("{}@127.0.0.1:{p}", i + 1))
        .collect();
    let bootstrap: Vec<String> = ports
        .iter()
        .map(|(k, _)| format!("127.0.0.1:{k}"))
        .collect();
    let mut procs = Vec::new();
    for (i, (kafka, internal)) in ports.iter().enumerate() {
        let id = i as u16 + 1;
        let cfg = dir.path().join(format!("node-{id}.toml"));
        std::fs::write(
            &cfg,
            format!(
                "\"node.id\" = {id}\n\"listeners\" = \"PLAINTEXT://127.0.0.1:{kafka}\"\n\"internal.listener\" = \"127.0.0.1:{internal}\"\n\"admin.listener\" = \"127.0.0.1:0\"\n\"schema.registry.listener\" = \"127.0.0.1:0\"\n\"controller.quorum.voters\" = \"{}\"\n\"data.dir\" = \"{}\"\n\"broker.heartbeat.interval.ms\" = 500\n",
                voters.join(","),
                dir.path().join(format!("data-{id}")).display()
            ),
        )
        .unwrap();
        let (child, ready) = spawn(&cfg);
        procs.push((
            Proc {
                id,
                child,
                config: cfg,
            },
            ready,
        ));
    }
    // A node is ready only once a quorum exists: start all three, then wait.
    let mut procs: Vec<Proc> = procs
        .into_iter()
        .map(|(p, ready)| {
            ready
                .recv_timeout(Duration::from_secs(60))
                .expect("node ready");
            p
        })
        .collect();
    // Find the quorum leader through DescribeQuorum.
    let leader = {
        let c = client(&bootstrap).await;
        let conn = c.any_connection().await.unwrap();
        use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
        use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
        let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
            .with_topic_name(TopicName(
                kafka_protocol::protocol::StrBytes::from_static_str("__cluster_metadata"),
            ))
            .with_partitions(vec![PartitionData::default()])]);
        let mut leader = -1;
        for _ in 0..50 {
            let r = conn.send(req.clone(), 1).await.unwrap();
            leader = r
                .topics
                .first()
                .and_then(|t| t.partitions.first())
                .map_or(-1, |p| p.leader_id.0);
            if leader > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(leader > 0, "no quorum leader");
        leader as u16
    };
    let mut acknowledged = BTreeSet::new();
    for i in 0..20 {
        let name = format!("before-{i}");
        assert!(create(&bootstrap, &name, Duration::from_secs(20)).await);
        acknowledged.insert(name);
    }
    // Kill -9 the leader, then keep creating through the other two.
    let victim = procs.iter_mut().find(|p| p.id == leader).unwrap();
    victim.child.kill().unwrap();
    let killed_at = Instant::now();
    let _ = victim.child.wait();
    let others: Vec<String> = ports
        .iter()
        .enumerate()
        .filter(|(i, _)| *i as u16 + 1 != leader)
        .map(|(_, (k, _))| format!("127.0.0.1:{k}"))
        .collect();
    assert!(
        create(&others, "after-kill", Duration::from_secs(30)).await,
        "no metadata change after the leader died"
    );
    println!("FAILOVER_MS={}", killed_at.elapsed().as_millis());
    acknowledged.insert("after-kill".to_string());
    for i in 0..20 {
        let name = format!("during-{i}");
        assert!(create(&others, &name, Duration::from_secs(20)).await);
        acknowledged.insert(name);
    }
    // Restart the killed node from its sled store; everyone agrees.
    let victim = procs.iter_mut().find(|p| p.id == leader).unwrap();
    let (child, ready) = spawn(&victim.config);
    victim.child = child;
    ready
        .recv_timeout(Duration::from_secs(60))
        .expect("restarted node ready");
    for (kafka, _) in &ports {
        let single = vec![format!("127.0.0.1:{kafka}")];
        let mut found = BTreeSet::new();
        for _ in 0..100 {
            let admin = Admin::new(client(&single).await);
            found = admin
                .list_topics(false)
                .await
                .unwrap()
                .into_iter()
                .map(|t| t.name)
                .collect();
            if acknowledged.is_subset(&found) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let missing: Vec<_> = acknowledged.difference(&found).collect();
        assert!(missing.is_empty(), "node at {kafka} lacks {missing:?}");
    }
    for p in &mut procs {
        let _ = p.child.kill();
        let _ = p.child.wait();
    }
}
