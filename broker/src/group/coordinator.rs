//! The group coordinator of one broker. A group lives in the `__consumer_offsets`
//! partition `partition_for(group)`; the broker leading that partition coordinates it.
//! Loading, writing (acks=all) and forgetting on leadership moves are the coordinator
//! runtime's (`crate::coordinator`); this file holds the groups' settings, the timers,
//! the records of a group's state and rebuilding groups from them. The operations
//! clients call are in `api.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use prost::Message;
use strom_controller::metadata::MetadataImage;
use strom_proto::group::{
    ClassicGroupValue, ClassicMember, ConsumerGroupValue, OffsetValue, TargetAssignment,
    TopicPartitions,
};
use tokio::time::Instant;
use uuid::Uuid;

use super::classic::{ClassicConfig, ClassicGroup, ClassicState, MigratedMember};
use super::consumer::{
    Assignment, ClassicMeta, ConsumerConfig, ConsumerGroup, ConsumerMember, TopicView,
};
use super::store::{self, Loaded};
use crate::coordinator::{partition_for, CoordinatorError, CoordinatorRuntime, Handle, Loader};
use crate::replication::ReplicaManager;

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
    /// Offsets committed inside transactions not ended yet (TxnOffsetCommit), by
    /// producer id: applied when the commit marker reaches the group's partition.
    pub pending_txn: BTreeMap<i64, store::PartitionOffsets>,
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

pub type GroupHandle = Handle<GroupEntry>;

pub struct GroupCoordinator {
    pub cfg: CoordinatorConfig,
    /// The groups of the `__consumer_offsets` partitions this broker leads.
    rt: Arc<CoordinatorRuntime<GroupEntry>>,
    /// Dynamic group configs (KIP-848) from the metadata, by group id.
    group_configs: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    /// Topic names by id, and ids and partition counts by name, from the metadata.
    pub(super) topic_names: Mutex<BTreeMap<uuid::Uuid, String>>,
    topics: Mutex<Arc<TopicView>>,
}

impl GroupCoordinator {
    pub fn new(
        node_id: i32,
        cfg: CoordinatorConfig,
        replicas: Arc<ReplicaManager>,
    ) -> Arc<GroupCoordinator> {
        let rt = CoordinatorRuntime::new(OFFSETS_TOPIC, node_id, cfg.offsets_partitions, replicas);
        Arc::new(GroupCoordinator {
            cfg,
            rt,
            group_configs: Mutex::new(BTreeMap::new()),
            topic_names: Mutex::new(BTreeMap::new()),
            topics: Mutex::new(Arc::new(TopicView::new())),
        })
    }

    pub fn partition_for(&self, group: &str) -> i32 {
        self.rt.partition_for(group)
    }

    /// The group's entry if this broker coordinates it. With `create`, a missing group
    /// is made (classic and empty).
    pub fn group(&self, id: &str, create: bool) -> Result<Option<GroupHandle>, CoordinatorError> {
        let make = |partition: i32| GroupEntry {
            id: id.to_string(),
            partition,
            kind: GroupKind::Classic(ClassicGroup::new(id, Instant::now())),
            offsets: BTreeMap::new(),
            pending_txn: BTreeMap::new(),
        };
        self.rt.entry(id, if create { Some(&make) } else { None })
    }

    /// The topics as of the latest metadata: id and partition count by name.
    pub fn topics(&self) -> Arc<TopicView> {
        self.topics.lock().clone()
    }

    /// Every group this broker coordinates.
    pub fn all_groups(&self) -> Vec<GroupHandle> {
        self.rt.all()
    }

    /// The groups of one `__consumer_offsets` partition.
    pub fn groups_of(&self, partition: i32) -> Vec<GroupHandle> {
        self.rt.entries_of(partition)
    }

    pub fn remove_group(&self, id: &str) {
        self.rt.remove(id);
    }

    /// Appends records to a group's partition and waits until they are committed
    /// (acks=all); the caller applies the change only after this succeeds.
    pub async fn write(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
    ) -> Result<(), CoordinatorError> {
        self.rt.write(partition, records).await
    }

    /// `write` inside a producer's transaction (TxnOffsetCommit), with the partition's
    /// KIP-890 verification guard.
    pub async fn write_txn(
        &self,
        partition: i32,
        records: Vec<(Bytes, Option<Bytes>)>,
        producer: Option<(i64, i16)>,
        guard: Option<u64>,
    ) -> Result<(), crate::coordinator::WriteError> {
        self.rt.write_as(partition, records, producer, guard).await
    }

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

    /// Follows the metadata: group configs, topic names, and leadership of the
    /// `__consumer_offsets` partitions (loading the ones this broker now leads).
    pub fn on_metadata(self: &Arc<Self>, img: &MetadataImage) {
        *self.group_configs.lock() = img.all_group_configs();
        *self.topic_names.lock() = img
            .topics
            .values()
            .map(|t| (t.id, t.name.clone()))
            .collect();
        *self.topics.lock() = Arc::new(
            img.topics
                .values()
                .map(|t| (t.name.clone(), (t.id, t.partitions.len() as i32)))
                .collect(),
        );
        let partitions = self.cfg.offsets_partitions;
        self.rt.on_metadata(img, || GroupLoader {
            loaded: Loaded::default(),
            partitions,
        });
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
                        if let Err(err) = me.write(partition, recs).await {
                            tracing::debug!(group = %e.id, error = %err, "writing group state after a timeout");
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

/// Rebuilds the groups of one `__consumer_offsets` partition.
struct GroupLoader {
    loaded: Loaded,
    partitions: i32,
}

impl Loader for GroupLoader {
    type Entry = GroupEntry;

    fn replay(&mut self, batches: Bytes) {
        self.loaded.apply_batches(batches);
    }

    fn finish(mut self, p: i32, now: Instant) -> Vec<(String, GroupEntry)> {
        let loaded = &mut self.loaded;
        let mut pending: BTreeMap<String, BTreeMap<i64, store::PartitionOffsets>> = BTreeMap::new();
        for (pid, groups) in std::mem::take(&mut loaded.pending_txn) {
            for (g, offsets) in groups {
                pending.entry(g).or_default().insert(pid, offsets);
            }
        }
        let ids: BTreeSet<String> = loaded
            .offsets
            .keys()
            .chain(loaded.classic.keys())
            .chain(loaded.consumer.keys())
            .chain(pending.keys())
            .filter(|g| partition_for(g, self.partitions) == p)
            .cloned()
            .collect();
        ids.into_iter()
            .map(|id| {
                let kind = if let Some(v) = loaded.consumer.remove(&id) {
                    GroupKind::Consumer(restore_consumer(&id, v, now))
                } else if let Some(v) = loaded.classic.remove(&id) {
                    GroupKind::Classic(restore_classic(&id, v, now))
                } else {
                    GroupKind::Classic(ClassicGroup::new(&id, now))
                };
                let offsets = loaded.offsets.remove(&id).unwrap_or_default();
                let e = GroupEntry {
                    id: id.clone(),
                    partition: p,
                    kind,
                    offsets,
                    pending_txn: pending.remove(&id).unwrap_or_default(),
                };
                (id, e)
            })
            .collect()
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
