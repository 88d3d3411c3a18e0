//! Replica fetchers: one task per source broker, fetching every partition this broker
//! follows from that leader with Kafka's own Fetch (ReplicaState with the broker epoch,
//! the follower's log end and last fetched epoch; KIP-279 truncation on a diverging
//! epoch), in an incremental fetch session (KIP-227): after the first full request only
//! partitions whose fetch state changed are sent, and those no longer fetched are
//! forgotten. The leader's batches are appended as they are; the follower's high
//! watermark follows the leader's.
//!
//! Per partition (Kafka's `AbstractFetcherThread`):
//! - a diverging epoch truncates the log to `min(our end of that epoch, the leader's,
//!   our log end)` and fetches again at once;
//! - OFFSET_OUT_OF_RANGE asks the leader for its log end and start (ListOffsets as a
//!   replica): truncates to the leader's end if ours is beyond it, or empties the log to
//!   start at the leader's log start if ours is below it;
//! - other errors back off `replica.fetch.backoff.ms` (FENCED_LEADER_EPOCH: until the
//!   metadata names the new leader, which re-adds the partition).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::{BrokerId, FetchRequest, ListOffsetsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use parking_lot::Mutex;
use strom_client::{Connection, ConnectionConfig};
use strom_common::clock::now_ms;
use tokio::sync::Notify;
use tokio::time::Instant;
use uuid::Uuid;

use super::partition::Partition;
use super::ReplicationConfig;
use crate::metadata_cache::MetadataCache;

/// A partition a fetcher replicates, and under which leader epoch.
struct Fetching {
    partition: Arc<Partition>,
    leader_epoch: i32,
    delayed_until: Option<Instant>,
}

/// The fetcher of one source broker.
struct Fetcher {
    leader: i32,
    partitions: Mutex<BTreeMap<(Uuid, i32), Fetching>>,
    wake: Notify,
}

/// Every fetcher of this broker, by source broker.
pub struct FetcherManager {
    local_id: i32,
    cfg: ReplicationConfig,
    broker_epoch: Arc<AtomicI64>,
    cache: Arc<MetadataCache>,
    fetchers: Mutex<BTreeMap<i32, Arc<Fetcher>>>,
}

impl FetcherManager {
    pub fn new(
        local_id: i32,
        cfg: ReplicationConfig,
        broker_epoch: Arc<AtomicI64>,
        cache: Arc<MetadataCache>,
    ) -> Arc<FetcherManager> {
        Arc::new(FetcherManager {
            local_id,
            cfg,
            broker_epoch,
            cache,
            fetchers: Mutex::new(BTreeMap::new()),
        })
    }

    /// Fetches `partition` from `leader` in `leader_epoch` (moving it from any other
    /// fetcher).
    pub fn add(self: &Arc<Self>, partition: Arc<Partition>, leader: i32, leader_epoch: i32) {
        let key = (partition.topic_id, partition.index);
        let fetcher = {
            let mut all = self.fetchers.lock();
            for (l, f) in all.iter() {
                if *l != leader {
                    f.partitions.lock().remove(&key);
                }
            }
            all.entry(leader)
                .or_insert_with(|| {
                    let f = Arc::new(Fetcher {
                        leader,
                        partitions: Mutex::new(BTreeMap::new()),
                        wake: Notify::new(),
                    });
                    tokio::spawn(run(Arc::downgrade(self), f.clone()));
                    f
                })
                .clone()
        };
        fetcher.partitions.lock().insert(
            key,
            Fetching {
                partition,
                leader_epoch,
                delayed_until: None,
            },
        );
        fetcher.wake.notify_one();
    }

    /// Stops fetching `partition` (it leads now, lost its leader, or left the broker).
    pub fn remove(&self, topic_id: Uuid, index: i32) {
        for f in self.fetchers.lock().values() {
            f.partitions.lock().remove(&(topic_id, index));
        }
    }

    /// Stops every fetcher (shutdown).
    pub fn clear(&self) {
        self.fetchers.lock().clear();
    }

    fn leader_addr(&self, leader: i32) -> Option<String> {
        let img = self.cache.image();
        let b = img.brokers.get(&leader)?;
        let ep = b
            .endpoints
            .iter()
            .find(|e| e.listener == self.cfg.inter_broker_listener)
            .or_else(|| b.endpoints.first())?;
        Some(format!("{}:{}", ep.host, ep.port))
    }
}

/// The fetch session with the leader, as this follower keeps it.
#[derive(Default)]
struct Session {
    /// 0: none (the next request is full and asks for one).
    id: i32,
    /// The epoch of the next request.
    epoch: i32,
    /// What the session knows of each partition: (fetch offset, leader epoch, last
    /// fetched epoch, log start) as last sent.
    sent: BTreeMap<(Uuid, i32), (i64, i32, i32, i64)>,
}

/// One fetch's worth of a partition.
struct Planned {
    partition: Arc<Partition>,
    leader_epoch: i32,
    fetch_offset: i64,
}

async fn run(manager: Weak<FetcherManager>, f: Arc<Fetcher>) {
    let mut conn: Option<Arc<Connection>> = None;
    let mut session = Session::default();
    loop {
        let Some(m) = manager.upgrade() else { return };
        if !m
            .fetchers
            .lock()
            .get(&f.leader)
            .is_some_and(|x| Arc::ptr_eq(x, &f))
        {
            return; // replaced or cleared
        }
        let backoff = Duration::from_millis(m.cfg.fetch_backoff_ms);
        let now = Instant::now();
        let plan: Vec<Planned> = {
            let mut parts = f.partitions.lock();
            parts.retain(|_, p| p.partition.follows_in(p.leader_epoch));
            parts
                .values()
                .filter(|p| p.delayed_until.is_none_or(|t| t <= now))
                .map(|p| Planned {
                    partition: p.partition.clone(),
                    leader_epoch: p.leader_epoch,
                    fetch_offset: p.partition.log.offsets().log_end,
                })
                .collect()
        };
        if plan.is_empty() {
            let _ =
                tokio::time::timeout(backoff.min(Duration::from_millis(200)), f.wake.notified())
                    .await;
            continue;
        }
        if conn.as_ref().is_none_or(|c| c.is_closed()) {
            conn = None;
            session = Session::default();
            let Some(addr) = m.leader_addr(f.leader) else {
                tokio::time::sleep(backoff).await;
                continue;
            };
            let cfg = ConnectionConfig {
                client_id: format!("strom-replica-fetcher-{}", m.local_id),
                request_timeout: Duration::from_secs(30),
                connect_timeout: Duration::from_secs(5),
                ..Default::default()
            };
            match Connection::connect(&addr, cfg).await {
                Ok(c) => conn = Some(Arc::new(c)),
                Err(e) => {
                    tracing::debug!(leader = f.leader, error = %e, "replica fetcher cannot connect");
                    tokio::time::sleep(backoff).await;
                    continue;
                }
            }
        }
        let c = conn.clone().expect("connected above");
        let broker_epoch = m.broker_epoch.load(Ordering::Acquire);
        let cfg = m.cfg.clone();
        let local_id = m.local_id;
        drop(m);
        match fetch_once(&c, &f, &plan, &mut session, local_id, broker_epoch, &cfg).await {
            Ok(()) => {}
            Err(e) => {
                tracing::debug!(leader = f.leader, error = %e, "replica fetch failed");
                conn = None;
                session = Session::default();
                delay_all(&f, &plan, backoff);
                tokio::time::sleep(backoff.min(Duration::from_millis(100))).await;
            }
        }
    }
}

fn delay(f: &Fetcher, p: &Partition, by: Duration) {
    if let Some(x) = f.partitions.lock().get_mut(&(p.topic_id, p.index)) {
        x.delayed_until = Some(Instant::now() + by);
    }
}

fn delay_all(f: &Fetcher, plan: &[Planned], by: Duration) {
    for p in plan {
        delay(f, &p.partition, by);
    }
}

async fn fetch_once(
    c: &Connection,
    f: &Fetcher,
    plan: &[Planned],
    session: &mut Session,
    local_id: i32,
    broker_epoch: i64,
    cfg: &ReplicationConfig,
) -> Result<(), strom_client::ClientError> {
    let version = c.version_for::<FetchRequest>(16)?;
    let incremental = session.id != 0;
    let mut topics: BTreeMap<Uuid, Vec<FetchPartition>> = BTreeMap::new();
    let mut names: BTreeMap<Uuid, String> = BTreeMap::new();
    let mut now_sent = BTreeMap::new();
    for p in plan {
        let log = &p.partition.log;
        let key = (p.partition.topic_id, p.partition.index);
        let state = (
            p.fetch_offset,
            p.leader_epoch,
            log.latest_epoch().unwrap_or(-1),
            log.offsets().log_start,
        );
        now_sent.insert(key, state);
        names.insert(p.partition.topic_id, p.partition.topic.clone());
        if incremental && session.sent.get(&key) == Some(&state) {
            continue; // unchanged: the session has it
        }
        topics.entry(p.partition.topic_id).or_default().push(
            FetchPartition::default()
                .with_partition(p.partition.index)
                .with_current_leader_epoch(state.1)
                .with_fetch_offset(state.0)
                .with_last_fetched_epoch(state.2)
                .with_log_start_offset(state.3)
                .with_partition_max_bytes(cfg.fetch_max_bytes),
        );
    }
    // Partitions the session has that are no longer fetched (moved, delayed, led here).
    let mut forgotten: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
    if incremental {
        for (tid, p) in session.sent.keys() {
            if !now_sent.contains_key(&(*tid, *p)) {
                forgotten.entry(*tid).or_default().push(*p);
            }
        }
    }
    let topic_name = |id: &Uuid, names: &BTreeMap<Uuid, String>| {
        TopicName(StrBytes::from_string(
            names.get(id).cloned().unwrap_or_default(),
        ))
    };
    let mut req = FetchRequest::default()
        .with_max_wait_ms(cfg.fetch_wait_max_ms)
        .with_min_bytes(cfg.fetch_min_bytes)
        .with_max_bytes(cfg.fetch_response_max_bytes)
        .with_isolation_level(0)
        .with_session_id(session.id)
        .with_session_epoch(if incremental { session.epoch } else { 0 })
        .with_topics(
            topics
                .into_iter()
                .map(|(id, parts)| {
                    FetchTopic::default()
                        .with_topic_id(id)
                        .with_topic(topic_name(&id, &names))
                        .with_partitions(parts)
                })
                .collect(),
        )
        .with_forgotten_topics_data(
            forgotten
                .into_iter()
                .map(|(id, parts)| {
                    ForgottenTopic::default()
                        .with_topic_id(id)
                        .with_topic(topic_name(&id, &names))
                        .with_partitions(parts)
                })
                .collect(),
        );
    if version >= 15 {
        req = req.with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(local_id))
                .with_replica_epoch(broker_epoch),
        );
    } else {
        req = req.with_replica_id(BrokerId(local_id));
    }
    let resp = c.send(req, version).await?;
    let backoff = Duration::from_millis(cfg.fetch_backoff_ms);
    if resp.error_code != 0 {
        // A session error (unknown id, wrong epoch): start over with a full fetch.
        *session = Session::default();
        if resp.error_code != E::FetchSessionIdNotFound.code()
            && resp.error_code != E::InvalidFetchSessionEpoch.code()
            && resp.error_code != E::FetchSessionTopicIdError.code()
        {
            delay_all(f, plan, backoff);
        }
        return Ok(());
    }
    if resp.session_id == 0 {
        *session = Session::default();
    } else {
        session.id = resp.session_id;
        session.epoch = if incremental {
            next_session_epoch(session.epoch)
        } else {
            1
        };
        session.sent = now_sent;
    }
    let by_key: BTreeMap<(Uuid, i32), &Planned> = plan
        .iter()
        .map(|p| ((p.partition.topic_id, p.partition.index), p))
        .collect();
    for t in &resp.responses {
        let id = if version >= 13 {
            t.topic_id
        } else {
            match plan
                .iter()
                .find(|p| p.partition.topic == t.topic.0.as_str())
            {
                Some(p) => p.partition.topic_id,
                None => continue,
            }
        };
        for pd in &t.partitions {
            let Some(p) = by_key.get(&(id, pd.partition_index)) else {
                continue;
            };
            handle_partition(c, f, p, pd, local_id, cfg).await;
        }
    }
    Ok(())
}

async fn handle_partition(
    c: &Connection,
    f: &Fetcher,
    p: &Planned,
    pd: &kafka_protocol::messages::fetch_response::PartitionData,
    local_id: i32,
    cfg: &ReplicationConfig,
) {
    let part = &p.partition;
    let backoff = Duration::from_millis(cfg.fetch_backoff_ms);
    if part.log.offsets().log_end != p.fetch_offset {
        return; // the log changed meanwhile; fetch again from where it is
    }
    match pd.error_code {
        0 => {
            let d = &pd.diverging_epoch;
            if d.epoch >= 0 || d.end_offset >= 0 {
                let to = truncation_offset(part, d.epoch, d.end_offset);
                tracing::info!(
                    topic = %part.topic,
                    partition = part.index,
                    leader = f.leader,
                    diverging_epoch = d.epoch,
                    leader_end_offset = d.end_offset,
                    truncate_to = to,
                    "log diverges from the leader's; truncating"
                );
                if let Err(e) = part
                    .truncate_as_follower(p.leader_epoch, to, now_ms())
                    .await
                {
                    tracing::error!(topic = %part.topic, partition = part.index, error = %e, "truncating");
                    delay(f, part, backoff);
                }
                return;
            }
            if let Some(records) = pd.records.as_ref().filter(|r| !r.is_empty()) {
                match part
                    .append_as_follower(p.leader_epoch, records, now_ms())
                    .await
                {
                    Ok(Some(_)) => {}
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "appending the leader's batches");
                        delay(f, part, backoff);
                        return;
                    }
                }
            }
            if pd.high_watermark >= 0 {
                part.log
                    .update_follower_high_watermark(pd.high_watermark)
                    .await;
            }
            if pd.log_start_offset > part.log.offsets().log_start {
                if let Err(e) = part.log.follow_log_start(pd.log_start_offset).await {
                    tracing::warn!(topic = %part.topic, partition = part.index, error = %e, "following the leader's log start");
                }
            }
        }
        code if code == E::OffsetOutOfRange.code() => {
            if let Err(e) = out_of_range(c, p, local_id).await {
                tracing::info!(topic = %part.topic, partition = part.index, error = %e, "resolving an out-of-range fetch");
                delay(f, part, backoff);
            }
        }
        code => {
            tracing::debug!(topic = %part.topic, partition = part.index, leader = f.leader, code, "replica fetch error; backing off");
            delay(f, part, backoff);
        }
    }
}

fn next_session_epoch(e: i32) -> i32 {
    if e == i32::MAX {
        1
    } else {
        e + 1
    }
}

/// Where to truncate on a diverging epoch (Kafka's `getOffsetTruncationState`).
fn truncation_offset(part: &Partition, epoch: i32, end_offset: i64) -> i64 {
    let log_end = part.log.offsets().log_end;
    if end_offset < 0 {
        return log_end;
    }
    if epoch < 0 {
        return end_offset.min(log_end);
    }
    let (local_epoch, local_end) = part.log.end_offset_for_epoch(epoch);
    if local_epoch < 0 || local_end < 0 {
        end_offset.min(log_end)
    } else if local_epoch == epoch {
        local_end.min(end_offset).min(log_end)
    } else {
        local_end.min(log_end)
    }
}

/// OFFSET_OUT_OF_RANGE: the leader's log end below ours (an unclean election) truncates
/// to it; the leader's log start above ours empties the log to start there.
async fn out_of_range(
    c: &Connection,
    p: &Planned,
    local_id: i32,
) -> Result<(), strom_client::ClientError> {
    let part = &p.partition;
    let leader_end = list_offset(c, p, local_id, -1).await?;
    let local_end = part.log.offsets().log_end;
    if leader_end < local_end {
        tracing::warn!(topic = %part.topic, partition = part.index, leader_end, local_end, "the leader's log is shorter; truncating");
        part.truncate_as_follower(p.leader_epoch, leader_end, now_ms())
            .await
            .map_err(|e| strom_client::ClientError::Encode(e.to_string()))?;
        return Ok(());
    }
    let leader_start = list_offset(c, p, local_id, -2).await?;
    if leader_start > local_end {
        tracing::info!(topic = %part.topic, partition = part.index, leader_start, local_end, "behind the leader's log start; starting again there");
        part.restart_as_follower_at(p.leader_epoch, leader_start, now_ms())
            .await
            .map_err(|e| strom_client::ClientError::Encode(e.to_string()))?;
    }
    Ok(())
}

async fn list_offset(
    c: &Connection,
    p: &Planned,
    local_id: i32,
    timestamp: i64,
) -> Result<i64, strom_client::ClientError> {
    let version = c.version_for::<ListOffsetsRequest>(7)?;
    let req = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(local_id))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(p.partition.topic.clone())))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(p.partition.index)
                .with_current_leader_epoch(p.leader_epoch)
                .with_timestamp(timestamp)])]);
    let resp = c.send(req, version).await?;
    let r = resp
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .ok_or_else(|| strom_client::ClientError::Encode("empty ListOffsets answer".into()))?;
    if r.error_code != 0 {
        return Err(strom_client::ClientError::Kafka(
            strom_client::KafkaError::new(r.error_code),
        ));
    }
    Ok(r.offset)
}
