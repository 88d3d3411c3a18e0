//! The partitions this broker hosts: their logs on disk, their leadership as the
//! metadata image says, and the housekeeping of the log directory (checkpoints,
//! retention, flushing, the clean-shutdown marker).
//!
//! Data dir layout under `log.dirs`:
//! - `<topic>-<partition>/` with segments, indexes, producer snapshots and
//!   `partition.metadata` (the topic id, so a re-created topic is told apart);
//! - `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` (Kafka's format);
//! - `replication-offset-checkpoint` (every partition's high watermark, Kafka's format);
//! - `.strom-clean-shutdown`, present only between a clean stop and the next start,
//!   holding the broker epoch of that stop (KIP-966).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicI64;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use parking_lot::RwLock;
use strom_common::clock::now_ms;
use strom_common::topic_config::BrokerLayers;
use strom_controller::metadata::MetadataImage;
use uuid::Uuid;

use kafka_protocol::error::ResponseError;

use super::alter_partition::AlterPartitionSender;
use super::fetcher::FetcherManager;
use super::partition::{FollowerRead, Partition, PartitionSettings, Refusal, Transition};
use super::ReplicationConfig;
use crate::controller_client::ControllerClient;
use crate::log::checkpoint::{decode_checkpoint, encode_checkpoint};
use crate::log::{LogConfig, LogError, OpenOptions, PartitionLog, Storage};
use crate::metadata_cache::MetadataCache;
use crate::metrics::Metrics;

const CLEAN_SHUTDOWN: &str = ".strom-clean-shutdown";
const RECOVERY_POINTS: &str = "recovery-point-offset-checkpoint";
const LOG_STARTS: &str = "log-start-offset-checkpoint";
const HIGH_WATERMARKS: &str = "replication-offset-checkpoint";
const PARTITION_METADATA: &str = "partition.metadata";

/// How many new partition logs `reconcile` creates at once.
const LOG_CREATIONS_AT_ONCE: usize = 16;

/// Partitions by topic name and index.
type TopicMap = BTreeMap<String, BTreeMap<i32, Arc<Partition>>>;

pub struct ReplicaManager {
    node_id: i32,
    /// The broker epoch in the clean-shutdown marker found at start (-1: unclean).
    previous_broker_epoch: i64,
    cfg: ReplicationConfig,
    cache: Arc<MetadataCache>,
    fetchers: Arc<FetcherManager>,
    isr_sender: Arc<AlterPartitionSender>,
    storage: Arc<dyn Storage>,
    log_dir: PathBuf,
    broker_settings: BTreeMap<String, String>,
    topics: RwLock<Arc<TopicMap>>,
    by_id: RwLock<BTreeMap<Uuid, String>>,
    /// Logs found on disk at start, not yet matched with metadata.
    unclaimed: tokio::sync::Mutex<BTreeMap<(String, i32), Arc<PartitionLog>>>,
    metrics: Arc<Metrics>,
}

fn dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

fn parse_dir_name(name: &str) -> Option<(String, i32)> {
    let (t, p) = name.rsplit_once('-')?;
    Some((t.to_string(), p.parse().ok()?))
}

impl ReplicaManager {
    /// Opens every partition log found in `log_dir` (recovering after an unclean stop).
    /// They stay unclaimed until the metadata image names this broker as their replica.
    #[allow(clippy::too_many_arguments)]
    pub async fn open(
        node_id: i32,
        cfg: ReplicationConfig,
        cache: Arc<MetadataCache>,
        controller: Arc<ControllerClient>,
        broker_epoch: Arc<AtomicI64>,
        storage: Arc<dyn Storage>,
        log_dir: &Path,
        broker_settings: BTreeMap<String, String>,
        metrics: Arc<Metrics>,
    ) -> Result<ReplicaManager, LogError> {
        storage.create_dir_all(log_dir).await?;
        let marker = storage.read_file(&log_dir.join(CLEAN_SHUTDOWN)).await?;
        let clean = marker.is_some();
        // KIP-966: the broker epoch of the clean stop, so the controller can tell a clean
        // restart from an unclean one (-1: unclean).
        let previous_broker_epoch = marker
            .as_deref()
            .and_then(parse_clean_shutdown)
            .unwrap_or(-1);
        storage.remove_file(&log_dir.join(CLEAN_SHUTDOWN)).await?;
        let recovery = match storage.read_file(&log_dir.join(RECOVERY_POINTS)).await? {
            Some(raw) => decode_checkpoint(&raw),
            None => BTreeMap::new(),
        };
        let starts = match storage.read_file(&log_dir.join(LOG_STARTS)).await? {
            Some(raw) => decode_checkpoint(&raw),
            None => BTreeMap::new(),
        };
        let hws = match storage.read_file(&log_dir.join(HIGH_WATERMARKS)).await? {
            Some(raw) => decode_checkpoint(&raw),
            None => BTreeMap::new(),
        };
        let mut unclaimed = BTreeMap::new();
        for name in storage.list_dir(log_dir).await? {
            let dir = log_dir.join(&name);
            if name.ends_with("-delete") {
                storage.remove_dir_all(&dir).await?;
                continue;
            }
            let Some((topic, partition)) = parse_dir_name(&name) else {
                continue;
            };
            let Some(meta) = storage.read_file(&dir.join(PARTITION_METADATA)).await? else {
                continue;
            };
            let Some(topic_id) = parse_partition_metadata(&meta) else {
                tracing::warn!(dir = %dir.display(), "unreadable partition.metadata; skipping");
                continue;
            };
            let key = (topic.clone(), partition);
            let opts = OpenOptions {
                clean,
                recovery_point: recovery.get(&key).copied().unwrap_or(0),
                log_start: starts.get(&key).copied().unwrap_or(0),
                high_watermark: hws.get(&key).copied().unwrap_or(0),
                now_ms: now_ms(),
            };
            let t0 = tokio::time::Instant::now();
            let log = PartitionLog::open(
                storage.clone(),
                &dir,
                &topic,
                partition,
                topic_id,
                LogConfig::resolve(&BTreeMap::new(), &broker_settings),
                opts,
            )
            .await?;
            tracing::info!(
                topic,
                partition,
                log_end = log.offsets().log_end,
                clean,
                elapsed_ms = t0.elapsed().as_millis() as u64,
                "loaded partition log"
            );
            unclaimed.insert(key, Arc::new(log));
        }
        let fetchers =
            FetcherManager::new(node_id, cfg.clone(), broker_epoch.clone(), cache.clone());
        let isr_sender = AlterPartitionSender::new(node_id, broker_epoch, controller);
        Ok(ReplicaManager {
            node_id,
            previous_broker_epoch,
            cfg,
            cache,
            fetchers,
            isr_sender,
            storage,
            log_dir: log_dir.to_path_buf(),
            broker_settings,
            topics: RwLock::new(Arc::new(BTreeMap::new())),
            by_id: RwLock::new(BTreeMap::new()),
            unclaimed: tokio::sync::Mutex::new(unclaimed),
            metrics,
        })
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    /// The broker epoch of the last clean stop, -1 when the last stop was not clean.
    pub fn previous_broker_epoch(&self) -> i64 {
        self.previous_broker_epoch
    }

    pub fn broker_settings(&self) -> &BTreeMap<String, String> {
        &self.broker_settings
    }

    /// The hosted partition, by topic name.
    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.topics
            .read()
            .get(topic)
            .and_then(|t| t.get(&partition))
            .cloned()
    }

    /// The hosted partition if this broker leads it, else the Kafka error to answer with
    /// (NOT_LEADER_OR_FOLLOWER for a partition of a known topic, else
    /// UNKNOWN_TOPIC_OR_PARTITION).
    pub fn leader_partition(
        &self,
        img: &MetadataImage,
        topic: &str,
        index: i32,
    ) -> Result<Arc<Partition>, i16> {
        match self.get(topic, index) {
            Some(p) if p.is_leader() => Ok(p),
            Some(_) => Err(ResponseError::NotLeaderOrFollower.code()),
            None => match img.topic_by_name(topic) {
                Some(t) if t.partitions.contains_key(&index) => {
                    Err(ResponseError::NotLeaderOrFollower.code())
                }
                _ => Err(ResponseError::UnknownTopicOrPartition.code()),
            },
        }
    }

    /// The name of a hosted topic by id.
    pub fn topic_name(&self, id: &Uuid) -> Option<String> {
        self.by_id.read().get(id).cloned()
    }

    /// Every hosted partition.
    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.values().cloned())
            .collect()
    }

    /// Brings hosted partitions in line with `img`: creates logs for partitions assigned
    /// here, makes each leader or follower as the image says (starting and stopping
    /// replica fetchers), updates configs, and deletes logs of topics that are gone (or
    /// were re-created with a new id, or moved away from this broker).
    pub async fn reconcile(&self, img: &MetadataImage) -> Result<(), LogError> {
        let current = self.topics.read().clone();
        let mut next: TopicMap = BTreeMap::new();
        let mut removed: Vec<Arc<Partition>> = Vec::new();
        let settings = PartitionSettings {
            max_lag_ms: self.cfg.replica_lag_time_max_ms,
        };
        let now = now_ms();
        // Dynamic broker configs (this broker's, then the cluster-wide ones) beat the
        // node's static settings.
        let per_broker = img.broker_configs(self.node_id);
        let cluster = img.cluster_configs();
        let layers = BrokerLayers {
            per_broker: &per_broker,
            cluster: &cluster,
            static_settings: &self.broker_settings,
        };
        // This runs on every metadata change, over every topic: resolve the layers once
        // for the topics without overrides (most of them), and only for topics this
        // broker hosts.
        let defaults = LogConfig::resolve_layers(&BTreeMap::new(), &layers);
        let config_of = |name: &str| {
            let overrides = img.topic_configs(name);
            if overrides.is_empty() {
                defaults.clone()
            } else {
                LogConfig::resolve_layers(&overrides, &layers)
            }
        };
        let hosts = |t: &strom_controller::metadata::TopicImage| {
            t.partitions
                .values()
                .any(|p| p.replicas.contains(&self.node_id))
        };
        // New partition logs are created several at a time: each is a few files and
        // fsyncs, and a CreateTopics of many partitions is answered once they exist.
        let mut wanted = Vec::new();
        for t in img.topics.values().filter(|t| hosts(t)) {
            let mut config = None;
            for (&index, p) in &t.partitions {
                let exists = current
                    .get(&t.name)
                    .and_then(|m| m.get(&index))
                    .is_some_and(|x| x.topic_id == t.id);
                if p.replicas.contains(&self.node_id) && !exists {
                    let config = config.get_or_insert_with(|| config_of(&t.name)).clone();
                    wanted.push((t.name.clone(), index, t.id, config));
                }
            }
        }
        let mut created: BTreeMap<(String, i32), Arc<PartitionLog>> = BTreeMap::new();
        let mut creations = futures::stream::iter(wanted.into_iter().map(
            |(name, index, id, config)| async move {
                let log = self.claim_or_create(&name, index, id, config).await;
                ((name, index), log)
            },
        ))
        .buffer_unordered(LOG_CREATIONS_AT_ONCE);
        while let Some((key, log)) = creations.next().await {
            created.insert(key, log?);
        }
        drop(creations);
        for t in img.topics.values().filter(|t| hosts(t)) {
            let config = config_of(&t.name);
            for (&index, p) in &t.partitions {
                if !p.replicas.contains(&self.node_id) {
                    continue;
                }
                let existing = current
                    .get(&t.name)
                    .and_then(|m| m.get(&index))
                    .filter(|x| x.topic_id == t.id);
                let part = match existing {
                    Some(x) => {
                        if *x.log.config() != config {
                            x.log.set_config(config.clone());
                        }
                        x.clone()
                    }
                    None => {
                        let log = match created.remove(&(t.name.clone(), index)) {
                            Some(log) => log,
                            None => {
                                self.claim_or_create(&t.name, index, t.id, config.clone())
                                    .await?
                            }
                        };
                        Arc::new(Partition::new(
                            &t.name,
                            index,
                            t.id,
                            log,
                            self.node_id,
                            settings,
                            self.metrics.clone(),
                        ))
                    }
                };
                match part.apply_metadata(p, img, now).await? {
                    Transition::Leader { .. } => self.fetchers.remove(part.topic_id, index),
                    Transition::Follower {
                        leader,
                        leader_epoch,
                    } if leader >= 0 => self.fetchers.add(part.clone(), leader, leader_epoch),
                    Transition::Follower { .. } => self.fetchers.remove(part.topic_id, index),
                    Transition::Updated | Transition::Stale => {}
                }
                next.entry(t.name.clone()).or_default().insert(index, part);
            }
        }
        for (name, parts) in current.iter() {
            for (i, p) in parts {
                let kept = next
                    .get(name)
                    .and_then(|m| m.get(i))
                    .is_some_and(|x| Arc::ptr_eq(x, p));
                if !kept {
                    removed.push(p.clone());
                }
            }
        }
        let by_id: BTreeMap<Uuid, String> = next
            .values()
            .flat_map(|m| m.values().map(|p| (p.topic_id, p.topic.clone())))
            .collect();
        *self.topics.write() = Arc::new(next);
        *self.by_id.write() = by_id;
        for p in removed {
            self.fetchers.remove(p.topic_id, p.index);
            self.delete_log(&p.log).await?;
        }
        // Logs on disk for partitions the image does not give this broker: strays.
        let strays: Vec<Arc<PartitionLog>> = std::mem::take(&mut *self.unclaimed.lock().await)
            .into_values()
            .collect();
        for log in strays {
            tracing::info!(topic = %log.topic, partition = log.partition, "deleting a stray partition log");
            self.delete_log(&log).await?;
        }
        Ok(())
    }

    /// A follower's fetch of one partition led here: the records or the divergence, and
    /// any ISR change it leads to (sent to the controller from here).
    #[allow(clippy::too_many_arguments)]
    pub async fn read_for_follower(
        &self,
        topic: &str,
        index: i32,
        replica: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<FollowerRead, Refusal> {
        let img = self.cache.image();
        let Some(p) = self.get(topic, index) else {
            let code = match img.topic_by_name(topic) {
                Some(t) if t.partitions.contains_key(&index) => ResponseError::NotLeaderOrFollower,
                _ => ResponseError::UnknownTopicOrPartition,
            };
            return Err((code.code(), "not hosted here".into()));
        };
        let registered = img.brokers.get(&replica).map(|b| b.broker_epoch);
        let (read, proposal) = p
            .read_for_follower(
                replica,
                broker_epoch,
                fetch_offset,
                last_fetched_epoch,
                current_leader_epoch,
                max_bytes,
                min_one,
                registered,
                now_ms(),
            )
            .await?;
        if let Some(prop) = proposal {
            tracing::info!(topic, partition = index, replica, isr = ?prop.pending.target(), "expanding the ISR");
            self.isr_sender.submit(p.clone(), prop);
        }
        Ok(read)
    }

    /// Leaders drop ISR members that fell behind (run every `replica.lag.time.max.ms / 2`).
    pub fn shrink_isrs(&self) {
        let now = now_ms();
        for p in self.all() {
            if let Some(prop) = p.maybe_shrink_isr(now) {
                self.isr_sender.submit(p.clone(), prop);
            }
        }
    }

    /// Writes `replication-offset-checkpoint` (every partition's high watermark).
    pub async fn write_high_watermarks(&self) -> Result<(), LogError> {
        let mut hw: Vec<(String, i32, i64)> = self
            .all()
            .iter()
            .map(|p| (p.topic.clone(), p.index, p.log.offsets().high_watermark))
            .collect();
        hw.sort();
        self.storage
            .write_file_atomic(&self.log_dir.join(HIGH_WATERMARKS), &encode_checkpoint(&hw))
            .await?;
        Ok(())
    }

    /// The log directory.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// (total, usable) bytes of the log directory's file system, when known.
    pub fn disk_space(&self) -> Option<(u64, u64)> {
        self.storage.disk_space(&self.log_dir)
    }

    /// The replication settings.
    pub fn replication_config(&self) -> &ReplicationConfig {
        &self.cfg
    }

    /// Stops every replica fetcher (shutdown).
    pub fn stop_fetchers(&self) {
        self.fetchers.clear();
    }

    async fn claim_or_create(
        &self,
        topic: &str,
        index: i32,
        id: Uuid,
        config: LogConfig,
    ) -> Result<Arc<PartitionLog>, LogError> {
        let found = self
            .unclaimed
            .lock()
            .await
            .remove(&(topic.to_string(), index));
        if let Some(log) = found {
            if log.topic_id == id {
                log.set_config(config);
                return Ok(log);
            }
            self.delete_log(&log).await?;
        }
        let dir = self.log_dir.join(dir_name(topic, index));
        self.storage.create_dir_all(&dir).await?;
        let meta = format!("version: 0\ntopic_id: {}\n", id.simple());
        self.storage
            .write_file_atomic(&dir.join(PARTITION_METADATA), meta.as_bytes())
            .await?;
        let log = PartitionLog::open(
            self.storage.clone(),
            &dir,
            topic,
            index,
            id,
            config,
            OpenOptions {
                clean: true,
                recovery_point: 0,
                log_start: 0,
                high_watermark: 0,
                now_ms: now_ms(),
            },
        )
        .await?;
        tracing::info!(topic, partition = index, "created partition log");
        Ok(Arc::new(log))
    }

    async fn delete_log(&self, log: &PartitionLog) -> Result<(), LogError> {
        log.mark_deleted().await;
        let doomed = self.log_dir.join(format!(
            "{}.{}-delete",
            dir_name(&log.topic, log.partition),
            log.topic_id.simple()
        ));
        self.storage.rename(log.dir(), &doomed).await?;
        self.storage.remove_dir_all(&doomed).await?;
        tracing::info!(topic = %log.topic, partition = log.partition, "deleted partition log");
        Ok(())
    }

    /// Writes the recovery-point and log-start checkpoints.
    pub async fn write_checkpoints(&self) -> Result<(), LogError> {
        let mut rp = Vec::new();
        let mut ls = Vec::new();
        for p in self.all() {
            let o = p.log.offsets();
            rp.push((p.topic.clone(), p.index, p.log.recovery_point().await));
            ls.push((p.topic.clone(), p.index, o.log_start));
        }
        rp.sort();
        ls.sort();
        self.write_high_watermarks().await?;
        self.storage
            .write_file_atomic(&self.log_dir.join(RECOVERY_POINTS), &encode_checkpoint(&rp))
            .await?;
        self.storage
            .write_file_atomic(&self.log_dir.join(LOG_STARTS), &encode_checkpoint(&ls))
            .await?;
        Ok(())
    }

    /// Applies retention to every hosted log.
    pub async fn apply_retention(&self) {
        let now = now_ms();
        for p in self.all() {
            if let Err(e) = p.log.apply_retention(now).await {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention");
            }
        }
    }

    /// Forgets producers idle longer than `producer.id.expiration.ms` on every hosted log
    /// (Kafka's producer-id expiration), so producer state does not grow forever.
    pub async fn expire_producers(&self) {
        let now = now_ms();
        let mut forgotten = 0;
        for p in self.all() {
            forgotten += p
                .log
                .expire_producers(now, self.cfg.producer_id_expiration_ms)
                .await;
        }
        if forgotten > 0 {
            tracing::info!(forgotten, "expired idle producer ids");
        }
    }

    /// Compacts logs with `cleanup.policy=compact` that have enough to clean.
    pub async fn compact_due(&self) {
        let now = now_ms();
        for p in self.all() {
            if let Err(e) = p.log.compact(now).await {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "compaction");
            }
        }
    }

    /// Flushes logs whose `flush.ms` has passed.
    pub async fn flush_due(&self) {
        for p in self.all() {
            if let Err(e) = p.log.flush_if_due().await {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush");
            }
        }
    }

    /// Clean stop: close every log (flush, indexes, producer snapshots), write the
    /// checkpoints, then the clean-shutdown marker.
    pub async fn shutdown(&self, broker_epoch: i64) -> Result<(), LogError> {
        self.fetchers.clear();
        for p in self.all() {
            p.log.close().await?;
        }
        for log in self.unclaimed.lock().await.values() {
            log.close().await?;
        }
        self.write_checkpoints().await?;
        self.storage
            .write_file_atomic(
                &self.log_dir.join(CLEAN_SHUTDOWN),
                format!("{{\"version\":0,\"brokerEpoch\":{broker_epoch}}}").as_bytes(),
            )
            .await?;
        Ok(())
    }

    /// Runs retention, flushing and checkpointing on their intervals until the weak
    /// reference dies.
    pub fn spawn_housekeeping(
        self: &Arc<Self>,
        retention_every: Duration,
        flush_every: Duration,
        checkpoint_every: Duration,
        cleaner_every: Duration,
    ) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut next_retention = start + retention_every;
            let mut next_checkpoint = start + checkpoint_every;
            let mut next_clean = start + cleaner_every;
            let (isr_every, hw_every, expire_every) = match weak.upgrade() {
                Some(rm) => (
                    Duration::from_millis((rm.cfg.replica_lag_time_max_ms / 2).max(10) as u64),
                    Duration::from_millis(rm.cfg.hw_checkpoint_interval_ms.max(10)),
                    Duration::from_millis(rm.cfg.producer_id_expiration_check_interval_ms.max(10)),
                ),
                None => return,
            };
            let mut next_isr = start + isr_every;
            let mut next_hw = start + hw_every;
            let mut next_expire = start + expire_every;
            loop {
                tokio::time::sleep(
                    flush_every
                        .min(retention_every)
                        .min(checkpoint_every)
                        .min(cleaner_every)
                        .min(isr_every)
                        .min(hw_every)
                        .min(expire_every),
                )
                .await;
                let Some(rm) = weak.upgrade() else { return };
                let now = tokio::time::Instant::now();
                if now >= next_isr {
                    rm.shrink_isrs();
                    next_isr = now + isr_every;
                }
                if now >= next_hw {
                    if let Err(e) = rm.write_high_watermarks().await {
                        tracing::error!(error = %e, "writing the high-watermark checkpoint");
                    }
                    next_hw = now + hw_every;
                }
                rm.flush_due().await;
                let now = tokio::time::Instant::now();
                if now >= next_retention {
                    rm.apply_retention().await;
                    next_retention = now + retention_every;
                }
                if now >= next_expire {
                    rm.expire_producers().await;
                    next_expire = now + expire_every;
                }
                if now >= next_clean {
                    rm.compact_due().await;
                    next_clean = tokio::time::Instant::now() + cleaner_every;
                }
                if now >= next_checkpoint {
                    if let Err(e) = rm.write_checkpoints().await {
                        tracing::error!(error = %e, "writing checkpoints");
                    }
                    next_checkpoint = now + checkpoint_every;
                }
            }
        });
    }
}

/// The broker epoch in a clean-shutdown marker (`{"version":0,"brokerEpoch":N}`).
fn parse_clean_shutdown(raw: &[u8]) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(raw).ok()?;
    v.get("brokerEpoch")?.as_i64()
}

fn parse_partition_metadata(raw: &[u8]) -> Option<Uuid> {
    let text = String::from_utf8_lossy(raw);
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id:"))
        .and_then(|v| Uuid::parse_str(v.trim()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_dir_names_parse() {
        assert_eq!(
            parse_dir_name("my-topic-3"),
            Some(("my-topic".to_string(), 3))
        );
        assert_eq!(parse_dir_name("x.abc-delete"), None);
    }
}
