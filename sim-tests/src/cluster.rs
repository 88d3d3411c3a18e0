//! A simulated strom cluster: nodes on 10.0.0.x, each with its own simulated disks
//! (partition log storage and Raft backend) that outlive kills and restarts. Nodes are
//! combined (controller and broker) or brokers only; faults: kill -9, restart, power
//! failure, pause (a zombie: SIGSTOP-like), graceful stop (controlled shutdown),
//! isolation and one-way cuts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use madsim::rand::Rng;
use madsim::runtime::{Handle, NodeHandle};
use parking_lot::Mutex;
use strom_broker::broker::Broker;
use strom_broker::log::{PowerLoss, SimStorage};
use strom_broker::{NodeConfig, NodeEnv};
use strom_controller::store::SimBackend;
use strom_controller::Controller;

pub const KAFKA_PORT: u16 = 9092;
pub const INTERNAL_PORT: u16 = 9093;

/// Handles into a running node, for invariant checks (cleared when it is killed).
#[derive(Clone)]
pub struct Live {
    pub controller: Option<Arc<Controller>>,
    pub broker: Option<Arc<Broker>>,
    /// Asks the node to stop cleanly (controlled shutdown, logs closed).
    pub stop: Arc<tokio::sync::Notify>,
}

/// One simulated node and its disks.
pub struct SimNode {
    pub id: i32,
    pub ip: IpAddr,
    pub storage: SimStorage,
    pub backend: SimBackend,
    pub handle: NodeHandle,
    pub live: Arc<Mutex<Option<Live>>>,
    /// Bumped to reset the node's client connections.
    resets: strom_common::watch::Sender<u64>,
}

pub struct SimCluster {
    pub nodes: Vec<SimNode>,
    pub client: NodeHandle,
    /// Ids of the nodes that are controllers (quorum voters).
    pub controllers: Vec<i32>,
    /// Every metadata batch any controller applied and every image any broker
    /// published, across kills, restarts and power failures.
    pub metadata_history: Arc<Mutex<MetadataHistory>>,
}

impl Drop for SimCluster {
    /// Kills every node at the end of a run so that the simulator drops their tasks. A
    /// task still sleeping when the run ends is held by its timer entry, which its sleep
    /// holds in turn: without this, that cycle keeps each node's whole state (simulated
    /// disks included) alive after the run, and a test of 50 seeds in one process grows
    /// by hundreds of megabytes per seed.
    fn drop(&mut self) {
        let Ok(h) = Handle::try_current() else {
            return;
        };
        for n in &self.nodes {
            n.live.lock().take();
            h.kill(n.handle.id());
        }
        h.kill(self.client.id());
    }
}

/// What nodes applied, kept outside them: the first batch (and image) seen at each
/// offset, and every disagreement with it.
#[derive(Default)]
pub struct MetadataHistory {
    pub batches: BTreeMap<u64, (i32, Vec<u8>)>,
    pub images: BTreeMap<u64, (i32, Arc<strom_controller::metadata::MetadataImage>)>,
    /// Batches applied, per controller (all incarnations).
    pub applied: BTreeMap<i32, u64>,
    /// Images published, per broker.
    pub published: BTreeMap<i32, u64>,
    pub disagreements: Vec<String>,
}

impl MetadataHistory {
    fn batch(&mut self, node: i32, offset: u64, raw: &[u8]) {
        *self.applied.entry(node).or_default() += 1;
        match self.batches.get(&offset) {
            Some((first, seen)) if seen.as_slice() != raw => self.disagreements.push(format!(
                "controllers {first} and {node} applied different batches at offset {offset}"
            )),
            Some(_) => {}
            None => {
                self.batches.insert(offset, (node, raw.to_vec()));
            }
        }
    }

    fn image(&mut self, node: i32, img: &strom_controller::metadata::MetadataImage) {
        *self.published.entry(node).or_default() += 1;
        match self.images.get(&img.offset) {
            Some((first, seen)) if **seen != *img => self.disagreements.push(format!(
                "brokers {first} and {node} published different images at metadata offset {}",
                img.offset
            )),
            Some(_) => {}
            None => {
                self.images
                    .insert(img.offset, (node, Arc::new(img.clone())));
            }
        }
    }
}

fn ip(i: i32) -> IpAddr {
    format!("10.0.0.{i}").parse().expect("ip")
}

impl SimCluster {
    /// Starts `n` nodes (each controller and broker) with `extra` settings.
    pub fn start(n: i32, extra: &[(&str, &str)]) -> SimCluster {
        SimCluster::start_mixed(n, 0, extra)
    }

    /// Starts `combined` nodes that are controllers and brokers (ids 1..), then
    /// `brokers_only` nodes that are brokers only.
    pub fn start_mixed(combined: i32, brokers_only: i32, extra: &[(&str, &str)]) -> SimCluster {
        init_logging();
        strom_common::clock::sim::clear();
        let handle = Handle::current();
        let n = combined + brokers_only;
        let voters: Vec<String> = (1..=combined)
            .map(|i| format!("{i}@{}:{INTERNAL_PORT}", ip(i)))
            .collect();
        let voters = voters.join(",");
        let extra: Vec<(String, String)> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut nodes = Vec::new();
        let history: Arc<Mutex<MetadataHistory>> = Arc::default();
        for i in 1..=n {
            let storage = SimStorage::new();
            let backend = SimBackend::new();
            let (resets, resets_rx) = strom_common::watch::channel(0u64);
            let mut settings: BTreeMap<String, String> = BTreeMap::new();
            settings.insert("node.id".into(), i.to_string());
            settings.insert(
                "listeners".into(),
                format!("PLAINTEXT://{}:{KAFKA_PORT}", ip(i)),
            );
            settings.insert(
                "internal.listener".into(),
                format!("{}:{INTERNAL_PORT}", ip(i)),
            );
            settings.insert("controller.quorum.voters".into(), voters.clone());
            if i > combined {
                settings.insert("process.roles".into(), "broker".into());
            }
            settings.insert("data.dir".into(), "/data".into());
            settings.insert("broker.heartbeat.interval.ms".into(), "500".into());
            for (k, v) in &extra {
                settings.insert(k.clone(), v.clone());
            }
            let cfg = NodeConfig::resolve(settings).expect("valid settings");
            let env = NodeEnv {
                storage: Arc::new(storage.clone()),
                raft_backend: Some(Arc::new(backend.clone())),
                on_metadata_applied: Some({
                    let h = history.clone();
                    Arc::new(move |offset, raw: &[u8]| h.lock().batch(i, offset, raw))
                }),
                on_image_published: Some({
                    let h = history.clone();
                    Arc::new(move |img: &strom_controller::metadata::MetadataImage| {
                        h.lock().image(i, img)
                    })
                }),
                connection_resets: Some(resets_rx),
            };
            let live: Arc<Mutex<Option<Live>>> = Arc::new(Mutex::new(None));
            let slot = live.clone();
            let node = handle
                .create_node()
                .name(format!("node-{i}"))
                .ip(ip(i))
                .init(move || {
                    let cfg = cfg.clone();
                    let env = env.clone();
                    let slot = slot.clone();
                    async move {
                        match strom_broker::start(cfg, env).await {
                            Ok(node) => {
                                tracing::info!(node = node.node_id, "--- node started");
                                let stop = Arc::new(tokio::sync::Notify::new());
                                *slot.lock() = Some(Live {
                                    controller: node.controller.clone(),
                                    broker: node.broker.clone(),
                                    stop: stop.clone(),
                                });
                                tokio::select! {
                                    // biased: an unbiased select draws from tokio's own
                                    // random state, which outlives a simulation run in
                                    // the process (the determinism check runs twice).
                                    biased;
                                    _ = stop.notified() => {
                                        slot.lock().take();
                                        node.shutdown().await;
                                        tracing::info!(node = i, "--- node stopped cleanly");
                                    }
                                    why = node.log_dir_failure() => {
                                        // As the binary exits: nothing more is written.
                                        slot.lock().take();
                                        tracing::info!(node = i, error = %why, "--- log directory failed; node halted");
                                        node.halt().await;
                                    }
                                }
                                std::future::pending::<()>().await;
                            }
                            Err(e) => panic!("node {i} failed to start: {e}"),
                        }
                    }
                })
                .build();
            nodes.push(SimNode {
                id: i,
                ip: ip(i),
                storage,
                backend,
                handle: node,
                live,
                resets,
            });
        }
        let client = handle
            .create_node()
            .name("client")
            .ip("10.0.1.1".parse().expect("ip"))
            .build();
        SimCluster {
            nodes,
            client,
            controllers: (1..=combined).collect(),
            metadata_history: history,
        }
    }

    /// `host:port` of every node's Kafka listener.
    pub fn bootstrap(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("{}:{KAFKA_PORT}", n.ip))
            .collect()
    }

    /// Kills a node (its processes stop; its disks keep everything written so far).
    pub fn kill(&self, id: i32) {
        let n = self.node(id);
        n.live.lock().take();
        Handle::current().kill(n.handle.id());
    }

    /// Restarts a killed node through the same `start`.
    pub fn restart(&self, id: i32) {
        Handle::current().restart(self.node(id).handle.id());
    }

    /// Sets a node's wall clock `offset_ms` ahead of (or, negative, behind) the others'.
    /// Timestamps, retention and expiry read it; timeouts use monotonic time.
    pub fn set_clock_offset(&self, id: i32, offset_ms: i64) {
        let node = format!("{:?}", self.node(id).handle.id());
        strom_common::clock::sim::set_offset_ms(&node, offset_ms);
    }

    /// Resets every client connection to node `id`'s Kafka listeners, as a TCP reset
    /// would: clients (and other brokers' replica fetchers) see their connection end; a
    /// request the node is handling finishes and its answer is lost.
    pub fn reset_connections(&self, id: i32) {
        self.node(id).resets.send_modify(|n| *n += 1);
    }

    /// Resets node `id`'s client connections `times` times, 50–500 ms apart (a flapping
    /// network path or a middlebox dropping connections).
    pub async fn flap_connections(&self, id: i32, times: u32) {
        for _ in 0..times {
            self.reset_connections(id);
            let ms = madsim::rand::thread_rng().gen_range(50..500);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    /// Kills a node and drops every byte its disks had not synced, then restarts it.
    pub fn power_fail(&self, id: i32) {
        let n = self.node(id);
        n.live.lock().take();
        Handle::current().kill(n.handle.id());
        // As a real disk may: a random part of what was not synced survives, torn or
        // zero-filled (drawn from the simulation's seed).
        n.storage
            .power_fail_with(PowerLoss::Random(madsim::rand::random::<u64>()));
        n.backend.power_fail_seeded(madsim::rand::random::<u64>());
        Handle::current().restart(n.handle.id());
    }

    /// Stops a node cleanly (controlled shutdown, logs closed, clean-shutdown marker),
    /// then kills the finished process so that it can be restarted.
    pub async fn stop_gracefully(&self, id: i32) {
        let n = self.node(id);
        let Some(live) = n.live.lock().clone() else {
            // Still starting (or already down): stop it the hard way.
            n.live.lock().take();
            Handle::current().kill(n.handle.id());
            return;
        };
        live.stop.notify_one();
        for _ in 0..600 {
            if n.live.lock().is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give the shutdown time to finish closing the logs.
        tokio::time::sleep(Duration::from_secs(2)).await;
        Handle::current().kill(n.handle.id());
    }

    /// Freezes a node (SIGSTOP): its tasks stop running, its sockets stay open.
    pub fn pause(&self, id: i32) {
        Handle::current().pause(self.node(id).handle.id());
    }

    /// Lets a paused node run again (SIGCONT).
    pub fn resume(&self, id: i32) {
        Handle::current().resume(self.node(id).handle.id());
    }

    /// Cuts the link from `from` to `to` in one direction only (messages wait).
    pub fn cut_one_way(&self, from: i32, to: i32) {
        let net = madsim::net::NetSim::current();
        net.clog_link(self.node(from).handle.id(), self.node(to).handle.id());
    }

    /// Restores the link from `from` to `to`.
    pub fn restore_one_way(&self, from: i32, to: i32) {
        let net = madsim::net::NetSim::current();
        net.unclog_link(self.node(from).handle.id(), self.node(to).handle.id());
    }

    /// Cuts the link from node `from` to a client machine, one way: the client's requests
    /// arrive, the node's answers do not.
    pub fn cut_to_client(&self, from: i32, client: &NodeHandle) {
        let net = madsim::net::NetSim::current();
        net.clog_link(self.node(from).handle.id(), client.id());
    }

    /// Undoes [`SimCluster::cut_to_client`].
    pub fn restore_to_client(&self, from: i32, client: &NodeHandle) {
        let net = madsim::net::NetSim::current();
        net.unclog_link(self.node(from).handle.id(), client.id());
    }

    /// Whether the node is up (started and not killed or stopped).
    pub fn is_up(&self, id: i32) -> bool {
        self.node(id).live.lock().is_some()
    }

    /// The running node's handles, if it is up.
    pub fn live(&self, id: i32) -> Option<Live> {
        self.node(id).live.lock().clone()
    }

    /// The newest metadata image among the running brokers.
    pub fn newest_image(&self) -> Option<Arc<strom_controller::metadata::MetadataImage>> {
        self.nodes
            .iter()
            .filter_map(|n| self.live(n.id).and_then(|l| l.broker))
            .map(|b| b.cache.image())
            .max_by_key(|i| i.offset)
    }

    /// The quorum leader as some running controller sees it.
    pub fn quorum_leader(&self) -> Option<i32> {
        self.nodes
            .iter()
            .filter_map(|n| n.live.lock().clone()?.controller)
            .find(|c| c.is_leader())
            .map(|c| c.node_id as i32)
    }

    /// The leader as seen by running controllers other than `excluded` (a cut-off old
    /// leader may still believe it leads).
    pub fn quorum_leader_excluding(&self, excluded: i32) -> Option<i32> {
        self.nodes
            .iter()
            .filter(|n| n.id != excluded)
            .filter_map(|n| n.live.lock().clone()?.controller)
            .find(|c| c.is_leader())
            .map(|c| c.node_id as i32)
    }

    /// Waits until every node has started (registered and unfenced) and a leader exists.
    pub async fn wait_started(&self, within: Duration) -> i32 {
        let deadline = tokio::time::Instant::now() + within;
        while self.nodes.iter().any(|n| n.live.lock().is_none()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nodes did not start within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.wait_for_leader(within).await
    }

    /// Waits (simulated time) until a quorum leader exists; panics after `within`.
    pub async fn wait_for_leader(&self, within: Duration) -> i32 {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(l) = self.quorum_leader() {
                return l;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no quorum leader within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Cuts `id` off from every other node (messages wait until `heal`).
    pub fn isolate(&self, id: i32) {
        let net = madsim::net::NetSim::current();
        let me = self.node(id).handle.id();
        for other in self
            .nodes
            .iter()
            .filter(|n| n.id != id)
            .map(|n| n.handle.id())
            .chain([self.client.id()])
        {
            net.clog_link(me, other);
            net.clog_link(other, me);
        }
    }

    /// A new client machine (10.0.2.x), e.g. one per consumer-group member so that one
    /// member can be cut off alone.
    pub fn client_node(&self, name: &str, n: u8) -> NodeHandle {
        Handle::current()
            .create_node()
            .name(name)
            .ip(format!("10.0.2.{n}").parse().expect("ip"))
            .build()
    }

    /// Cuts a client machine off from every broker (messages wait until `reconnect`).
    pub fn disconnect_client(&self, client: &NodeHandle) {
        let net = madsim::net::NetSim::current();
        for n in &self.nodes {
            net.clog_link(client.id(), n.handle.id());
            net.clog_link(n.handle.id(), client.id());
        }
    }

    pub fn reconnect_client(&self, client: &NodeHandle) {
        let net = madsim::net::NetSim::current();
        for n in &self.nodes {
            net.unclog_link(client.id(), n.handle.id());
            net.unclog_link(n.handle.id(), client.id());
        }
    }

    /// Restores every link of `id`.
    pub fn heal(&self, id: i32) {
        let net = madsim::net::NetSim::current();
        let me = self.node(id).handle.id();
        for other in self
            .nodes
            .iter()
            .filter(|n| n.id != id)
            .map(|n| n.handle.id())
            .chain([self.client.id()])
        {
            net.unclog_link(me, other);
            net.unclog_link(other, me);
        }
    }

    pub fn node(&self, id: i32) -> &SimNode {
        self.nodes.iter().find(|n| n.id == id).expect("node id")
    }

    /// Runs `f` on the client node.
    pub async fn on_client<F, T>(&self, f: F) -> T
    where
        F: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.client.spawn(f).await.expect("client task")
    }
}

/// Logs to the test output when `RUST_LOG` is set.
pub fn init_logging() {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

/// Connects strom's client to the cluster, retrying while nodes start.
pub async fn connect(bootstrap: Vec<String>) -> strom_client::Client {
    for _ in 0..100 {
        let cfg = strom_client::ClientConfig::new(bootstrap.clone())
            .request_timeout(Duration::from_secs(10));
        if let Ok(c) = strom_client::Client::connect(cfg).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("cluster unreachable");
}
