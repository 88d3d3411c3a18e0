//! A node's lifecycle: `start` brings up the controller (if the node is one), the
//! internal gRPC listener, and the broker (log recovery, registration with the quorum,
//! following the metadata log, heartbeats, the Kafka listeners); `Node::shutdown` stops
//! it cleanly (controlled shutdown, logs closed, clean-shutdown marker written).
//!
//! The binary and the simulation tests both boot nodes through `start`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strom_common::clock::random_u128;
use strom_common::watch;
use strom_controller::metadata::MetadataImage;
use strom_controller::quorum::{Controller, ControllerConfig};
use strom_controller::store::Backend;
use strom_proto::controller::{
    BrokerHeartbeatRequest, FetchMetadataRequest, RegisterBrokerRequest, ReplicaLogEnd,
};
use strom_proto::metadata::Endpoint;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::config::NodeConfig;
use crate::controller_client::ControllerClient;
use crate::handlers;
use crate::health::Health;
use crate::log::Storage;
use crate::metadata_cache::MetadataCache;
use crate::metrics::Metrics;
use crate::replication::ReplicaManager;
use crate::runtime;

/// Where a node keeps its bytes: the partition-log storage and (for controllers) the
/// Raft backend. Real nodes use the file system and sled; simulated ones pass in
/// per-node simulated disks that outlive restarts.
#[derive(Clone)]
pub struct NodeEnv {
    pub storage: Arc<dyn Storage>,
    /// `None`: sled under `<data.dir>/controller`.
    pub raft_backend: Option<Arc<dyn Backend>>,
    /// Histories kept outside the node (simulation checks); `None` in production.
    pub on_metadata_applied: Option<strom_controller::store::ApplyObserver>,
    pub on_image_published: Option<crate::metadata_cache::ImageObserver>,
    /// Simulation only: each change resets every client connection of the node's Kafka
    /// listeners (the peer sees the connection end; a request being handled finishes and
    /// its answer is lost). `None` in production.
    pub connection_resets: Option<watch::Receiver<u64>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error("I/O on {0}: {1}")]
    Io(String, std::io::Error),
    #[error("controller: {0}")]
    Controller(#[from] strom_controller::ControllerError),
    #[error("log: {0}")]
    Log(#[from] crate::log::LogError),
    #[error("registration refused: {0}")]
    Registration(String),
    #[error("shutting down")]
    Cancelled,
}

/// A running node.
pub struct Node {
    pub node_id: i32,
    /// Bound Kafka listeners: (name, address).
    pub kafka_addrs: Vec<(String, SocketAddr)>,
    pub internal_addr: Option<SocketAddr>,
    /// The bound admin listener (HTTP), when `admin.listener` names one.
    pub admin_addr: Option<SocketAddr>,
    /// The bound schema registry listener (HTTP), when `schema.registry.listener` names one.
    pub registry_addr: Option<SocketAddr>,
    pub broker: Option<Arc<Broker>>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub controller: Option<Arc<Controller>>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// The log directory's state (`None` for a controller-only node).
    log_dir_failure: Option<watch::Receiver<Option<String>>>,
}

const META_PROPERTIES: &str = "meta.properties";

fn io(what: &Path, e: std::io::Error) -> StartError {
    StartError::Io(what.display().to_string(), e)
}

/// Reads `meta.properties` (Kafka's format); checks the node id; returns the cluster id.
async fn check_meta_properties(
    storage: &dyn Storage,
    cfg: &NodeConfig,
) -> Result<Option<String>, StartError> {
    let path = cfg.data_dir.join(META_PROPERTIES);
    let Some(raw) = storage.read_file(&path).await.map_err(|e| io(&path, e))? else {
        return Ok(None);
    };
    let text = String::from_utf8_lossy(&raw);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(str::trim)
    };
    if let Some(id) = get("node.id") {
        if id != cfg.node_id.to_string() {
            return Err(StartError::Config(format!(
                "{} belongs to node {id}, but this node is {}",
                cfg.data_dir.display(),
                cfg.node_id
            )));
        }
    }
    Ok(get("cluster.id").map(str::to_string))
}

async fn write_meta_properties(
    storage: &dyn Storage,
    cfg: &NodeConfig,
    cluster_id: &str,
) -> Result<(), StartError> {
    let path = cfg.data_dir.join(META_PROPERTIES);
    let text = format!(
        "version=1\nnode.id={}\ncluster.id={cluster_id}\n",
        cfg.node_id
    );
    storage
        .write_file_atomic(&path, text.as_bytes())
        .await
        .map_err(|e| io(&path, e))
}

async fn bind(addr: &str) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Io(addr.to_string(), e))
}

/// Starts a node.
pub async fn start(mut cfg: NodeConfig, env: NodeEnv) -> Result<Node, StartError> {
    let storage = env.storage.clone();
    storage
        .create_dir_all(&cfg.data_dir)
        .await
        .map_err(|e| io(&cfg.data_dir, e))?;
    let stored_cluster_id = check_meta_properties(storage.as_ref(), &cfg).await?;
    let (stop, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();

    // The controller and the internal gRPC listener (bound first: with port 0 the
    // quorum and the local broker must learn the real address).
    let mut controller = None;
    let mut internal_addr = None;
    if cfg.controller {
        let internal = runtime::InternalListener::bind(&cfg.internal_listener).await?;
        let addr = internal.local_addr();
        if let Some(own) = cfg.voters.get_mut(&(cfg.node_id as u64)) {
            if own.ends_with(":0") {
                *own = addr.to_string();
            }
        }
        let backend: Arc<dyn Backend> = match env.raft_backend.clone() {
            Some(b) => b,
            None => runtime::default_raft_backend(&cfg)?,
        };
        let mut ccfg = ControllerConfig::new(cfg.node_id as u64, cfg.voters.clone(), backend);
        ccfg.cluster_id = cfg.cluster_id.clone().or(stored_cluster_id.clone());
        cfg.apply_controller_settings(&mut ccfg);
        ccfg.on_apply = env.on_metadata_applied.clone();
        let ctl = Controller::start(ccfg).await?;
        tasks.push(internal.serve(ctl.clone(), stop_rx.clone()));
        internal_addr = Some(addr);
        controller = Some(ctl);
    }

    let metrics = Metrics::new(cfg.known("admin.metrics.partition.detail"));
    let health = Arc::new(Health::new(
        cfg.broker,
        Duration::from_millis(cfg.session_timeout_ms),
    ));
    #[cfg(not(madsim))]
    let (admin, admin_addr) = {
        let addr: String = cfg.known("admin.listener");
        if addr.trim().is_empty() {
            (None, None)
        } else {
            let l = crate::http::bind(addr.trim())
                .await
                .map_err(|e| StartError::Io(format!("admin.listener {addr}"), e))?;
            let bound = crate::http::local_addr(&l);
            let state = crate::http::AdminState::new(
                cfg.node_id,
                metrics.clone(),
                health.clone(),
                controller.clone(),
                cfg.known("admin.console.write.enable"),
            );
            tasks.push(tokio::spawn(crate::http::serve(l, state.clone())));
            (Some(state), bound)
        }
    };
    #[cfg(madsim)]
    let admin_addr = None;

    let mut node = Node {
        node_id: cfg.node_id,
        kafka_addrs: Vec::new(),
        internal_addr,
        admin_addr,
        registry_addr: None,
        broker: None,
        metrics: metrics.clone(),
        health: health.clone(),
        controller,
        stop,
        tasks,
        log_dir_failure: None,
    };
    if !cfg.broker {
        return Ok(node);
    }

    // Kafka listeners are bound first so registration can advertise their real ports.
    let mut listeners = Vec::new();
    for l in &cfg.listeners {
        let sock = bind(&l.addr()).await?;
        let addr = sock.local_addr().map_err(|e| StartError::Io(l.addr(), e))?;
        listeners.push((l.name.clone(), sock, addr));
    }
    let endpoints: Vec<Endpoint> = cfg
        .advertised_listeners
        .iter()
        .map(|a| {
            let bound = listeners
                .iter()
                .find(|(n, _, _)| *n == a.name)
                .map(|(_, _, addr)| addr.port());
            let port = if a.port == 0 {
                bound.unwrap_or(0)
            } else {
                a.port
            };
            Endpoint {
                listener: a.name.clone(),
                host: a.host.clone(),
                port: port as i32,
            }
        })
        .collect();

    // The schema registry's listener, bound now so its address is registered with the
    // Kafka endpoints (the other nodes forward changes to the registry's writer there).
    #[cfg(not(madsim))]
    let mut endpoints = endpoints;
    #[cfg(not(madsim))]
    let registry_listener = {
        let addr: String = cfg.known("schema.registry.listener");
        if addr.trim().is_empty() {
            None
        } else {
            let l = crate::registry::bind(addr.trim())
                .await
                .map_err(|e| StartError::Io(format!("schema.registry.listener {addr}"), e))?;
            let bound = crate::registry::local_addr(&l);
            let advertised: String = cfg.known("schema.registry.advertised.listener");
            let (host, port) = match advertised.trim().rsplit_once(':') {
                Some((h, p)) if !h.is_empty() => (h.to_string(), p.parse().unwrap_or(0)),
                _ => {
                    let ip = bound.map(|a| a.ip());
                    let host = match ip {
                        Some(ip) if !ip.is_unspecified() => ip.to_string(),
                        _ => endpoints
                            .first()
                            .map(|e| e.host.clone())
                            .unwrap_or_default(),
                    };
                    (host, bound.map_or(0, |a| a.port() as i32))
                }
            };
            endpoints.push(Endpoint {
                listener: crate::registry::ENDPOINT.to_string(),
                host,
                port,
            });
            Some(l)
        }
    };
    let ctl_client = Arc::new(ControllerClient::new(&cfg.voters));
    let cache = Arc::new(MetadataCache::new());
    cache.set_listing_grace(Duration::from_millis(cfg.session_timeout_ms));
    if let Some(f) = &env.on_image_published {
        cache.observe(f.clone());
    }
    let broker_epoch = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    // The log directory goes offline at its first I/O error (Kafka's rule).
    let guard = crate::log::LogDirGuard::new(storage.clone(), &cfg.log_dir);
    node.log_dir_failure = Some(guard.failure());
    let replicas = Arc::new(
        ReplicaManager::open(
            cfg.node_id,
            cfg.replication_config(),
            cache.clone(),
            ctl_client.clone(),
            broker_epoch.clone(),
            Arc::new(guard),
            &cfg.log_dir,
            cfg.explicit.clone(),
            metrics.clone(),
        )
        .await?,
    );
    let router = Arc::new(handlers::router());
    let groups =
        crate::group::GroupCoordinator::new(cfg.node_id, cfg.group_config(), replicas.clone());
    groups.spawn_ticker();
    let markers = crate::txn::markers::MarkerWriter::new(
        cfg.node_id,
        cfg.replication_config().inter_broker_listener,
        cache.clone(),
        replicas.clone(),
        groups.clone(),
    );
    let txns = crate::txn::coordinator::TransactionCoordinator::new(
        cfg.node_id,
        cfg.txn_config(),
        replicas.clone(),
        markers,
    );
    txns.spawn_ticker();
    let incarnation = uuid::Uuid::from_u128(random_u128()).to_string();
    let broker = Arc::new(Broker::new(
        cfg.clone(),
        cache.clone(),
        replicas.clone(),
        ctl_client.clone(),
        groups.clone(),
        txns,
        router.api_versions(),
        broker_epoch,
        incarnation.clone(),
        metrics.clone(),
        health.clone(),
    ));

    // Register with the quorum, follow the metadata log, and heartbeat until unfenced.
    let cluster_id = stored_cluster_id.clone().unwrap_or_default();
    let epoch = register(
        &broker,
        &incarnation,
        &cluster_id,
        &endpoints,
        replicas.previous_broker_epoch(),
        stop_rx.clone(),
    )
    .await?;
    broker.set_broker_epoch(epoch);
    health.set_registered(true);
    node.tasks.push(tokio::spawn(follow_metadata(
        broker.clone(),
        stop_rx.clone(),
    )));
    if !cache.wait_for(epoch as u64, Duration::from_secs(60)).await {
        return Err(StartError::Registration(
            "metadata did not catch up to this broker's registration".into(),
        ));
    }
    let (fenced_tx, mut fenced_rx) = watch::channel(true);
    node.tasks.push(tokio::spawn(heartbeat(
        broker.clone(),
        incarnation,
        endpoints,
        fenced_tx,
        stop_rx.clone(),
    )));
    node.tasks
        .push(tokio::spawn(hold_session(broker.clone(), stop_rx.clone())));
    let unfenced = tokio::time::timeout(Duration::from_secs(60), fenced_rx.wait_for(|f| !*f)).await;
    if !matches!(unfenced, Ok(Ok(_))) {
        return Err(StartError::Registration(
            "the quorum did not unfence this broker".into(),
        ));
    }
    // Serve only once our own image lists us as live, so the first Metadata answer
    // a client gets from this node already includes this node.
    let me = broker.node_id;
    if !cache
        .wait_until(Duration::from_secs(60), |img| {
            img.brokers.get(&me).is_some_and(|b| !b.fenced)
        })
        .await
    {
        return Err(StartError::Registration(
            "the metadata log never showed this broker unfenced".into(),
        ));
    }
    if let Some(cid) = cache.image().cluster_id.clone() {
        if stored_cluster_id.as_deref() != Some(cid.as_str()) {
            write_meta_properties(storage.as_ref(), &cfg, &cid).await?;
        }
    }
    replicas.spawn_housekeeping(
        Duration::from_millis(cfg.retention_check_interval_ms.max(10)),
        Duration::from_millis(cfg.flush_scheduler_interval_ms.max(10)),
        Duration::from_millis(cfg.checkpoint_interval_ms.max(10)),
        Duration::from_millis(cfg.cleaner_backoff_ms().max(10)),
    );
    let conns =
        crate::server::Connections::new(cfg.connection_limits(), env.connection_resets.clone());
    for (name, sock, addr) in listeners {
        node.kafka_addrs.push((name.clone(), addr));
        node.tasks.push(tokio::spawn(crate::server::serve(
            sock,
            name,
            broker.clone(),
            router.clone(),
            conns.clone(),
        )));
    }
    health.set_serving();
    #[cfg(not(madsim))]
    if let Some(admin) = &admin {
        if let Some((_, addr)) = node.kafka_addrs.first() {
            admin.attach_broker(broker.clone(), conns.clone(), addr.to_string());
        }
    }
    #[cfg(not(madsim))]
    if let (Some(l), Some((_, addr))) = (registry_listener, node.kafka_addrs.first()) {
        let level: String = cfg.known("schema.compatibility.level");
        let default_level = strom_registry::store::Level::parse(&level).ok_or_else(|| {
            StartError::Config(format!(
                "schema.compatibility.level {level:?} is not a compatibility level"
            ))
        })?;
        let reg = crate::registry::Registry::new(
            broker.clone(),
            addr.to_string(),
            strom_registry::api::Config {
                default_level,
                ..Default::default()
            },
        );
        node.registry_addr = crate::registry::local_addr(&l);
        node.tasks.push(tokio::spawn(reg.clone().follow()));
        node.tasks
            .push(tokio::spawn(crate::registry::serve(l, reg)));
    }
    node.broker = Some(broker);
    Ok(node)
}

async fn register(
    b: &Broker,
    incarnation: &str,
    cluster_id: &str,
    endpoints: &[Endpoint],
    previous_broker_epoch: i64,
    stop: watch::Receiver<bool>,
) -> Result<i64, StartError> {
    let req = RegisterBrokerRequest {
        broker_id: b.node_id,
        incarnation_id: incarnation.to_string(),
        cluster_id: cluster_id.to_string(),
        endpoints: endpoints.to_vec(),
        rack: b.config.rack.clone(),
        previous_broker_epoch,
    };
    loop {
        if *stop.borrow() {
            return Err(StartError::Cancelled);
        }
        let res = b
            .controller
            .call(Duration::from_secs(5), |mut c| {
                let r = req.clone();
                async move { c.register_broker(r).await }
            })
            .await;
        match res {
            Ok(r) if r.error_code == 0 => {
                tracing::info!(
                    broker = b.node_id,
                    epoch = r.broker_epoch,
                    "registered with the quorum"
                );
                return Ok(r.broker_epoch);
            }
            Ok(r) if r.error_code == strom_controller::error::code::INCONSISTENT_CLUSTER_ID => {
                return Err(StartError::Registration(r.error_message));
            }
            Ok(r)
                if r.error_code == strom_controller::error::code::DUPLICATE_BROKER_REGISTRATION =>
            {
                // The previous incarnation's session has not ended yet (Kafka's rule):
                // wait for it, as a restarted Kafka broker does.
                tracing::info!(
                    "the previous incarnation's session is still live; waiting to register"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Ok(r) => {
                tracing::info!(code = r.error_code, message = %r.error_message, "registration refused; retrying")
            }
            Err(s) => tracing::info!(status = %s, "quorum not ready; retrying registration"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Follows the metadata log: applies committed batches (or a whole image when far
/// behind), lets the replica manager act on them, then publishes the image.
async fn follow_metadata(b: Arc<Broker>, stop: watch::Receiver<bool>) {
    let mut img = MetadataImage::default();
    let mut applied = 0u64;
    loop {
        if *stop.borrow() {
            return;
        }
        let req = FetchMetadataRequest {
            broker_id: b.node_id,
            after_offset: applied,
            max_wait_ms: 1000,
            max_entries: 1000,
        };
        let res = b
            .controller
            .call(Duration::from_secs(5), |mut c| {
                let r = req;
                async move { c.fetch_metadata(r).await }
            })
            .await;
        let resp = match res {
            Ok(r) => r,
            Err(s) => {
                tracing::debug!(status = %s, "metadata fetch failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let mut changed = false;
        if let Some(snap) = &resp.snapshot {
            img = MetadataImage::from_records(resp.snapshot_offset, &snap.records);
            changed = true;
        }
        for e in &resp.entries {
            if e.offset > applied {
                if let Some(batch) = &e.batch {
                    img.apply_batch(e.offset, &batch.records);
                    changed = true;
                }
            }
        }
        let upto = resp.committed_offset.max(applied);
        if upto > applied || changed {
            applied = upto;
            img.offset = applied;
            if applied >= b.broker_epoch().max(0) as u64 {
                if let Err(e) = b.replicas.reconcile(&img).await {
                    tracing::error!(error = %e, "acting on metadata");
                }
                b.groups.on_metadata(&img);
                b.txns.on_metadata(&img);
            }
            b.cache.publish(Arc::new(img.clone()), applied);
        }
    }
}

/// Heartbeats the quorum every `broker.heartbeat.interval.ms`, reporting the applied
/// metadata offset; re-registers when the quorum no longer knows this incarnation.
async fn heartbeat(
    b: Arc<Broker>,
    incarnation: String,
    endpoints: Vec<Endpoint>,
    fenced: watch::Sender<bool>,
    stop: watch::Receiver<bool>,
) {
    let interval = Duration::from_millis(b.config.heartbeat_interval_ms.max(50));
    let mut first = true;
    loop {
        if *stop.borrow() {
            return;
        }
        if !first {
            // Heartbeat faster while fenced, to be unfenced promptly.
            let wait = if *fenced.borrow() {
                Duration::from_millis(100).min(interval)
            } else {
                interval
            };
            tokio::time::sleep(wait).await;
        }
        first = false;
        let req = BrokerHeartbeatRequest {
            broker_id: b.node_id,
            broker_epoch: b.broker_epoch(),
            applied_offset: b.cache.applied(),
            want_fence: false,
            want_shutdown: false,
            recovery_logs: recovery_logs(&b),
        };
        let res = b
            .controller
            .call(Duration::from_secs(3), |mut c| {
                let r = req.clone();
                async move { c.broker_heartbeat(r).await }
            })
            .await;
        match res {
            Ok(r) if r.error_code == 0 => {
                b.health.heartbeat(r.is_fenced, r.is_caught_up);
                fenced.send_replace(r.is_fenced);
            }
            Ok(r) => {
                let img = b.cache.image();
                let replaced = img.brokers.get(&b.node_id).is_some_and(|reg| {
                    reg.incarnation_id != incarnation && reg.broker_epoch > b.broker_epoch()
                });
                if replaced {
                    tracing::error!(
                        broker = b.node_id,
                        "another process registered with this node id; this one stops serving"
                    );
                    fenced.send_replace(true);
                    return;
                }
                tracing::warn!(code = r.error_code, "heartbeat refused; registering again");
                b.health.set_registered(false);
                let cid = img.cluster_id.clone().unwrap_or_default();
                // Unregistered: a fresh registration (its records fence nothing, since
                // an unregistered broker holds no ISR place).
                if let Ok(epoch) =
                    register(&b, &incarnation, &cid, &endpoints, -1, stop.clone()).await
                {
                    b.set_broker_epoch(epoch);
                    b.health.set_registered(true);
                }
            }
            Err(s) => tracing::debug!(status = %s, "heartbeat failed"),
        }
    }
}

/// The end of this broker's log of every partition it replicates that awaits recovery
/// (see `PartitionImage::awaits_log_recovery`): its latest leader epoch and log end.
fn recovery_logs(b: &Broker) -> Vec<ReplicaLogEnd> {
    let img = b.cache.image();
    let mut out = Vec::new();
    for t in img.topics.values() {
        for (&index, p) in &t.partitions {
            if !p.awaits_log_recovery() || !p.replicas.contains(&b.node_id) {
                continue;
            }
            let Some(part) = b
                .replicas
                .get(&t.name, index)
                .filter(|x| x.topic_id == t.id)
            else {
                continue;
            };
            out.push(ReplicaLogEnd {
                topic_id: t.id.as_bytes().to_vec().into(),
                partition: index,
                last_epoch: part.log.latest_epoch().unwrap_or(-1),
                log_end_offset: part.log.offsets().log_end,
            });
        }
    }
    out
}

impl Node {
    /// Waits until the log directory fails and returns the first error (never returns
    /// on a controller-only node). Kafka halts a broker whose only log directory failed,
    /// without a controlled shutdown, so that its leaderships move to other replicas;
    /// the caller does the same (`halt`, or exiting the process).
    pub async fn log_dir_failure(&self) -> String {
        let Some(mut rx) = self.log_dir_failure.clone() else {
            return std::future::pending().await;
        };
        match rx.wait_for(|f| f.is_some()).await {
            Ok(f) => f.unwrap_or_default(),
            Err(_) => std::future::pending().await,
        }
    }

    /// Stops at once, writing nothing (no controlled shutdown, no checkpoints, no
    /// clean-shutdown marker): what exiting the process does, for nodes that share one.
    pub async fn halt(self) {
        self.health.set_stopping();
        if let Some(b) = &self.broker {
            b.replicas.stop_fetchers();
        }
        self.stop.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
        if let Some(c) = &self.controller {
            c.shutdown().await;
        }
        tracing::error!(node = self.node_id, "halted");
    }

    /// Clean stop: controlled shutdown with the quorum, logs closed with checkpoints and
    /// the clean-shutdown marker, then the controller.
    pub async fn shutdown(self) {
        self.health.set_stopping();
        if let Some(b) = &self.broker {
            controlled_shutdown(b).await;
            b.replicas.stop_fetchers();
        }
        self.stop.send_replace(true);
        for t in &self.tasks {
            t.abort();
        }
        if let Some(b) = &self.broker {
            if let Err(e) = b.replicas.shutdown(b.broker_epoch()).await {
                tracing::error!(error = %e, "closing logs");
            }
        }
        if let Some(c) = &self.controller {
            c.shutdown().await;
        }
        tracing::info!(node = self.node_id, "stopped");
    }
}

/// Controlled shutdown (Kafka's): heartbeat with `want_shutdown` until the controller
/// has moved every leadership away and every active broker knows it (`should_shutdown`),
/// serving meanwhile so that clients move to the new leaders without failed requests.
/// Bounded by `controlled.shutdown.timeout.ms`, and given up after a few seconds without
/// any answer from the quorum (the rest of the cluster is stopping too: nobody could take
/// the leaderships over).
async fn controlled_shutdown(b: &Broker) {
    if !b.config.controlled_shutdown {
        return;
    }
    let started = tokio::time::Instant::now();
    let limit = Duration::from_millis(b.config.controlled_shutdown_timeout_ms);
    let unreachable_limit = Duration::from_millis(b.config.session_timeout_ms / 3);
    let mut last_answer = tokio::time::Instant::now();
    loop {
        if last_answer.elapsed() > unreachable_limit {
            tracing::warn!(
                "the metadata quorum does not answer; stopping without controlled shutdown"
            );
            return;
        }
        let req = BrokerHeartbeatRequest {
            broker_id: b.node_id,
            broker_epoch: b.broker_epoch(),
            applied_offset: b.cache.applied(),
            want_fence: false,
            want_shutdown: true,
            recovery_logs: vec![],
        };
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            tracing::warn!("controlled shutdown timed out; stopping anyway");
            return;
        }
        let res = b
            .controller
            .call(left.min(Duration::from_secs(2)), |mut c| {
                let r = req.clone();
                async move { c.broker_heartbeat(r).await }
            })
            .await;
        match res {
            Ok(r) if r.error_code == 0 && r.should_shutdown => {
                tracing::info!(
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "controlled shutdown complete: this broker leads nothing"
                );
                return;
            }
            Ok(r) if r.error_code != 0 => {
                tracing::warn!(code = r.error_code, "controlled shutdown refused; stopping");
                return;
            }
            Ok(_) => last_answer = tokio::time::Instant::now(),
            Err(s) => tracing::debug!(status = %s, "controlled shutdown heartbeat failed"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Holds the broker's session stream open with the quorum leader, reopening it when it
/// ends (leader change) so the controller can fence this broker the moment its process
/// dies.
async fn hold_session(b: Arc<Broker>, stop: watch::Receiver<bool>) {
    use strom_proto::controller::BrokerSessionRequest;
    loop {
        if *stop.borrow() {
            return;
        }
        let req = BrokerSessionRequest {
            broker_id: b.node_id,
            broker_epoch: b.broker_epoch(),
        };
        let res = b
            .controller
            .call(Duration::from_secs(5), |mut c| {
                let r = req;
                async move { c.broker_session(r).await }
            })
            .await;
        match res {
            Ok(mut stream) => {
                // Wait until the stream ends (this leader stepped down, or its process
                // stopped); events carry nothing else for now.
                while let Ok(Some(_)) = stream.message().await {}
            }
            Err(s) => tracing::debug!(status = %s, "opening the broker session failed"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
