//! The controller's decisions: given the current image and a request, the records that
//! carry it out, or the Kafka error that refuses it. Pure functions (ids and time passed
//! in), so they are tested without a quorum and every controller decides alike.

use std::collections::{BTreeMap, BTreeSet};

use strom_common::topic_config;
use strom_proto::controller::{
    AlterConfigsRequest, AlterOp, CreatePartitionsRequest, CreateTopicsRequest,
    DeleteTopicsRequest, ResourceResult, TopicResult,
};
use strom_proto::metadata::{
    metadata_record::Record, ConfigRecord, FenceBrokerRecord, MetadataRecord,
    PartitionChangeRecord, PartitionRecord, ProducerIdsBlockRecord, RemoveTopicRecord,
    ResourceType, TopicRecord, UnfenceBrokerRecord,
};
use uuid::Uuid;

use super::image::int_list;
use super::placement::{assign_replicas, elect_leader};
use super::records::{record, uuid_bytes, uuid_from_bytes};
use super::MetadataImage;
use crate::error::ControllerError;

/// Cluster-wide defaults the decisions fall back on (Kafka's broker settings).
#[derive(Clone, Debug)]
pub struct Defaults {
    pub num_partitions: i32,
    pub default_replication_factor: i32,
    pub unclean_leader_election: bool,
    pub producer_id_block_size: i64,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            num_partitions: 1,
            default_replication_factor: 1,
            unclean_leader_election: false,
            producer_id_block_size: 1000,
        }
    }
}

const MAX_TOPIC_NAME: usize = 249;

/// Kafka's topic name rules: 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), ControllerError> {
    if name.is_empty() {
        return Err(ControllerError::InvalidTopic(
            "Topic name is illegal, it can't be empty".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(ControllerError::InvalidTopic(
            "Topic name cannot be \".\" or \"..\"".into(),
        ));
    }
    if name.len() > MAX_TOPIC_NAME {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name is illegal, it can't be longer than {MAX_TOPIC_NAME} characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
    {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

fn collision_key(name: &str) -> String {
    name.replace('.', "_")
}

fn ok_result(name: &str) -> TopicResult {
    TopicResult {
        name: name.to_string(),
        ..Default::default()
    }
}

/// The most partitions one CreateTopics or CreatePartitions request may add.
pub const MAX_PARTITIONS_PER_REQUEST: i64 = 10_000;

fn too_many_partitions() -> ControllerError {
    ControllerError::PolicyViolation(format!(
        "Excessively large number of partitions per request (more than {MAX_PARTITIONS_PER_REQUEST})."
    ))
}

fn err_result(name: &str, e: &ControllerError) -> TopicResult {
    TopicResult {
        name: name.to_string(),
        error_code: e.code(),
        error_message: e.to_string(),
        ..Default::default()
    }
}

fn validate_configs(
    configs: &[strom_proto::controller::ConfigEntry],
) -> Result<(), ControllerError> {
    for c in configs {
        let v = c.value.as_deref().ok_or_else(|| {
            ControllerError::InvalidConfig(format!(
                "Null value not supported for topic config {}",
                c.name
            ))
        })?;
        topic_config::validate(&c.name, v).map_err(|e| ControllerError::InvalidConfig(e.0))?;
    }
    Ok(())
}

fn check_assignment(
    img: &MetadataImage,
    replicas: &[i32],
    partition: usize,
) -> Result<(), ControllerError> {
    if replicas.is_empty() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes an empty replica list for partition {partition}."
        )));
    }
    let set: BTreeSet<_> = replicas.iter().collect();
    if set.len() != replicas.len() {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes the broker more than once for partition {partition}."
        )));
    }
    if let Some(b) = replicas.iter().find(|b| !img.brokers.contains_key(b)) {
        return Err(ControllerError::InvalidReplicaAssignment(format!(
            "The manual partition assignment includes broker {b}, but no such broker is registered."
        )));
    }
    Ok(())
}

/// The records creating partitions `first..` of topic `id` with the given replicas; the
/// leader is the first unfenced replica and the ISR every unfenced replica.
fn partition_records(
    img: &MetadataImage,
    id: Uuid,
    first: i32,
    assignments: &[Vec<i32>],
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let live = img.unfenced_brokers();
    let mut out = Vec::new();
    for (i, replicas) in assignments.iter().enumerate() {
        let isr: Vec<i32> = replicas
            .iter()
            .copied()
            .filter(|r| live.contains(r))
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
            leader_epoch: 0,
            partition_epoch: 0,
        })));
    }
    Ok(out)
}

/// CreateTopics: per-topic results (with ids) and the records creating the valid ones.
pub fn create_topics(
    img: &MetadataImage,
    req: &CreateTopicsRequest,
    d: &Defaults,
    mut new_id: impl FnMut() -> Uuid,
) -> (Vec<TopicResult>, Vec<MetadataRecord>) {
    // One request may not make more than MAX_PARTITIONS_PER_REQUEST partitions (as
    // Kafka's controller): every partition is a record, built in memory.
    let total: i64 = req
        .topics
        .iter()
        .map(|t| {
            if !t.assignments.is_empty() {
                t.assignments.len() as i64
            } else if t.num_partitions == -1 {
                d.num_partitions as i64
            } else {
                t.num_partitions.max(0) as i64
            }
        })
        .sum();
    if total > MAX_PARTITIONS_PER_REQUEST {
        let e = too_many_partitions();
        return (
            req.topics.iter().map(|t| err_result(&t.name, &e)).collect(),
            vec![],
        );
    }
    let mut scratch = img.clone();
    let mut results = Vec::new();
    let mut records = Vec::new();
    let mut seen = BTreeMap::new();
    for t in &req.topics {
        *seen.entry(t.name.clone()).or_insert(0) += 1;
    }
    for t in &req.topics {
        if seen[&t.name] > 1 {
            let e = ControllerError::InvalidRequest(format!(
                "Found multiple entries for topic {}.",
                t.name
            ));
            results.push(err_result(&t.name, &e));
            continue;
        }
        match create_one(&scratch, t, d, &mut new_id) {
            Ok((result, recs)) => {
                scratch.apply_batch(scratch.offset, &recs);
                if !req.validate_only {
                    records.extend(recs);
                }
                results.push(result);
            }
            Err(e) => results.push(err_result(&t.name, &e)),
        }
    }
    (results, records)
}

fn create_one(
    img: &MetadataImage,
    t: &strom_proto::controller::CreatableTopic,
    d: &Defaults,
    new_id: &mut impl FnMut() -> Uuid,
) -> Result<(TopicResult, Vec<MetadataRecord>), ControllerError> {
    validate_topic_name(&t.name)?;
    if img.topic_ids.contains_key(&t.name) {
        return Err(ControllerError::TopicAlreadyExists(t.name.clone()));
    }
    let key = collision_key(&t.name);
    if let Some(other) = img.topic_ids.keys().find(|n| collision_key(n) == key) {
        return Err(ControllerError::InvalidTopic(format!(
            "Topic '{}' collides with existing topic: {other}",
            t.name
        )));
    }
    validate_configs(&t.configs)?;
    let assignments: Vec<Vec<i32>> = if !t.assignments.is_empty() {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(ControllerError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time."
                    .into(),
            ));
        }
        let a: Vec<Vec<i32>> = t.assignments.iter().map(|l| l.values.clone()).collect();
        for (i, r) in a.iter().enumerate() {
            check_assignment(img, r, i)?;
        }
        a
    } else {
        let partitions = if t.num_partitions == -1 {
            d.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            d.default_replication_factor
        } else {
            t.replication_factor
        };
        if partitions <= 0 {
            return Err(ControllerError::InvalidPartitions(
                "Number of partitions must be larger than 0.".into(),
            ));
        }
        if rf <= 0 {
            return Err(ControllerError::InvalidReplicationFactor(
                "Replication factor must be larger than 0.".into(),
            ));
        }
        let live = img.unfenced_brokers();
        assign_replicas(img, &live, partitions as usize, rf as usize).ok_or_else(|| {
            ControllerError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {} broker(s) are registered.",
                live.len()
            ))
        })?
    };
    let id = new_id();
    let mut recs = vec![record(Record::Topic(TopicRecord {
        name: t.name.clone(),
        topic_id: uuid_bytes(&id),
    }))];
    recs.extend(partition_records(img, id, 0, &assignments)?);
    for c in &t.configs {
        recs.push(record(Record::Config(ConfigRecord {
            resource_type: ResourceType::ResourceTopic as i32,
            resource_name: t.name.clone(),
            name: c.name.clone(),
            value: c.value.clone(),
        })));
    }
    let result = TopicResult {
        topic_id: uuid_bytes(&id),
        num_partitions: assignments.len() as i32,
        replication_factor: assignments.first().map_or(0, |r| r.len() as i32),
        ..ok_result(&t.name)
    };
    Ok((result, recs))
}

/// DeleteTopics by name and by id.
pub fn delete_topics(
    img: &MetadataImage,
    req: &DeleteTopicsRequest,
) -> (Vec<TopicResult>, Vec<MetadataRecord>) {
    let mut results = Vec::new();
    let mut records = Vec::new();
    let mut removed = BTreeSet::new();
    let mut remove = |id: Uuid, name: &str, results: &mut Vec<TopicResult>| {
        if removed.insert(id) {
            records.push(record(Record::RemoveTopic(RemoveTopicRecord {
                topic_id: uuid_bytes(&id),
            })));
        }
        results.push(TopicResult {
            topic_id: uuid_bytes(&id),
            ..ok_result(name)
        });
    };
    for name in &req.names {
        match img.topic_ids.get(name) {
            Some(&id) => remove(id, name, &mut results),
            None => results.push(err_result(name, &ControllerError::UnknownTopic)),
        }
    }
    for raw in &req.topic_ids {
        let id = uuid_from_bytes(raw);
        match img.topics.get(&id) {
            Some(t) => {
                let name = t.name.clone();
                remove(id, &name, &mut results)
            }
            None => results.push(TopicResult {
                topic_id: raw.clone(),
                ..err_result("", &ControllerError::UnknownTopicId)
            }),
        }
    }
    (results, records)
}

/// CreatePartitions: grow topics to `count` partitions.
pub fn create_partitions(
    img: &MetadataImage,
    req: &CreatePartitionsRequest,
) -> (Vec<TopicResult>, Vec<MetadataRecord>) {
    let added: i64 = req
        .topics
        .iter()
        .map(|t| {
            let current = img
                .topic_by_name(&t.name)
                .map_or(0, |x| x.partitions.len() as i64);
            (t.count as i64 - current).max(0)
        })
        .sum();
    if added > MAX_PARTITIONS_PER_REQUEST {
        let e = too_many_partitions();
        return (
            req.topics.iter().map(|t| err_result(&t.name, &e)).collect(),
            vec![],
        );
    }
    let mut scratch = img.clone();
    let mut results = Vec::new();
    let mut records = Vec::new();
    for t in &req.topics {
        match create_partitions_one(&scratch, t) {
            Ok(recs) => {
                scratch.apply_batch(scratch.offset, &recs);
                if !req.validate_only {
                    records.extend(recs);
                }
                results.push(ok_result(&t.name));
            }
            Err(e) => results.push(err_result(&t.name, &e)),
        }
    }
    (results, records)
}

fn create_partitions_one(
    img: &MetadataImage,
    t: &strom_proto::controller::CreatePartitionsTopic,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    let topic = img
        .topic_by_name(&t.name)
        .ok_or(ControllerError::UnknownTopic)?;
    let current = topic.partitions.len() as i32;
    if t.count < current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic currently has {current} partitions, which is higher than the requested {}.",
            t.count
        )));
    }
    if t.count == current {
        return Err(ControllerError::InvalidPartitions(format!(
            "Topic already has {current} partitions."
        )));
    }
    let add = (t.count - current) as usize;
    let rf = topic
        .partitions
        .values()
        .next()
        .map_or(1, |p| p.replicas.len());
    let assignments = if !t.assignments.is_empty() {
        if t.assignments.len() != add {
            return Err(ControllerError::InvalidReplicaAssignment(format!(
                "Attempted to add {add} additional partition(s), but only {} assignment(s) were specified.",
                t.assignments.len()
            )));
        }
        let a: Vec<Vec<i32>> = t.assignments.iter().map(|l| l.values.clone()).collect();
        for (i, r) in a.iter().enumerate() {
            check_assignment(img, r, current as usize + i)?;
            if r.len() != rf {
                return Err(ControllerError::InvalidReplicaAssignment(format!(
                    "The manual partition assignment includes a partition with {} replica(s), but this is not consistent with previous partitions, which have {rf} replica(s).",
                    r.len()
                )));
            }
        }
        a
    } else {
        let live = img.unfenced_brokers();
        assign_replicas(img, &live, add, rf).ok_or_else(|| {
            ControllerError::InvalidReplicationFactor(format!(
                "Unable to replicate the partition {rf} time(s): only {} broker(s) are registered and unfenced.",
                live.len()
            ))
        })?
    };
    partition_records(img, topic.id, current, &assignments)
}

/// AlterConfigs and IncrementalAlterConfigs for topics.
pub fn alter_configs(
    img: &MetadataImage,
    req: &AlterConfigsRequest,
) -> (Vec<ResourceResult>, Vec<MetadataRecord>) {
    let mut results = Vec::new();
    let mut records = Vec::new();
    for r in &req.resources {
        let res = alter_one(img, r);
        let (code, msg) = match &res {
            Ok(_) => (0, String::new()),
            Err(e) => (e.code(), e.to_string()),
        };
        if let Ok(recs) = res {
            if !req.validate_only {
                records.extend(recs);
            }
        }
        results.push(ResourceResult {
            resource_type: r.resource_type,
            resource_name: r.resource_name.clone(),
            error_code: code,
            error_message: msg,
        });
    }
    (results, records)
}

fn alter_one(
    img: &MetadataImage,
    r: &strom_proto::controller::AlterConfigsResource,
) -> Result<Vec<MetadataRecord>, ControllerError> {
    if r.resource_type != ResourceType::ResourceTopic as i32 {
        return Err(ControllerError::InvalidRequest(
            "strom's broker configs are static (config file, STROM_ environment, flags); only topic configs can be altered"
                .into(),
        ));
    }
    if img.topic_by_name(&r.resource_name).is_none() {
        return Err(ControllerError::UnknownTopic);
    }
    let current = img.topic_configs(&r.resource_name);
    let mut next = if r.replace_all {
        BTreeMap::new()
    } else {
        current.clone()
    };
    for op in &r.ops {
        let def = topic_config::lookup(&op.name).ok_or_else(|| {
            ControllerError::InvalidConfig(format!("Unknown topic config name: {}", op.name))
        })?;
        match AlterOp::try_from(op.op).unwrap_or(AlterOp::AlterSet) {
            AlterOp::AlterSet => {
                let v = op.value.clone().ok_or_else(|| {
                    ControllerError::InvalidConfig(format!(
                        "Null value not supported for topic config {}",
                        op.name
                    ))
                })?;
                next.insert(op.name.clone(), v);
            }
            AlterOp::AlterDelete => {
                next.remove(&op.name);
            }
            AlterOp::AlterAppend | AlterOp::AlterSubtract => {
                if def.ty != topic_config::ConfigType::List {
                    return Err(ControllerError::InvalidConfig(format!(
                        "Config value append/subtract is not allowed for config key {} of type {:?}",
                        op.name, def.ty
                    )));
                }
                let base = next
                    .get(&op.name)
                    .cloned()
                    .unwrap_or_else(|| def.default.to_string());
                let mut items: Vec<String> = base
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                let given: Vec<String> = op
                    .value
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                if op.op == AlterOp::AlterAppend as i32 {
                    for g in given {
                        if !items.contains(&g) {
                            items.push(g);
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(i));
                }
                next.insert(op.name.clone(), items.join(","));
            }
        }
    }
    for (k, v) in &next {
        topic_config::validate(k, v).map_err(|e| ControllerError::InvalidConfig(e.0))?;
    }
    let mut recs = Vec::new();
    for (k, v) in &next {
        if current.get(k) != Some(v) {
            recs.push(config_record(&r.resource_name, k, Some(v.clone())));
        }
    }
    for k in current.keys() {
        if !next.contains_key(k) {
            recs.push(config_record(&r.resource_name, k, None));
        }
    }
    Ok(recs)
}

fn config_record(topic: &str, name: &str, value: Option<String>) -> MetadataRecord {
    record(Record::Config(ConfigRecord {
        resource_type: ResourceType::ResourceTopic as i32,
        resource_name: topic.to_string(),
        name: name.to_string(),
        value,
    }))
}

/// The next block of producer ids for a broker: `(first, records)`.
pub fn allocate_producer_ids(
    img: &MetadataImage,
    broker_id: i32,
    broker_epoch: i64,
    d: &Defaults,
) -> (i64, Vec<MetadataRecord>) {
    let first = img.next_producer_id;
    let rec = record(Record::ProducerIdsBlock(ProducerIdsBlockRecord {
        broker_id,
        broker_epoch,
        first_producer_id: first,
        next_producer_id: first + d.producer_id_block_size,
    }));
    (first, vec![rec])
}

/// Fencing a broker: it leaves every ISR it is in (unless it is the last member, as in
/// KRaft), and partitions it led get the next ISR member as leader, or none.
pub fn fence_broker(img: &MetadataImage, broker_id: i32, d: &Defaults) -> Vec<MetadataRecord> {
    let Some(b) = img.brokers.get(&broker_id) else {
        return Vec::new();
    };
    let mut recs = vec![record(Record::FenceBroker(FenceBrokerRecord {
        broker_id,
        broker_epoch: b.broker_epoch,
    }))];
    let live: Vec<i32> = img
        .unfenced_brokers()
        .into_iter()
        .filter(|&x| x != broker_id)
        .collect();
    for t in img.topics.values() {
        for (&i, p) in &t.partitions {
            if !p.isr.contains(&broker_id) && p.leader != broker_id {
                continue;
            }
            let mut isr: Vec<i32> = p.isr.iter().copied().filter(|&r| r != broker_id).collect();
            if isr.is_empty() {
                isr = p.isr.clone();
            }
            let mut next = p.clone();
            next.isr = isr.clone();
            let leader = if p.leader == broker_id || p.leader == -1 {
                elect_leader(&next, &live, d.unclean_leader_election).unwrap_or(-1)
            } else {
                p.leader
            };
            if leader == p.leader && isr == p.isr {
                continue;
            }
            recs.push(record(Record::PartitionChange(PartitionChangeRecord {
                topic_id: uuid_bytes(&t.id),
                partition: i,
                leader: (leader != p.leader).then_some(leader),
                isr: (isr != p.isr).then(|| int_list(&isr)),
                replicas: None,
            })));
        }
    }
    recs
}

/// Unfencing a broker: leaderless partitions it can lead get it as leader.
pub fn unfence_broker(img: &MetadataImage, broker_id: i32, d: &Defaults) -> Vec<MetadataRecord> {
    let Some(b) = img.brokers.get(&broker_id) else {
        return Vec::new();
    };
    let mut recs = vec![record(Record::UnfenceBroker(UnfenceBrokerRecord {
        broker_id,
        broker_epoch: b.broker_epoch,
    }))];
    let mut live = img.unfenced_brokers();
    if !live.contains(&broker_id) {
        live.push(broker_id);
    }
    for t in img.topics.values() {
        for (&i, p) in &t.partitions {
            if p.leader != -1 || !p.replicas.contains(&broker_id) {
                continue;
            }
            if let Some(leader) = elect_leader(p, &live, d.unclean_leader_election) {
                let isr = if p.isr.contains(&leader) {
                    None
                } else {
                    Some(int_list(&[leader]))
                };
                recs.push(record(Record::PartitionChange(PartitionChangeRecord {
                    topic_id: uuid_bytes(&t.id),
                    partition: i,
                    leader: Some(leader),
                    isr,
                    replicas: None,
                })));
            }
        }
    }
    recs
}

#[cfg(test)]
mod tests {
    use super::*;
    use strom_proto::controller::{
        AlterConfigOp, AlterConfigsResource, ConfigEntry, CreatableTopic,
    };
    use strom_proto::metadata::{Endpoint, RegisterBrokerRecord};

    fn cluster(n: i32) -> MetadataImage {
        let mut img = MetadataImage::default();
        for b in 1..=n {
            img.apply(
                b as u64,
                &record(Record::RegisterBroker(RegisterBrokerRecord {
                    broker_id: b,
                    broker_epoch: 0,
                    incarnation_id: String::new(),
                    endpoints: vec![Endpoint {
                        listener: "PLAINTEXT".into(),
                        host: "h".into(),
                        port: 1,
                    }],
                    rack: String::new(),
                })),
            );
            img.apply(
                b as u64,
                &record(Record::UnfenceBroker(UnfenceBrokerRecord {
                    broker_id: b,
                    broker_epoch: b as i64,
                })),
            );
        }
        img.offset = n as u64;
        img
    }

    fn ids() -> impl FnMut() -> Uuid {
        let mut n = 0u128;
        move || {
            n += 1;
            Uuid::from_u128(n)
        }
    }

    fn topic(name: &str, p: i32, rf: i32) -> CreatableTopic {
        CreatableTopic {
            name: name.into(),
            num_partitions: p,
            replication_factor: rf,
            ..Default::default()
        }
    }

    fn create(img: &mut MetadataImage, t: CreatableTopic) -> TopicResult {
        let req = CreateTopicsRequest {
            topics: vec![t],
            validate_only: false,
        };
        let mut n = img.topics.len() as u128 + 100;
        let (r, recs) = create_topics(img, &req, &Defaults::default(), || {
            n += 1;
            Uuid::from_u128(n)
        });
        img.apply_batch(img.offset + 1, &recs);
        r.into_iter().next().unwrap()
    }

    #[test]
    fn create_topic_checks_name_existence_and_replication() {
        let mut img = cluster(3);
        let r = create(&mut img, topic("orders", 6, 3));
        assert_eq!(r.error_code, 0);
        assert_eq!(img.topic_by_name("orders").unwrap().partitions.len(), 6);
        assert_eq!(create(&mut img, topic("orders", 1, 1)).error_code, 36);
        assert_eq!(create(&mut img, topic("bad name", 1, 1)).error_code, 17);
        assert_eq!(create(&mut img, topic("orders_x", 1, 4)).error_code, 38);
        assert_eq!(create(&mut img, topic("z", 0, 1)).error_code, 37);
        create(&mut img, topic("a.b", 1, 1));
        assert_eq!(
            create(&mut img, topic("a_b", 1, 1)).error_code,
            17,
            "collides with a.b"
        );
    }

    #[test]
    fn validate_only_writes_nothing_and_bad_configs_fail() {
        let img = cluster(1);
        let mut t = topic("t", 1, 1);
        let req = CreateTopicsRequest {
            topics: vec![t.clone()],
            validate_only: true,
        };
        let (r, recs) = create_topics(&img, &req, &Defaults::default(), ids());
        assert_eq!(r[0].error_code, 0);
        assert!(recs.is_empty());
        t.configs.push(ConfigEntry {
            name: "retention.ms".into(),
            value: Some("x".into()),
        });
        let req = CreateTopicsRequest {
            topics: vec![t],
            validate_only: false,
        };
        let (r, recs) = create_topics(&img, &req, &Defaults::default(), ids());
        assert_eq!(r[0].error_code, 40);
        assert!(recs.is_empty());
    }

    #[test]
    fn create_partitions_grows_only() {
        let mut img = cluster(2);
        create(&mut img, topic("t", 2, 2));
        let grow = |count| CreatePartitionsRequest {
            topics: vec![strom_proto::controller::CreatePartitionsTopic {
                name: "t".into(),
                count,
                assignments: vec![],
            }],
            validate_only: false,
        };
        let (r, _) = create_partitions(&img, &grow(1));
        assert_eq!(r[0].error_code, 37);
        let (r, recs) = create_partitions(&img, &grow(4));
        assert_eq!(r[0].error_code, 0);
        img.apply_batch(10, &recs);
        let t = img.topic_by_name("t").unwrap();
        assert_eq!(t.partitions.len(), 4);
        assert!(t.partitions.values().all(|p| p.replicas.len() == 2));
    }

    #[test]
    fn too_many_partitions_in_one_request_are_refused_without_building_them() {
        let mut img = cluster(1);
        let huge = CreateTopicsRequest {
            topics: vec![topic("huge", i32::MAX, 1), topic("small", 1, 1)],
            validate_only: false,
        };
        let (r, recs) = create_topics(&img, &huge, &Defaults::default(), ids());
        assert!(r.iter().all(|r| r.error_code == 44), "{r:?}");
        assert!(recs.is_empty());
        let ok = CreateTopicsRequest {
            topics: vec![topic("t", 10_000, 1)],
            validate_only: true,
        };
        let (r, _) = create_topics(&img, &ok, &Defaults::default(), ids());
        assert_eq!(r[0].error_code, 0, "the limit itself is allowed");
        create(&mut img, topic("t", 1, 1));
        let grow = CreatePartitionsRequest {
            topics: vec![strom_proto::controller::CreatePartitionsTopic {
                name: "t".into(),
                count: i32::MAX,
                assignments: vec![],
            }],
            validate_only: false,
        };
        let (r, recs) = create_partitions(&img, &grow);
        assert_eq!(r[0].error_code, 44);
        assert!(recs.is_empty());
    }

    #[test]
    fn incremental_alter_sets_deletes_and_appends() {
        let mut img = cluster(1);
        create(&mut img, topic("t", 1, 1));
        let alter = |ops: Vec<AlterConfigOp>, replace_all| AlterConfigsRequest {
            resources: vec![AlterConfigsResource {
                resource_type: ResourceType::ResourceTopic as i32,
                resource_name: "t".into(),
                ops,
                replace_all,
            }],
            validate_only: false,
        };
        let set = |n: &str, v: &str, op: AlterOp| AlterConfigOp {
            name: n.into(),
            op: op as i32,
            value: Some(v.into()),
        };
        let (r, recs) = alter_configs(
            &img,
            &alter(
                vec![
                    set("retention.ms", "100", AlterOp::AlterSet),
                    set("cleanup.policy", "compact", AlterOp::AlterAppend),
                ],
                false,
            ),
        );
        assert_eq!(r[0].error_code, 0);
        img.apply_batch(20, &recs);
        let c = img.topic_configs("t");
        assert_eq!(c["retention.ms"], "100");
        assert_eq!(c["cleanup.policy"], "delete,compact");
        let (r, recs) = alter_configs(
            &img,
            &alter(vec![set("segment.ms", "1000", AlterOp::AlterSet)], true),
        );
        assert_eq!(r[0].error_code, 0);
        img.apply_batch(21, &recs);
        let c = img.topic_configs("t");
        assert_eq!(c.len(), 1, "replace_all drops what is not named: {c:?}");
        let (r, _) = alter_configs(
            &img,
            &alter(vec![set("segment.ms", "-5", AlterOp::AlterSet)], false),
        );
        assert_eq!(r[0].error_code, 40);
    }

    #[test]
    fn fencing_moves_leadership_and_unfencing_restores_it() {
        let mut img = cluster(2);
        create(&mut img, topic("t", 2, 2));
        let d = Defaults::default();
        let recs = fence_broker(&img, 1, &d);
        img.apply_batch(30, &recs);
        for p in img.topic_by_name("t").unwrap().partitions.values() {
            assert_eq!(p.leader, 2);
            assert_eq!(p.isr, vec![2]);
        }
        let recs = fence_broker(&img, 2, &d);
        img.apply_batch(31, &recs);
        for p in img.topic_by_name("t").unwrap().partitions.values() {
            assert_eq!(p.leader, -1);
            assert_eq!(p.isr, vec![2], "the last ISR member stays");
        }
        let recs = unfence_broker(&img, 2, &d);
        img.apply_batch(32, &recs);
        for p in img.topic_by_name("t").unwrap().partitions.values() {
            assert_eq!(p.leader, 2);
        }
    }
}
