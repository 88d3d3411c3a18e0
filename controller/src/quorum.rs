//! One controller: the openraft node over the metadata log, its storage, and the write
//! path that turns decisions into committed records. Writes are serialized on the leader
//! and validated against an image that includes every committed record
//! (`ensure_linearizable` first), so two conflicting changes can never both commit.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{BasicNode, Config, ServerState, SnapshotPolicy};
use strom_proto::metadata::{
    metadata_record::Record, ClusterRecord, ConfigRecord, MetadataRecord, ResourceType,
};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::ControllerError;
use crate::metadata::decide::{self, Defaults};
use crate::metadata::records::{encode_batch, record};
use crate::metadata::MetadataImage;
use crate::network::Network;
use crate::store::{Backend, LogStore, SmShared, StateMachineStore};
use crate::types::{NodeId, Payload, Raft};

/// How a controller is set up.
#[derive(Clone)]
pub struct ControllerConfig {
    pub node_id: NodeId,
    /// Every voter's id and internal (gRPC) address, this node included.
    pub voters: BTreeMap<NodeId, String>,
    /// The cluster id to stamp on a new quorum; `None` makes a random one.
    pub cluster_id: Option<String>,
    pub defaults: Defaults,
    /// `broker.session.timeout.ms`.
    pub session_timeout: Duration,
    pub backend: Arc<dyn Backend>,
    /// Build a snapshot after this many log entries.
    pub snapshot_every: u64,
    /// Raft timing: heartbeat and the election timeout range, in ms.
    pub heartbeat_ms: u64,
    pub election_timeout_ms: (u64, u64),
    /// `leader.imbalance.check.interval.seconds` when `auto.leader.rebalance.enable`;
    /// `None` turns preferred-leader balancing off.
    pub leader_imbalance_check_interval: Option<Duration>,
    /// How often leaderless partitions of topics that allow unclean elections are given
    /// a leader (Kafka's internal `unclean.leader.election.interval.ms`).
    pub unclean_election_interval: Duration,
    /// How long a partition awaiting unclean recovery waits for all its replicas to
    /// report their logs before the best of those that did is elected (KIP-966's
    /// `unclean.recovery.timeout.ms`).
    pub unclean_recovery_timeout: Duration,
    /// Told of every applied metadata batch (simulation histories); `None` in production.
    pub on_apply: Option<crate::store::ApplyObserver>,
}

impl ControllerConfig {
    pub fn new(
        node_id: NodeId,
        voters: BTreeMap<NodeId, String>,
        backend: Arc<dyn Backend>,
    ) -> ControllerConfig {
        ControllerConfig {
            node_id,
            voters,
            cluster_id: None,
            defaults: Defaults::default(),
            session_timeout: Duration::from_millis(9000),
            backend,
            snapshot_every: 5000,
            // openraft waits the leader lease (= election_timeout_max) plus a random
            // timeout in the range before electing: 0.75–1 s after the leader went silent.
            heartbeat_ms: 50,
            election_timeout_ms: (250, 500),
            leader_imbalance_check_interval: Some(Duration::from_secs(300)),
            unclean_election_interval: Duration::from_secs(300),
            unclean_recovery_timeout: Duration::from_secs(300),
            on_apply: None,
        }
    }
}

/// What the leader last heard from a broker.
#[derive(Clone, Copy, Debug)]
pub struct Liveness {
    pub last_heartbeat: Instant,
    /// The metadata offset the broker had applied.
    pub applied_offset: u64,
}

/// How long a new quorum leader waits for a broker to reopen its session (or heartbeat)
/// before fencing it, when that is shorter than `broker.session.timeout.ms`. Live brokers
/// retry every 100 ms and reopen within about that of the election; fencing one that is
/// slower only moves its leaderships (it is unfenced at its next heartbeat).
pub const SESSION_REOPEN_GRACE: Duration = Duration::from_millis(500);

/// A running controller.
pub struct Controller {
    pub node_id: NodeId,
    raft: Raft,
    sm: Arc<SmShared>,
    write_lock: Mutex<()>,
    cfg: ControllerConfig,
    /// Last heartbeat of each broker, as seen by this node while leader.
    heartbeats: parking_lot::Mutex<BTreeMap<i32, Liveness>>,
    /// Each broker's latest session stream with this node while leader: how many it has
    /// opened, and whether the latest is still open.
    session_streams: parking_lot::Mutex<BTreeMap<i32, (u64, bool)>>,
    /// Brokers in controlled shutdown, with the metadata offset of the records that
    /// moved their leaderships (Kafka's `controlledShutdownOffset`, kept in memory: the
    /// registration's flag is in the image, and the broker keeps asking after a failover).
    controlled_shutdown: parking_lot::Mutex<BTreeMap<i32, u64>>,
    /// Partitions awaiting unclean recovery: the replicas' logs their brokers reported,
    /// and when this node (while leader) first saw each partition waiting.
    recovery: parking_lot::Mutex<RecoveryState>,
}

#[derive(Default)]
struct RecoveryState {
    reports: decide::RecoveryReports,
    waiting_since: BTreeMap<(uuid::Uuid, i32), Instant>,
}

/// Says which replica each unclean recovery elected, and from what log.
pub fn log_recoveries(recoveries: &[decide::Recovery]) {
    for r in recoveries {
        tracing::warn!(
            topic = %r.topic,
            partition = r.partition,
            leader = r.leader,
            last_epoch = r.log.last_epoch,
            log_end = r.log.log_end,
            all_replicas_reported = r.all_replicas,
            "unclean recovery: elected the replica with the most complete log"
        );
    }
}

fn internal(e: impl std::fmt::Display) -> ControllerError {
    ControllerError::Internal(e.to_string())
}

impl Controller {
    /// Opens the storage, starts the Raft node, initialises the quorum if this node's
    /// storage is pristine, and starts the leader's background duties.
    pub async fn start(cfg: ControllerConfig) -> Result<Arc<Controller>, ControllerError> {
        let raft_config = Config {
            cluster_name: "strom-metadata".into(),
            heartbeat_interval: cfg.heartbeat_ms,
            election_timeout_min: cfg.election_timeout_ms.0,
            election_timeout_max: cfg.election_timeout_ms.1,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(cfg.snapshot_every),
            max_in_snapshot_log_to_keep: 500,
            install_snapshot_timeout: 2000,
            ..Default::default()
        }
        .validate()
        .map_err(internal)?;
        let mut log_store = LogStore::new(cfg.backend.clone());
        let pristine = log_store.is_pristine().await.map_err(internal)?;
        let sm =
            StateMachineStore::open(cfg.backend.clone(), cfg.on_apply.clone()).map_err(internal)?;
        let shared = sm.shared();
        let raft = Raft::new(cfg.node_id, Arc::new(raft_config), Network, log_store, sm)
            .await
            .map_err(internal)?;
        if pristine {
            let members: BTreeMap<NodeId, BasicNode> = cfg
                .voters
                .iter()
                .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
                .collect();
            if let Err(e) = raft.initialize(members).await {
                tracing::info!(error = %e, "quorum already initialised");
            }
        }
        let ctl = Arc::new(Controller {
            node_id: cfg.node_id,
            raft,
            sm: shared,
            write_lock: Mutex::new(()),
            cfg,
            heartbeats: parking_lot::Mutex::new(BTreeMap::new()),
            session_streams: parking_lot::Mutex::new(BTreeMap::new()),
            controlled_shutdown: parking_lot::Mutex::new(BTreeMap::new()),
            recovery: parking_lot::Mutex::new(RecoveryState::default()),
        });
        tokio::spawn(leader_duties(Arc::downgrade(&ctl)));
        Ok(ctl)
    }

    pub fn raft(&self) -> &Raft {
        &self.raft
    }

    pub fn shared(&self) -> &Arc<SmShared> {
        &self.sm
    }

    pub fn defaults(&self) -> &Defaults {
        &self.cfg.defaults
    }

    pub fn session_timeout(&self) -> Duration {
        self.cfg.session_timeout
    }

    /// The current quorum leader, if known.
    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// The internal address of a voter.
    pub fn voter_addr(&self, id: NodeId) -> Option<String> {
        self.cfg.voters.get(&id).cloned()
    }

    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader
    }

    /// Decides against the current image and commits the resulting records as one batch.
    /// Returns the decision's value and the metadata offset the batch committed at (the
    /// current applied offset when there was nothing to write).
    pub async fn write<T>(
        &self,
        decide: impl FnOnce(&MetadataImage) -> Result<(T, Vec<MetadataRecord>), ControllerError>,
    ) -> Result<(T, u64), ControllerError> {
        let _guard = self.write_lock.lock().await;
        self.raft.ensure_linearizable().await.map_err(|e| match e {
            RaftError::APIError(_) => ControllerError::NotController,
            RaftError::Fatal(f) => internal(f),
        })?;
        let (value, records) = self.sm.with_image(decide)?;
        if records.is_empty() {
            let applied = self.sm.with_image(|i| i.offset);
            return Ok((value, applied));
        }
        let payload = Payload(encode_batch(records));
        let res = tokio::time::timeout(Duration::from_secs(30), self.raft.client_write(payload))
            .await
            .map_err(|_| ControllerError::Timeout)?;
        match res {
            Ok(r) => Ok((value, r.log_id.index)),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                Err(ControllerError::NotController)
            }
            Err(e) => Err(internal(e)),
        }
    }

    /// Notes a broker heartbeat (the leader fences brokers whose heartbeats stop).
    pub fn note_heartbeat(&self, broker_id: i32, applied_offset: u64) {
        let now = tokio::time::Instant::now();
        self.heartbeats.lock().insert(
            broker_id,
            Liveness {
                last_heartbeat: now,
                applied_offset,
            },
        );
    }

    /// What this node (while leader) last heard from each broker.
    pub fn liveness(&self) -> BTreeMap<i32, Liveness> {
        self.heartbeats.lock().clone()
    }

    /// Whether the broker's last heartbeat is within the session timeout (Kafka's
    /// `hasValidSession`): a new incarnation must wait for it to end. A session whose
    /// stream closed with no newer one is over at once: the process died (its kernel
    /// closed the socket), or a live one lost its connection and reopens within moments.
    /// That covers the case where the closing could not be committed as a fencing,
    /// because the broker's node died together with a majority of the voters: its next
    /// incarnation registers as soon as the quorum is back rather than after the timeout.
    pub fn has_valid_session(&self, broker_id: i32) -> bool {
        if matches!(
            self.session_streams.lock().get(&broker_id),
            Some((_, false))
        ) {
            return false;
        }
        self.heartbeats
            .lock()
            .get(&broker_id)
            .is_some_and(|l| l.last_heartbeat.elapsed() <= self.cfg.session_timeout)
    }

    /// Ends a broker's session (it was fenced for silence, or its session stream closed).
    pub fn end_session(&self, broker_id: i32) {
        self.heartbeats.lock().remove(&broker_id);
    }

    /// Notes the logs a broker reported for partitions awaiting recovery.
    pub fn note_recovery_logs(
        &self,
        broker_id: i32,
        broker_epoch: i64,
        logs: &[strom_proto::controller::ReplicaLogEnd],
    ) {
        if logs.is_empty() {
            return;
        }
        let mut st = self.recovery.lock();
        for l in logs {
            let Ok(id) = uuid::Uuid::from_slice(&l.topic_id) else {
                continue;
            };
            st.reports.entry((id, l.partition)).or_default().insert(
                broker_id,
                decide::ReplicaLog {
                    broker_epoch,
                    last_epoch: l.last_epoch,
                    log_end: l.log_end_offset,
                },
            );
        }
    }

    /// The unclean recoveries `img` allows with the reports at hand
    /// (`decide::recover_leaderless`); forgets reports of partitions that no longer wait.
    pub fn recovery_decision(
        &self,
        img: &MetadataImage,
    ) -> (Vec<decide::Recovery>, Vec<MetadataRecord>) {
        let timeout = self.cfg.unclean_recovery_timeout;
        let now = Instant::now();
        let mut st = self.recovery.lock();
        let mut waiting = BTreeMap::new();
        for t in img.topics.values() {
            for (&i, p) in &t.partitions {
                if p.awaits_log_recovery() {
                    let since = st.waiting_since.get(&(t.id, i)).copied().unwrap_or(now);
                    waiting.insert((t.id, i), since);
                }
            }
        }
        st.reports.retain(|k, _| waiting.contains_key(k));
        st.waiting_since = waiting;
        let waited = |id, i| {
            st.waiting_since
                .get(&(id, i))
                .is_some_and(|s| now.duration_since(*s) >= timeout)
        };
        decide::recover_leaderless(img, &st.reports, &self.cfg.defaults, waited)
    }

    /// Elects leaders for partitions awaiting unclean recovery where the reported logs
    /// allow it.
    pub async fn recover_leaderless(&self) -> Result<(), ControllerError> {
        let pending = self
            .sm
            .with_image(|img| !self.recovery_decision(img).1.is_empty());
        if !pending {
            return Ok(());
        }
        let (recoveries, _) = self.write(|img| Ok(self.recovery_decision(img))).await?;
        log_recoveries(&recoveries);
        Ok(())
    }

    pub fn controlled_shutdown_offset(&self, broker_id: i32) -> Option<u64> {
        self.controlled_shutdown.lock().get(&broker_id).copied()
    }

    /// Notes (the first time) or forgets the offset at which a broker's controlled
    /// shutdown moved its leaderships.
    pub fn set_controlled_shutdown_offset(&self, broker_id: i32, offset: Option<u64>) {
        let mut m = self.controlled_shutdown.lock();
        match offset {
            Some(o) => {
                m.entry(broker_id).or_insert(o);
            }
            None => {
                m.remove(&broker_id);
            }
        }
    }

    /// The smallest metadata offset applied by the active brokers (unfenced, not shutting
    /// down): a broker in controlled shutdown may stop once everyone knows who leads now.
    pub fn lowest_active_offset(&self) -> u64 {
        let hb = self.heartbeats.lock();
        self.sm.with_image(|img| {
            img.brokers
                .values()
                .filter(|b| b.is_active())
                .filter_map(|b| hb.get(&b.broker_id).map(|l| l.applied_offset))
                .min()
                .unwrap_or(u64::MAX)
        })
    }

    /// Holds a broker's session stream open while this node leads. When the broker's end
    /// closes while the session is current (the process died: the kernel closed its
    /// socket), the broker is fenced at once rather than after the session timeout. A
    /// live broker whose connection breaks is fenced too, and is unfenced at its next
    /// heartbeat once caught up: leadership moves, no data is at risk.
    pub async fn hold_session(
        self: Arc<Self>,
        broker_id: i32,
        broker_epoch: i64,
        tx: tokio::sync::mpsc::Sender<
            Result<strom_proto::controller::BrokerSessionEvent, tonic::Status>,
        >,
    ) {
        let stream = {
            let mut streams = self.session_streams.lock();
            let latest = streams.entry(broker_id).or_default();
            *latest = (latest.0 + 1, true);
            latest.0
        };
        loop {
            tokio::select! {
                // biased: the simulation needs the same choice on every run.
                biased;
                _ = tx.closed() => break,
                // Leadership is checked every 100 ms rather than on openraft's metrics
                // channel: that channel also fires on timing-only changes, which the
                // simulation cannot replay.
                _ = tokio::time::sleep(Duration::from_millis(100)) => {
                    if !self.is_leader() {
                        // The broker reconnects to the new leader.
                        return;
                    }
                }
            }
        }
        if let Some(latest) = self.session_streams.lock().get_mut(&broker_id) {
            if latest.0 == stream {
                latest.1 = false;
            }
        }
        if !self.is_leader() {
            return;
        }
        let closed_at = Instant::now();
        let d = self.cfg.defaults.clone();
        let res = self
            .write(|img| {
                let live = img
                    .brokers
                    .get(&broker_id)
                    .is_some_and(|b| b.broker_epoch == broker_epoch && !b.fenced);
                if !live {
                    return Ok((false, vec![]));
                }
                Ok((true, decide::fence_broker(img, broker_id, &d)))
            })
            .await;
        match res {
            Ok((true, offset)) => {
                self.end_session(broker_id);
                self.set_controlled_shutdown_offset(broker_id, None);
                tracing::warn!(
                    broker = broker_id,
                    offset,
                    commit_ms = closed_at.elapsed().as_millis() as u64,
                    "broker's session closed; fenced it at once"
                );
            }
            Ok((false, _)) => {}
            // The quorum could not commit (say this broker's node died with a majority of
            // the voters): the broker is fenced when its session times out, or when its
            // next incarnation registers (`has_valid_session`: its stream is closed).
            Err(e) => {
                tracing::warn!(broker = broker_id, error = %e, "fencing a broker whose session closed")
            }
        }
    }

    /// Stops the Raft node.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }
}

/// While leader: stamp the cluster id on a new quorum and fence brokers whose heartbeats
/// stopped for the session timeout.
async fn leader_duties(weak: std::sync::Weak<Controller>) {
    let mut was_leader = false;
    let mut known_leader: Option<(u64, Option<NodeId>)> = None;
    let mut next_balance = tokio::time::Instant::now();
    let mut next_unclean = tokio::time::Instant::now();
    let metrics = match weak.upgrade() {
        Some(ctl) => ctl.raft.metrics(),
        None => return,
    };
    loop {
        // Every 50 ms: leadership changes and heartbeat expiry. (Not on openraft's
        // metrics channel: it also fires on timing-only changes, which the simulation
        // cannot replay.) A closed metrics channel means the Raft node shut down: the
        // duties end with it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        if metrics.has_changed().is_err() {
            return;
        }
        let Some(ctl) = weak.upgrade() else { return };
        // openraft's own logs are off by default (it logs every unreachable peer at
        // ERROR); say here what an operator needs: who leads, in which term.
        let (term, leader) = {
            let m = metrics.borrow();
            (m.current_term, m.current_leader)
        };
        if known_leader != Some((term, leader)) {
            match leader {
                Some(l) => tracing::info!(
                    term,
                    leader = l,
                    node = ctl.node_id,
                    "metadata quorum leader"
                ),
                None => tracing::warn!(term, node = ctl.node_id, "metadata quorum has no leader"),
            }
            known_leader = Some((term, leader));
        }
        if !ctl.is_leader() {
            was_leader = false;
            continue;
        }
        if !was_leader {
            if let Some(every) = ctl.cfg.leader_imbalance_check_interval {
                next_balance = tokio::time::Instant::now() + every;
            }
            next_unclean = tokio::time::Instant::now() + ctl.cfg.unclean_election_interval;
            // A new leader gives every unfenced broker a short grace, not a full session:
            // live brokers reopen their session stream (and heartbeat) within moments of
            // an election, which renews their session; a broker whose process died with
            // the old leader (a combined node) does not, and is fenced after the grace.
            let grace = ctl.cfg.session_timeout.min(SESSION_REOPEN_GRACE);
            let now = tokio::time::Instant::now();
            let expires_early = now
                .checked_sub(ctl.cfg.session_timeout.saturating_sub(grace))
                .unwrap_or(now);
            let mut hb = ctl.heartbeats.lock();
            hb.clear();
            ctl.session_streams.lock().clear();
            ctl.controlled_shutdown.lock().clear();
            *ctl.recovery.lock() = RecoveryState::default();
            for id in ctl.sm.with_image(|i| {
                i.brokers
                    .values()
                    .filter(|b| !b.fenced)
                    .map(|b| b.broker_id)
                    .collect::<Vec<_>>()
            }) {
                hb.insert(
                    id,
                    Liveness {
                        last_heartbeat: expires_early,
                        applied_offset: 0,
                    },
                );
            }
            was_leader = true;
        }
        if ctl.sm.with_image(|i| i.cluster_id.is_none()) {
            let cid = ctl.cfg.cluster_id.clone().unwrap_or_else(new_cluster_id);
            let res = ctl
                .write(|img| {
                    if img.cluster_id.is_some() {
                        return Ok(((), vec![]));
                    }
                    Ok((
                        (),
                        vec![record(Record::Cluster(ClusterRecord { cluster_id: cid }))],
                    ))
                })
                .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, "writing the cluster id");
            }
        }
        // KIP-966 (Kafka 4.1): with eligible leader replicas the cluster has one
        // `min.insync.replicas`, so an active controller writes the cluster-wide dynamic
        // config from its own setting when none exists yet. Brokers then report it as
        // DYNAMIC_DEFAULT_BROKER_CONFIG.
        if ctl.sm.with_image(|i| {
            i.cluster_id.is_some() && !i.cluster_configs().contains_key("min.insync.replicas")
        }) {
            let min_isr = ctl.cfg.defaults.min_insync_replicas;
            let res = ctl
                .write(|img| {
                    if img.cluster_configs().contains_key("min.insync.replicas") {
                        return Ok(((), vec![]));
                    }
                    Ok((
                        (),
                        vec![record(Record::Config(ConfigRecord {
                            resource_type: ResourceType::ResourceBroker as i32,
                            resource_name: String::new(),
                            name: "min.insync.replicas".into(),
                            value: Some(min_isr.to_string()),
                        }))],
                    ))
                })
                .await;
            if let Err(e) = res {
                tracing::warn!(error = %e, "writing the cluster-wide min.insync.replicas");
            }
        }
        let expired: Vec<i32> = {
            let now = tokio::time::Instant::now();
            let mut hb = ctl.heartbeats.lock();
            ctl.sm.with_image(|img| {
                let mut expired = Vec::new();
                for b in img.brokers.values().filter(|b| !b.fenced) {
                    match hb.get(&b.broker_id) {
                        // Unfenced by a record this leader committed after taking over
                        // (so not in the map it started with): the same short grace,
                        // not an expired session.
                        None => {
                            let grace = ctl.cfg.session_timeout.min(SESSION_REOPEN_GRACE);
                            let since = now
                                .checked_sub(ctl.cfg.session_timeout.saturating_sub(grace))
                                .unwrap_or(now);
                            hb.insert(
                                b.broker_id,
                                Liveness {
                                    last_heartbeat: since,
                                    applied_offset: 0,
                                },
                            );
                        }
                        Some(l)
                            if now.duration_since(l.last_heartbeat) > ctl.cfg.session_timeout =>
                        {
                            expired.push(b.broker_id)
                        }
                        Some(_) => {}
                    }
                }
                expired
            })
        };
        for id in expired {
            tracing::warn!(broker = id, "broker session expired; fencing it");
            let d = ctl.cfg.defaults.clone();
            let res = ctl
                .write(|img| Ok(((), decide::fence_broker(img, id, &d))))
                .await;
            match res {
                Ok(_) => {
                    ctl.end_session(id);
                    ctl.set_controlled_shutdown_offset(id, None);
                }
                Err(e) => tracing::warn!(error = %e, broker = id, "fencing"),
            }
        }
        if let Err(e) = ctl.recover_leaderless().await {
            tracing::warn!(error = %e, "unclean recovery");
        }
        let now = tokio::time::Instant::now();
        if let Some(every) = ctl.cfg.leader_imbalance_check_interval {
            if now >= next_balance {
                next_balance = now + every;
                let d = ctl.cfg.defaults.clone();
                let res = ctl
                    .write(|img| {
                        let recs = decide::balance_leaders(img, &d, 1000);
                        Ok((recs.len(), recs))
                    })
                    .await;
                match res {
                    Ok((n, _)) if n > 0 => {
                        tracing::info!(partitions = n, "preferred leader election")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "preferred leader election"),
                }
            }
        }
        if now >= next_unclean {
            next_unclean = now + ctl.cfg.unclean_election_interval;
            let d = ctl.cfg.defaults.clone();
            let res = ctl
                .write(|img| {
                    let recs = decide::elect_unclean_leaders(img, &d);
                    Ok((recs.len(), recs))
                })
                .await;
            match res {
                Ok((n, _)) if n > 0 => {
                    tracing::warn!(partitions = n, "unclean leader election")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "unclean leader election"),
            }
        }
    }
}

/// A Kafka-style cluster id: 16 random bytes in URL-safe base64 without padding.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut v = strom_common::clock::random_u128();
    let mut out = String::with_capacity(22);
    for _ in 0..22 {
        out.push(ALPHABET[(v & 63) as usize] as char);
        v >>= 6;
    }
    out
}
