//! The group coordinator of one broker. A group lives in the `__consumer_offsets`
//! partition `partition_for(group)`; the broker leading that partition coordinates it:
//! it loads the partition when it becomes leader (answering COORDINATOR_LOAD_IN_PROGRESS
//! meanwhile), writes every change as records to it (acks=all), and forgets the groups
//! when leadership moves (NOT_COORDINATOR), so group state follows the partition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use parking_lot::Mutex;
use prost::Message;
use strom_controller::metadata::MetadataImage;
use strom_proto::group::{
    ClassicGroupValue, ClassicMember, ConsumerGroupValue, OffsetValue, TargetAssignment,
    TopicPartitions,
};
use tokio::sync::Mutex as AsyncMutex;
use tokio::time::Instant;
use uuid::Uuid;

use super::classic::{ClassicConfig, ClassicGroup, ClassicState, MigratedMember};
use super::consumer::{Assignment, ClassicMeta, ConsumerConfig, ConsumerGroup, ConsumerMember};
use super::store::{self, Loaded};
use crate::replication::{Partition, ReplicaManager};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Settings of the coordinator (Kafka's names and defaults).
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub classic: ClassicConfig,
    pub consumer: ConsumerConfig,
    /// `offsets.topic.num.partitions`
    pub offsets_partitions: i32,
    /// `offsets.retention.minutes`, in ms.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`
    pub retention_check_interval_ms: u64,
    /// `offset.metadata.max.bytes`
    pub offset_metadata_max_bytes: usize,
    /// `group.consumer.migration.policy`
    pub migration_policy: MigrationPolicy,
}

/// `group.consumer.migration.policy` (KIP-848): whether a non-empty classic group may
/// become a consumer group when a consumer-protocol member joins (upgrade), and a
/// consumer group go back to classic when only classic members are left (downgrade).
/// Empty groups change protocol whatever the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationPolicy {
    Bidirectional,
    Upgrade,
    Downgrade,
    Disabled,
}

impl MigrationPolicy {
    /// Kafka's parse: case-insensitive, anything unknown is `disabled`.
    pub fn parse(s: &str) -> MigrationPolicy {
        match s.trim().to_ascii_lowercase().as_str() {
            "bidirectional" => MigrationPolicy::Bidirectional,
            "upgrade" => MigrationPolicy::Upgrade,
            "downgrade" => MigrationPolicy::Downgrade,
            _ => MigrationPolicy::Disabled,
        }
    }

    pub fn upgrade(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Upgrade
        )
    }

    pub fn downgrade(self) -> bool {
        matches!(
            self,
            MigrationPolicy::Bidirectional | MigrationPolicy::Downgrade
        )
    }
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            classic: ClassicConfig::default(),
            consumer: ConsumerConfig::default(),
            offsets_partitions: 50,
            offsets_retention_ms: 7 * 24 * 3600 * 1000,
            retention_check_interval_ms: 600_000,
            migration_policy: MigrationPolicy::Bidirectional,
            offset_metadata_max_bytes: 4096,
        }
    }
}

/// A group's protocol state.
pub enum GroupKind {
    Classic(ClassicGroup),
    Consumer(ConsumerGroup),
}

/// A group: its protocol state and committed offsets.
pub struct GroupEntry {
    pub id: String,
    pub partition: i32,
    pub kind: GroupKind,
    pub offsets: BTreeMap<(String, i32), OffsetValue>,
}

impl GroupEntry {
    /// No members (classic Empty, or a consumer group without members).
    pub fn is_empty(&self) -> bool {
        match &self.kind {
            GroupKind::Classic(g) => g.is_empty(),
            GroupKind::Consumer(g) => g.members.is_empty(),
        }
    }

    pub fn state_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(g) => g.state.name(),
            GroupKind::Consumer(g) => g.state_name(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            GroupKind::Classic(_) => "classic",
            GroupKind::Consumer(_) => "consumer",
        }
    }

    pub fn protocol_type(&self) -> String {
        match &self.kind {
            GroupKind::Classic(g) => g.protocol_type.clone().unwrap_or_default(),
            GroupKind::Consumer(_) => "consumer".to_string(),
        }
    }

    fn state_since(&self) -> Instant {
        match &self.kind {
            GroupKind::Classic(g) => g.state_since,
            GroupKind::Consumer(g) => g.state_since,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Load {
    Loading,
    Loaded,
}

pub type GroupHandle = Arc<AsyncMutex<GroupEntry>>;

pub struct GroupCoordinator {
    node_id: i32,
    pub cfg: CoordinatorConfig,
    replicas: Arc<ReplicaManager>,
    /// `__consumer_offsets` partitions this broker leads, by load state.
    partitions: Mutex<BTreeMap<i32, Load>>,
    groups: Mutex<BTreeMap<String, GroupHandle>>,
    /// Dynamic group configs (KIP-848) from the metadata, by group id.
    group_configs: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// Topic names by id, from the metadata (for groups changing protocol).
    topic_names: Mutex<BTreeMap<uuid::Uuid, String>>,
}

/// Why a group cannot be served here.
pub fn not_here(load: Option<bool>) -> i16 {
    match load {
        Some(true) => E::CoordinatorLoadInProgress.code(),
        _ => E::NotCoordinator.code(),
    }
}

impl GroupCoordinator {
    pub fn new(
        node_id: i32,
        cfg: CoordinatorConfig,
        replicas: Arc<ReplicaManager>,
    ) -> Arc<GroupCoordinator> {
        Arc::new(GroupCoordinator {
            node_id,
            cfg,
            replicas,
            partitions: Mutex::new(BTreeMap::new()),
            groups: Mutex::new(BTreeMap::new()),
            group_configs: Mutex::new(BTreeMap::new()),
            topic_names: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn partition_for(&self, group: &str) -> i32 {
        store::partition_for(group, self.cfg.offsets_partitions)
    }

    /// The group's entry if this broker coordinates it (Err: the Kafka error to answer).
    /// With `create`, a missing group is made (classic and empty).
    pub fn group(&self, id: &str, create: bool) -> Result<Option<GroupHandle>, i16> {
        let p = self.partition_for(id);
        match self.partitions.lock().get(&p) {
            Some(Load::Loaded) => {}
            Some(Load::Loading) => return Err(E::CoordinatorLoadInProgress.code()),
            None => return Err(E::NotCoordinator.code()),
        }
        let mut groups = self.groups.lock();
        if let Some(g) = groups.get(id) {
            return Ok(Some(g.clone()));
        }
        if !create {
            return Ok(None);
        }
        let entry = Arc::new(AsyncMutex::new(GroupEntry {
            id: id.to_string(),
            partition: p,
            kind: GroupKind::Classic(ClassicGroup::new(id, Instant::now())),
            offsets: BTreeMap::new(),
        }));
        groups.insert(id.to_string(), entry.clone());
        Ok(Some(entry))
    }

    /// Every group this broker coordinates.
    pub fn all_groups(&self) -> Vec<GroupHandle> {
        self.groups.lock().values().cloned().collect()
    }

    pub fn remove_group(&self, id: &str) {
        self.groups.lock().remove(id);
    }

    fn offsets_partition(&self, p: i32) -> Option<Arc<Partition>> {
        self.replicas
            .get(OFFSETS_TOPIC, p)
            .filter(|x| x.is_leader())
    }

    /// Appends records to a group's partition and waits until they are committed.
    pub async fn write(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), i16> {
        if records.is_empty() {
            return Ok(());
        }
        let Some(p) = self.offsets_partition(partition) else {
            return Err(E::NotCoordinator.code());
        };
        let batch = store::encode_batch(records, strom_common::clock::now_ms());
        // Written like acks=all: the change counts only once every in-sync replica has
        // it; if leadership moves meanwhile the write fails and is not applied.
        match p
            .append_and_wait(
                &batch,
                Duration::from_secs(30),
                strom_common::clock::now_ms(),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err((c, _)) if c == E::NotLeaderOrFollower.code() => Err(E::NotCoordinator.code()),
            Err((c, _))
                if c == E::RequestTimedOut.code()
                    || c == E::NotEnoughReplicas.code()
                    || c == E::NotEnoughReplicasAfterAppend.code() =>
            {
                Err(E::CoordinatorNotAvailable.code())
            }
            Err((c, msg)) => {
                tracing::warn!(code = c, %msg, "writing to __consumer_offsets failed");
                Err(E::CoordinatorNotAvailable.code())
            }
        }
    }

    /// Acts on leadership of `__consumer_offsets` partitions: loads the ones this broker
    /// now leads and forgets the ones it no longer does.
    /// KIP-848's online downgrade: a consumer group whose members all use the classic
    /// protocol becomes a classic group (policy and `group.max.size` permitting), which
    /// then rebalances. Returns whether it did; the caller writes
    /// `kind_change_records`.
    pub fn maybe_downgrade(&self, e: &mut GroupEntry, now: Instant) -> bool {
        let GroupKind::Consumer(c) = &e.kind else {
            return false;
        };
        if !c.only_classic_members()
            || !self.cfg.migration_policy.downgrade()
            || c.members.len() > self.cfg.classic.max_size
        {
            return false;
        }
        let names = self.topic_names.lock().clone();
        let members = c
            .members
            .values()
            .map(|m| {
                let meta = m.classic.clone().expect("only classic members");
                let target = c.target.get(&m.member_id).cloned().unwrap_or_default();
                MigratedMember {
                    member_id: m.member_id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: meta.session_timeout_ms,
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    protocols: meta.protocols,
                    assignment: target
                        .iter()
                        .filter_map(|(id, ps)| {
                            Some((names.get(id)?.clone(), ps.iter().copied().collect()))
                        })
                        .collect(),
                }
            })
            .collect();
        tracing::info!(group = %e.id, members = c.members.len(), epoch = c.group_epoch,
            "only classic members are left: the consumer group becomes a classic group (KIP-848 downgrade)");
        let g = ClassicGroup::from_consumer(&e.id, c.group_epoch, members, now, &self.cfg.classic);
        e.kind = GroupKind::Classic(g);
        true
    }

    /// The consumer-protocol settings of `group`: the broker's, with the group's own
    /// `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms` (KIP-848 group
    /// configs) where it has them.
    pub fn consumer_config(&self, group: &str) -> ConsumerConfig {
        let mut c = self.cfg.consumer.clone();
        if let Some(own) = self.group_configs.lock().get(group) {
            let get = |k: &str| own.get(k).and_then(|v| v.trim().parse::<i32>().ok());
            if let Some(v) = get("consumer.session.timeout.ms") {
                c.session_timeout_ms = v;
            }
            if let Some(v) = get("consumer.heartbeat.interval.ms") {
                c.heartbeat_interval_ms = v;
            }
        }
        c
    }

    pub fn on_metadata(self: &Arc<Self>, img: &MetadataImage) {
        *self.group_configs.lock() = img.all_group_configs();
        *self.topic_names.lock() = img
            .topics
            .values()
            .map(|t| (t.id, t.name.clone()))
            .collect();
        let led: BTreeSet<i32> = img
            .topic_by_name(OFFSETS_TOPIC)
            .map(|t| {
                t.partitions
                    .iter()
                    .filter(|(_, p)| p.leader == self.node_id)
                    .map(|(i, _)| *i)
                    .collect()
            })
            .unwrap_or_default();
        let (to_load, to_drop) = {
            let mut parts = self.partitions.lock();
            let to_drop: Vec<i32> = parts.keys().filter(|p| !led.contains(p)).copied().collect();
            for p in &to_drop {
                parts.remove(p);
            }
            let to_load: Vec<i32> = led
                .iter()
                .filter(|p| !parts.contains_key(p))
                .copied()
                .collect();
            for p in &to_load {
                parts.insert(*p, Load::Loading);
            }
            (to_load, to_drop)
        };
        if !to_drop.is_empty() {
            let mut groups = self.groups.lock();
            groups.retain(|id, _| {
                !to_drop.contains(&store::partition_for(id, self.cfg.offsets_partitions))
            });
            tracing::info!(partitions = ?to_drop, "no longer coordinating groups of these __consumer_offsets partitions");
        }
        for p in to_load {
            let me = self.clone();
            tokio::spawn(async move { me.load(p).await });
        }
    }

    async fn load(self: Arc<Self>, p: i32) {
        let t0 = Instant::now();
        let mut loaded = Loaded::default();
        let mut tries = 0;
        let part = loop {
            match self.offsets_partition(p) {
                Some(x) => break x,
                None if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                None => {
                    self.partitions.lock().remove(&p);
                    return;
                }
            }
        };
        let mut next = part.log.offsets().log_start;
        loop {
            // To the log end, not the high watermark: a new leader's log is the truth
            // its followers will converge on, and its HW may lag until they fetch.
            match part.log.read(next, 4 << 20, true, true).await {
                Ok(r) if r.records.is_empty() => break,
                Ok(r) => {
                    let mut last = None;
                    for (h, _) in crate::log::batch::walk(&r.records) {
                        last = Some(h.last_offset());
                    }
                    loaded.apply_batches(r.records.clone());
                    match last {
                        Some(l) => next = l + 1,
                        None => break,
                    }
                }
                Err(crate::log::LogError::OffsetOutOfRange { log_start, .. })
                    if log_start > next =>
                {
                    next = log_start
                }
                Err(e) => {
                    tracing::error!(partition = p, error = %e, "loading __consumer_offsets");
                    self.partitions.lock().remove(&p);
                    return;
                }
            }
        }
        let now = Instant::now();
        let mut entries: BTreeMap<String, GroupEntry> = BTreeMap::new();
        let ids: BTreeSet<String> = loaded
            .offsets
            .keys()
            .chain(loaded.classic.keys())
            .chain(loaded.consumer.keys())
            .filter(|g| store::partition_for(g, self.cfg.offsets_partitions) == p)
            .cloned()
            .collect();
        for id in ids {
            let kind = if let Some(v) = loaded.consumer.remove(&id) {
                GroupKind::Consumer(restore_consumer(&id, v, now))
            } else if let Some(v) = loaded.classic.remove(&id) {
                GroupKind::Classic(restore_classic(&id, v, now))
            } else {
                GroupKind::Classic(ClassicGroup::new(&id, now))
            };
            let offsets = loaded.offsets.remove(&id).unwrap_or_default();
            entries.insert(
                id.clone(),
                GroupEntry {
                    id,
                    partition: p,
                    kind,
                    offsets,
                },
            );
        }
        let n = entries.len();
        {
            let mut parts = self.partitions.lock();
            if parts.get(&p) != Some(&Load::Loading) {
                return; // leadership moved on meanwhile
            }
            let mut groups = self.groups.lock();
            for (id, e) in entries {
                groups.insert(id, Arc::new(AsyncMutex::new(e)));
            }
            parts.insert(p, Load::Loaded);
        }
        tracing::info!(
            partition = p,
            groups = n,
            elapsed_ms = t0.elapsed().as_millis() as u64,
            "loaded __consumer_offsets partition"
        );
    }

    /// Expires sessions and rebalance deadlines, writing group state where needed; and,
    /// every `offsets.retention.check.interval.ms`, expires offsets of groups empty for
    /// longer than `offsets.retention.minutes`.
    pub fn spawn_ticker(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last_retention = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let Some(me) = weak.upgrade() else { return };
                let now = Instant::now();
                for g in me.all_groups() {
                    let mut e = g.lock().await;
                    let persist = match &mut e.kind {
                        GroupKind::Classic(c) => c.tick(now, &me.cfg.classic).persist,
                        GroupKind::Consumer(c) => c.tick(now, &me.consumer_config(&c.id)),
                    };
                    if persist {
                        let recs = if me.maybe_downgrade(&mut e, now) {
                            kind_change_records(&e)
                        } else {
                            vec![group_record(&e)]
                        };
                        let partition = e.partition;
                        if let Err(code) = me.write(partition, recs).await {
                            tracing::debug!(group = %e.id, code, "writing group state after a timeout");
                        }
                    }
                }
                if now.duration_since(last_retention)
                    >= Duration::from_millis(me.cfg.retention_check_interval_ms)
                {
                    last_retention = now;
                    me.expire_offsets(now).await;
                }
            }
        });
    }

    async fn expire_offsets(&self, now: Instant) {
        let retention = Duration::from_millis(self.cfg.offsets_retention_ms.max(0) as u64);
        for g in self.all_groups() {
            let mut e = g.lock().await;
            if !e.is_empty()
                || e.offsets.is_empty()
                || now.saturating_duration_since(e.state_since()) < retention
            {
                continue;
            }
            let records: Vec<(Bytes, Option<Bytes>)> = e
                .offsets
                .keys()
                .map(|(t, p)| (store::offset_key(&e.id, t, *p), None))
                .collect();
            let n = records.len();
            if self.write(e.partition, records).await.is_ok() {
                e.offsets.clear();
                tracing::info!(group = %e.id, offsets = n, "expired the offsets of a group empty for longer than offsets.retention.minutes");
            }
        }
    }
}

fn restore_classic(id: &str, v: ClassicGroupValue, now: Instant) -> ClassicGroup {
    let mut g = ClassicGroup::new(id, now);
    g.protocol_type = if v.protocol_type.is_empty() {
        None
    } else {
        Some(v.protocol_type.clone())
    };
    for m in v.members {
        let protocol = v.protocol_name.clone().map(|n| (n, m.subscription.clone()));
        g.restore_member(
            m.member_id,
            m.group_instance_id,
            m.client_id,
            m.client_host,
            m.session_timeout_ms,
            m.rebalance_timeout_ms,
            protocol,
            m.assignment,
            now,
        );
    }
    let protocol_type = g.protocol_type.clone();
    g.restore(protocol_type, v.protocol_name, v.generation, v.leader, now);
    g
}

fn to_assignment(tps: &[TopicPartitions]) -> Assignment {
    tps.iter()
        .map(|tp| {
            (
                Uuid::from_slice(&tp.topic_id).unwrap_or(Uuid::nil()),
                tp.partitions.iter().copied().collect(),
            )
        })
        .collect()
}

fn from_assignment(a: &Assignment) -> Vec<TopicPartitions> {
    a.iter()
        .map(|(t, ps)| TopicPartitions {
            topic_id: Bytes::copy_from_slice(t.as_bytes()),
            partitions: ps.iter().copied().collect(),
        })
        .collect()
}

fn restore_consumer(id: &str, v: ConsumerGroupValue, now: Instant) -> ConsumerGroup {
    let mut g = ConsumerGroup::new(id, now);
    let members = v
        .members
        .into_iter()
        .map(|m| {
            let classic = m.classic.as_ref().map(|c| ClassicMeta {
                session_timeout_ms: c.session_timeout_ms,
                protocols: c
                    .protocols
                    .iter()
                    .map(|p| (p.name.clone(), p.metadata.clone()))
                    .collect(),
                deadline: None,
            });
            let mut member = ConsumerMember::restored(
                m.member_id,
                m.instance_id,
                if m.rack_id.is_empty() {
                    None
                } else {
                    Some(m.rack_id)
                },
                m.client_id,
                m.client_host,
                m.subscribed_topic_names,
                m.subscribed_topic_regex,
                if m.server_assignor.is_empty() {
                    None
                } else {
                    Some(m.server_assignor)
                },
                m.rebalance_timeout_ms,
                m.member_epoch,
                m.previous_member_epoch,
                to_assignment(&m.assigned),
                to_assignment(&m.pending_revocation),
                now,
            );
            member.classic = classic;
            member
        })
        .collect();
    let target = v
        .target
        .into_iter()
        .map(|(k, t)| (k, to_assignment(&t.partitions)))
        .collect();
    g.restore(v.group_epoch, v.assignment_epoch, members, target);
    g
}

/// The record holding a group's protocol state.
pub fn group_record(e: &GroupEntry) -> (Bytes, Option<Bytes>) {
    match &e.kind {
        GroupKind::Classic(g) => {
            let protocol = g.protocol_name.clone().unwrap_or_default();
            let v = ClassicGroupValue {
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                generation: g.generation,
                protocol_name: g.protocol_name.clone(),
                leader: g.leader.clone(),
                current_state_timestamp: strom_common::clock::now_ms(),
                members: g
                    .members
                    .values()
                    .map(|m| ClassicMember {
                        member_id: m.member_id.clone(),
                        group_instance_id: m.group_instance_id.clone(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        session_timeout_ms: m.session_timeout_ms,
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        subscription: m.metadata(&protocol),
                        assignment: m.assignment.clone(),
                    })
                    .collect(),
            };
            (store::classic_key(&e.id), Some(v.encode_to_vec().into()))
        }
        GroupKind::Consumer(g) => {
            let v = ConsumerGroupValue {
                group_epoch: g.group_epoch,
                assignment_epoch: g.assignment_epoch,
                members: g
                    .members
                    .values()
                    .map(|m| strom_proto::group::ConsumerMember {
                        member_id: m.member_id.clone(),
                        instance_id: m.instance_id.clone(),
                        rack_id: m.rack_id.clone().unwrap_or_default(),
                        client_id: m.client_id.clone(),
                        client_host: m.client_host.clone(),
                        subscribed_topic_names: m.subscribed_topic_names.clone(),
                        subscribed_topic_regex: m.subscribed_topic_regex.clone(),
                        server_assignor: m.server_assignor.clone().unwrap_or_default(),
                        rebalance_timeout_ms: m.rebalance_timeout_ms,
                        member_epoch: m.member_epoch,
                        previous_member_epoch: m.previous_member_epoch,
                        assigned: from_assignment(&m.assigned),
                        pending_revocation: from_assignment(&m.pending_revocation),
                        classic: m.classic.as_ref().map(|c| {
                            strom_proto::group::ClassicMemberMeta {
                                session_timeout_ms: c.session_timeout_ms,
                                protocols: c
                                    .protocols
                                    .iter()
                                    .map(|(name, metadata)| strom_proto::group::ClassicProtocol {
                                        name: name.clone(),
                                        metadata: metadata.clone(),
                                    })
                                    .collect(),
                            }
                        }),
                    })
                    .collect(),
                target: g
                    .target
                    .iter()
                    .map(|(k, a)| {
                        (
                            k.clone(),
                            TargetAssignment {
                                partitions: from_assignment(a),
                            },
                        )
                    })
                    .collect(),
            };
            (store::consumer_key(&e.id), Some(v.encode_to_vec().into()))
        }
    }
}

/// The records of a group that just changed protocol: a tombstone for its state under
/// the other protocol's key, then its state under its own.
pub fn kind_change_records(e: &GroupEntry) -> Vec<(Bytes, Option<Bytes>)> {
    let old = match &e.kind {
        GroupKind::Classic(_) => store::consumer_key(&e.id),
        GroupKind::Consumer(_) => store::classic_key(&e.id),
    };
    vec![(old, None), group_record(e)]
}

/// Whether a classic group is past its members (for deletion and retention).
pub fn classic_state(e: &GroupEntry) -> Option<ClassicState> {
    match &e.kind {
        GroupKind::Classic(g) => Some(g.state),
        GroupKind::Consumer(_) => None,
    }
}
