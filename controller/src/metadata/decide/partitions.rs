//! Partition decisions: the initial replica set of new partitions, leader elections
//! and ISR changes, as Kafka's KRaft controller makes them.
//!
//! `PartitionChange` is Kafka's `PartitionChangeBuilder`: given a partition and target
//! ISR/replicas it completes reassignments, keeps the eligible leader replicas (ELR,
//! KIP-966), elects a leader (ISR first, then ELR when the ISR is empty, then the last
//! known leader, then — only for unclean elections — any live replica) and returns the
//! `PartitionChangeRecord`, or nothing when nothing changes. A present `leader` in the
//! record bumps the leader epoch (even for the same broker); every record bumps the
//! partition epoch. The leader epoch therefore goes up whenever a leader is chosen or the
//! replica set shrinks, never on an ISR change alone.
//!
//! On top of it: what fencing, unfencing, controlled shutdown and re-registration do to
//! partitions, AlterPartition (KIP-497/841/903), ElectLeaders, preferred-leader balancing
//! and reassignments.

use std::collections::{BTreeMap, BTreeSet};

use strom_common::topic_config;
use strom_proto::controller::{
    AlterPartitionRequest, AlterPartitionResult, AlterReassignmentsRequest, ElectLeadersRequest,
    OngoingReassignment, PartitionResult, TopicPartitionsList,
};
use strom_proto::metadata::{
    metadata_record::Record, IntList, MetadataRecord, PartitionChangeRecord, PartitionRecord,
};
use uuid::Uuid;

use super::Defaults;
use crate::error::{code, ControllerError};
use crate::metadata::image::{int_list, RECOVERED, RECOVERING};
use crate::metadata::records::{record, uuid_bytes, uuid_from_bytes};
use crate::metadata::{MetadataImage, PartitionImage};

/// The records creating partitions `first..` of topic `id` with the given replicas; the
/// leader is the first active replica and the ISR every active replica.
pub(super) fn partition_records(
    img: &MetadataImage,
    id: Uuid,
    first: i32,
    assignments: &[Vec<i32>],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let mut out = Vec::new();
    for (i, replicas) in assignments.iter().enumerate() {
        let isr: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|r| img.is_active(*r))
            .collect();
        let Some(&leader) = isr.first() else {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "All brokers specified in the partition assignment for partition {} are fenced or offline.",
                first + i as i32
            )));
        };
        out.push(record(Record::Partition(PartitionRecord {
            topic_id: uuid_bytes(&id),
            partition: first + i as i32,
            replicas: replicas.clone(),
            isr,
            leader,
            ..Default::default()
        })));
    }
    Ok(out)
}

/// How a leader is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Election {
    /// The first replica if it can lead (ElectLeaders PREFERRED, leader balancing).
    Preferred,
    /// Keep a leader that can lead, else the first that can from the ISR (or ELR).
    Online,
    /// As online, then any live replica even if it may lack committed records.
    Unclean,
}

/// Which brokers may lead (Kafka's `LeaderAcceptor`): active ones, except the broker
/// being removed or restarted uncleanly; the broker being added counts as active.
#[derive(Clone, Copy)]
pub struct Acceptor<'a> {
    pub img: &'a MetadataImage,
    pub remove: i32,
    pub add: i32,
    pub unclean_shutdown: i32,
}

impl<'a> Acceptor<'a> {
    pub fn new(img: &'a MetadataImage) -> Acceptor<'a> {
        Acceptor {
            img,
            remove: -1,
            add: -1,
            unclean_shutdown: -1,
        }
    }

    pub fn accepts(&self, r: i32) -> bool {
        r >= 0
            && r != self.remove
            && r != self.unclean_shutdown
            && (r == self.add || self.img.is_active(r))
    }
}

/// Kafka's PartitionChangeBuilder.
pub struct PartitionChange<'a> {
    p: &'a PartitionImage,
    topic_id: Uuid,
    partition: i32,
    acceptor: Acceptor<'a>,
    min_isr: usize,
    elr_enabled: bool,
    election: Election,
    target_isr: Vec<i32>,
    target_replicas: Vec<i32>,
    target_adding: Vec<i32>,
    target_removing: Vec<i32>,
    target_elr: Vec<i32>,
    target_lrs: i32,
    unclean_shutdown: Vec<i32>,
}

/// A leader chosen, and whether the choice may lose committed records.
struct Elected {
    node: i32,
    unclean: bool,
}

fn minus(a: &[i32], b: &[i32]) -> Vec<i32> {
    a.iter().copied().filter(|x| !b.contains(x)).collect()
}

fn sorted(v: impl IntoIterator<Item = i32>) -> Vec<i32> {
    v.into_iter()
        .collect::<BTreeSet<i32>>()
        .into_iter()
        .collect()
}

impl<'a> PartitionChange<'a> {
    pub fn new(
        p: &'a PartitionImage,
        topic_id: Uuid,
        partition: i32,
        acceptor: Acceptor<'a>,
        min_isr: usize,
        elr_enabled: bool,
    ) -> PartitionChange<'a> {
        PartitionChange {
            p,
            topic_id,
            partition,
            acceptor,
            min_isr,
            elr_enabled,
            election: Election::Online,
            target_isr: p.isr.clone(),
            target_replicas: p.replicas.clone(),
            target_adding: p.adding_replicas.clone(),
            target_removing: p.removing_replicas.clone(),
            target_elr: p.elr.clone(),
            target_lrs: p.leader_recovery_state,
            unclean_shutdown: Vec::new(),
        }
    }

    pub fn election(mut self, e: Election) -> Self {
        self.election = e;
        self
    }

    pub fn target_isr(mut self, isr: Vec<i32>) -> Self {
        self.target_isr = isr;
        self
    }

    pub fn target_replicas(mut self, r: Vec<i32>) -> Self {
        self.target_replicas = r;
        self
    }

    pub fn target_adding(mut self, r: Vec<i32>) -> Self {
        self.target_adding = r;
        self
    }

    pub fn target_removing(mut self, r: Vec<i32>) -> Self {
        self.target_removing = r;
        self
    }

    pub fn target_recovery_state(mut self, lrs: i32) -> Self {
        self.target_lrs = lrs;
        self
    }

    pub fn unclean_shutdown(mut self, brokers: Vec<i32>) -> Self {
        self.unclean_shutdown = brokers;
        self
    }

    fn valid_new_leader(&self, r: i32) -> bool {
        (self.target_isr.contains(&r)
            || (self.target_isr.is_empty() && self.target_elr.contains(&r)))
            && self.acceptor.accepts(r)
    }

    fn can_elect_last_known_leader(&self) -> bool {
        self.elr_enabled
            && self.target_elr.is_empty()
            && self.target_isr.is_empty()
            && self.p.last_known_elr.len() == 1
            && self.acceptor.accepts(self.p.last_known_elr[0])
    }

    fn elect_preferred(&self) -> Elected {
        let clean = |node| Elected {
            node,
            unclean: false,
        };
        if let Some(&first) = self.target_replicas.first() {
            if self.valid_new_leader(first) {
                return clean(first);
            }
        }
        if self.valid_new_leader(self.p.leader) {
            return clean(self.p.leader);
        }
        if let Some(&r) = self
            .target_replicas
            .iter()
            .skip(1)
            .find(|r| self.valid_new_leader(**r))
        {
            return clean(r);
        }
        if self.can_elect_last_known_leader() {
            return Elected {
                node: self.p.last_known_elr[0],
                unclean: true,
            };
        }
        clean(-1)
    }

    fn elect_any(&self) -> Elected {
        let clean = |node| Elected {
            node,
            unclean: false,
        };
        if self.valid_new_leader(self.p.leader) {
            return clean(self.p.leader);
        }
        if let Some(&r) = self
            .target_replicas
            .iter()
            .find(|r| self.valid_new_leader(**r))
        {
            return clean(r);
        }
        if self.can_elect_last_known_leader() {
            return Elected {
                node: self.p.last_known_elr[0],
                unclean: true,
            };
        }
        if self.election == Election::Unclean {
            if let Some(&r) = self
                .target_replicas
                .iter()
                .find(|r| self.acceptor.accepts(**r))
            {
                return Elected {
                    node: r,
                    unclean: true,
                };
            }
        }
        clean(-1)
    }

    fn complete_reassignment_if_needed(&mut self) {
        if self.target_adding.is_empty() && self.target_removing.is_empty() {
            return;
        }
        let new_isr = minus(&self.target_isr, &self.target_removing);
        let new_replicas = minus(&self.target_replicas, &self.target_removing);
        if new_isr.is_empty() || new_replicas.is_empty() {
            return;
        }
        if new_replicas.iter().all(|r| new_isr.contains(r)) {
            self.target_isr = new_isr;
            self.target_replicas = new_replicas;
            self.target_adding.clear();
            self.target_removing.clear();
        }
    }

    fn maybe_populate_target_elr(&mut self) {
        if !self.elr_enabled {
            return;
        }
        if self.target_isr.len() >= self.min_isr {
            self.target_elr.clear();
            return;
        }
        let candidates: BTreeSet<i32> = self
            .target_elr
            .iter()
            .chain(self.p.isr.iter())
            .copied()
            .collect();
        self.target_elr = sorted(
            candidates
                .into_iter()
                .filter(|r| !self.target_isr.contains(r) && !self.unclean_shutdown.contains(r)),
        );
    }

    /// The change record, or `None` when nothing changes.
    pub fn build(mut self) -> Option<PartitionChangeRecord> {
        let mut rec = PartitionChangeRecord {
            topic_id: uuid_bytes(&self.topic_id),
            partition: self.partition,
            ..Default::default()
        };
        self.complete_reassignment_if_needed();
        self.maybe_populate_target_elr();
        // Election.
        let elected = match self.election {
            Election::Preferred => self.elect_preferred(),
            Election::Online | Election::Unclean => self.elect_any(),
        };
        if elected.node != self.p.leader {
            if self.target_elr.contains(&elected.node) {
                self.target_isr = vec![elected.node];
                self.target_elr.retain(|r| *r != elected.node);
            }
            rec.leader = Some(elected.node);
            if elected.unclean {
                rec.isr = Some(int_list(&[elected.node]));
                self.target_isr = vec![elected.node];
                self.target_lrs = RECOVERING;
            }
        }
        // A shrinking replica set bumps the leader epoch even without a new leader.
        if rec.leader.is_none()
            && !self
                .p
                .replicas
                .iter()
                .all(|r| self.target_replicas.contains(r))
        {
            rec.leader = Some(self.p.leader);
        }
        // ELR.
        if rec.isr.is_some() || !self.elr_enabled {
            self.target_elr.clear();
        }
        if sorted(self.target_elr.iter().copied()) != sorted(self.p.elr.iter().copied()) {
            rec.elr = Some(int_list(&sorted(self.target_elr.iter().copied())));
        }
        // ISR: it can only become empty with ELR enabled.
        if rec.isr.is_none()
            && (!self.target_isr.is_empty() || self.elr_enabled)
            && self.target_isr != self.p.isr
        {
            rec.isr = Some(int_list(&self.target_isr));
        }
        // The last leader before the partition went leaderless.
        if self.elr_enabled {
            match rec.leader {
                Some(-1) if self.p.last_known_elr.is_empty() && self.p.leader >= 0 => {
                    rec.last_known_elr = Some(int_list(&[self.p.leader]));
                }
                Some(l) if l >= 0 && !self.p.last_known_elr.is_empty() => {
                    rec.last_known_elr = Some(int_list(&[]));
                }
                _ => {}
            }
        } else if !self.p.last_known_elr.is_empty() {
            rec.last_known_elr = Some(int_list(&[]));
        }
        // Assignment.
        if self.target_replicas != self.p.replicas {
            rec.replicas = Some(int_list(&self.target_replicas));
        }
        if self.target_adding != self.p.adding_replicas {
            rec.adding_replicas = Some(int_list(&self.target_adding));
        }
        if self.target_removing != self.p.removing_replicas {
            rec.removing_replicas = Some(int_list(&self.target_removing));
        }
        if self.target_lrs != self.p.leader_recovery_state {
            rec.leader_recovery_state = Some(self.target_lrs);
        }
        let no_op = rec.leader.is_none()
            && rec.isr.is_none()
            && rec.elr.is_none()
            && rec.last_known_elr.is_none()
            && rec.replicas.is_none()
            && rec.adding_replicas.is_none()
            && rec.removing_replicas.is_none()
            && rec.leader_recovery_state.is_none();
        (!no_op).then_some(rec)
    }
}

/// A topic's effective `min.insync.replicas` (topic config, else the cluster-wide
/// dynamic config, else the controller's static default), capped at its replication
/// factor.
pub fn effective_min_isr(img: &MetadataImage, topic: &str, d: &Defaults) -> usize {
    let configured = img
        .topic_configs(topic)
        .get("min.insync.replicas")
        .cloned()
        .or_else(|| img.cluster_configs().get("min.insync.replicas").cloned())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(d.min_insync_replicas)
        .max(1) as usize;
    let rf = img
        .topic_by_name(topic)
        .and_then(|t| {
            t.partitions
                .get(&0)
                .or_else(|| t.partitions.values().next())
        })
        .map_or(1, |p| p.target_replicas().len().max(1));
    configured.min(rf)
}

/// Whether a topic allows unclean leader election (topic config, else the default).
pub fn unclean_enabled(img: &MetadataImage, topic: &str, d: &Defaults) -> bool {
    img.topic_configs(topic)
        .get("unclean.leader.election.enable")
        .map(|v| topic_config::parse_bool(v).unwrap_or(false))
        .unwrap_or(d.unclean_leader_election)
}

fn change_record(rec: PartitionChangeRecord) -> MetadataRecord {
    record(Record::PartitionChange(rec))
}

/// Kafka's `generateLeaderAndIsrUpdates`: for each partition chosen by `select`, drop
/// `remove` and `unclean` from the ISR and elect where needed (`add` counts as active).
pub fn leader_and_isr_updates(
    img: &MetadataImage,
    remove: i32,
    add: i32,
    unclean: i32,
    d: &Defaults,
    select: impl Fn(&PartitionImage) -> bool,
) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    let acceptor = Acceptor {
        img,
        remove,
        add,
        unclean_shutdown: unclean,
    };
    for t in img.topics.values() {
        let min_isr = effective_min_isr(img, &t.name, d);
        let election = if unclean_enabled(img, &t.name, d) {
            Election::Unclean
        } else {
            Election::Online
        };
        for (&i, p) in &t.partitions {
            if !select(p) {
                continue;
            }
            let change = PartitionChange::new(p, t.id, i, acceptor, min_isr, d.elr_enabled)
                .election(election)
                .target_isr(
                    p.isr
                        .iter()
                        .copied()
                        .filter(|&r| r != remove && r != unclean)
                        .collect(),
                )
                .unclean_shutdown(if unclean >= 0 { vec![unclean] } else { vec![] });
            if let Some(rec) = change.build() {
                out.push(change_record(rec));
            }
        }
    }
    out
}

/// AlterPartition (KIP-497): per-partition results and the records of the accepted
/// changes. A stale or unknown requesting broker fails the whole request.
pub fn alter_partition(
    img: &MetadataImage,
    req: &AlterPartitionRequest,
    d: &Defaults,
) -> Result<(Vec<AlterPartitionResult>, Vec<MetadataRecord>), ControllerError> {
    super::brokers::check_broker_epoch(img, req.broker_id, req.broker_epoch)?;
    let mut scratch = img.clone();
    let mut results = Vec::new();
    let mut records = Vec::new();
    for item in &req.partitions {
        let id = uuid_from_bytes(&item.topic_id);
        let mut result = AlterPartitionResult {
            topic_id: item.topic_id.clone(),
            partition: item.partition,
            ..Default::default()
        };
        let outcome = alter_one(&scratch, id, item, req.broker_id, d);
        match outcome {
            Err(code) => result.error_code = code,
            Ok(rec) => {
                let new_leader = rec.as_ref().and_then(|r| r.leader);
                if let Some(rec) = rec {
                    let r = change_record(rec);
                    scratch.apply(scratch.offset, &r);
                    records.push(r);
                }
                match new_leader {
                    Some(l) if l != req.broker_id => {
                        result.error_code = code::NEW_LEADER_ELECTED;
                    }
                    _ => {
                        let p = &scratch.topics[&id].partitions[&item.partition];
                        result.leader_id = p.leader;
                        result.leader_epoch = p.leader_epoch;
                        result.isr = p.isr.clone();
                        result.partition_epoch = p.partition_epoch;
                        result.leader_recovery_state = p.leader_recovery_state;
                    }
                }
            }
        }
        results.push(result);
    }
    Ok((results, records))
}

fn alter_one(
    img: &MetadataImage,
    id: Uuid,
    item: &strom_proto::controller::AlterPartitionItem,
    broker_id: i32,
    d: &Defaults,
) -> Result<Option<PartitionChangeRecord>, i32> {
    let t = img.topics.get(&id).ok_or(code::UNKNOWN_TOPIC_ID)?;
    let p = t
        .partitions
        .get(&item.partition)
        .ok_or(code::UNKNOWN_TOPIC_OR_PARTITION)?;
    if item.leader_epoch > p.leader_epoch || item.partition_epoch > p.partition_epoch {
        return Err(code::NOT_CONTROLLER);
    }
    if item.leader_epoch < p.leader_epoch {
        return Err(code::FENCED_LEADER_EPOCH);
    }
    if broker_id != p.leader {
        return Err(code::INVALID_REQUEST);
    }
    if item.partition_epoch < p.partition_epoch {
        return Err(code::INVALID_UPDATE_VERSION);
    }
    let new_isr: Vec<i32> = item.new_isr.iter().map(|b| b.broker_id).collect();
    let distinct: BTreeSet<i32> = new_isr.iter().copied().collect();
    if distinct.len() != new_isr.len() || new_isr.iter().any(|r| *r < 0 || !p.replicas.contains(r))
    {
        return Err(code::INVALID_REQUEST);
    }
    if !new_isr.contains(&p.leader) {
        return Err(code::INVALID_REQUEST);
    }
    if item.leader_recovery_state == RECOVERING && new_isr.len() > 1 {
        return Err(code::INVALID_REQUEST);
    }
    if p.leader_recovery_state == RECOVERED && item.leader_recovery_state == RECOVERING {
        return Err(code::INVALID_REQUEST);
    }
    for b in &item.new_isr {
        let eligible = match img.brokers.get(&b.broker_id) {
            None => false,
            Some(reg) => {
                !reg.in_controlled_shutdown
                    && !reg.fenced
                    && (b.broker_epoch == -1 || b.broker_epoch == reg.broker_epoch)
            }
        };
        if !eligible {
            return Err(code::INELIGIBLE_REPLICA);
        }
    }
    let election = if unclean_enabled(img, &t.name, d) {
        Election::Unclean
    } else {
        Election::Online
    };
    Ok(PartitionChange::new(
        p,
        id,
        item.partition,
        Acceptor::new(img),
        effective_min_isr(img, &t.name, d),
        d.elr_enabled,
    )
    .election(election)
    .target_isr(new_isr)
    .target_recovery_state(item.leader_recovery_state)
    .build())
}

/// A named topic-partition, and the topic and partition when they exist.
type Selected<'a> = (
    String,
    i32,
    Option<(&'a crate::metadata::TopicImage, &'a PartitionImage)>,
);

/// The topic-partitions a request names, or every partition when `None`.
fn selected<'a>(img: &'a MetadataImage, list: &Option<TopicPartitionsList>) -> Vec<Selected<'a>> {
    match list {
        None => img
            .topics
            .values()
            .flat_map(|t| {
                let t: &crate::metadata::TopicImage = t;
                t.partitions
                    .iter()
                    .map(move |(&i, p)| (t.name.clone(), i, Some((t, p))))
            })
            .collect(),
        Some(l) => l
            .topics
            .iter()
            .flat_map(|tp| {
                tp.partitions.iter().map(move |&i| {
                    let found = img
                        .topic_by_name(&tp.topic)
                        .and_then(|t| t.partitions.get(&i).map(|p| (t, p)));
                    (tp.topic.clone(), i, found)
                })
            })
            .collect(),
    }
}

pub const ELECTION_PREFERRED: i32 = 0;
pub const ELECTION_UNCLEAN: i32 = 1;

/// ElectLeaders: PREFERRED moves leadership to the first replica where it can lead;
/// UNCLEAN elects any live replica of a leaderless partition (whatever the topic config).
pub fn elect_leaders(
    img: &MetadataImage,
    req: &ElectLeadersRequest,
    d: &Defaults,
) -> Result<(Vec<PartitionResult>, Vec<MetadataRecord>), ControllerError> {
    let election = match req.election_type {
        ELECTION_PREFERRED => Election::Preferred,
        ELECTION_UNCLEAN => Election::Unclean,
        other => {
            return Err(ControllerError::InvalidRequest(format!(
                "Unknown election type {other}"
            )))
        }
    };
    let all = req.partitions.is_none();
    let mut results = Vec::new();
    let mut records = Vec::new();
    for (topic, i, found) in selected(img, &req.partitions) {
        let mut r = PartitionResult {
            topic: topic.clone(),
            partition: i,
            ..Default::default()
        };
        let Some((t, p)) = found else {
            r.error_code = code::UNKNOWN_TOPIC_OR_PARTITION;
            r.error_message = "This server does not host this topic-partition.".into();
            results.push(r);
            continue;
        };
        let not_needed = match election {
            Election::Preferred => p.replicas.first() == Some(&p.leader),
            _ => p.leader != -1,
        };
        if not_needed {
            if !all {
                r.error_code = code::ELECTION_NOT_NEEDED;
                r.error_message = "Leader election not needed for topic partition.".into();
                results.push(r);
            }
            continue;
        }
        let change = PartitionChange::new(
            p,
            t.id,
            i,
            Acceptor::new(img),
            effective_min_isr(img, &t.name, d),
            d.elr_enabled,
        )
        .election(election)
        .build();
        match change {
            Some(rec) => records.push(change_record(rec)),
            None => {
                if election == Election::Preferred {
                    r.error_code = code::PREFERRED_LEADER_NOT_AVAILABLE;
                    r.error_message = format!(
                        "Failed to elect leader for partition {topic}-{i} under strategy PreferredLeaderElectionStrategy"
                    );
                } else {
                    r.error_code = code::ELIGIBLE_LEADERS_NOT_AVAILABLE;
                    r.error_message = format!(
                        "Failed to elect leader for partition {topic}-{i} under strategy UncleanLeaderElectionStrategy"
                    );
                }
            }
        }
        results.push(r);
    }
    Ok((results, records))
}

/// Preferred-leader balancing (`auto.leader.rebalance.enable`): a PREFERRED election for
/// partitions not led by their first replica, at most `max` records.
pub fn balance_leaders(img: &MetadataImage, d: &Defaults, max: usize) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in img.topics.values() {
        let min_isr = effective_min_isr(img, &t.name, d);
        for (&i, p) in &t.partitions {
            if out.len() >= max {
                return out;
            }
            if p.replicas.first() == Some(&p.leader) {
                continue;
            }
            if let Some(rec) =
                PartitionChange::new(p, t.id, i, Acceptor::new(img), min_isr, d.elr_enabled)
                    .election(Election::Preferred)
                    .build()
            {
                out.push(change_record(rec));
            }
        }
    }
    out
}

/// Unclean elections for leaderless partitions of topics that allow them.
pub fn elect_unclean_leaders(img: &MetadataImage, d: &Defaults) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    for t in img.topics.values() {
        if !unclean_enabled(img, &t.name, d) {
            continue;
        }
        let min_isr = effective_min_isr(img, &t.name, d);
        for (&i, p) in t.partitions.iter().filter(|(_, p)| p.leader == -1) {
            if let Some(rec) =
                PartitionChange::new(p, t.id, i, Acceptor::new(img), min_isr, d.elr_enabled)
                    .election(Election::Unclean)
                    .build()
            {
                out.push(change_record(rec));
            }
        }
    }
    out
}

/// The end of one replica's log as its broker reported it in a heartbeat (for unclean
/// recovery): valid only while the broker keeps the epoch it reported under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaLog {
    pub broker_epoch: i64,
    pub last_epoch: i32,
    pub log_end: i64,
}

/// What the replicas of partitions awaiting recovery reported: (topic id, partition) ->
/// broker -> its log.
pub type RecoveryReports = BTreeMap<(Uuid, i32), BTreeMap<i32, ReplicaLog>>;

/// One unclean recovery: the partition, the elected replica and its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    pub topic: String,
    pub partition: i32,
    pub leader: i32,
    pub log: ReplicaLog,
    /// Whether every replica reported (else the wait ran out and some did not).
    pub all_replicas: bool,
}

/// KIP-966's unclean recovery, done where Kafka 4.x elects the last known leader: a
/// partition that awaits log recovery (`PartitionImage::awaits_log_recovery`: its ISR
/// and ELR are empty and its last leader restarted uncleanly, so no replica is known to
/// hold every committed record) gets the replica with the most complete log — the
/// highest last leader epoch, then the highest log end, then the earlier replica — once
/// every replica is active and has reported its log under its current broker epoch, or,
/// once `waited_enough` says the partition has waited long enough, the best of the
/// active replicas that did. The election is marked RECOVERING (KIP-704): it may have
/// lost records that no reporting replica held.
pub fn recover_leaderless(
    img: &MetadataImage,
    reports: &RecoveryReports,
    d: &Defaults,
    waited_enough: impl Fn(Uuid, i32) -> bool,
) -> (Vec<Recovery>, Vec<MetadataRecord>) {
    let mut recoveries = Vec::new();
    let mut out = Vec::new();
    if !d.elr_enabled {
        return (recoveries, out);
    }
    for (&(topic_id, i), logs) in reports {
        let Some(t) = img.topics.get(&topic_id) else {
            continue;
        };
        let Some(p) = t.partitions.get(&i).filter(|p| p.awaits_log_recovery()) else {
            continue;
        };
        let valid: Vec<(i32, ReplicaLog)> = p
            .replicas
            .iter()
            .filter(|&&r| img.is_active(r))
            .filter_map(|&r| {
                let log = logs.get(&r)?;
                let epoch = img.brokers.get(&r)?.broker_epoch;
                (log.broker_epoch == epoch).then_some((r, *log))
            })
            .collect();
        let all_replicas = valid.len() == p.replicas.len();
        if valid.is_empty() || !(all_replicas || waited_enough(topic_id, i)) {
            continue;
        }
        let mut best = valid[0];
        for &(r, log) in &valid[1..] {
            if (log.last_epoch, log.log_end) > (best.1.last_epoch, best.1.log_end) {
                best = (r, log);
            }
        }
        let min_isr = effective_min_isr(img, &t.name, d);
        if let Some(rec) =
            PartitionChange::new(p, t.id, i, Acceptor::new(img), min_isr, d.elr_enabled)
                .target_isr(vec![best.0])
                .target_recovery_state(RECOVERING)
                .build()
        {
            recoveries.push(Recovery {
                topic: t.name.clone(),
                partition: i,
                leader: best.0,
                log: best.1,
                all_replicas,
            });
            out.push(change_record(rec));
        }
    }
    (recoveries, out)
}

/// AlterPartitionReassignments: start, change or cancel (`replicas` absent) moves of
/// partitions to other brokers. Adding replicas catch up as followers; the move
/// completes (dropping the removed replicas) once every target replica is in the ISR.
pub fn alter_reassignments(
    img: &MetadataImage,
    req: &AlterReassignmentsRequest,
    d: &Defaults,
) -> (Vec<PartitionResult>, Vec<MetadataRecord>) {
    let mut scratch = img.clone();
    let mut results = Vec::new();
    let mut records = Vec::new();
    for item in &req.partitions {
        let mut r = PartitionResult {
            topic: item.topic.clone(),
            partition: item.partition,
            ..Default::default()
        };
        match reassign_one(&scratch, item, req.allow_replication_factor_change, d) {
            Ok(Some(rec)) => {
                let rec = change_record(rec);
                scratch.apply(scratch.offset, &rec);
                records.push(rec);
            }
            Ok(None) => {}
            Err(e) => {
                r.error_code = e.code();
                r.error_message = e.to_string();
            }
        }
        results.push(r);
    }
    (results, records)
}

fn reassign_one(
    img: &MetadataImage,
    item: &strom_proto::controller::ReassignPartition,
    allow_rf_change: bool,
    d: &Defaults,
) -> Result<Option<PartitionChangeRecord>, ControllerError> {
    let t = img
        .topic_by_name(&item.topic)
        .ok_or(ControllerError::UnknownTopic)?;
    let p = t
        .partitions
        .get(&item.partition)
        .ok_or(ControllerError::UnknownTopic)?;
    let min_isr = effective_min_isr(img, &t.name, d);
    let unclean = unclean_enabled(img, &t.name, d);
    let Some(target) = &item.replicas else {
        // Cancel: back to the original replicas.
        if !p.is_reassigning() {
            return Err(ControllerError::NoReassignmentInProgress);
        }
        let replicas = minus(&p.replicas, &p.adding_replicas);
        let mut isr = minus(&p.isr, &p.adding_replicas);
        let mut revert_unclean = false;
        if replicas.is_empty() {
            return Err(ControllerError::InvalidReplicaAssignment(
                "The reassignment cannot be reverted: no original replicas remain.".into(),
            ));
        }
        if isr.is_empty() {
            isr = vec![replicas[0]];
            revert_unclean = true;
        }
        if revert_unclean && !unclean {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Unable to revert partition assignment for {}:{} because it would require an unclean leader election.",
                t.name, item.partition
            )));
        }
        return Ok(PartitionChange::new(
            p,
            t.id,
            item.partition,
            Acceptor::new(img),
            min_isr,
            d.elr_enabled,
        )
        .election(if unclean {
            Election::Unclean
        } else {
            Election::Online
        })
        .target_isr(isr)
        .target_replicas(replicas)
        .target_adding(vec![])
        .target_removing(vec![])
        .build());
    };
    let target = &target.values;
    if target.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes an empty replica list for partition {}.",
            item.partition
        )));
    }
    let distinct: BTreeSet<i32> = target.iter().copied().collect();
    if distinct.len() != target.len() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes the broker more than once for partition {}.",
            item.partition
        )));
    }
    if let Some(b) = target.iter().find(|b| !img.brokers.contains_key(b)) {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes broker {b}, but no such broker is registered."
        )));
    }
    if !allow_rf_change {
        let current: BTreeSet<i32> = p.target_replicas().into_iter().collect();
        if target.len() != current.len() {
            return Err(ControllerError::InvalidReplicationFactor(format!(
                "The replication factor is changed from {} to {} but the request does not allow it.",
                current.len(),
                target.len()
            )));
        }
    }
    let removing = sorted(minus(&p.replicas, target));
    let adding = sorted(minus(target, &p.replicas));
    let mut replicas = target.clone();
    replicas.extend(removing.iter().copied());
    let mut change = PartitionChange::new(
        p,
        t.id,
        item.partition,
        Acceptor::new(img),
        min_isr,
        d.elr_enabled,
    );
    if replicas != p.replicas {
        change = change.target_replicas(replicas);
    }
    if !removing.is_empty() {
        change = change.target_removing(removing);
    }
    if !adding.is_empty() {
        change = change.target_adding(adding);
    }
    Ok(change.build())
}

/// ListPartitionReassignments: the partitions being moved.
pub fn list_reassignments(
    img: &MetadataImage,
    list: &Option<TopicPartitionsList>,
) -> Vec<OngoingReassignment> {
    selected(img, list)
        .into_iter()
        .filter_map(|(topic, i, found)| {
            let (_, p) = found?;
            p.is_reassigning().then(|| OngoingReassignment {
                topic,
                partition: i,
                replicas: p.replicas.clone(),
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
            })
        })
        .collect()
}

/// An `IntList` field's values (for tests and callers reading records).
pub fn values(l: &Option<IntList>) -> Option<&[i32]> {
    l.as_ref().map(|l| l.values.as_slice())
}

#[cfg(test)]
mod tests {
    use super::super::brokers::{fence_broker, unfence_broker};
    use super::super::test_support::{apply, cluster, create, part, set_config, topic};
    use super::*;
    use strom_proto::controller::{
        AlterPartitionItem, BrokerAndEpoch, ReassignPartition, TopicPartitions,
    };

    fn d() -> Defaults {
        Defaults::default()
    }

    /// 3 brokers, topic `t` with one partition on [1, 2, 3] led by 1.
    fn setup(min_isr: &str) -> MetadataImage {
        let mut img = cluster(3);
        assert_eq!(create(&mut img, topic("t", 1, 3)).error_code, 0);
        set_config(&mut img, "t", "min.insync.replicas", min_isr);
        let p = part(&img, "t", 0);
        assert_eq!(
            (p.leader, p.isr.clone()),
            (p.replicas[0], p.replicas.clone())
        );
        img
    }

    fn alter(img: &MetadataImage, broker: i32, isr: &[i32]) -> AlterPartitionRequest {
        let t = img.topic_by_name("t").unwrap();
        let p = &t.partitions[&0];
        AlterPartitionRequest {
            broker_id: broker,
            broker_epoch: img.brokers[&broker].broker_epoch,
            partitions: vec![AlterPartitionItem {
                topic_id: uuid_bytes(&t.id),
                partition: 0,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                new_isr: isr
                    .iter()
                    .map(|&b| BrokerAndEpoch {
                        broker_id: b,
                        broker_epoch: img.brokers.get(&b).map_or(-1, |r| r.broker_epoch),
                    })
                    .collect(),
                leader_recovery_state: 0,
            }],
        }
    }

    #[test]
    fn fencing_walks_through_isr_then_elr_then_last_known_leader() {
        let mut img = setup("2");
        let first = part(&img, "t", 0);
        let l1 = first.leader;
        let recs = fence_broker(&img, l1, &d());
        apply(&mut img, &recs);
        let p = part(&img, "t", 0);
        assert_ne!(p.leader, l1);
        assert_eq!(p.leader_epoch, first.leader_epoch + 1);
        assert_eq!(p.isr.len(), 2);
        assert!(p.elr.is_empty(), "ISR at min ISR: no ELR");
        let l2 = p.leader;
        {
            let r = fence_broker(&img, l2, &d());
            apply(&mut img, &r);
        }
        let p = part(&img, "t", 0);
        assert_eq!(p.isr.len(), 1, "below min ISR now");
        assert_eq!(p.elr, vec![l2], "the removed member is eligible");
        let l3 = p.leader;
        {
            let r = fence_broker(&img, l3, &d());
            apply(&mut img, &r);
        }
        let p = part(&img, "t", 0);
        assert_eq!(p.leader, -1);
        assert!(p.isr.is_empty(), "with ELR the ISR may be empty");
        assert_eq!(p.elr, super::sorted([l2, l3]));
        assert_eq!(p.last_known_elr, vec![l3]);
        // An ELR member coming back leads, cleanly.
        {
            let r = unfence_broker(&img, l2, &d());
            apply(&mut img, &r);
        }
        let p = part(&img, "t", 0);
        assert_eq!(p.leader, l2);
        assert_eq!(p.isr, vec![l2]);
        assert_eq!(p.elr, vec![l3]);
        assert!(p.last_known_elr.is_empty());
        assert_eq!(p.leader_recovery_state, RECOVERED);
        // l1 (fenced while the ISR was still at min ISR) is neither in ISR nor ELR.
        assert!(!p.isr.contains(&l1) && !p.elr.contains(&l1));
    }

    #[test]
    fn without_elr_the_last_isr_member_stays() {
        let mut img = cluster(2);
        create(&mut img, topic("t", 2, 2));
        let d = Defaults {
            elr_enabled: false,
            ..d()
        };
        {
            let r = fence_broker(&img, 1, &d);
            apply(&mut img, &r);
        }
        {
            let r = fence_broker(&img, 2, &d);
            apply(&mut img, &r);
        }
        for p in img.topic_by_name("t").unwrap().partitions.values() {
            assert_eq!(p.leader, -1);
            assert_eq!(p.isr, vec![2], "the last ISR member stays");
            assert!(p.elr.is_empty());
        }
        {
            let r = unfence_broker(&img, 2, &d);
            apply(&mut img, &r);
        }
        for p in img.topic_by_name("t").unwrap().partitions.values() {
            assert_eq!(p.leader, 2);
        }
    }

    #[test]
    fn unclean_elections_only_where_allowed() {
        let mut img = setup("1");
        let p0 = part(&img, "t", 0);
        // Shrink the ISR to the leader, then fence it: ISR empty, ELR = [leader].
        let (results, recs) =
            alter_partition(&img, &alter(&img, p0.leader, &[p0.leader]), &d()).unwrap();
        assert_eq!(results[0].error_code, 0);
        apply(&mut img, &recs);
        let p = part(&img, "t", 0);
        assert_eq!(
            p.leader_epoch, p0.leader_epoch,
            "an ISR shrink keeps the leader epoch"
        );
        assert_eq!(p.partition_epoch, p0.partition_epoch + 1);
        {
            let r = fence_broker(&img, p0.leader, &d());
            apply(&mut img, &r);
        }
        let p = part(&img, "t", 0);
        assert_eq!(p.leader, -1);
        assert!(
            elect_unclean_leaders(&img, &d()).is_empty(),
            "not allowed by default"
        );
        set_config(&mut img, "t", "unclean.leader.election.enable", "true");
        let recs = elect_unclean_leaders(&img, &d());
        assert_eq!(recs.len(), 1);
        apply(&mut img, &recs);
        let p = part(&img, "t", 0);
        assert!(p.leader >= 0 && p.leader != p0.leader);
        assert_eq!(p.isr, vec![p.leader]);
        assert_eq!(p.leader_recovery_state, RECOVERING);
        assert!(p.elr.is_empty(), "an unclean election clears the ELR");
    }

    #[test]
    fn alter_partition_checks_in_kafkas_order() {
        let mut img = setup("1");
        let p = part(&img, "t", 0);
        let (l, f1, f2) = (p.replicas[0], p.replicas[1], p.replicas[2]);
        let run = |img: &MetadataImage, req: &AlterPartitionRequest| {
            alter_partition(img, req, &d()).map(|(r, recs)| (r[0].error_code, recs.len()))
        };
        // Stale requester.
        let mut req = alter(&img, l, &[l, f1]);
        req.broker_epoch -= 1;
        assert!(matches!(
            alter_partition(&img, &req, &d()),
            Err(ControllerError::StaleBrokerEpoch(_))
        ));
        let mut req = alter(&img, l, &[l, f1]);
        req.partitions[0].topic_id = uuid_bytes(&Uuid::from_u128(999));
        assert_eq!(run(&img, &req).unwrap(), (code::UNKNOWN_TOPIC_ID, 0));
        let mut req = alter(&img, l, &[l, f1]);
        req.partitions[0].partition = 7;
        assert_eq!(
            run(&img, &req).unwrap(),
            (code::UNKNOWN_TOPIC_OR_PARTITION, 0)
        );
        let mut req = alter(&img, l, &[l, f1]);
        req.partitions[0].leader_epoch += 1;
        assert_eq!(run(&img, &req).unwrap(), (code::NOT_CONTROLLER, 0));
        assert_eq!(
            run(&img, &alter(&img, f1, &[l, f1])).unwrap().0,
            code::INVALID_REQUEST
        );
        assert_eq!(
            run(&img, &alter(&img, l, &[f1, f2])).unwrap().0,
            code::INVALID_REQUEST
        );
        assert_eq!(
            run(&img, &alter(&img, l, &[l, l])).unwrap().0,
            code::INVALID_REQUEST
        );
        assert_eq!(
            run(&img, &alter(&img, l, &[l, 9])).unwrap().0,
            code::INVALID_REQUEST
        );
        // A good shrink, then its retry (old partition epoch) and a stale leader epoch.
        let old = alter(&img, l, &[l, f1]);
        let (r, recs) = alter_partition(&img, &old, &d()).unwrap();
        assert_eq!(r[0].error_code, 0);
        assert_eq!(r[0].isr, vec![l, f1]);
        apply(&mut img, &recs);
        assert_eq!(r[0].partition_epoch, part(&img, "t", 0).partition_epoch);
        assert_eq!(run(&img, &old).unwrap().0, code::INVALID_UPDATE_VERSION);
        // An identical request at the current epochs is answered with the current state.
        let same = alter(&img, l, &[l, f1]);
        let (r, recs) = alter_partition(&img, &same, &d()).unwrap();
        assert_eq!((r[0].error_code, recs.len()), (0, 0));
        assert_eq!(r[0].isr, vec![l, f1]);
        // New members must be unfenced, not shutting down, at their current epoch.
        let mut req = alter(&img, l, &[l, f1, f2]);
        req.partitions[0].new_isr[2].broker_epoch = 12345;
        assert_eq!(run(&img, &req).unwrap().0, code::INELIGIBLE_REPLICA);
        let mut fenced = img.clone();
        {
            let r = fence_broker(&fenced, f2, &d());
            apply(&mut fenced, &r);
        }
        let req = alter(&fenced, l, &[l, f1, f2]);
        assert_eq!(run(&fenced, &req).unwrap().0, code::INELIGIBLE_REPLICA);
        let mut stopping = img.clone();
        {
            let r = super::super::brokers::controlled_shutdown(&stopping, f2, &d());
            apply(&mut stopping, &r);
        }
        let req = alter(&stopping, l, &[l, f1, f2]);
        assert_eq!(run(&stopping, &req).unwrap().0, code::INELIGIBLE_REPLICA);
        let (r, recs) = alter_partition(&img, &alter(&img, l, &[l, f1, f2]), &d()).unwrap();
        assert_eq!((r[0].error_code, recs.len()), (0, 1));
        // After a leader change the old leader is fenced by epoch.
        let before = alter(&img, l, &[l]);
        {
            let r = fence_broker(&img, l, &d());
            apply(&mut img, &r);
        }
        assert_eq!(run(&img, &before).unwrap().0, code::FENCED_LEADER_EPOCH);
    }

    #[test]
    fn reassignment_adds_catches_up_and_removes() {
        let mut img = cluster(4);
        create(&mut img, topic("t", 1, 3));
        let p0 = part(&img, "t", 0);
        let spare = (1..=4).find(|b| !p0.replicas.contains(b)).unwrap();
        let leaving = p0.leader;
        let mut target: Vec<i32> = p0
            .replicas
            .iter()
            .copied()
            .filter(|&r| r != leaving)
            .collect();
        target.push(spare);
        let req = AlterReassignmentsRequest {
            partitions: vec![ReassignPartition {
                topic: "t".into(),
                partition: 0,
                replicas: Some(int_list(&target)),
            }],
            allow_replication_factor_change: false,
        };
        let (r, recs) = alter_reassignments(&img, &req, &d());
        assert_eq!(r[0].error_code, 0, "{:?}", r[0]);
        apply(&mut img, &recs);
        let p = part(&img, "t", 0);
        assert_eq!(p.adding_replicas, vec![spare]);
        assert_eq!(p.removing_replicas, vec![leaving]);
        assert_eq!(p.replicas.len(), 4);
        assert_eq!(
            p.leader_epoch, p0.leader_epoch,
            "growing the set keeps the epoch"
        );
        assert_eq!(list_reassignments(&img, &None).len(), 1);
        // The new replica catches up: the leader adds it; the move completes, and the
        // leader, being removed, loses leadership.
        let mut isr = p.isr.clone();
        isr.push(spare);
        let (r, recs) = alter_partition(&img, &alter(&img, leaving, &isr), &d()).unwrap();
        assert_eq!(r[0].error_code, code::NEW_LEADER_ELECTED);
        apply(&mut img, &recs);
        let p = part(&img, "t", 0);
        assert_eq!(p.replicas, target);
        assert!(!p.is_reassigning());
        assert!(!p.isr.contains(&leaving));
        assert_eq!(p.leader, target[0]);
        assert_eq!(p.leader_epoch, p0.leader_epoch + 1);
        assert!(list_reassignments(&img, &None).is_empty());
        // Cancelling when nothing is in progress.
        let cancel = AlterReassignmentsRequest {
            partitions: vec![ReassignPartition {
                topic: "t".into(),
                partition: 0,
                replicas: None,
            }],
            allow_replication_factor_change: false,
        };
        let (r, _) = alter_reassignments(&img, &cancel, &d());
        assert_eq!(r[0].error_code, code::NO_REASSIGNMENT_IN_PROGRESS);
    }

    #[test]
    fn a_cancelled_reassignment_reverts() {
        let mut img = cluster(4);
        create(&mut img, topic("t", 1, 2));
        let p0 = part(&img, "t", 0);
        let extra: Vec<i32> = (1..=4).filter(|b| !p0.replicas.contains(b)).collect();
        let req = |replicas: Option<Vec<i32>>, allow| AlterReassignmentsRequest {
            partitions: vec![ReassignPartition {
                topic: "t".into(),
                partition: 0,
                replicas: replicas.map(|r| int_list(&r)),
            }],
            allow_replication_factor_change: allow,
        };
        let (r, _) = alter_reassignments(&img, &req(Some(extra.clone()), false), &d());
        assert_eq!(r[0].error_code, 0);
        let (r, _) = alter_reassignments(&img, &req(Some(vec![1, 2, 3]), false), &d());
        assert_eq!(r[0].error_code, code::INVALID_REPLICATION_FACTOR);
        let (r, _) = alter_reassignments(&img, &req(Some(vec![1, 1]), true), &d());
        assert_eq!(r[0].error_code, code::INVALID_REPLICA_ASSIGNMENT);
        let (_, recs) = alter_reassignments(&img, &req(Some(extra), false), &d());
        apply(&mut img, &recs);
        assert!(part(&img, "t", 0).is_reassigning());
        let (r, recs) = alter_reassignments(&img, &req(None, false), &d());
        assert_eq!(r[0].error_code, 0);
        apply(&mut img, &recs);
        let p = part(&img, "t", 0);
        assert!(!p.is_reassigning());
        assert_eq!(p.replicas, p0.replicas);
        assert_eq!(p.leader, p0.leader);
    }

    #[test]
    fn elect_leaders_preferred_and_balancing() {
        let mut img = setup("1");
        let p0 = part(&img, "t", 0);
        let preferred = p0.replicas[0];
        {
            let r = fence_broker(&img, preferred, &d());
            apply(&mut img, &r);
        }
        let only = |e| ElectLeadersRequest {
            election_type: e,
            partitions: Some(TopicPartitionsList {
                topics: vec![TopicPartitions {
                    topic: "t".into(),
                    partitions: vec![0, 5],
                }],
            }),
        };
        let (r, recs) = elect_leaders(&img, &only(ELECTION_PREFERRED), &d()).unwrap();
        assert_eq!(r[0].error_code, code::PREFERRED_LEADER_NOT_AVAILABLE);
        assert_eq!(r[1].error_code, code::UNKNOWN_TOPIC_OR_PARTITION);
        assert!(recs.is_empty());
        {
            let r = unfence_broker(&img, preferred, &d());
            apply(&mut img, &r);
        }
        assert_ne!(
            part(&img, "t", 0).leader,
            preferred,
            "unfencing does not move leaders"
        );
        // Not in the ISR yet: still not available.
        assert_eq!(
            elect_leaders(&img, &only(ELECTION_PREFERRED), &d())
                .unwrap()
                .0[0]
                .error_code,
            code::PREFERRED_LEADER_NOT_AVAILABLE
        );
        let p = part(&img, "t", 0);
        let mut isr = p.isr.clone();
        isr.push(preferred);
        let (_, recs) = alter_partition(&img, &alter(&img, p.leader, &isr), &d()).unwrap();
        apply(&mut img, &recs);
        let all = ElectLeadersRequest {
            election_type: ELECTION_PREFERRED,
            partitions: None,
        };
        assert_eq!(balance_leaders(&img, &d(), 1000).len(), 1);
        let (r, recs) = elect_leaders(&img, &all, &d()).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].error_code, 0);
        apply(&mut img, &recs);
        assert_eq!(part(&img, "t", 0).leader, preferred);
        let (r, _) = elect_leaders(&img, &all, &d()).unwrap();
        assert!(
            r.is_empty(),
            "not-needed results are left out when all are asked"
        );
        let (r, _) = elect_leaders(&img, &only(ELECTION_PREFERRED), &d()).unwrap();
        assert_eq!(r[0].error_code, code::ELECTION_NOT_NEEDED);
        let (r, _) = elect_leaders(&img, &only(ELECTION_UNCLEAN), &d()).unwrap();
        assert_eq!(r[0].error_code, code::ELECTION_NOT_NEEDED);
        assert!(elect_leaders(&img, &only(7), &d()).is_err());
    }
}
