//! One hosted partition: its log and its replication role, as Kafka's `Partition` keeps
//! them.
//!
//! - The metadata image makes it leader or follower (`apply_metadata`: Kafka's
//!   `makeLeader`/`makeFollower`). A new leader epoch starts at the log end, in the epoch
//!   cache at once; a new leader forgets what it knew of followers.
//! - As leader it appends producers' batches (`append_as_leader`) and answers followers'
//!   fetches (`read_for_follower`): diverging epochs, stale incarnations, the followers'
//!   log ends, ISR expansion and the high watermark. `acks=all` waits
//!   (`wait_for_commit`) until the HW passes the batch, and fails if the leader epoch or
//!   role changed meanwhile: a write a new leader might truncate is never acknowledged.
//! - As follower it takes the leader's batches (`append_as_follower`) and truncates where
//!   its log diverged, only while the leader epoch it fetched under is still current.
//!
//! Role changes take the write side of `role_lock`; appends (leader and follower) take
//! its read side, so no batch is written under an epoch that is being replaced (Kafka's
//! `leaderIsrUpdateLock`). It must not reach the metadata cache, the network or the
//! controller: the replica manager passes in what it needs and sends what it returns.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use parking_lot::Mutex;
use strom_common::watch;
use strom_controller::metadata::{MetadataImage, PartitionImage};
use uuid::Uuid;

use super::isr::{LeaderState, PendingIsr};
use crate::error::{batch_error_code, log_error_code};
use crate::log::batch::{validate_batches, ValidBatch};
use crate::log::records;
use crate::log::{AppendInfo, LogConfig, LogError, LogOffsets, PartitionLog, TxnCheck};
use crate::metrics::{Metrics, TopicStats};

/// The partition's metadata as this broker last applied it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionState {
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub replicas: Vec<i32>,
    /// The committed ISR (for a leader: the metadata's, or the controller's last answer).
    pub isr: Vec<i32>,
    pub elr: Vec<i32>,
}

impl PartitionState {
    pub fn from_image(p: &PartitionImage) -> PartitionState {
        PartitionState {
            leader: p.leader,
            leader_epoch: p.leader_epoch,
            partition_epoch: p.partition_epoch,
            replicas: p.replicas.clone(),
            isr: p.isr.clone(),
            elr: p.elr.clone(),
        }
    }
}

/// Replication settings a partition needs (Kafka's names, in `ReplicationConfig`).
#[derive(Clone, Copy, Debug)]
pub struct PartitionSettings {
    /// `replica.lag.time.max.ms`
    pub max_lag_ms: i64,
}

enum Role {
    Leader(LeaderState),
    Follower,
}

struct Inner {
    meta: PartitionState,
    role: Role,
    /// Bumped on every change of role or leader epoch.
    generation: u64,
}

/// A hosted partition.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
    pub log: Arc<PartitionLog>,
    local_id: i32,
    settings: PartitionSettings,
    inner: Mutex<Inner>,
    /// The generation, for waiters that must fail when the role or epoch changes.
    generation: watch::Sender<u64>,
    role_lock: tokio::sync::RwLock<()>,
    /// The node's counters, and this partition's topic's.
    metrics: Arc<Metrics>,
    pub stats: Arc<TopicStats>,
}

/// What applying metadata did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transition {
    /// Became leader, or leads a new epoch starting at `epoch_start`.
    Leader { epoch_start: i64 },
    /// Follows `leader` (-1: nobody leads) in a new epoch or under a new leader.
    Follower { leader: i32, leader_epoch: i32 },
    /// Same role and epoch; the ISR or replicas may have changed.
    Updated,
    /// The metadata was older than what this partition already knows.
    Stale,
}

/// Why a leader-side operation was refused: a Kafka code and message.
pub type Refusal = (i16, String);

fn refuse(code: E, msg: impl Into<String>) -> Refusal {
    (code.code(), msg.into())
}

/// A refused produce: a Kafka code and message, and the records at fault with their
/// index in the batch (KIP-467's `record_errors`).
#[derive(Clone, Debug)]
pub struct ProduceRefusal {
    pub code: i16,
    pub message: String,
    pub record_errors: Vec<(i32, String)>,
}

impl From<Refusal> for ProduceRefusal {
    fn from((code, message): Refusal) -> ProduceRefusal {
        ProduceRefusal {
            code,
            message,
            record_errors: Vec::new(),
        }
    }
}

impl ProduceRefusal {
    fn from_log(e: &LogError) -> ProduceRefusal {
        match e {
            LogError::Records {
                message, errors, ..
            } => ProduceRefusal {
                code: log_error_code(e),
                message: message.clone(),
                record_errors: errors.clone(),
            },
            e => (log_error_code(e), e.to_string()).into(),
        }
    }
}

/// An accepted leader append, for `wait_for_commit`.
#[derive(Clone, Copy, Debug)]
pub struct Appended {
    pub info: AppendInfo,
    pub generation: u64,
}

/// What a follower's fetch gets for one partition.
#[derive(Clone, Debug)]
pub enum FollowerRead {
    Records {
        records: Bytes,
        high_watermark: i64,
        log_start: i64,
    },
    /// Its log diverges: truncate to at most `end_offset` of `epoch` (KIP-279/320).
    Diverging {
        epoch: i32,
        end_offset: i64,
        high_watermark: i64,
        log_start: i64,
    },
}

/// What a consumer's fetch gets for one partition.
#[derive(Clone, Debug)]
pub struct ConsumerRead {
    pub records: Bytes,
    pub offsets: LogOffsets,
    /// read_committed: the aborted transactions overlapping the records returned.
    pub aborted: Vec<crate::log::txn_index::AbortedTxn>,
}

/// An ISR change for the controller, and the state it was proposed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrProposal {
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// (broker, broker epoch the leader knows, -1 unknown) for each new member.
    pub isr: Vec<(i32, i64)>,
    pub pending: PendingIsr,
}

/// The controller's answer to an ISR change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IsrAnswer {
    pub error_code: i16,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<i32>,
}

/// What to do after an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterAnswer {
    Done,
    /// Send the same proposal again.
    Retry,
}

fn check_current_epoch(requested: i32, local: i32) -> Result<(), Refusal> {
    if requested < 0 || requested == local {
        Ok(())
    } else if requested < local {
        Err(refuse(
            E::FencedLeaderEpoch,
            format!("leader epoch {requested} is older than the current {local}"),
        ))
    } else {
        Err(refuse(
            E::UnknownLeaderEpoch,
            format!("leader epoch {requested} is newer than the current {local}"),
        ))
    }
}

impl Partition {
    pub fn new(
        topic: &str,
        index: i32,
        topic_id: Uuid,
        log: Arc<PartitionLog>,
        local_id: i32,
        settings: PartitionSettings,
        metrics: Arc<Metrics>,
    ) -> Partition {
        let (generation, _) = watch::channel(0);
        Partition {
            stats: metrics.topic(topic),
            metrics,
            topic: topic.to_string(),
            index,
            topic_id,
            log,
            local_id,
            settings,
            inner: Mutex::new(Inner {
                meta: PartitionState {
                    leader: -1,
                    leader_epoch: -1,
                    partition_epoch: -1,
                    ..Default::default()
                },
                role: Role::Follower,
                generation: 0,
            }),
            generation,
            role_lock: tokio::sync::RwLock::new(()),
        }
    }

    /// The metadata as applied here.
    pub fn state(&self) -> PartitionState {
        self.inner.lock().meta.clone()
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.inner.lock().role, Role::Leader(_))
    }

    /// The leader epoch this broker leads in, if it leads.
    pub fn leader_epoch_if_leader(&self) -> Option<i32> {
        let i = self.inner.lock();
        matches!(i.role, Role::Leader(_)).then_some(i.meta.leader_epoch)
    }

    /// The first offset of the current epoch while leader (KIP-207, KAFKA-7128).
    pub fn epoch_start_offset(&self) -> Option<i64> {
        match &self.inner.lock().role {
            Role::Leader(l) => Some(l.epoch_start_offset),
            Role::Follower => None,
        }
    }

    /// The ISR as the leader counts it now (committed plus an addition in flight), for
    /// metrics and `strom topic describe` on the leader.
    pub fn maximal_isr(&self) -> Option<Vec<i32>> {
        match &self.inner.lock().role {
            Role::Leader(l) => Some(l.maximal_isr()),
            Role::Follower => None,
        }
    }

    /// The followers' log ends as the leader knows them (-1: unknown).
    pub fn follower_log_ends(&self) -> Vec<(i32, i64)> {
        match &self.inner.lock().role {
            Role::Leader(l) => l.followers.iter().map(|(r, f)| (*r, f.log_end)).collect(),
            Role::Follower => Vec::new(),
        }
    }

    fn bump_generation(&self, inner: &mut Inner) {
        inner.generation += 1;
        self.generation.send_replace(inner.generation);
    }

    /// Applies the partition's metadata: becomes leader or follower, or takes a new ISR.
    pub async fn apply_metadata(
        &self,
        p: &PartitionImage,
        img: &MetadataImage,
        now_ms: i64,
    ) -> Result<Transition, LogError> {
        let new = PartitionState::from_image(p);
        let (leads_now, new_epoch) = {
            let i = self.inner.lock();
            if new.partition_epoch < i.meta.partition_epoch {
                return Ok(Transition::Stale);
            }
            (
                matches!(i.role, Role::Leader(_)),
                new.leader_epoch > i.meta.leader_epoch,
            )
        };
        if new.leader == self.local_id {
            if leads_now && !new_epoch {
                self.update_leader(new, img);
                self.maybe_increment_high_watermark(now_ms).await;
                return Ok(Transition::Updated);
            }
            // makeLeader: stop appends (the role lock), start the epoch at the log end,
            // then lead. A leader that stays leader at a new epoch keeps answering reads
            // meanwhile (as Kafka's leader does under its leader-ISR lock) instead of
            // NOT_LEADER_OR_FOLLOWER; acks=all waiters see the new generation and fail.
            let _guard = self.role_lock.write().await;
            {
                let mut i = self.inner.lock();
                if !leads_now {
                    i.meta = new.clone();
                    i.role = Role::Follower;
                }
                self.bump_generation(&mut i);
            }
            let epoch_start = self.log.assign_epoch_at_end(new.leader_epoch).await?;
            let mut leader =
                LeaderState::new(self.local_id, &new.replicas, &new.isr, epoch_start, now_ms);
            leader.eligible = eligible(img, &new.replicas);
            {
                let mut i = self.inner.lock();
                i.meta = new.clone();
                i.role = Role::Leader(leader);
                self.bump_generation(&mut i);
            }
            drop(_guard);
            self.maybe_increment_high_watermark(now_ms).await;
            tracing::info!(
                topic = %self.topic,
                partition = self.index,
                leader_epoch = new.leader_epoch,
                epoch_start,
                isr = ?new.isr,
                "leading"
            );
            return Ok(Transition::Leader { epoch_start });
        }
        // Someone else leads (or nobody does).
        let changed_leader = {
            let i = self.inner.lock();
            leads_now || new_epoch || i.meta.leader != new.leader
        };
        if !changed_leader {
            self.inner.lock().meta = new;
            return Ok(Transition::Updated);
        }
        let _guard = self.role_lock.write().await;
        let mut i = self.inner.lock();
        i.meta = new.clone();
        i.role = Role::Follower;
        self.bump_generation(&mut i);
        drop(i);
        tracing::info!(
            topic = %self.topic,
            partition = self.index,
            leader = new.leader,
            leader_epoch = new.leader_epoch,
            "following"
        );
        Ok(Transition::Follower {
            leader: new.leader,
            leader_epoch: new.leader_epoch,
        })
    }

    /// Same leader, same epoch: a newer partition epoch replaces the committed ISR (and
    /// drops any proposal in flight, whose answer is then ignored).
    fn update_leader(&self, new: PartitionState, img: &MetadataImage) {
        let mut i = self.inner.lock();
        let newer = new.partition_epoch > i.meta.partition_epoch;
        if let Role::Leader(l) = &mut i.role {
            if newer {
                l.isr = new.isr.clone();
                l.pending = None;
            }
            if l.replicas != new.replicas {
                for r in &new.replicas {
                    if *r != self.local_id && !l.followers.contains_key(r) {
                        l.followers
                            .insert(*r, super::isr::FollowerState::new(false, 0));
                    }
                }
                l.followers.retain(|r, _| new.replicas.contains(r));
                l.replicas = new.replicas.clone();
            }
            l.eligible = eligible(img, &new.replicas);
        }
        if newer || new.partition_epoch == i.meta.partition_epoch {
            i.meta = new;
        }
    }

    pub fn min_isr(&self) -> i32 {
        self.log.config().min_insync_replicas
    }

    /// Recomputes the high watermark from the followers (leader only) and moves it up.
    pub async fn maybe_increment_high_watermark(&self, now_ms: i64) -> bool {
        let target = {
            let i = self.inner.lock();
            let Role::Leader(l) = &i.role else {
                return false;
            };
            let log_end = self.log.offsets().log_end;
            l.high_watermark(log_end, now_ms, self.settings.max_lag_ms, self.min_isr())
        };
        match target {
            Some(hw) if hw > self.log.offsets().high_watermark => {
                self.log.advance_high_watermark(hw).await;
                true
            }
            _ => false,
        }
    }

    /// Checks and appends producer batches as leader. With `acks=all`, the committed ISR
    /// must be at least `min.insync.replicas` (capped at the replica count) first. `txn`:
    /// how a batch starting a transaction is checked (KIP-890 for clients).
    pub async fn append_as_leader(
        &self,
        records: Option<&Bytes>,
        acks: i16,
        now_ms: i64,
        txn: TxnCheck,
    ) -> Result<Appended, ProduceRefusal> {
        let config = self.log.config();
        let Some(records) = records else {
            return Err(refuse(E::InvalidRecord, "null records").into());
        };
        let batches = validate_batches(records, config.max_message_bytes).map_err(|e| {
            tracing::debug!(topic = %self.topic, partition = self.index, error = %e, "refused a record batch");
            ProduceRefusal::from((batch_error_code(&e), e.to_string()))
        })?;
        let batches = check_records(batches, config.clone(), now_ms)
            .await
            .map_err(|e| {
                tracing::info!(topic = %self.topic, partition = self.index, error = %e, "refused a record batch");
                ProduceRefusal::from_log(&e)
            })?;
        let _guard = self.role_lock.read().await;
        let (epoch, generation) = {
            let i = self.inner.lock();
            let Role::Leader(l) = &i.role else {
                return Err(refuse(
                    E::NotLeaderOrFollower,
                    "this broker does not lead the partition",
                )
                .into());
            };
            if acks == -1 && l.under_min_isr(config.min_insync_replicas) {
                return Err(refuse(
                    E::NotEnoughReplicas,
                    format!(
                        "the ISR {:?} is smaller than min.insync.replicas {}",
                        l.isr,
                        l.effective_min_isr(config.min_insync_replicas)
                    ),
                )
                .into());
            }
            (i.meta.leader_epoch, i.generation)
        };
        let info = self
            .log
            .append_checked(&batches, epoch, now_ms, txn)
            .await
            .map_err(|e| {
                tracing::debug!(topic = %self.topic, partition = self.index, error = %e, "append refused");
                ProduceRefusal::from_log(&e)
            })?;
        drop(_guard);
        TopicStats::add(&self.stats.bytes_in, records.len() as u64);
        TopicStats::add(
            &self.stats.records_in,
            (info.last_offset - info.first_offset + 1).max(0) as u64,
        );
        self.maybe_increment_high_watermark(now_ms).await;
        Ok(Appended { info, generation })
    }

    /// Waits until the high watermark passes `appended` (acks=all). Fails with
    /// NOT_LEADER_OR_FOLLOWER as soon as the role or leader epoch changes,
    /// NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank below min ISR meanwhile, and
    /// REQUEST_TIMED_OUT at the deadline.
    pub async fn wait_for_commit(
        &self,
        appended: &Appended,
        deadline: tokio::time::Instant,
    ) -> Result<(), Refusal> {
        let required = appended.info.last_offset + 1;
        if appended.info.last_offset < 0 {
            return Ok(());
        }
        let mut offsets = self.log.subscribe();
        let mut generation = self.generation.subscribe();
        loop {
            {
                let i = self.inner.lock();
                if i.generation != appended.generation {
                    return Err(refuse(
                        E::NotLeaderOrFollower,
                        "leadership changed before the write was replicated",
                    ));
                }
                let Role::Leader(l) = &i.role else {
                    return Err(refuse(E::NotLeaderOrFollower, "no longer the leader"));
                };
                if self.log.offsets().high_watermark >= required {
                    let min = l.effective_min_isr(self.min_isr());
                    if l.maximal_isr().len() < min {
                        return Err(refuse(
                            E::NotEnoughReplicasAfterAppend,
                            "the ISR shrank below min.insync.replicas while waiting",
                        ));
                    }
                    return Ok(());
                }
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let woke = tokio::time::timeout(left, async {
                tokio::select! {
                    // biased: the simulation needs the same choice on every run.
                    biased;
                    r = offsets.changed() => r.is_ok(),
                    r = generation.changed() => r.is_ok(),
                }
            })
            .await;
            match woke {
                Err(_) => {
                    return Err(refuse(
                        E::RequestTimedOut,
                        "timed out waiting for in-sync replicas",
                    ))
                }
                Ok(false) => return Err(refuse(E::NotLeaderOrFollower, "partition closed")),
                Ok(true) => {}
            }
        }
    }

    /// OffsetForLeaderEpoch: after the current-epoch check, the largest epoch at or below
    /// `epoch` and the offset where it ended here (leader only).
    pub fn answer_epoch_end(
        &self,
        current_leader_epoch: i32,
        epoch: i32,
    ) -> Result<(i32, i64), Refusal> {
        {
            let i = self.inner.lock();
            check_current_epoch(current_leader_epoch, i.meta.leader_epoch)?;
            if !matches!(i.role, Role::Leader(_)) {
                return Err(refuse(E::NotLeaderOrFollower, "not the leader"));
            }
        }
        Ok(self.log.end_offset_for_epoch(epoch))
    }

    /// The leader's answer to a consumer fetch: records below the high watermark.
    pub async fn read_for_consumer(
        &self,
        fetch_offset: i64,
        current_leader_epoch: i32,
        max_bytes: usize,
        min_one: bool,
        read_committed: bool,
    ) -> Result<ConsumerRead, (i16, Option<LogOffsets>)> {
        {
            let i = self.inner.lock();
            check_current_epoch(current_leader_epoch, i.meta.leader_epoch)
                .map_err(|(c, _)| (c, None))?;
            if !matches!(i.role, Role::Leader(_)) {
                return Err((E::NotLeaderOrFollower.code(), None));
            }
        }
        let read = if read_committed {
            self.log
                .read_committed(fetch_offset, max_bytes, min_one)
                .await
        } else {
            self.log.read(fetch_offset, max_bytes, min_one, false).await
        };
        match read {
            Ok(r) => Ok(ConsumerRead {
                aborted: match crate::log::batch::walk(&r.records).last() {
                    Some((h, _)) if read_committed => self
                        .log
                        .aborted_transactions(fetch_offset, h.last_offset() + 1),
                    _ => Vec::new(),
                },
                records: r.records,
                offsets: r.offsets,
            }),
            Err(e) => Err((log_error_code(&e), Some(self.log.offsets()))),
        }
    }

    /// The leader's answer to a follower's fetch (Kafka's `fetchRecords` for followers),
    /// and the ISR change it leads to, if any.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_for_follower(
        &self,
        replica: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        current_leader_epoch: i32,
        max_bytes: usize,
        min_one: bool,
        registered_epoch: Option<i64>,
        now_ms: i64,
    ) -> Result<(FollowerRead, Option<IsrProposal>), Refusal> {
        {
            let i = self.inner.lock();
            check_current_epoch(current_leader_epoch, i.meta.leader_epoch)?;
            let Role::Leader(l) = &i.role else {
                return Err(refuse(E::NotLeaderOrFollower, "not the leader"));
            };
            if !l.followers.contains_key(&replica) {
                let code = if current_leader_epoch >= 0 {
                    E::UnknownLeaderEpoch
                } else {
                    E::NotLeaderOrFollower
                };
                return Err(refuse(
                    code,
                    format!("broker {replica} is not a replica of this partition"),
                ));
            }
        }
        // KIP-903: a fetch from an older incarnation of the broker is refused.
        if broker_epoch != -1 && registered_epoch.is_some_and(|e| e > broker_epoch) {
            return Err(refuse(
                E::NotLeaderOrFollower,
                format!("fetch with stale broker epoch {broker_epoch}"),
            ));
        }
        let before = self.log.offsets();
        if last_fetched_epoch >= 0 {
            let (epoch, end) = self.log.end_offset_for_epoch(last_fetched_epoch);
            if epoch < 0 || end < 0 || fetch_offset < before.log_start {
                return Err(refuse(
                    E::OffsetOutOfRange,
                    format!("cannot place offset {fetch_offset} of epoch {last_fetched_epoch}"),
                ));
            }
            if epoch < last_fetched_epoch || end < fetch_offset {
                return Ok((
                    FollowerRead::Diverging {
                        epoch,
                        end_offset: end,
                        high_watermark: before.high_watermark,
                        log_start: before.log_start,
                    },
                    None,
                ));
            }
        }
        let read = self
            .log
            .read(fetch_offset, max_bytes, min_one, true)
            .await
            .map_err(|e| (log_error_code(&e), e.to_string()))?;
        let proposal = {
            let mut i = self.inner.lock();
            let Role::Leader(l) = &mut i.role else {
                return Err(refuse(E::NotLeaderOrFollower, "not the leader"));
            };
            let f = l
                .followers
                .get_mut(&replica)
                .expect("checked above, under the same role");
            f.on_fetch(fetch_offset, now_ms, before.log_end, broker_epoch)
                .map_err(|e| refuse(E::NotLeaderOrFollower, e.to_string()))?;
            let hw = self.log.offsets().high_watermark;
            if l.should_expand(replica, hw) {
                let mut isr = l.isr.clone();
                isr.push(replica);
                let proposal = IsrProposal {
                    leader_epoch: i.meta.leader_epoch,
                    partition_epoch: i.meta.partition_epoch,
                    isr: Vec::new(),
                    pending: PendingIsr::Expand { replica, isr },
                };
                let Role::Leader(l) = &mut i.role else {
                    unreachable!("still the leader under the same lock")
                };
                l.pending = Some(proposal.pending.clone());
                Some(with_epochs(proposal, l, self.local_id))
            } else {
                None
            }
        };
        self.maybe_increment_high_watermark(now_ms).await;
        Ok((
            FollowerRead::Records {
                records: read.records,
                high_watermark: before.high_watermark,
                log_start: before.log_start,
            },
            proposal,
        ))
    }

    /// ISR members that fell behind for `replica.lag.time.max.ms` leave (leader only, no
    /// change in flight): the proposal to send, if any.
    pub fn maybe_shrink_isr(&self, now_ms: i64) -> Option<IsrProposal> {
        let mut i = self.inner.lock();
        let (leader_epoch, partition_epoch) = (i.meta.leader_epoch, i.meta.partition_epoch);
        let Role::Leader(l) = &mut i.role else {
            return None;
        };
        let log_end = self.log.offsets().log_end;
        let out = l.out_of_sync(log_end, now_ms, self.settings.max_lag_ms);
        if out.is_empty() {
            return None;
        }
        let isr: Vec<i32> = l.isr.iter().copied().filter(|r| !out.contains(r)).collect();
        tracing::info!(
            topic = %self.topic,
            partition = self.index,
            out_of_sync = ?out,
            isr = ?isr,
            "shrinking the ISR"
        );
        let pending = PendingIsr::Shrink { isr };
        l.pending = Some(pending.clone());
        Some(with_epochs(
            IsrProposal {
                leader_epoch,
                partition_epoch,
                isr: Vec::new(),
                pending,
            },
            l,
            self.local_id,
        ))
    }

    /// Applies the controller's answer to `proposal` (Kafka's `handleAlterPartitionUpdate`
    /// and `handleAlterPartitionError`).
    pub async fn on_isr_answer(
        &self,
        proposal: &IsrProposal,
        answer: &IsrAnswer,
        local_broker_epoch: i64,
        now_ms: i64,
    ) -> AfterAnswer {
        let _ = local_broker_epoch;
        let committed = {
            let mut i = self.inner.lock();
            let (leader_epoch, partition_epoch) = (i.meta.leader_epoch, i.meta.partition_epoch);
            let Role::Leader(l) = &mut i.role else {
                return AfterAnswer::Done;
            };
            if l.pending.as_ref() != Some(&proposal.pending) {
                return AfterAnswer::Done; // metadata overtook it
            }
            match answer.error_code {
                0 => {
                    if answer.leader_epoch != leader_epoch
                        || answer.partition_epoch < partition_epoch
                    {
                        return AfterAnswer::Done; // stay pending until metadata arrives
                    }
                    let counter = match proposal.pending {
                        PendingIsr::Expand { .. } => &self.metrics.isr_expands,
                        PendingIsr::Shrink { .. } => &self.metrics.isr_shrinks,
                    };
                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    l.isr = answer.isr.clone();
                    l.pending = None;
                    i.meta.isr = answer.isr.clone();
                    i.meta.partition_epoch = answer.partition_epoch;
                    true
                }
                c if c == E::IneligibleReplica.code() || c == E::OperationNotAttempted.code() => {
                    l.pending = None;
                    false
                }
                c if c == E::UnknownTopicOrPartition.code()
                    || c == E::UnknownTopicId.code()
                    || c == E::FencedLeaderEpoch.code()
                    || c == E::InvalidUpdateVersion.code()
                    || c == E::InvalidRequest.code()
                    || c == E::NewLeaderElected.code() =>
                {
                    return AfterAnswer::Done;
                }
                _ => return AfterAnswer::Retry,
            }
        };
        if committed {
            tracing::info!(topic = %self.topic, partition = self.index, isr = ?answer.isr, partition_epoch = answer.partition_epoch, "ISR changed");
            self.maybe_increment_high_watermark(now_ms).await;
        }
        AfterAnswer::Done
    }

    /// Appends the leader's batches while still following in `leader_epoch`; `Ok(None)`
    /// when the partition moved on (the batches are dropped).
    pub async fn append_as_follower(
        &self,
        leader_epoch: i32,
        records: &Bytes,
        now_ms: i64,
    ) -> Result<Option<i64>, LogError> {
        let _guard = self.role_lock.read().await;
        if !self.follows_in(leader_epoch) {
            return Ok(None);
        }
        TopicStats::add(&self.stats.replication_bytes_in, records.len() as u64);
        self.log.append_as_follower(records, now_ms).await.map(Some)
    }

    /// Truncates to `offset` while still following in `leader_epoch`.
    pub async fn truncate_as_follower(
        &self,
        leader_epoch: i32,
        offset: i64,
        now_ms: i64,
    ) -> Result<Option<i64>, LogError> {
        let _guard = self.role_lock.read().await;
        if !self.follows_in(leader_epoch) {
            return Ok(None);
        }
        self.log.truncate_to(offset, now_ms).await.map(Some)
    }

    /// Empties the log to start at the leader's log start, while still following.
    pub async fn restart_as_follower_at(
        &self,
        leader_epoch: i32,
        offset: i64,
        now_ms: i64,
    ) -> Result<bool, LogError> {
        let _guard = self.role_lock.read().await;
        if !self.follows_in(leader_epoch) {
            return Ok(false);
        }
        self.log.truncate_fully_and_start_at(offset, now_ms).await?;
        Ok(true)
    }

    /// Appends as leader and waits like `acks=all` (internal writers: the group
    /// coordinator), at most `timeout`. `txn`: how a write starting a transaction is
    /// checked (a TxnOffsetCommit's, with its KIP-890 guard).
    pub async fn append_and_wait(
        &self,
        records: &Bytes,
        timeout: std::time::Duration,
        now_ms: i64,
        txn: TxnCheck,
    ) -> Result<AppendInfo, Refusal> {
        let deadline = tokio::time::Instant::now() + timeout;
        let appended = self
            .append_as_leader(Some(records), -1, now_ms, txn)
            .await
            .map_err(|r| (r.code, r.message))?;
        self.wait_for_commit(&appended, deadline).await?;
        Ok(appended.info)
    }

    /// Appends a transaction marker as leader (WriteTxnMarkers) and waits like
    /// `acks=all`, at most `timeout`, as Kafka writes markers.
    pub async fn append_marker_and_wait(
        &self,
        m: &crate::log::marker::Marker,
        timeout: std::time::Duration,
        now_ms: i64,
    ) -> Result<crate::log::producer_state::CompletedTxn, Refusal> {
        let deadline = tokio::time::Instant::now() + timeout;
        let guard = self.role_lock.read().await;
        let (epoch, generation) = {
            let i = self.inner.lock();
            if !matches!(i.role, Role::Leader(_)) {
                return Err(refuse(
                    E::NotLeaderOrFollower,
                    "this broker does not lead the partition",
                ));
            }
            (i.meta.leader_epoch, i.generation)
        };
        let done = self
            .log
            .append_marker(m, epoch, now_ms)
            .await
            .map_err(|e| {
                tracing::info!(topic = %self.topic, partition = self.index, error = %e, "marker refused");
                (crate::error::log_error_code(&e), e.to_string())
            })?;
        drop(guard);
        self.maybe_increment_high_watermark(now_ms).await;
        let info = AppendInfo {
            first_offset: done.last_offset,
            last_offset: done.last_offset,
            log_append_time: -1,
            log_start: self.log.offsets().log_start,
            appended_records: 1,
        };
        self.wait_for_commit(&Appended { info, generation }, deadline)
            .await?;
        Ok(done)
    }

    /// Whether `proposal` is still the change in flight.
    pub fn is_pending(&self, proposal: &IsrProposal) -> bool {
        match &self.inner.lock().role {
            Role::Leader(l) => l.pending.as_ref() == Some(&proposal.pending),
            Role::Follower => false,
        }
    }

    /// Whether this broker follows in `leader_epoch` now.
    pub fn follows_in(&self, leader_epoch: i32) -> bool {
        let i = self.inner.lock();
        matches!(i.role, Role::Follower) && i.meta.leader_epoch == leader_epoch
    }
}

/// Active replicas (may join the ISR) with their registered broker epochs.
fn eligible(img: &MetadataImage, replicas: &[i32]) -> std::collections::BTreeMap<i32, i64> {
    replicas
        .iter()
        .filter_map(|r| {
            img.brokers
                .get(r)
                .filter(|b| b.is_active())
                .map(|b| (*r, b.broker_epoch))
        })
        .collect()
}

/// Fills in the broker epochs of the proposed ISR (the leader's own is the caller's to
/// set; others are what their last fetch said).
fn with_epochs(mut p: IsrProposal, l: &LeaderState, local_id: i32) -> IsrProposal {
    p.isr = p
        .pending
        .target()
        .iter()
        .map(|&r| {
            let e = if r == local_id {
                -1
            } else {
                l.followers.get(&r).map_or(-1, |f| f.broker_epoch)
            };
            (r, e)
        })
        .collect();
    p
}

/// What the produce handler reports for one partition.
pub struct ProduceOutcome {
    pub error_code: i16,
    pub error_message: Option<String>,
    pub info: Option<AppendInfo>,
}

/// Runs the record-level checks ([`records::check_for_append`]) of a producer's
/// batches. Uncompressed small requests are walked in place; compressed or large ones on
/// a blocking thread, at most [`INFLATE_SLOTS`] at a time across the node, so inflating
/// (bounded per batch) neither stalls the async workers nor multiplies its memory by
/// the number of connections.
async fn check_records(
    batches: Vec<ValidBatch>,
    config: Arc<LogConfig>,
    now_ms: i64,
) -> Result<Vec<ValidBatch>, LogError> {
    let heavy = batches
        .iter()
        .any(|b| b.header.compression() != 0 || b.bytes.len() > 256 << 10);
    if !heavy {
        return records::check_for_append(&batches, &config, now_ms);
    }
    let slots = INFLATE_PERMITS.get_or_init(|| tokio::sync::Semaphore::new(INFLATE_SLOTS));
    let _permit = slots.acquire().await.expect("never closed");
    // The simulation has no blocking threads: it checks in place.
    #[cfg(madsim)]
    return records::check_for_append(&batches, &config, now_ms);
    #[cfg(not(madsim))]
    tokio::task::spawn_blocking(move || records::check_for_append(&batches, &config, now_ms))
        .await
        .unwrap_or_else(|e| {
            Err(LogError::UnexpectedAppend(format!(
                "record checks did not finish: {e}"
            )))
        })
}

/// Concurrent record checks of compressed batches on one node.
const INFLATE_SLOTS: usize = 4;
static INFLATE_PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
