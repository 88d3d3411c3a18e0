//! The metadata image: brokers, topics, partitions, configs and producer-id blocks as of
//! some metadata offset. `apply` is the only way it changes. Ordered maps everywhere so
//! that iteration order (and therefore every decision derived from it) is deterministic.

use std::collections::BTreeMap;
use std::sync::Arc;

use strom_proto::metadata::{
    metadata_record::Record, ClusterRecord, ConfigRecord, ControlledShutdownRecord, Endpoint,
    FenceBrokerRecord, IntList, MetadataRecord, PartitionRecord, ProducerIdsBlockRecord,
    RegisterBrokerRecord, ResourceType, TopicRecord,
};
use uuid::Uuid;

use super::records::{record, uuid_bytes, uuid_from_bytes};

/// A registered broker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub broker_epoch: i64,
    pub incarnation_id: String,
    pub endpoints: Vec<Endpoint>,
    pub rack: String,
    pub fenced: bool,
    /// In controlled shutdown: leads nothing and joins no ISR until it registers again.
    pub in_controlled_shutdown: bool,
}

impl BrokerRegistration {
    /// Kafka's "active": may lead and join ISRs.
    pub fn is_active(&self) -> bool {
        !self.fenced && !self.in_controlled_shutdown
    }
}

/// Leader recovery state: RECOVERED, or RECOVERING after an unclean election.
pub const RECOVERED: i32 = 0;
pub const RECOVERING: i32 = 1;

/// One partition's replica set and leadership.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PartitionImage {
    /// During a reassignment: the target replicas followed by those being removed.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// Eligible leader replicas (KIP-966).
    pub elr: Vec<i32>,
    /// The last leader before the partition went leaderless.
    pub last_known_elr: Vec<i32>,
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    pub leader_recovery_state: i32,
}

impl PartitionImage {
    /// Leaderless with no replica known to hold every committed record: the ISR and the
    /// ELR are empty and the last leader, if any, lost unflushed records in an unclean
    /// restart. Only the replicas' logs can tell which one to elect (KIP-966's unclean
    /// recovery): brokers report them in their heartbeats.
    pub fn awaits_log_recovery(&self) -> bool {
        self.leader == -1
            && self.isr.is_empty()
            && self.elr.is_empty()
            && self.last_known_elr.is_empty()
    }

    /// Whether a reassignment is in progress.
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// The replicas once the reassignment in progress completes.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }
}

/// A topic: its name, id and partitions (index = partition id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
}

/// The key of a config set: resource type and name.
pub type ConfigKey = (i32, String);

/// Cluster metadata as of `offset`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetadataImage {
    /// The metadata offset (Raft log index) of the last record applied.
    pub offset: u64,
    pub cluster_id: Option<String>,
    pub brokers: BTreeMap<i32, BrokerRegistration>,
    /// Each topic shared between images: a new image (one per committed batch) copies
    /// the map, not every topic's partitions; a change copies the topic it changes
    /// (`Arc::make_mut`).
    pub topics: BTreeMap<Uuid, Arc<TopicImage>>,
    pub topic_ids: BTreeMap<String, Uuid>,
    pub configs: BTreeMap<ConfigKey, BTreeMap<String, String>>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
}

impl MetadataImage {
    /// Applies every record of a batch committed at `offset`.
    pub fn apply_batch(&mut self, offset: u64, records: &[MetadataRecord]) {
        for r in records {
            self.apply(offset, r);
        }
        self.offset = self.offset.max(offset);
    }

    /// Applies one record committed at `offset`. Records that no longer fit the image (a
    /// change to a topic deleted meanwhile) are ignored, never half-applied.
    pub fn apply(&mut self, offset: u64, r: &MetadataRecord) {
        let Some(rec) = &r.record else { return };
        match rec {
            Record::Cluster(c) => {
                if self.cluster_id.is_none() {
                    self.cluster_id = Some(c.cluster_id.clone());
                }
            }
            Record::RegisterBroker(b) => {
                let epoch = if b.broker_epoch > 0 {
                    b.broker_epoch
                } else {
                    offset as i64
                };
                self.brokers.insert(
                    b.broker_id,
                    BrokerRegistration {
                        broker_id: b.broker_id,
                        broker_epoch: epoch,
                        incarnation_id: b.incarnation_id.clone(),
                        endpoints: b.endpoints.clone(),
                        rack: b.rack.clone(),
                        fenced: true,
                        in_controlled_shutdown: false,
                    },
                );
            }
            Record::ControlledShutdown(c) => {
                if let Some(b) = self.brokers.get_mut(&c.broker_id) {
                    if b.broker_epoch == c.broker_epoch {
                        b.in_controlled_shutdown = true;
                    }
                }
            }
            Record::ClearElr(c) => {
                let only = (!c.topic_id.is_empty()).then(|| uuid_from_bytes(&c.topic_id));
                for t in self.topics.values_mut() {
                    if only.is_some_and(|id| id != t.id)
                        || t.partitions
                            .values()
                            .all(|p| p.elr.is_empty() && p.last_known_elr.is_empty())
                    {
                        continue;
                    }
                    for p in Arc::make_mut(t).partitions.values_mut() {
                        if !p.elr.is_empty() || !p.last_known_elr.is_empty() {
                            p.elr.clear();
                            p.last_known_elr.clear();
                            p.partition_epoch += 1;
                        }
                    }
                }
            }
            Record::FenceBroker(f) => {
                if let Some(b) = self.brokers.get_mut(&f.broker_id) {
                    if b.broker_epoch == f.broker_epoch {
                        b.fenced = true;
                    }
                }
            }
            Record::UnfenceBroker(f) => {
                if let Some(b) = self.brokers.get_mut(&f.broker_id) {
                    if b.broker_epoch == f.broker_epoch {
                        b.fenced = false;
                    }
                }
            }
            Record::UnregisterBroker(u) => {
                if self
                    .brokers
                    .get(&u.broker_id)
                    .is_some_and(|b| b.broker_epoch == u.broker_epoch)
                {
                    self.brokers.remove(&u.broker_id);
                }
            }
            Record::Topic(t) => {
                let id = uuid_from_bytes(&t.topic_id);
                if self.topic_ids.contains_key(&t.name) || self.topics.contains_key(&id) {
                    return;
                }
                self.topic_ids.insert(t.name.clone(), id);
                self.topics.insert(
                    id,
                    Arc::new(TopicImage {
                        name: t.name.clone(),
                        id,
                        partitions: BTreeMap::new(),
                    }),
                );
            }
            Record::Partition(p) => {
                let id = uuid_from_bytes(&p.topic_id);
                if let Some(t) = self.topics.get_mut(&id).map(Arc::make_mut) {
                    t.partitions.insert(
                        p.partition,
                        PartitionImage {
                            replicas: p.replicas.clone(),
                            isr: p.isr.clone(),
                            leader: p.leader,
                            leader_epoch: p.leader_epoch,
                            partition_epoch: p.partition_epoch,
                            elr: p.elr.clone(),
                            last_known_elr: p.last_known_elr.clone(),
                            adding_replicas: p.adding_replicas.clone(),
                            removing_replicas: p.removing_replicas.clone(),
                            leader_recovery_state: p.leader_recovery_state,
                        },
                    );
                }
            }
            Record::PartitionChange(c) => {
                let id = uuid_from_bytes(&c.topic_id);
                let Some(p) = self
                    .topics
                    .get_mut(&id)
                    .filter(|t| t.partitions.contains_key(&c.partition))
                    .map(Arc::make_mut)
                    .and_then(|t| t.partitions.get_mut(&c.partition))
                else {
                    return;
                };
                // Kafka's PartitionRegistration.merge: a present leader (even the same one)
                // bumps the leader epoch; every change bumps the partition epoch.
                if let Some(leader) = c.leader {
                    p.leader = leader;
                    p.leader_epoch += 1;
                }
                let set = |dst: &mut Vec<i32>, src: &Option<IntList>| {
                    if let Some(l) = src {
                        *dst = l.values.clone();
                    }
                };
                set(&mut p.isr, &c.isr);
                set(&mut p.replicas, &c.replicas);
                set(&mut p.elr, &c.elr);
                set(&mut p.last_known_elr, &c.last_known_elr);
                set(&mut p.adding_replicas, &c.adding_replicas);
                set(&mut p.removing_replicas, &c.removing_replicas);
                if let Some(lrs) = c.leader_recovery_state {
                    p.leader_recovery_state = lrs;
                }
                p.partition_epoch += 1;
            }
            Record::RemoveTopic(r) => {
                let id = uuid_from_bytes(&r.topic_id);
                if let Some(t) = self.topics.remove(&id) {
                    self.topic_ids.remove(&t.name);
                    self.configs
                        .remove(&(ResourceType::ResourceTopic as i32, t.name.clone()));
                }
            }
            Record::Config(c) => {
                let key = (c.resource_type, c.resource_name.clone());
                match &c.value {
                    Some(v) => {
                        self.configs
                            .entry(key)
                            .or_default()
                            .insert(c.name.clone(), v.clone());
                    }
                    None => {
                        if let Some(m) = self.configs.get_mut(&key) {
                            m.remove(&c.name);
                            if m.is_empty() {
                                self.configs.remove(&key);
                            }
                        }
                    }
                }
            }
            Record::ProducerIdsBlock(p) => {
                self.next_producer_id = self.next_producer_id.max(p.next_producer_id);
            }
        }
    }

    /// The topic called `name`.
    pub fn topic_by_name(&self, name: &str) -> Option<&TopicImage> {
        self.topic_ids
            .get(name)
            .and_then(|id| self.topics.get(id))
            .map(|t| &**t)
    }

    /// Cluster-wide dynamic broker configs (Kafka's `--entity-default` broker configs,
    /// resource name ""): they override the brokers' static settings.
    pub fn cluster_configs(&self) -> BTreeMap<String, String> {
        self.configs
            .get(&(ResourceType::ResourceBroker as i32, String::new()))
            .cloned()
            .unwrap_or_default()
    }

    /// One broker's own dynamic configs (resource name its id).
    pub fn broker_configs(&self, broker_id: i32) -> BTreeMap<String, String> {
        self.configs
            .get(&(ResourceType::ResourceBroker as i32, broker_id.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// A group's dynamic configs (KIP-848), empty when it has none.
    pub fn group_configs(&self, group: &str) -> BTreeMap<String, String> {
        self.configs
            .get(&(ResourceType::ResourceGroup as i32, group.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every group with dynamic configs, with them.
    pub fn all_group_configs(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.configs
            .iter()
            .filter(|((rt, _), _)| *rt == ResourceType::ResourceGroup as i32)
            .map(|((_, name), m)| (name.clone(), m.clone()))
            .collect()
    }

    /// A topic's dynamic configs (empty when it has none).
    pub fn topic_configs(&self, name: &str) -> BTreeMap<String, String> {
        self.configs
            .get(&(ResourceType::ResourceTopic as i32, name.to_string()))
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `id` is registered, unfenced and not shutting down.
    pub fn is_active(&self, id: i32) -> bool {
        self.brokers.get(&id).is_some_and(|b| b.is_active())
    }

    /// Brokers that are registered and not fenced, by id.
    pub fn unfenced_brokers(&self) -> Vec<i32> {
        self.brokers
            .values()
            .filter(|b| !b.fenced)
            .map(|b| b.broker_id)
            .collect()
    }

    /// The image as records which, applied in order to an empty image, rebuild it exactly:
    /// the content of snapshots and of the catch-up answer to a broker far behind.
    pub fn to_records(&self) -> Vec<MetadataRecord> {
        let mut out = Vec::new();
        if let Some(c) = &self.cluster_id {
            out.push(record(Record::Cluster(ClusterRecord {
                cluster_id: c.clone(),
            })));
        }
        for b in self.brokers.values() {
            out.push(record(Record::RegisterBroker(RegisterBrokerRecord {
                broker_id: b.broker_id,
                broker_epoch: b.broker_epoch,
                incarnation_id: b.incarnation_id.clone(),
                endpoints: b.endpoints.clone(),
                rack: b.rack.clone(),
            })));
            let f = FenceBrokerRecord {
                broker_id: b.broker_id,
                broker_epoch: b.broker_epoch,
            };
            if b.in_controlled_shutdown {
                out.push(record(Record::ControlledShutdown(
                    ControlledShutdownRecord {
                        broker_id: b.broker_id,
                        broker_epoch: b.broker_epoch,
                    },
                )));
            }
            if b.fenced {
                out.push(record(Record::FenceBroker(f)));
            } else {
                out.push(record(Record::UnfenceBroker(
                    strom_proto::metadata::UnfenceBrokerRecord {
                        broker_id: f.broker_id,
                        broker_epoch: f.broker_epoch,
                    },
                )));
            }
        }
        for t in self.topics.values() {
            out.push(record(Record::Topic(TopicRecord {
                name: t.name.clone(),
                topic_id: uuid_bytes(&t.id),
            })));
            for (&i, p) in &t.partitions {
                out.push(record(Record::Partition(PartitionRecord {
                    topic_id: uuid_bytes(&t.id),
                    partition: i,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    elr: p.elr.clone(),
                    last_known_elr: p.last_known_elr.clone(),
                    adding_replicas: p.adding_replicas.clone(),
                    removing_replicas: p.removing_replicas.clone(),
                    leader_recovery_state: p.leader_recovery_state,
                })));
            }
        }
        for ((rt, rn), m) in &self.configs {
            for (k, v) in m {
                out.push(record(Record::Config(ConfigRecord {
                    resource_type: *rt,
                    resource_name: rn.clone(),
                    name: k.clone(),
                    value: Some(v.clone()),
                })));
            }
        }
        if self.next_producer_id > 0 {
            out.push(record(Record::ProducerIdsBlock(ProducerIdsBlockRecord {
                broker_id: -1,
                broker_epoch: -1,
                first_producer_id: self.next_producer_id,
                next_producer_id: self.next_producer_id,
            })));
        }
        out
    }

    /// Rebuilds an image from `to_records` output taken at `offset`.
    pub fn from_records(offset: u64, records: &[MetadataRecord]) -> MetadataImage {
        let mut img = MetadataImage::default();
        img.apply_batch(offset, records);
        img
    }
}

/// An `IntList` from a slice.
pub fn int_list(v: &[i32]) -> IntList {
    IntList { values: v.to_vec() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_proto::metadata::{PartitionChangeRecord, RemoveTopicRecord, UnfenceBrokerRecord};

    fn sample() -> MetadataImage {
        let id = Uuid::from_u128(7);
        let mut img = MetadataImage::default();
        let recs = vec![
            record(Record::Cluster(ClusterRecord {
                cluster_id: "c1".into(),
            })),
            record(Record::RegisterBroker(RegisterBrokerRecord {
                broker_id: 1,
                broker_epoch: 0,
                incarnation_id: "i".into(),
                endpoints: vec![Endpoint {
                    listener: "PLAINTEXT".into(),
                    host: "h".into(),
                    port: 9,
                }],
                rack: String::new(),
            })),
            record(Record::UnfenceBroker(UnfenceBrokerRecord {
                broker_id: 1,
                broker_epoch: 3,
            })),
            record(Record::Topic(TopicRecord {
                name: "t".into(),
                topic_id: uuid_bytes(&id),
            })),
            record(Record::Partition(PartitionRecord {
                topic_id: uuid_bytes(&id),
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
                partition_epoch: 0,
                elr: vec![],
                last_known_elr: vec![],
                adding_replicas: vec![],
                removing_replicas: vec![],
                leader_recovery_state: 0,
            })),
            record(Record::Config(ConfigRecord {
                resource_type: ResourceType::ResourceTopic as i32,
                resource_name: "t".into(),
                name: "retention.ms".into(),
                value: Some("5".into()),
            })),
            record(Record::ProducerIdsBlock(ProducerIdsBlockRecord {
                broker_id: 1,
                broker_epoch: 3,
                first_producer_id: 0,
                next_producer_id: 1000,
            })),
        ];
        img.apply_batch(3, &recs);
        img
    }

    #[test]
    fn register_takes_offset_as_epoch_and_starts_fenced() {
        let img = sample();
        let b = &img.brokers[&1];
        assert_eq!(b.broker_epoch, 3);
        assert!(!b.fenced, "unfence with the matching epoch applies");
        let mut img2 = img.clone();
        img2.apply(
            4,
            &record(Record::FenceBroker(FenceBrokerRecord {
                broker_id: 1,
                broker_epoch: 2,
            })),
        );
        assert!(!img2.brokers[&1].fenced, "a stale epoch does not fence");
    }

    #[test]
    fn records_round_trip_to_the_same_image() {
        let img = sample();
        let back = MetadataImage::from_records(img.offset, &img.to_records());
        assert_eq!(img, back);
    }

    #[test]
    fn partition_change_bumps_epochs_and_remove_drops_configs() {
        let mut img = sample();
        let id = Uuid::from_u128(7);
        img.apply(
            5,
            &record(Record::PartitionChange(PartitionChangeRecord {
                topic_id: uuid_bytes(&id),
                partition: 0,
                leader: Some(-1),
                isr: Some(int_list(&[1])),
                ..Default::default()
            })),
        );
        let p = &img.topics[&id].partitions[&0];
        assert_eq!((p.leader, p.leader_epoch, p.partition_epoch), (-1, 1, 1));
        img.apply(
            6,
            &record(Record::RemoveTopic(RemoveTopicRecord {
                topic_id: uuid_bytes(&id),
            })),
        );
        assert!(img.topic_by_name("t").is_none());
        assert!(img.topic_configs("t").is_empty());
    }
}
